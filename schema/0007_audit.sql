-- The audit chain (docs/audit.md). Each change appends one entry in the transaction of the
-- change: hash = SHA-256 of the canonical JSON of {seq, at, actor, op, subject, version,
-- effect, prev}; prev is the hash of entry seq - 1 (of the checkpoint, or 64 zeros, first).
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,     -- unix seconds
    actor     TEXT NOT NULL,        -- appapi, operator, dataplane, harp-ctl
    op        TEXT NOT NULL,        -- exapp.put, exapp.delete, ban.put, ...
    subject   TEXT NOT NULL,        -- the app id, IP, engine name, ...
    version   INTEGER NOT NULL,     -- the routing table version after this entry
    effect    TEXT NOT NULL,        -- canonical JSON
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
) STRICT;
-- Table versions as published: signed by harp-ctl over {version, seq, table_hash, chain_head}.
CREATE TABLE audit_versions (
    version    INTEGER PRIMARY KEY,
    seq        INTEGER NOT NULL,
    table_hash TEXT NOT NULL,
    chain_head TEXT NOT NULL,
    sig        TEXT NOT NULL,
    at         INTEGER NOT NULL
) STRICT;
CREATE INDEX audit_versions_seq ON audit_versions (seq);
-- Data planes' signed acknowledgements of a table version they applied.
CREATE TABLE audit_acks (
    version    INTEGER NOT NULL,
    dp_key     TEXT NOT NULL,       -- Ed25519 public key, hex
    dp_id      TEXT NOT NULL,
    table_hash TEXT NOT NULL,
    sig        TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (version, dp_key)
) STRICT;
-- Where the log starts after pruning: the entry it replaces, signed with the table then.
CREATE TABLE audit_checkpoint (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    seq     INTEGER NOT NULL,
    hash    TEXT NOT NULL,
    version INTEGER NOT NULL,
    tbl     TEXT NOT NULL,          -- canonical JSON of the routing table at seq
    at      INTEGER NOT NULL,
    sig     TEXT NOT NULL
) STRICT;
