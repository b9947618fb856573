#!/bin/bash
# What metrics and the access log cost: the PUBLIC route through harp-dp built before the
# metrics existed (BEFORE), and through today's (AFTER) with HP_ACCESS_LOG off, json and text
# (the lines go to a file), against HAProxy and nginx in the same rounds. Server side pinned to
# CPU 1, wrk to CPU 0; REPS rounds, each target once per round, the order reversed every other
# round; prints medians and per-round paired ratios.
#   bench/observe.sh BEFORE_BUILDDIR [AFTER_BUILDDIR]     (default AFTER: ./build)
# BEFORE: a build of a revision without metrics, e.g.
#   git worktree add /tmp/harp-before 2fee005 && cd /tmp/harp-before && ./autogen.sh &&
#   mkdir build && cd build && ../configure -q && make -s -j2
# Environment: DURATION (s, default 10), REPS (default 5), CONNS (default 50).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: bench/observe.sh BEFORE_BUILDDIR [AFTER_BUILDDIR]" >&2; exit 2; }
before=$1
after=${2:-$top/build}
DURATION=${DURATION:-10}
REPS=${REPS:-5}
CONNS=${CONNS:-50}
source "$top/bench/lib.sh"
need wrk haproxy nginx taskset curl gcc

P_BACKEND=19800 P_HAPROXY=19802 P_NGINX=19803
start_backend $P_BACKEND
declare -A BASE=([before]=19221 [off]=19231 [json]=19241 [text]=19251)
start_harp "$before" before ${BASE[before]} $P_BACKEND
start_harp "$after" off ${BASE[off]} $P_BACKEND HP_ACCESS_LOG=off
start_harp "$after" json ${BASE[json]} $P_BACKEND HP_ACCESS_LOG=json
start_harp "$after" text ${BASE[text]} $P_BACKEND HP_ACCESS_LOG=text
start_peers $P_HAPROXY $P_NGINX $P_BACKEND ${BASE[off]}

url() { # target
    case $1 in
        haproxy) echo "http://127.0.0.1:$P_HAPROXY/exapps/bench/public/x" ;;
        nginx) echo "http://127.0.0.1:$P_NGINX/exapps/bench/public/x" ;;
        *) echo "http://127.0.0.1:$((BASE[$1] + 1))/exapps/bench/public/x" ;;
    esac
}
targets=(haproxy nginx before off json text)
declare -A RPS P50 P99
for rep in $(seq "$REPS"); do
    order=("${targets[@]}")
    if [ $((rep % 2)) = 0 ]; then order=(text json off before nginx haproxy); fi
    for t in "${order[@]}"; do
        read -r r p50 p99 < <(wrk_run "$(url "$t")")
        RPS[$t]+="$r " P50[$t]+="$p50 " P99[$t]+="$p99 "
    done
done
lines=$(wc -l <"$run/json/dp.out")
first=$(head -n 1 "$run/json/dp.out")

ratio() { # list_a list_b: a/b per round
    awk -v a="$1" -v b="$2" 'BEGIN {n = split(a, A, " "); split(b, B, " ");
        for (i = 1; i <= n; i++) printf "%.3f\n", A[i] / B[i]}'
}
printf '\nmetrics and access log cost: %s, %s s x %s rounds, %s connections, PUBLIC route, medians\n' \
    "$(date -u +%Y-%m-%dT%H:%MZ)" "$DURATION" "$REPS" "$CONNS"
printf '%-8s %10s %10s %10s\n' target req/s p50_ms p99_ms
for t in "${targets[@]}"; do
    awk -v t="$t" -v r="$(med "${RPS[$t]}")" -v a="$(med "${P50[$t]}")" -v b="$(med "${P99[$t]}")" \
        'BEGIN {printf "%-8s %10.0f %10.2f %10.2f\n", t, r, a, b}'
done
printf '\nper round (paired)\n'
for pair in off:before json:off text:off; do
    a=${pair%%:*} b=${pair#*:}
    pr=$(ratio "${RPS[$a]}" "${RPS[$b]}")
    printf '%-12s req/s %s (median %.3f)\n' "$a / $b" "$(echo $pr)" "$(echo "$pr" | median)"
done
for t in before off json; do
    pr=$(paired "${RPS[$t]}" "${RPS[haproxy]}" "${RPS[nginx]}" max)
    printf '%-12s req/s %s (median %.2f)\n' "$t / best" "$(echo $pr)" "$(echo "$pr" | median)"
done
printf '\naccess log (json): %s lines; the first:\n%s\n' "$lines" "$first"
printf '\nsingle runs (req/s)\n'
for t in "${targets[@]}"; do printf '%-8s %s\n' "$t" "${RPS[$t]}"; done
