#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The image's entrypoint. Started as root, it gives the harp user what it needs (the state
# directory, the certificates it reads or generates, the Docker socket's group) and drops to
# it with setpriv, without capabilities. It stays root only when the mounted Docker socket
# grants its group no access. Then it runs the supervisor (harp-ctl serve and the data
# planes), or, given arguments, that command (docker run IMAGE harp-ctl config check).
set -eu
say() { echo "harp-container: $*" >&2; }
[ $# -gt 0 ] || set -- /usr/lib/harp/supervise

if [ "$(id -u)" -ne 0 ]; then
    exec "$@"   # docker run --user: nothing to prepare, nothing to drop
fi

state=${HP_STATE_DIR:-/var/lib/harp}
certs=${HP_CERTS_DIR:-/certs}
sock=${HP_DOCKER_SOCKET:-/var/run/docker.sock}

# A volume or bind mount keeps its owner: make what harp writes its own. In /certs that is
# the directory, frp/ (generated at first start, or HaRP's own to be read) and cert.pem.
mkdir -p "$state" "$certs/frp"
find "$state" "$certs/frp" ! -user harp -exec chown -h harp:harp {} +
chown -h harp:harp "$certs"
[ ! -e "$certs/cert.pem" ] || chown -h harp "$certs/cert.pem"

groups=harp
if [ -S "$sock" ]; then
    gid=$(stat -c %g "$sock")
    mode=$(stat -c %a "$sock")
    if [ $(((8#$mode >> 3) & 6)) -eq 6 ]; then
        groups="harp,$gid"
    else
        say "$sock (mode $mode) gives its group no access: running as root"
        exec "$@"
    fi
fi
export HOME="$state" USER=harp LOGNAME=harp
exec setpriv --reuid=harp --regid=harp --groups="$groups" --inh-caps=-all \
    --bounding-set=-all --no-new-privs -- "$@"
