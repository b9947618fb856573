-- Timeouts set by operators (harp-ctl exapp set, PUT /api/v1/exapps/<id>/timeouts), of an app
-- (route '') or of one of its routes (by its url pattern). Apart from exapps and exapp_routes,
-- which AppAPI's registrations rewrite, so that they survive them (and a DELETE + POST).
CREATE TABLE exapp_timeouts (
    app_id TEXT NOT NULL,                       -- lower-case
    route  TEXT NOT NULL DEFAULT '',
    kind   TEXT NOT NULL CHECK (kind IN ('connect', 'request', 'first_byte', 'idle', 'ws_idle')),
    ms     INTEGER NOT NULL CHECK (ms BETWEEN 1000 AND 2073600000),
    PRIMARY KEY (app_id, route, kind)
) STRICT;
