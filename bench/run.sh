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
for tool in wrk haproxy nginx taskset curl; do
    command -v $tool >/dev/null || { echo "bench: $tool missing (apt-get install wrk haproxy nginx-light)" >&2; exit 1; }
done
run=$(mktemp -d /tmp/harp-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$run/nginx.pid" ] && kill "$(cat "$run/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

P_BACKEND=19780 P_HARP=19781 P_HAPROXY=19782 P_NGINX=19783 P_CTL=19201 P_NC=19202
KEY=bench-shared-key
gcc -O2 -o "$run/backend" "$top/bench/backend.c"
taskset -c 1 "$run/backend" $P_BACKEND & pids+=($!)

taskset -c 1 /usr/bin/python3 "$top/bench/nextcloud.py" $P_NC & pids+=($!)
export HP_SHARED_KEY=$KEY NC_INSTANCE_URL=http://127.0.0.1:$P_NC HP_STATE_DIR=$run/state HP_CERTS_DIR=$run/certs \
       HP_CONTROL_ADDRESS=127.0.0.1:$P_CTL HP_EXAPPS_ADDRESS=127.0.0.1:$P_HARP HP_LOG_LEVEL=warning \
       HP_SESSION_LIFETIME=10
taskset -c 1 "$build/harp-ctl/harp-ctl" serve 2>"$run/ctl.log" & pids+=($!)
for i in $(seq 100); do curl -fs "http://127.0.0.1:$P_CTL/heartbeat" >/dev/null && break; sleep 0.05; done
taskset -c 1 "$build/harp-dp/harp-dp" --id bench 2>"$run/dp.log" & dp_pid=$!; pids+=($dp_pid)
curl -fsS -X POST -H "harp-shared-key: $KEY" "http://127.0.0.1:$P_CTL/exapp_storage/bench" \
    -d "{\"exapp_token\":\"t\",\"exapp_version\":\"1.0.0\",\"host\":\"127.0.0.1\",\"port\":$P_BACKEND,
         \"routes\":[{\"url\":\"^/public\",\"access_level\":0,\"bruteforce_protection\":[]},
                     {\"url\":\"^/user\",\"access_level\":1,\"bruteforce_protection\":[]}]}"
for i in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_HARP/exapps/bench/public/x")" = 200 ] && break
    sleep 0.05
done

# HAProxy and nginx do what HaRP's HAProxy does for a routed request: strip the prefix and set
# the four ExApp headers; and pass /exapps/app_api/ to the control API. No routing decision.
cat > "$run/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 8192
defaults
    mode http
    timeout connect 30s
    timeout client 30s
    timeout server 1800s
    option http-keep-alive
frontend fe
    bind 127.0.0.1:$P_HAPROXY
    use_backend ctl if { path_beg /exapps/app_api/ }
    default_backend app
backend app
    http-request replace-path /exapps/bench(/.*) \1
    http-request set-header EX-APP-ID bench
    http-request set-header EX-APP-VERSION 1.0.0
    http-request set-header AUTHORIZATION-APP-API OnQ=
    http-request set-header AA-VERSION 32
    server s1 127.0.0.1:$P_BACKEND
backend ctl
    http-request replace-path /exapps/app_api(/.*) \1
    server c1 127.0.0.1:$P_CTL
CFG
taskset -c 1 haproxy -f "$run/haproxy.cfg" -db 2>"$run/haproxy.log" & haproxy_pid=$!; pids+=($haproxy_pid)

cat > "$run/nginx.conf" <<CFG
worker_processes 1;
worker_cpu_affinity 10;
pid $run/nginx.pid;
error_log $run/nginx-error.log;
events { worker_connections 8192; }
http {
    access_log off;
    upstream app { server 127.0.0.1:$P_BACKEND; keepalive 64; }
    upstream ctl { server 127.0.0.1:$P_CTL; keepalive 64; }
    server {
        listen 127.0.0.1:$P_NGINX;
        location /exapps/app_api/ {
            proxy_pass http://ctl/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location /exapps/bench/ {
            proxy_pass http://app/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header EX-APP-ID bench;
            proxy_set_header EX-APP-VERSION 1.0.0;
            proxy_set_header AUTHORIZATION-APP-API OnQ=;
            proxy_set_header AA-VERSION 32;
            proxy_buffering off;
            proxy_request_buffering off;
        }
    }
}
CFG
taskset -c 1 nginx -c "$run/nginx.conf" -e "$run/nginx-error.log" -g 'daemon on;'
sleep 0.5
for p in $P_HAPROXY $P_NGINX; do
    curl -fs -o /dev/null "http://127.0.0.1:$p/exapps/bench/public/x" || { echo "bench: proxy on $p not answering" >&2; exit 1; }
done

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
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.3f", v}'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# harp against the better peer of the same round, one ratio per round: "max" for req/s, "min"
# for latency. A round runs the four targets back to back, so the VM's slower swings in speed
# weigh on both sides of each ratio.
paired() { # harp_list haproxy_list nginx_list max|min
    awk -v h="$1" -v a="$2" -v b="$3" -v m="$4" 'BEGIN {
        n = split(h, H, " "); split(a, A, " "); split(b, B, " ")
        for (i = 1; i <= n; i++) {
            best = m == "max" ? (A[i] > B[i] ? A[i] : B[i]) : (A[i] < B[i] ? A[i] : B[i])
            printf "%.2f\n", H[i] / best
        }
    }'
}

targets=(direct haproxy nginx harp)
declare -A RPS P50 P99
for scen in public control; do
    for rep in $(seq "$REPS"); do
        order=("${targets[@]}")
        if [ $((rep % 2)) = 0 ]; then order=(harp nginx haproxy direct); fi
        for t in "${order[@]}"; do
            out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency \
                  -H "harp-shared-key: $KEY" "$(url "$t" "$scen")")
            if echo "$out" | grep -q "Non-2xx"; then echo "bench: $t $scen: errors" >&2; echo "$out" >&2; exit 1; fi
            RPS[$t:$scen]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "
            P50[$t:$scen]+="$(echo "$out" | awk '$1 == "50%" {print $2}' | to_ms) "
            P99[$t:$scen]+="$(echo "$out" | awk '$1 == "99%" {print $2}' | to_ms) "
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
        out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "${cookie[@]}" \
              "$(url harp $scen)")
        if echo "$out" | grep -q "Non-2xx"; then echo "bench: harp $scen: errors" >&2; echo "$out" >&2; exit 1; fi
        RPS[auth:$scen]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "
        P50[auth:$scen]+="$(echo "$out" | awk '$1 == "50%" {print $2}' | to_ms) "
        P99[auth:$scen]+="$(echo "$out" | awk '$1 == "99%" {print $2}' | to_ms) "
    done
done

printf '\nharp-dp benchmark: %s, %s s x %s runs, %s connections, medians\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$DURATION" "$REPS" "$CONNS"
for scen in public control; do
    printf '\n%s route\n' "$([ $scen = public ] && echo 'PUBLIC ExApp' || echo 'AppAPI control (/exapps/app_api/heartbeat)')"
    printf '%-8s %10s %9s %9s %10s %10s %9s\n' target req/s x_direct x_best p50_ms p99_ms p99_x_best
    d=$(echo ${RPS[direct:$scen]} | tr ' ' '\n' | median)
    hp=$(echo ${RPS[haproxy:$scen]} | tr ' ' '\n' | median)
    ng=$(echo ${RPS[nginx:$scen]} | tr ' ' '\n' | median)
    best=$(awk -v a="$hp" -v b="$ng" 'BEGIN {print (a > b ? a : b)}')
    hp99=$(echo ${P99[haproxy:$scen]} | tr ' ' '\n' | median)
    ng99=$(echo ${P99[nginx:$scen]} | tr ' ' '\n' | median)
    best99=$(awk -v a="$hp99" -v b="$ng99" 'BEGIN {print (a < b ? a : b)}')
    for t in "${targets[@]}"; do
        r=$(echo ${RPS[$t:$scen]} | tr ' ' '\n' | median)
        p50=$(echo ${P50[$t:$scen]} | tr ' ' '\n' | median)
        p99=$(echo ${P99[$t:$scen]} | tr ' ' '\n' | median)
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
pub=$(echo ${RPS[auth:public]} | tr ' ' '\n' | median)
for scen in public user; do
    r=$(echo ${RPS[auth:$scen]} | tr ' ' '\n' | median)
    p50=$(echo ${P50[auth:$scen]} | tr ' ' '\n' | median)
    p99=$(echo ${P99[auth:$scen]} | tr ' ' '\n' | median)
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
