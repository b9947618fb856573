-- ExApps registered by AppAPI (POST /exapp_storage) and their routes, in AppAPI's order.
CREATE TABLE exapps (
    app_id        TEXT PRIMARY KEY,             -- lower-case
    token         TEXT NOT NULL,                -- secret: never logged, never listed
    version       TEXT NOT NULL,
    host          TEXT NOT NULL,
    port          INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    resolved_host TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,             -- unix seconds
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE exapp_routes (
    app_id                TEXT NOT NULL REFERENCES exapps(app_id) ON DELETE CASCADE,
    position              INTEGER NOT NULL,
    url                   TEXT NOT NULL,        -- Python re pattern, matched anchored at the start
    access_level          INTEGER NOT NULL CHECK (access_level BETWEEN 0 AND 2),
    bruteforce_protection TEXT NOT NULL DEFAULT '[]',  -- JSON array of status codes
    PRIMARY KEY (app_id, position)
) STRICT;

-- Version of the routing table: bumped by every change to exapps or their routes.
CREATE TABLE table_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;
INSERT INTO table_state (id, version) VALUES (1, 0);
