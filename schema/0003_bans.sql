-- Client IPs banned for brute force (failures summed over every data plane) or by an operator.
CREATE TABLE bans (
    ip         TEXT PRIMARY KEY,          -- canonical text form
    failures   INTEGER NOT NULL DEFAULT 0,
    reason     TEXT NOT NULL CHECK (reason IN ('failures', 'operator')),
    created_at INTEGER NOT NULL,          -- unix seconds
    expires_at INTEGER NOT NULL
) STRICT;
