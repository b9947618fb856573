#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# harp in one container: harp-ctl serve, then HP_DATA_PLANES harp-dp on the same ports
# (default: one per CPU, at most 4; the first also serves the FRP frontend). A data plane that
# exits is started again at once (after 1 s if it ran less than 5 s). When harp-ctl exits,
# the data planes are stopped and the container exits with its status (1 if that was 0).
# SIGTERM/SIGINT stop the data planes, then harp-ctl, and exit with harp-ctl's status;
# SIGHUP replaces the data planes one after the other without a gap (harp-dp --takeover: the
# new one takes the listening sockets, the old one drains and exits; new certificates in /certs
# are read); one that cannot be taken over is restarted.
# Everything logs to stdout/stderr.
set -u
say() { echo "harp-container: $*" >&2; }

n=${HP_DATA_PLANES:-}
if [ -z "$n" ]; then
    n=$(nproc)
    [ "$n" -le 4 ] || n=4
fi
if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 64 ]; then
    say "HP_DATA_PLANES: '$n' is not a number of data planes (1-64)"
    exit 2
fi
ctl_addr=${HP_CONTROL_ADDRESS:-127.0.0.1:8200}
wait_s=${HP_WAIT_AGENT_HTTP:-60}

signal=""
trap 'signal=TERM' TERM INT
trap 'signal=HUP' HUP

harp-ctl serve &
ctl=$!

# The data planes need the control plane's socket and its FRP certificates: wait until it
# answers /heartbeat (HaRP's HP_WAIT_AGENT_HTTP, 60 s).
end=$((SECONDS + wait_s))
until curl -fsS -o /dev/null --max-time 2 "http://$ctl_addr/heartbeat" 2>/dev/null; do
    if ! kill -0 "$ctl" 2>/dev/null; then
        wait "$ctl"
        status=$?
        say "harp-ctl exited at start with status $status"
        exit $((status ? status : 1))
    fi
    if [ -n "$signal" ] && [ "$signal" != HUP ]; then
        kill -TERM "$ctl"
        wait "$ctl"
        exit $?
    fi
    if [ $SECONDS -ge $end ]; then
        say "harp-ctl did not answer http://$ctl_addr/heartbeat within $wait_s s; stopping it"
        kill -TERM "$ctl"
        wait "$ctl"
        exit 1
    fi
    sleep 0.1
done

declare -a dp since
declare -a draining=()
start_dp() {
    local i=$1
    shift
    if [ "$i" -eq 1 ]; then
        harp-dp --id dp1 --frp "$@" &
    else
        harp-dp --id "dp$i" "$@" &
    fi
    dp[i]=$!
    since[i]=$SECONDS
}

# takeover I: a new dp<I> takes the listening sockets over from the running one, which drains
# and exits by itself (docs/configuration.md, "Upgrade without a gap"). Fails when it did not
# take over within 2 minutes: the running one then serves on.
takeover() {
    local i=$1 old sock ino new end
    old=${dp[i]}
    sock="${HP_STATE_DIR:-/var/lib/harp}/harp-dp-dp$i.sock"
    ino=$(stat -c %i "$sock" 2>/dev/null) || return 1
    start_dp "$i" --takeover "$sock"
    new=${dp[i]}
    end=$((SECONDS + 120))
    while kill -0 "$new" 2>/dev/null && [ $SECONDS -lt $end ]; do
        # the new one replaces the handover socket's file once it took over
        if [ "$(stat -c %i "$sock" 2>/dev/null)" != "$ino" ]; then
            draining+=("$old")
            return 0
        fi
        sleep 0.1
    done
    stop "$new"
    dp[i]=$old
    return 1
}

# stop PID...: SIGTERM, then SIGKILL for what still runs after 10 s.
stop() {
    local p end=$((SECONDS + 10))
    kill -TERM "$@" 2>/dev/null
    for p in "$@"; do
        while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $end ]; do
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
}

for ((i = 1; i <= n; i++)); do
    start_dp "$i"
done
say "harp-ctl (pid $ctl) and $n data planes (pids ${dp[*]}) started"

while :; do
    unset done_pid
    if [ -z "$signal" ]; then
        wait -n -p done_pid
        status=$?
    fi
    if [ "$signal" = HUP ]; then
        signal=""
        say "SIGHUP: replacing the data planes one after the other"
        for ((i = 1; i <= n; i++)); do
            if takeover "$i"; then
                say "dp$i: pid ${dp[i]} took over; the old one drains"
            else
                say "dp$i: could not be taken over; restarting it"
                stop "${dp[i]}"
                start_dp "$i"
            fi
        done
        continue
    elif [ -n "$signal" ]; then
        say "SIG$signal: stopping the data planes, then harp-ctl"
        stop "${dp[@]}" "${draining[@]}"
        kill -TERM "$ctl" 2>/dev/null
        wait "$ctl"
        exit $?
    elif [ -z "${done_pid:-}" ]; then
        continue
    elif [ "$done_pid" = "$ctl" ]; then
        say "harp-ctl exited with status $status; stopping the data planes"
        stop "${dp[@]}" "${draining[@]}"
        exit $((status ? status : 1))
    fi
    rest=()
    for p in "${draining[@]}"; do
        [ "$p" = "$done_pid" ] || rest+=("$p")
    done
    if [ ${#rest[@]} -ne ${#draining[@]} ]; then
        say "harp-dp pid $done_pid (taken over) exited with status $status"
        draining=("${rest[@]}")
        continue
    fi
    for ((i = 1; i <= n; i++)); do
        [ "${dp[i]}" = "$done_pid" ] || continue
        ran=$((SECONDS - since[i]))
        say "harp-dp dp$i (pid $done_pid) exited with status $status after $ran s; restarting it"
        [ $ran -ge 5 ] || sleep 1
        start_dp "$i"
    done
done
