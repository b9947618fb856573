#!/bin/sh
# Installs the Debian 12 packages harp needs, when any is missing. Non-interactive.
#   deploy/deps.sh         what building and running harp needs (deploy/up.sh)
#   deploy/deps.sh test    that, plus what the test suite needs (tests/run.sh)
# As root it installs; otherwise through sudo; without sudo it names the packages and stops.
set -e
PKGS="build-essential autoconf automake autoconf-archive pkg-config
      libmicrohttpd-dev libwebsockets-dev libssl-dev libsqlite3-dev libcurl4-openssl-dev
      libjansson-dev libpcre2-dev python3 curl openssl"
if [ "${1:-}" = test ]; then
    PKGS="$PKGS python3-pytest python3-websockets python3-cryptography sqlite3 clang
          clang-format cppcheck mandoc iproute2"
    # The tests run a real Docker engine and build their images from busybox; an engine or a
    # busybox already installed (docker-ce, say) is used as it is.
    command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || PKGS="$PKGS docker.io"
    command -v busybox >/dev/null 2>&1 || PKGS="$PKGS busybox-static"
    # deploy/compose.yaml is brought up with it (and python3-yaml, its dependency).
    command -v docker-compose >/dev/null 2>&1 || PKGS="$PKGS docker-compose"
    # The container image test makes debian:bookworm-slim with it when the engine lacks it.
    PKGS="$PKGS debootstrap"
    # The metrics test lints a scrape with promtool and has a real Prometheus scrape harp.
    PKGS="$PKGS prometheus"
fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "deps: these Debian packages are missing:$missing" >&2
        echo "deps: as root, run: apt-get update && apt-get install -y$missing" >&2
        echo "deps: then run this command again." >&2
        exit 1
    fi
    SUDO="sudo"
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
# The tests start their own Prometheus on loopback: the packaged service, when its
# installation started it, is stopped.
case " $missing " in
*" prometheus "*) $SUDO sh -c 'invoke-rc.d prometheus stop || true' >/dev/null 2>&1 || true ;;
esac
