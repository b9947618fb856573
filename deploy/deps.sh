#!/bin/sh
# Installs the Debian 12 packages harp needs to build, run and test, when any is missing.
# Runs as root (or through sudo); non-interactive.
set -e
PKGS="build-essential autoconf automake autoconf-archive pkg-config
      libmicrohttpd-dev libwebsockets-dev libssl-dev libsqlite3-dev libcurl4-openssl-dev
      libjansson-dev libpcre2-dev
      python3 python3-pytest python3-websockets python3-cryptography sqlite3 curl clang openssl"
# The tests run a real Docker engine and build their images from busybox; an engine or a
# busybox already installed (docker-ce, say) is used as it is.
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || PKGS="$PKGS docker.io"
command -v busybox >/dev/null 2>&1 || PKGS="$PKGS busybox-static"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
