#!/bin/bash
# harp-dp against HAProxy and nginx (Debian's, as plain proxies for the same route) and the
# direct path, in one run on this machine. Server side pinned to CPU 1, wrk to CPU 0.
# Prints req/s, p50/p99 latency and ratios (medians of REPS alternating runs) for a PUBLIC
# route and an AppAPI control call, then MB/s and peak RSS for a 1 GiB download.
#   bench/run.sh [BUILDDIR]          (default: ./build; run deploy/up.sh or make first)
# Environment: DURATION (s, default 10), REPS (default 5), CONNS (default 50).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
DURATION=${DURATION:-10}
REPS=${REPS:-5}
CONNS=${CONNS:-50}
source "$top/bench/lib.sh"
need wrk haproxy nginx taskset curl gcc

P_BACKEND=19780 P_HAPROXY=19782 P_NGINX=19783 P_NC=19784 P_CTL=19201 P_HARP=19202
start_backend $P_BACKEND
taskset -c 1 /usr/bin/python3 "$top/bench/nextcloud.py" $P_NC & pids+=($!)
start_harp "$build" harp $P_CTL $P_BACKEND NC_INSTANCE_URL=http://127.0.0.1:$P_NC HP_SESSION_LIFETIME=10
start_peers $P_HAPROXY $P_NGINX $P_BACKEND $P_CTL

url() { # target scenario
    case "$1:$2" in
        direct:public) echo "http://127.0.0.1:$P_BACKEND/public/x" ;;
        direct:control) echo "http://127.0.0.1:$P_CTL/heartbeat" ;;
        harp:public) echo "http://127.0.0.1:$P_HARP/exapps/bench/public/x" ;;
        haproxy:public) echo "http://127.0.0.1:$P_HAPROXY/exapps/bench/public/x" ;;
        nginx:public) echo "http://127.0.0.1:$P_NGINX/exapps/bench/public/x" ;;
        harp:control) echo "http://127.0.0.1:$P_HARP/exapps/app_api/heartbeat" ;;
        harp:user) echo "http://127.0.0.1:$P_HARP/exapps/bench/user/x" ;;
        haproxy:control) echo "http://127.0.0.1:$P_HAPROXY/exapps/app_api/heartbeat" ;;
        nginx:control) echo "http://127.0.0.1:$P_NGINX/exapps/app_api/heartbeat" ;;
    esac
}
targets=(direct haproxy nginx harp)
declare -A RPS P50 P99
for scen in public control; do
    for rep in $(seq "$REPS"); do
        order=("${targets[@]}")
        if [ $((rep % 2)) = 0 ]; then order=(harp nginx haproxy direct); fi
        for t in "${order[@]}"; do
            read -r r p50 p99 < <(wrk_run "$(url "$t" "$scen")" -H "harp-shared-key: $KEY")
            RPS[$t:$scen]+="$r " P50[$t:$scen]+="$p50 " P99[$t:$scen]+="$p99 "
        done
    done
done

# An authenticated USER route, harp only (the peers do not authenticate), with a warm session
# cache: harp-dp asks Nextcloud once per HP_SESSION_LIFETIME through harp-ctl.
curl -fs -o /dev/null -H "Cookie: oc_sessionPassphrase=bench-session" "$(url harp user)" \
    || { echo "bench: the USER route does not answer 200" >&2; exit 1; }
for rep in $(seq "$REPS"); do
    for scen in public user; do
        cookie=()
        [ $scen = user ] && cookie=(-H "Cookie: oc_sessionPassphrase=bench-session")
        read -r r p50 p99 < <(wrk_run "$(url harp $scen)" "${cookie[@]}")
        RPS[auth:$scen]+="$r " P50[auth:$scen]+="$p50 " P99[auth:$scen]+="$p99 "
    done
done

printf '\nharp-dp benchmark: %s, %s s x %s runs, %s connections, medians\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$DURATION" "$REPS" "$CONNS"
for scen in public control; do
    printf '\n%s route\n' "$([ $scen = public ] && echo 'PUBLIC ExApp' || echo 'AppAPI control (/exapps/app_api/heartbeat)')"
    printf '%-8s %10s %9s %9s %10s %10s %9s\n' target req/s x_direct x_best p50_ms p99_ms p99_x_best
    d=$(med "${RPS[direct:$scen]}")
    hp=$(med "${RPS[haproxy:$scen]}")
    ng=$(med "${RPS[nginx:$scen]}")
    best=$(awk -v a="$hp" -v b="$ng" 'BEGIN {print (a > b ? a : b)}')
    hp99=$(med "${P99[haproxy:$scen]}")
    ng99=$(med "${P99[nginx:$scen]}")
    best99=$(awk -v a="$hp99" -v b="$ng99" 'BEGIN {print (a < b ? a : b)}')
    for t in "${targets[@]}"; do
        r=$(med "${RPS[$t:$scen]}")
        p50=$(med "${P50[$t:$scen]}")
        p99=$(med "${P99[$t:$scen]}")
        awk -v t="$t" -v r="$r" -v d="$d" -v b="$best" -v p50="$p50" -v p99="$p99" -v b99="$best99" \
            'BEGIN {printf "%-8s %10.0f %9.2f %9.2f %10.2f %10.2f %10.2f\n", t, r, r/d, r/b, p50, p99, p99/b99}'
        echo "$scen $t: req/s ${RPS[$t:$scen]}| p99 ms ${P99[$t:$scen]}" >>"$run/runs.txt"
    done
    pr=$(paired "${RPS[harp:$scen]}" "${RPS[haproxy:$scen]}" "${RPS[nginx:$scen]}" max)
    pl=$(paired "${P99[harp:$scen]}" "${P99[haproxy:$scen]}" "${P99[nginx:$scen]}" min)
    printf 'harp / best peer, per round: req/s %s (median %.2f); p99 %s (median %.2f)\n' \
        "$(echo $pr)" "$(echo "$pr" | median)" "$(echo $pl)" "$(echo "$pl" | median)"
done

printf '\nAuthenticated USER route (session cookie, warm cache) against PUBLIC without one, harp only\n'
printf '%-8s %10s %9s %10s %10s\n' route req/s x_public p50_ms p99_ms
pub=$(med "${RPS[auth:public]}")
for scen in public user; do
    r=$(med "${RPS[auth:$scen]}")
    p50=$(med "${P50[auth:$scen]}")
    p99=$(med "${P99[auth:$scen]}")
    awk -v t="$scen" -v r="$r" -v d="$pub" -v p50="$p50" -v p99="$p99" \
        'BEGIN {printf "%-8s %10.0f %9.2f %10.2f %10.2f\n", t, r, r/d, p50, p99}'
done

hwm() { awk '/VmHWM/ {s += $2} END {printf "%.1f", s/1024}' $(for p in "$@"; do echo /proc/$p/status; done) 2>/dev/null; }
printf '\n1 GiB download\n%-8s %10s %14s\n' target MB/s peak_RSS_MiB
size=1073741824
for t in direct haproxy nginx harp; do
    case $t in
        direct) u="http://127.0.0.1:$P_BACKEND/big?size=$size" ;;
        harp) u="http://127.0.0.1:$P_HARP/exapps/bench/public/big?size=$size" ;;
        haproxy) u="http://127.0.0.1:$P_HAPROXY/exapps/bench/public/big?size=$size" ;;
        nginx) u="http://127.0.0.1:$P_NGINX/exapps/bench/public/big?size=$size" ;;
    esac
    speed=$(taskset -c 0 curl -s -o /dev/null -w '%{speed_download}' "$u")
    case $t in
        direct) rss=- ;;
        harp) rss=$(hwm $dp_pid) ;;
        haproxy) rss=$(hwm $haproxy_pid) ;;
        nginx) rss=$(hwm $(pgrep -P "$(cat "$run/nginx.pid")")) ;;
    esac
    awk -v t=$t -v s="$speed" -v r="$rss" 'BEGIN {printf "%-8s %10.0f %14s\n", t, s/1e6, r}'
done

printf '\nSingle runs (run order)\n'
cat "$run/runs.txt"
