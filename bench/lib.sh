# Shared by the bench scripts (sourced, bash): the backend, harp stacks, the peers, and the
# arithmetic over wrk's output. The script sets top (the source tree) first.
# Everything started is pinned to CPU 1 and listens on 127.0.0.1; clients go on CPU 0.

KEY=bench-shared-key
run=$(mktemp -d /tmp/harp-bench.XXXXXX)
pids=()
bench_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$run/nginx.pid" ] && kill "$(cat "$run/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap bench_cleanup EXIT

need() { # tool... (the message names the Debian packages)
    local tool
    for tool; do
        command -v "$tool" >/dev/null || {
            echo "bench: $tool missing (apt-get install wrk haproxy nginx-light)" >&2; exit 1; }
    done
}

start_backend() { # port
    [ -x "$run/backend" ] || gcc -O2 -o "$run/backend" "$top/bench/backend.c"
    taskset -c 1 "$run/backend" "$1" & pids+=($!)
}

wait_200() { # url
    local i
    for i in $(seq 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
        sleep 0.05
    done
    echo "bench: $1 does not answer 200" >&2; exit 1
}

# A harp-ctl and one harp-dp from BUILD, their state in $run/NAME, on base ports BASE (control),
# BASE+1 (ExApps HTTP), BASE+2 (HTTPS), BASE+3 (FRP); VAR=VALUE arguments go to both processes'
# environment. Registers the ExApp "bench" (routes ^/public PUBLIC, ^/user USER) on the
# backend at BACKEND and waits for its PUBLIC route. Sets dp_pid and ctl_pid.
start_harp() { # build name base backend [VAR=VALUE...]
    local build=$1 name=$2 base=$3 backend=$4
    shift 4
    local envs=(HP_SHARED_KEY=$KEY HP_STATE_DIR=$run/$name/state HP_CERTS_DIR=$run/$name/certs
                HP_CONTROL_ADDRESS=127.0.0.1:$base HP_EXAPPS_ADDRESS=127.0.0.1:$((base + 1))
                HP_EXAPPS_HTTPS_ADDRESS=127.0.0.1:$((base + 2)) HP_FRP_ADDRESS=127.0.0.1:$((base + 3))
                HP_LOG_LEVEL=warning NC_INSTANCE_URL=http://127.0.0.1:9 "$@")
    mkdir -p "$run/$name"
    env "${envs[@]}" taskset -c 1 "$build/harp-ctl/harp-ctl" serve 2>"$run/$name/ctl.log" &
    ctl_pid=$!; pids+=($ctl_pid)
    local i
    for i in $(seq 200); do curl -fs "http://127.0.0.1:$base/heartbeat" >/dev/null && break; sleep 0.05; done
    env "${envs[@]}" taskset -c 1 "$build/harp-dp/harp-dp" --id "$name" \
        >"$run/$name/dp.out" 2>"$run/$name/dp.log" &
    dp_pid=$!; pids+=($dp_pid)
    curl -fsS -o /dev/null -X POST -H "harp-shared-key: $KEY" "http://127.0.0.1:$base/exapp_storage/bench" \
        -d "{\"exapp_token\":\"t\",\"exapp_version\":\"1.0.0\",\"host\":\"127.0.0.1\",\"port\":$backend,
             \"routes\":[{\"url\":\"^/public\",\"access_level\":0,\"bruteforce_protection\":[]},
                         {\"url\":\"^/user\",\"access_level\":1,\"bruteforce_protection\":[]}]}"
    wait_200 "http://127.0.0.1:$((base + 1))/exapps/bench/public/x"
}

# HAProxy (one thread) and nginx (one worker) do what HaRP's HAProxy does for a routed request:
# strip the prefix and set the four ExApp headers; and pass /exapps/app_api/ to the control
# API. No routing decision. Sets haproxy_pid.
start_peers() { # haproxy_port nginx_port backend_port ctl_port
    local ph=$1 pn=$2 pb=$3 pc=$4
    cat >"$run/haproxy.cfg" <<CFG
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
    bind 127.0.0.1:$ph
    use_backend ctl if { path_beg /exapps/app_api/ }
    default_backend app
backend app
    http-request replace-path /exapps/bench(/.*) \1
    http-request set-header EX-APP-ID bench
    http-request set-header EX-APP-VERSION 1.0.0
    http-request set-header AUTHORIZATION-APP-API OnQ=
    http-request set-header AA-VERSION 32
    server s1 127.0.0.1:$pb
backend ctl
    http-request replace-path /exapps/app_api(/.*) \1
    server c1 127.0.0.1:$pc
CFG
    taskset -c 1 haproxy -f "$run/haproxy.cfg" -db 2>"$run/haproxy.log" & haproxy_pid=$!; pids+=($haproxy_pid)
    cat >"$run/nginx.conf" <<CFG
worker_processes 1;
worker_cpu_affinity 10;
pid $run/nginx.pid;
error_log $run/nginx-error.log;
events { worker_connections 8192; }
http {
    access_log off;
    upstream app { server 127.0.0.1:$pb; keepalive 64; }
    upstream ctl { server 127.0.0.1:$pc; keepalive 64; }
    server {
        listen 127.0.0.1:$pn;
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
    wait_200 "http://127.0.0.1:$ph/exapps/bench/public/x"
    wait_200 "http://127.0.0.1:$pn/exapps/bench/public/x"
}

to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.3f", v}'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# The median of a space-separated list.
med() { echo $1 | tr ' ' '\n' | median; }

# One wrk run on CPU 0 (-t1, CONNS connections, DURATION s); extra arguments go to wrk before
# the URL. Prints "req/s p50_ms p99_ms" and keeps wrk's output in $run/wrk.txt; a non-2xx
# answer (and with WRK_STRICT=1 a socket error) ends the bench.
wrk_run() { # url [wrk args...]
    local u=$1 out errors="Non-2xx"
    shift
    [ "${WRK_STRICT:-0}" = 1 ] && errors="Non-2xx\|Socket errors"
    out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" "$u")
    echo "$out" >>"$run/wrk.txt"
    if echo "$out" | grep -q "$errors"; then echo "bench: $u: errors" >&2; echo "$out" >&2; exit 1; fi
    echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
        "$(echo "$out" | awk '$1 == "50%" {print $2}' | to_ms)" \
        "$(echo "$out" | awk '$1 == "99%" {print $2}' | to_ms)"
}

# harp against the better peer of the same round, one ratio per round: "max" for req/s, "min"
# for latency. A round runs the targets back to back, so the VM's slower swings in speed weigh
# on both sides of each ratio.
paired() { # harp_list haproxy_list nginx_list max|min
    awk -v h="$1" -v a="$2" -v b="$3" -v m="$4" 'BEGIN {
        n = split(h, H, " "); split(a, A, " "); split(b, B, " ")
        for (i = 1; i <= n; i++) {
            best = m == "max" ? (A[i] > B[i] ? A[i] : B[i]) : (A[i] < B[i] ? A[i] : B[i])
            printf "%.2f\n", H[i] / best
        }
    }'
}
