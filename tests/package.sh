#!/bin/sh
# Builds the Debian package and tests it on a fresh Debian 12 root (not part of 'make check'
# or CI: it takes minutes, needs root, debootstrap and Debian's archive).
#   1. dpkg-buildpackage -us -uc -b on a copy of the source tree; lintian on the .deb and the
#      .changes (errors fail);
#   2. a Debian 12 root from debootstrap --variant=minbase (cached as a tarball under
#      /var/tmp/harp-deb-cache, one a day, with systemd and man-db added so that
#      'systemd-analyze verify' and 'man' run there), a docker group, then
#      'apt install ./harp_*.deb' in a chroot;
#   3. the user, the key, 'systemd-analyze verify' and 'man harp-ctl' there; then, as systemd
#      cannot be PID 1 in the chroot, the ExecStart= lines of harp-ctl.service and
#      harp-dp@1.service run as the units say (tests/unitexec.py reads the installed units),
#      on loopback ports from the kernel set in /etc/harp/harp.env, and answer /heartbeat,
#      /exapps/app_api/heartbeat with the key, and a request routed to a registered ExApp.
# HARP_DEB=FILE skips the build and tests that .deb; KEEP=1 keeps the work directory.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cache=/var/tmp/harp-deb-cache
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" -eq 0 ] || { echo "package.sh: run as root (debootstrap, chroot)" >&2; exit 1; }
for tool in dpkg-buildpackage lintian debootstrap python3 setpriv; do
    command -v $tool >/dev/null || { echo "package.sh: $tool is missing" >&2; exit 1; }
done

work=$(mktemp -d /var/tmp/harp-pkgtest.XXXXXX)
root=$work/root
backend_pid=""
t0=$(date +%s)

# Every process whose root is the test root, the backend, the mounts: on any exit.
cleanup() {
    rc=$?
    set +e
    if [ -d "$root" ]; then
        for sig in TERM KILL; do
            for p in /proc/[0-9]*; do
                [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -$sig "${p#/proc/}" 2>/dev/null
            done
            sleep 1
        done
    fi
    [ -z "$backend_pid" ] || kill "$backend_pid" 2>/dev/null
    for m in dev proc; do
        mountpoint -q "$root/$m" 2>/dev/null && { umount "$root/$m" || umount -l "$root/$m"; }
    done
    if [ $rc -ne 0 ]; then
        for f in "$work"/*.log; do
            [ -f "$f" ] && { echo "--- $f (end)"; tail -20 "$f"; }
        done
        echo "package.sh: FAILED (rc $rc)" >&2
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "package.sh: kept $work"
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "package.sh: FAIL: $*" >&2; exit 1; }
step() { echo "== $* ($(($(date +%s) - t0)) s)"; }

# 1. Build and lint.
if [ -n "${HARP_DEB:-}" ]; then
    deb=$HARP_DEB
    changes=${deb%.deb}.changes
    [ -f "$changes" ] || changes=""
else
    step "dpkg-buildpackage (log: build.log)"
    mkdir -p "$work/src/harp"
    (cd "$top" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$work/src/harp")
    tb=$(date +%s)
    (cd "$work/src/harp" && DEB_BUILD_OPTIONS="parallel=${JOBS:-2}" \
        dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) || fail "dpkg-buildpackage"
    deb=$(ls "$work"/src/harp_*.deb)
    changes=$(ls "$work"/src/harp_*.changes)
    echo "built $(basename "$deb"): $(stat -c %s "$deb") bytes in $(($(date +%s) - tb)) s"
fi
step "lintian"
lintian --pedantic -I "$deb" ${changes:+"$changes"} >"$work/lintian.log" 2>&1 || true
grep -v '^running with root' "$work/lintian.log" || true
grep -q '^E: ' "$work/lintian.log" && fail "lintian reports errors"

# 2. A fresh Debian 12 root and the package in it.
mkdir -p "$cache"
tarball=$cache/bookworm-minbase-$(date -u +%Y%m%d).tar
exec 9>"$cache/lock"
flock 9
if [ ! -f "$tarball" ]; then
    step "debootstrap --variant=minbase bookworm (cached as $tarball)"
    base=$cache/root.$$
    rm -rf "$base"
    debootstrap --variant=minbase bookworm "$base" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        fail "debootstrap"
    cp /etc/resolv.conf "$base/etc/resolv.conf"
    mount -t proc proc "$base/proc"
    mount --bind /dev "$base/dev"
    if ! { chroot "$base" apt-get update -q &&
           DEBIAN_FRONTEND=noninteractive chroot "$base" \
               apt-get install -y -q --no-install-recommends systemd man-db &&
           chroot "$base" apt-get clean; } >>"$work/debootstrap.log" 2>&1; then
        umount "$base/dev" "$base/proc"
        fail "apt-get install systemd man-db"
    fi
    umount "$base/dev" "$base/proc"
    tar -C "$base" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$base"
    find "$cache" -maxdepth 1 -name 'bookworm-minbase-*.tar' ! -path "$tarball" -delete
fi
exec 9>&-
step "a fresh root from $(basename "$tarball")"
mkdir "$root"
tar -C "$root" -xf "$tarball"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
# Nothing starts services in the chroot (systemd is not running there anyway).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
# Docker's group, as docker.io creates it: the package puts its user in it.
chroot "$root" groupadd --system docker

step "apt install ./$(basename "$deb") (log: apt.log)"
cp "$deb" "$root/tmp/"
ti=$(date +%s)
{ chroot "$root" apt-get update -q &&
  chroot "$root" sh -c "cd /tmp && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./$(basename "$deb")"
} >"$work/apt.log" 2>&1 || fail "apt install"
echo "installed in $(($(date +%s) - ti)) s"

# 3. What the package set up.
step "checks of the installed package"
in_root() { chroot "$root" "$@"; }
in_root id -nG harp | grep -qw docker || fail "user harp is not in the docker group"
[ "$(in_root stat -c '%a %U:%G' /etc/harp/shared_key)" = "640 root:harp" ] ||
    fail "/etc/harp/shared_key: $(in_root stat -c '%a %U:%G' /etc/harp/shared_key)"
[ "$(in_root stat -c '%a %U:%G' /var/lib/harp)" = "700 harp:harp" ] || fail "/var/lib/harp"
[ "$(in_root readlink /var/lib/harp/shared_key)" = /etc/harp/shared_key ] ||
    fail "/var/lib/harp/shared_key is not the link to the key"
in_root dpkg-query -W -f='${Conffiles}\n' harp | grep -q /etc/harp/harp.env ||
    fail "/etc/harp/harp.env is not a conffile"
[ -L "$root/etc/systemd/system/multi-user.target.wants/harp-ctl.service" ] ||
    fail "harp-ctl.service is not enabled"
[ -L "$root/etc/systemd/system/multi-user.target.wants/harp-dp@1.service" ] ||
    fail "harp-dp@1.service is not enabled"
out=$(in_root systemd-analyze verify harp-ctl.service harp-dp@1.service harp-dp@2.service 2>&1) ||
    fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"
echo "systemd-analyze verify: clean"
in_root man -P cat harp-ctl 2>/dev/null | grep -q "control plane of harp" || fail "man harp-ctl"
in_root man -P cat 7 harp 2>/dev/null | grep -q "HP_SHARED_KEY" || fail "man 7 harp"
in_root man -P cat harp-dp 2>/dev/null | grep -q "data plane" || fail "man harp-dp"
echo "man harp-ctl, harp-dp, harp(7): ok"

# The services, on loopback ports from the kernel; Nextcloud is a closed port.
set -- $(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
ctl_port=$1 exapps_port=$2 https_port=$3 frp_port=$4 nc_port=$5 backend_port=$6
cat >>"$root/etc/harp/harp.env" <<EOF
# tests/package.sh
NC_INSTANCE_URL=http://127.0.0.1:$nc_port
HP_CONTROL_ADDRESS=127.0.0.1:$ctl_port
HP_EXAPPS_ADDRESS=127.0.0.1:$exapps_port
HP_EXAPPS_HTTPS_ADDRESS=127.0.0.1:$https_port
HP_FRP_ADDRESS=127.0.0.1:$frp_port
HP_DOCKER_SOCKET=/nonexistent/docker.sock
HP_LOG_LEVEL=info
EOF
key=$(cat "$root/etc/harp/shared_key")
[ ${#key} -ge 32 ] || fail "the generated key is short: ${#key} characters"

step "ExecStart of harp-ctl.service and harp-dp@1.service as their user"
for unit in harp-ctl.service harp-dp@1.service; do
    python3 "$top/tests/unitexec.py" "$root" "$unit" >"$root/tmp/$unit.sh" || fail "unitexec $unit"
    python3 "$top/tests/unitexec.py" "$root" "$unit" post >"$root/tmp/$unit.post.sh" ||
        fail "unitexec $unit post"
    sed 's/^/  /' "$root/tmp/$unit.sh" "$root/tmp/$unit.post.sh"
done
# As systemd orders them: harp-dp@ (After=harp-ctl.service) once harp-ctl's ExecStartPost=
# succeeded (it waits until harp-ctl answers; as its TimeoutStartSec= says).
chroot "$root" sh /tmp/harp-ctl.service.sh >"$work/harp-ctl.log" 2>&1 &
ctl_pid=$!
timeout 300 chroot "$root" sh /tmp/harp-ctl.service.post.sh || fail "harp-ctl's ExecStartPost"
kill -0 $ctl_pid || fail "harp-ctl exited"
chroot "$root" sh /tmp/harp-dp@1.service.sh >"$work/harp-dp.log" 2>&1 &
dp_pid=$!
chroot "$root" sh /tmp/harp-dp@1.service.post.sh || fail "harp-dp@1's ExecStartPost"

mkdir -p "$work/www/public"
echo "hello from the ExApp $$" >"$work/www/public/hello.txt"
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$backend_port" \
    >"$work/backend.log" 2>&1 &
backend_pid=$!

ROOT="$root" python3 - "$ctl_port" "$exapps_port" "$frp_port" "$backend_port" "$key" "$ctl_pid" "$dp_pid" \
    "$work/www/public/hello.txt" <<'EOF' || fail "the services"
import json, os, socket, sys, time, urllib.error, urllib.request
ctl, exapps, frp, backend = (int(p) for p in sys.argv[1:5])
key, pids, hello = sys.argv[5], sys.argv[6:8], open(sys.argv[8]).read()

def get(port, path, headers=None, body=None, method=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                 headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()

def wait(what, pred, timeout=120):
    end = time.monotonic() + timeout
    while True:
        for p in pids:
            if not os.path.exists(f"/proc/{p}"):
                sys.exit(f"{what}: a service exited (pid {p})")
        try:
            if pred():
                print(f"ok: {what}")
                return
        except OSError:
            pass
        if time.monotonic() > end:
            sys.exit(f"{what}: not within {timeout} s")
        time.sleep(0.2)

# As systemd would run them: the unit's user, no capability, no new privileges.
harp = [l.split(":") for l in open(os.environ["ROOT"] + "/etc/passwd") if l.startswith("harp:")][0]
docker = [l.split(":") for l in open(os.environ["ROOT"] + "/etc/group") if l.startswith("docker:")][0]
for p in pids:
    st = dict(l.split(":\t", 1) for l in open(f"/proc/{p}/status").read().splitlines() if ":\t" in l)
    assert st["Uid"].split()[0] == harp[2], st["Uid"]
    assert docker[2] in st["Groups"].split(), st["Groups"]
    assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0, st["CapBnd"]
    assert st["NoNewPrivs"].strip() == "1"
print("ok: both run as harp (groups with docker), no capabilities, no new privileges")

wait("control plane /heartbeat", lambda: get(ctl, "/heartbeat")[0] == 200)
k = {"harp-shared-key": key}
wait("data plane /exapps/app_api/heartbeat with the key",
     lambda: get(exapps, "/exapps/app_api/heartbeat", k)[0] == 200)
status, _ = get(exapps, "/exapps/app_api/heartbeat", {"harp-shared-key": "wrong" * 8})
assert status in (401, 403), status
body = json.dumps({"exapp_token": "package-test-token", "exapp_version": "1.0.0",
                   "host": "127.0.0.1", "port": backend,
                   "routes": [{"url": "^/public", "access_level": 0}]}).encode()
status, text = get(ctl, "/exapp_storage/pkgtest", dict(k, **{"Content-Type": "application/json"}),
                   body, "POST")
assert status == 204, (status, text)
print("ok: ExApp registered through the control API")
wait("a request routed to the ExApp through the data plane",
     lambda: get(exapps, "/exapps/pkgtest/public/hello.txt") == (200, hello))
with socket.create_connection(("127.0.0.1", frp), timeout=10):
    print("ok: harp-dp@1 serves the FRP frontend")
EOF

# The command line as typed on the host: the key through /var/lib/harp/shared_key.
out=$(chroot "$root" env HP_CONTROL_ADDRESS="127.0.0.1:$ctl_port" harp-ctl dp list 2>&1) ||
    fail "harp-ctl dp list: $out"
echo "$out" | grep -q dp1 || fail "harp-ctl dp list does not show dp1: $out"
echo "ok: harp-ctl dp list (as root in the root) shows dp1"
step "PASS"
