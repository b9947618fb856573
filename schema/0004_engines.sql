-- Docker engines, keyed by the port AppAPI names in its docker-engine-port header.
CREATE TABLE engines (
    port       INTEGER PRIMARY KEY CHECK (port BETWEEN 24000 AND 24099),
    name       TEXT NOT NULL UNIQUE,
    address    TEXT NOT NULL DEFAULT '', -- '': 127.0.0.1:<port> (an FRP tunnel); else
                                         -- unix:///path or tcp://host:port
    created_at INTEGER NOT NULL          -- unix seconds
) STRICT;
