#!/bin/sh
# Builds harp and runs the whole test suite: unit tests, fuzz-corpus replay and the
# integration tests (real processes on loopback). Installs missing Debian packages first.
# The output ends with pytest's summary line. Build directory: build-test/ (ASan + UBSan).
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/deploy/deps.sh" test
cd "$top"
./autogen.sh >/dev/null 2>&1
rm -rf build-test
mkdir build-test
cd build-test
../configure -q --enable-asan >/dev/null
make -s -j"$(nproc)" >/dev/null
# -s keeps make from printing directory changes after the test runners' summaries.
exec make -s -j1 check
