-- ExApps removed with DELETE /exapp_storage: not fetched again from Nextcloud until AppAPI
-- registers them again (POST /exapp_storage clears the row).
CREATE TABLE exapp_removed (
    app_id     TEXT PRIMARY KEY,
    removed_at INTEGER NOT NULL
) STRICT;
