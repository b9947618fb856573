-- How each ExApp is reached on Kubernetes, as its last /k8s/exapp/expose gave it (HaRP keeps
-- this in memory only), or that it is a Docker ExApp (kind 'docker': no Kubernetes look-up).
CREATE TABLE k8s_expose (
    app_id        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('docker', 'nodeport', 'clusterip',
                                                'loadbalancer', 'manual', 'k8s')),
    upstream_host TEXT NOT NULL DEFAULT '',
    upstream_port INTEGER NOT NULL DEFAULT 0,
    node_name     TEXT NOT NULL DEFAULT '',
    node_selector TEXT NOT NULL DEFAULT '',
    address_type  TEXT NOT NULL DEFAULT 'InternalIP',
    service       TEXT NOT NULL DEFAULT '',
    updated_at    INTEGER NOT NULL -- unix seconds
) STRICT;
