#!/bin/sh
# One command from a fresh Debian 12 checkout to a running gateway on this machine:
# installs what is missing, builds, and starts harp-ctl serve and one harp-dp with local
# defaults.
#   deploy/up.sh          start (or say it is already running)
#   deploy/up.sh stop     stop what up.sh started
# Local defaults (override through the environment): state in ./.harp, control API on
# 127.0.0.1:8200, ExApps frontend on 127.0.0.1:8780, FRP frontend on 127.0.0.1:8782 (TLS,
# certificates in .harp/certs/frp), NC_INSTANCE_URL=http://localhost. A shared key is generated once into
# .harp/shared_key (0600) and printed the first time.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
state=${HP_STATE_DIR:-$top/.harp}
pidfile=$state/harp-ctl.pid
dppidfile=$state/harp-dp.pid
export HP_STATE_DIR="$state"
export HP_CONTROL_ADDRESS=${HP_CONTROL_ADDRESS:-127.0.0.1:8200}
export HP_EXAPPS_ADDRESS=${HP_EXAPPS_ADDRESS:-127.0.0.1:8780}
export NC_INSTANCE_URL=${NC_INSTANCE_URL:-http://localhost}
export HP_CERTS_DIR=${HP_CERTS_DIR:-$state/certs}
export HP_FRP_ADDRESS=${HP_FRP_ADDRESS:-127.0.0.1:8782}
export HP_LOG_LEVEL=${HP_LOG_LEVEL:-info}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ "${1:-}" = stop ]; then
    for p in "$dppidfile" "$pidfile"; do
        if running "$p"; then
            kill "$(cat "$p")" && rm -f "$p" && echo "$(basename "$p" .pid) stopped"
        fi
    done
    exit 0
fi

"$top/deploy/deps.sh"
cd "$top"
[ -x configure ] || ./autogen.sh >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q
make -s -j"$(nproc)" >/dev/null
ctl="$top/build/harp-ctl/harp-ctl"
dpbin="$top/build/harp-dp/harp-dp"

if running "$pidfile"; then
    echo "harp-ctl is already running (pid $(cat "$pidfile")); 'deploy/up.sh stop' stops it"
    exit 0
fi
umask 077
mkdir -p "$state"
if [ -z "${HP_SHARED_KEY:-}${HP_SHARED_KEY_FILE:-}" ]; then
    if [ ! -s "$state/shared_key" ]; then
        key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
        printf '%s\n' "$key" > "$state/shared_key"
        echo "Generated the shared key (shown once; kept in $state/shared_key):"
        echo "  $key"
        echo "Give it to AppAPI as the HaRP daemon's shared key."
    fi
    export HP_SHARED_KEY_FILE="$state/shared_key"
fi
"$ctl" config check >/dev/null
# start NAME PIDFILE PROBE-URL COMMAND...: runs COMMAND in the background with its log in the
# state directory and waits until PROBE-URL answers.
start() {
    name=$1 pf=$2 probe=$3
    shift 3
    nohup "$@" >>"$state/$name.log" 2>&1 </dev/null &
    echo $! > "$pf"
    i=0
    until curl -sS -o /dev/null "$probe" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! running "$pf"; then
            echo "$name did not start; see $state/$name.log" >&2
            tail -5 "$state/$name.log" >&2
            exit 1
        fi
        sleep 0.1
    done
}
start harp-ctl "$pidfile" "http://$HP_CONTROL_ADDRESS/heartbeat" "$ctl" serve
start harp-dp "$dppidfile" "http://$HP_EXAPPS_ADDRESS/" "$dpbin" --frp
echo "harp is running: control plane http://$HP_CONTROL_ADDRESS, ExApps http://$HP_EXAPPS_ADDRESS,"
echo "  FRP frontend $HP_FRP_ADDRESS"
echo "  (logs: $state/harp-ctl.log, $state/harp-dp.log)"
echo "Try: curl -H \"harp-shared-key: \$(cat $state/shared_key)\" http://$HP_EXAPPS_ADDRESS/exapps/app_api/heartbeat"
echo "     HP_STATE_DIR=$state $ctl status"
