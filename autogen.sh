#!/bin/sh
# Generates ./configure from configure.ac (needs autoconf, automake, autoconf-archive).
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
exec autoreconf --install --force
