#!/bin/sh
# One command from a fresh Debian 12 checkout to a running gateway on this machine: installs
# what is missing, builds, installs (as root, under /usr/local) and starts harp-ctl serve and
# one harp-dp --frp with local defaults.
#   deploy/up.sh          start what is not running (a data plane that died is restarted)
#   deploy/up.sh stop     stop what up.sh started
# Defaults (override through the environment): as root the state is in /var/lib/harp, the
# directory harp-ctl looks in by default, so the CLI works as typed; otherwise in ./.harp.
# Control API 127.0.0.1:8200, ExApps frontend 127.0.0.1:8780, FRP frontend 127.0.0.1:8782
# (TLS, certificates in $HP_STATE_DIR/certs/frp), NC_INSTANCE_URL=http://localhost. The shared
# key is HP_SHARED_KEY or HP_SHARED_KEY_FILE if set, else generated once; either way it is kept
# in $HP_STATE_DIR/shared_key (0600), where the CLI finds it.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -eq 0 ]; then
    state=${HP_STATE_DIR:-/var/lib/harp}
else
    state=${HP_STATE_DIR:-$top/.harp}
fi
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

stop() {
    if running "$1"; then
        pid=$(cat "$1")
        kill "$pid"
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        echo "$(basename "$1" .pid) stopped"
    fi
    rm -f "$1"
}

if [ "${1:-}" = stop ]; then
    stop "$dppidfile"
    stop "$pidfile"
    exit 0
fi

"$top/deploy/deps.sh"
cd "$top"
[ -x configure ] || ./autogen.sh >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q
make -s -j"$(nproc)" >/dev/null
if [ "$(id -u)" -eq 0 ]; then
    make -s install >/dev/null
    prefix=$(sed -n 's/^prefix = //p' Makefile)
    ctl="$prefix/bin/harp-ctl"
    dpbin="$prefix/bin/harp-dp"
else
    ctl="$top/build/harp-ctl/harp-ctl"
    dpbin="$top/build/harp-dp/harp-dp"
fi

umask 077
mkdir -p "$state"
if [ -n "${HP_SHARED_KEY:-}" ]; then
    printf '%s\n' "$HP_SHARED_KEY" > "$state/shared_key"
    unset HP_SHARED_KEY
elif [ -n "${HP_SHARED_KEY_FILE:-}" ]; then
    [ "$HP_SHARED_KEY_FILE" = "$state/shared_key" ] || cp "$HP_SHARED_KEY_FILE" "$state/shared_key"
elif [ ! -s "$state/shared_key" ]; then
    key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    printf '%s\n' "$key" > "$state/shared_key"
    echo "Generated the shared key (shown once; kept in $state/shared_key):"
    echo "  $key"
    echo "Give it to AppAPI as the HaRP daemon's shared key."
fi
export HP_SHARED_KEY_FILE="$state/shared_key"

# The configuration errors of 'serve', before anything starts.
"$ctl" config check >/dev/null

# ours_ctl: the control plane answering on HP_CONTROL_ADDRESS accepts our key and serves our
# state directory (another program on the port, or another harp, does not).
ours_ctl() {
    "$ctl" status --json 2>/dev/null | grep -q "\"state_dir\": *\"$state\""
}
# ours_dp PID: the control plane lists data plane PID as connected.
ours_dp() {
    "$ctl" dp list --json 2>/dev/null | grep -q "\"pid\": *$1[,}]"
}

# start NAME PIDFILE CHECK COMMAND...: runs COMMAND in the background with its log in the state
# directory, and waits (up to 60 s) until CHECK holds for it. If it exits or never gets there,
# prints the end of its log and returns 1 (the process is stopped).
start() {
    name=$1 pf=$2 check=$3
    shift 3
    nohup "$@" >>"$state/$name.log" 2>&1 </dev/null &
    echo $! > "$pf"
    i=0
    until $check "$(cat "$pf")"; do
        i=$((i + 1))
        if ! running "$pf" || [ $i -gt 600 ]; then
            if running "$pf"; then
                echo "$name did not become ready within 60 s; stopping it" >&2
                stop "$pf" >/dev/null
            else
                echo "$name exited at start:" >&2
                rm -f "$pf"
            fi
            tail -5 "$state/$name.log" >&2
            return 1
        fi
        sleep 0.1
    done
}

started_ctl=no
if running "$pidfile"; then
    if ! ours_ctl; then
        echo "harp-ctl (pid $(cat "$pidfile")) runs but does not answer on $HP_CONTROL_ADDRESS;" \
            "see $state/harp-ctl.log, or 'deploy/up.sh stop' and start again" >&2
        exit 1
    fi
else
    start harp-ctl "$pidfile" ours_ctl "$ctl" serve || exit 1
    started_ctl=yes
fi
if running "$dppidfile" && ours_dp "$(cat "$dppidfile")"; then
    [ $started_ctl = yes ] || echo "harp is already running ('deploy/up.sh stop' stops it)"
else
    if running "$dppidfile"; then
        stop "$dppidfile" >/dev/null
    fi
    [ $started_ctl = yes ] || echo "harp-ctl is running; starting its data plane again"
    if ! start harp-dp "$dppidfile" ours_dp "$dpbin" --frp; then
        [ $started_ctl = no ] || stop "$pidfile" >/dev/null
        exit 1
    fi
fi
echo "harp is running: control plane http://$HP_CONTROL_ADDRESS, ExApps http://$HP_EXAPPS_ADDRESS,"
echo "  FRP frontend $HP_FRP_ADDRESS, state $state (logs harp-ctl.log, harp-dp.log)"
if [ "$(id -u)" -ne 0 ]; then
    echo "For the CLI: export HP_STATE_DIR=$state PATH=$top/build/harp-ctl:\$PATH"
fi
