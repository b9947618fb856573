-- Certificate lifecycle: a CA rotation's overlap and the renewal history (name -> value),
-- and the containers install_certificates put the FRP client files in (renewals reach them).
CREATE TABLE cert_state (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE cert_installs (
    port         INTEGER NOT NULL, -- the Docker engine's port
    container    TEXT NOT NULL,
    installed_at INTEGER NOT NULL, -- unix seconds
    delivered    TEXT NOT NULL DEFAULT '', -- sha256 of the client certificate last written
    PRIMARY KEY (port, container)
) STRICT;
