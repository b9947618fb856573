-- The FRP certificate authority and the certificates it issued (PEM). The database is 0600.
CREATE TABLE certificates (
    name       TEXT PRIMARY KEY CHECK (name IN ('ca', 'server', 'client')),
    cert_pem   TEXT NOT NULL,
    key_pem    TEXT NOT NULL,
    created_at INTEGER NOT NULL -- unix seconds
) STRICT;
