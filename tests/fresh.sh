#!/bin/sh
# The README's two commands, as typed, on a fresh Debian 12 (not part of tests/run.sh or CI: it
# takes the better part of an hour, needs root, debootstrap, iptables and Debian's archive).
#   1. A Debian 12 root from debootstrap --variant=minbase (the tarball the image test caches
#      under /var/tmp/harp-image-cache, one a day), with a clone of this repository's committed
#      tree in /root/harp, as 'git clone' leaves it.
#   2. A network namespace of its own: loopback and a veth pair to this host (10.231.N.0/30),
#      masqueraded so that apt reaches Debian's archive; nothing it runs can see or take this
#      host's ports. A mount and PID namespace around the root (made "/" by pivot_root) with
#      /proc, /sys, this machine's cgroup hierarchies as they are (v1, v2 or both), /dev and
#      tmpfs /run and /tmp, so that the tests' own dockerd runs there as on a machine.
#   3. There, from /root/harp: 'deploy/up.sh', the README's checks ('harp-ctl status' and the
#      curl to /exapps/app_api/info), then 'tests/run.sh'. Each one's time is printed; the
#      script's exit status is non-zero when any of them failed.
# KEEP=1 keeps the work directory (/var/tmp/harp-fresh.*) with the logs.
# With arguments (pytest's, e.g. tests/integration/test_docker.py -k lifecycle), those tests run
# on up.sh's build in place of tests/run.sh, and the tests' dockerd keeps its log
# (/var/tmp/harp-dockerd-*.log in the root): to look into one failure.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "fresh.sh: run as root (debootstrap, namespaces, chroot)" >&2; exit 1; }
for tool in debootstrap ip iptables nsenter unshare git; do
    command -v $tool >/dev/null || { echo "fresh.sh: $tool is missing" >&2; exit 1; }
done

work=$(mktemp -d /var/tmp/harp-fresh.XXXXXX)
root=$work/root
n=$(( $$ % 250 + 1 ))
ns=harp-fresh-$$
net=10.231.$n
host_if=hfr$$
t0=$(date +%s)

cleanup() {
    rc=$?
    set +e
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    # and whatever runs in the root (the namespaces' first process outside it included)
    for p in /proc/[0-9]*; do
        case "$(readlink "$p/root" 2>/dev/null) $({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null)" in
        "$root "* | *" $root") kill -KILL "${p#/proc/}" 2>/dev/null ;;
        esac
    done
    sleep 1
    ip netns del "$ns" 2>/dev/null
    ip link del "$host_if" 2>/dev/null
    iptables -t nat -D POSTROUTING -s "$net.0/30" -j MASQUERADE 2>/dev/null
    iptables -D FORWARD -s "$net.0/30" -j ACCEPT 2>/dev/null
    iptables -D FORWARD -d "$net.0/30" -j ACCEPT 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then
        echo "fresh.sh: kept $work"
    else
        # The namespaces' mounts went with their last process; what is left is plain files.
        rm -rf "$work" 2>/dev/null || echo "fresh.sh: could not remove all of $work"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { echo "== $* ($(($(date +%s) - t0)) s)"; }

step "a fresh Debian 12 root"
tarball=$(cd "$top/tests/integration" &&
          /usr/bin/python3 -c 'from helpers.debian_base import tarball; print(tarball())')
mkdir "$root"
tar -C "$root" -xf "$tarball"
cp /etc/resolv.conf "$root/etc/resolv.conf"
git clone -q "$top" "$root/root/harp"

step "network namespace $ns ($net.0/30, masqueraded)"
ip netns add "$ns"
ip link add "$host_if" type veth peer name eth0 netns "$ns"
ip addr add "$net.1/30" dev "$host_if"
ip link set "$host_if" up
ip -n "$ns" link set lo up
ip -n "$ns" addr add "$net.2/30" dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" route add default via "$net.1"
sysctl -qw net.ipv4.ip_forward=1
iptables -t nat -A POSTROUTING -s "$net.0/30" -j MASQUERADE
iptables -I FORWARD -s "$net.0/30" -j ACCEPT
iptables -I FORWARD -d "$net.0/30" -j ACCEPT

# Inside: the README's commands, each timed; the first failure stops the run.
cat >"$root/root/fresh-inside.sh" <<'EOF'
#!/bin/sh
set -u
export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd /root/harp
timed() {
    name=$1; shift
    t=$(date +%s)
    "$@" >"/root/$name.log" 2>&1 </dev/null
    rc=$?
    echo "$name: rc $rc in $(($(date +%s) - t)) s (log: /root/$name.log)"
    tail -3 "/root/$name.log" | sed 's/^/    /'
    [ $rc -eq 0 ] || exit $rc
}
timed up deploy/up.sh
timed status harp-ctl status
timed info sh -c 'curl -fsS -H "harp-shared-key: $(cat /var/lib/harp/shared_key)" http://127.0.0.1:8780/exapps/app_api/info'
if [ $# -eq 0 ]; then
    timed tests tests/run.sh
else
    timed deps deploy/deps.sh test
    export HARP_BUILDDIR=/root/harp/build HARP_SRCDIR=/root/harp HARP_KEEP_DOCKERD_LOG=1
    timed tests /usr/bin/python3 -m pytest -p no:cacheprovider -q -r fEs "$@"
fi
EOF
chmod +x "$root/root/fresh-inside.sh"

step "deploy/up.sh, the README's checks, tests/run.sh (inside; logs in $root/root)"
rc=0
# nsenter, not 'ip netns exec': that one mounts a sysfs of its own on /sys, which hides the
# cgroup hierarchies mounted under /sys/fs/cgroup.
nsenter --net="/run/netns/$ns" unshare --mount --pid --fork --propagation private sh -c '
    set -e
    r=$1
    mount --bind "$r" "$r"
    mount -t proc proc "$r/proc"
    mount -t sysfs sysfs "$r/sys"
    mount --rbind /sys/fs/cgroup "$r/sys/fs/cgroup"
    mount --rbind /dev "$r/dev"
    mount -t tmpfs tmpfs "$r/run"
    mount -t tmpfs tmpfs "$r/tmp"
    shift
    # Nothing of the caller'"'"'s environment goes in (fresh-inside.sh sets HOME and PATH).
    # The root becomes "/" by pivot_root, as a container or a machine has it: under a bare
    # chroot, runc cannot pivot into a container'"'"'s root and exec runs in the outer one.
    mkdir -p "$r/.oldroot"
    cd "$r"
    pivot_root . .oldroot
    umount -l /.oldroot
    exec /usr/sbin/chroot . /usr/bin/env -i /root/fresh-inside.sh "$@"
' sh "$root" "$@" || rc=$?
step "done: rc $rc"
exit $rc
