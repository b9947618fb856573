#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The image's HEALTHCHECK: the control plane answers /heartbeat on HP_CONTROL_ADDRESS, a data
# plane answers AppAPI's heartbeat (with the shared key) on HP_EXAPPS_ADDRESS, and the FRP
# frontend accepts on HP_FRP_ADDRESS. A wildcard address is checked on loopback.
set -u

# local ADDR: host:port with a wildcard host replaced by loopback.
local_addr() {
    local host=${1%:*} port=${1##*:}
    case $host in
    "" | 0.0.0.0 | "*") host=127.0.0.1 ;;
    "[::]") host="[::1]" ;;
    esac
    echo "$host:$port"
}

# The key as harp reads it: the file without its trailing newlines, or the variable without
# surrounding blanks and one pair of quotes.
if [ -n "${HP_SHARED_KEY_FILE:-}" ]; then
    key=$(cat "$HP_SHARED_KEY_FILE") || exit 1
else
    key=${HP_SHARED_KEY:-}
    key=${key#"${key%%[![:space:]]*}"}
    key=${key%"${key##*[![:space:]]}"}
    key=${key#\"} key=${key%\"} key=${key#\'} key=${key%\'}
fi

ctl=$(local_addr "${HP_CONTROL_ADDRESS:-127.0.0.1:8200}")
if ! curl -fsS -o /dev/null --max-time 5 "http://$ctl/heartbeat"; then
    echo "unhealthy: the control plane does not answer http://$ctl/heartbeat"
    exit 1
fi
exapps=$(local_addr "${HP_EXAPPS_ADDRESS:-0.0.0.0:8780}")
if ! printf 'harp-shared-key: %s\n' "$key" |
    curl -fsS -o /dev/null --max-time 5 -H @- "http://$exapps/exapps/app_api/heartbeat"; then
    echo "unhealthy: no data plane answers http://$exapps/exapps/app_api/heartbeat"
    exit 1
fi
frp=$(local_addr "${HP_FRP_ADDRESS:-0.0.0.0:8782}")
frp_host=${frp%:*} frp_host=${frp_host#[} frp_host=${frp_host%]}
if ! timeout 5 bash -c ": >/dev/tcp/$frp_host/${frp##*:}" 2>/dev/null; then
    echo "unhealthy: the FRP frontend does not accept on $frp"
    exit 1
fi
echo "healthy"
