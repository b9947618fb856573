#!/bin/bash
# harp-dp with many idle client connections: its CPU (from /proc/PID/stat) and RSS while
# IDLE connections stay open and nothing else happens, and the PUBLIC route's latency (wrk)
# without them and with them. Server side pinned to CPU 1, clients to CPU 0.
#   bench/idle.sh [BUILDDIR]         (default: ./build)
# Environment: IDLE (connections, default 10000), DURATION (s, default 10), REPS (default 3),
# CONNS (wrk connections, default 50).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
IDLE=${IDLE:-10000}
DURATION=${DURATION:-10}
REPS=${REPS:-3}
CONNS=${CONNS:-50}
source "$top/bench/lib.sh"
need wrk taskset curl gcc
# The idle clients and harp-dp each need one descriptor per connection.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((IDLE + 1000)) ]; then
    echo "bench: ulimit -n $(ulimit -n) is too low for $IDLE idle connections" >&2; exit 1
fi
P_BACKEND=19790 P_CTL=19211 P_HARP=19212
start_backend $P_BACKEND
# Idle connections must outlive the run: HP_TIMEOUT_CLIENT well above it. HP_MAX_CONNECTIONS
# above IDLE (its default is derived from ulimit -n).
start_harp "$build" idle $P_CTL $P_BACKEND HP_TIMEOUT_CLIENT=3600s HP_MAX_CONNECTIONS=$((IDLE + 1000))
url=http://127.0.0.1:$P_HARP/exapps/bench/public/x

ticks() { awk '{print $14 + $15}' /proc/$dp_pid/stat; }
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' /proc/$dp_pid/status; }
fds() { ls /proc/$dp_pid/fd | wc -l; }
hz=$(getconf CLK_TCK)
cpu() { # harp-dp's CPU in % of one core over DURATION seconds
    local t0 t1 s0 s1
    t0=$(ticks); s0=$(date +%s.%N)
    sleep "$DURATION"
    t1=$(ticks); s1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" -v s="$s0" -v e="$s1" -v hz="$hz" \
        'BEGIN {printf "%.1f", 100 * (b - a) / hz / (e - s)}'
}
declare -A RPS P50 P99
WRK_STRICT=1
load() { # label: one wrk run, appended to the label's lists
    local r p50 p99
    read -r r p50 p99 < <(wrk_run "$url")
    RPS[$1]+="$r " P50[$1]+="$p50 " P99[$1]+="$p99 "
}

base_fds=$(fds)
cpu_none=$(cpu)
rss_none=$(rss)
for rep in $(seq "$REPS"); do load none; done

# The idle clients: connect, send nothing, hold the sockets until killed.
taskset -c 0 /usr/bin/python3 - "$P_HARP" "$IDLE" "$run/idle.ready" <<'PY' & idle_pid=$!; pids+=($idle_pid)
import resource, signal, socket, sys, time
port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    socks.append(s)
open(ready, "w").close()
signal.pause()
PY
for i in $(seq 1200); do [ -e "$run/idle.ready" ] && break; sleep 0.1; done
[ -e "$run/idle.ready" ] || { echo "bench: the idle clients did not connect" >&2; exit 1; }
for i in $(seq 600); do [ "$(fds)" -ge $((base_fds + IDLE)) ] && break; sleep 0.1; done
open_conns=$(( $(fds) - base_fds ))
sleep 1
cpu_idle=$(cpu)
rss_idle=$(rss)
for rep in $(seq "$REPS"); do load idle; done
rss_load=$(rss)
open_after=$(( $(fds) - base_fds ))

printf '\nharp-dp with idle connections: %s, %s s windows, %s wrk runs of %s connections, medians\n' \
    "$(date -u +%Y-%m-%dT%H:%MZ)" "$DURATION" "$REPS" "$CONNS"
printf '%-26s %8s %8s %10s %9s %9s\n' state cpu_% rss_MiB req/s p50_ms p99_ms
for label in none idle; do
    if [ $label = none ]; then c=$cpu_none; r=$rss_none; name="no idle connections"
    else c=$cpu_idle; r=$rss_idle; name="$open_conns idle connections"; fi
    awk -v n="$name" -v c="$c" -v r="$r" -v q="$(med "${RPS[$label]}")" \
        -v a="$(med "${P50[$label]}")" -v b="$(med "${P99[$label]}")" \
        'BEGIN {printf "%-26s %8s %8s %10.0f %9.2f %9.2f\n", n, c, r, q, a, b}'
done
printf 'RSS after the loaded runs with the idle connections: %s MiB; idle connections still open: %s\n' \
    "$rss_load" "$open_after"
printf 'single runs: none req/s %s| p99 %s\n             idle req/s %s| p99 %s\n' \
    "${RPS[none]}" "${P99[none]}" "${RPS[idle]}" "${P99[idle]}"
