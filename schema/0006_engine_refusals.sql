-- Engine ports whose engine was removed: their FRP tunnels are refused until an engine is
-- registered on the port again.
CREATE TABLE engine_refusals (
    port  INTEGER PRIMARY KEY CHECK (port BETWEEN 24000 AND 24099),
    since INTEGER NOT NULL -- unix seconds
) STRICT;
