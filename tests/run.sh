#!/bin/sh
# Builds harp and runs the whole test suite: unit tests, fuzz-corpus replay and the
# integration tests (real processes on loopback). Installs missing Debian packages first.
# First a ThreadSanitizer tree (build-tsan-test/) runs harp-ctl's unit tests and the
# integration tests that stress its threads (API, publisher, look-up workers, bans, outbound
# calls); a TSan report fails the run. Then the ASan + UBSan tree (build-test/) runs
# everything; the output ends with pytest's summary line.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/deploy/deps.sh" test
cd "$top"
./autogen.sh >/dev/null 2>&1
jobs=$(nproc)

rm -rf build-test build-tsan-test
mkdir build-test build-tsan-test
(cd build-test && ../configure -q --enable-asan >/dev/null && make -s -j"$jobs" >/dev/null)
# Style, static checks, include and call cycles, man pages (make lint).
(cd build-test && make -s lint >/dev/null) || { echo "make lint failed" >&2; exit 1; }

# ThreadSanitizer: harp-ctl's threads. harp-dp (one thread) comes from the ASan tree.
# halt_on_error: the first report ends the process with exitcode, and the harness fails a
# test on a report in a child's log (harness.py SANITIZER_REPORTS) or a non-zero exit.
cd build-tsan-test
../configure -q --enable-tsan >/dev/null
make -s -j"$jobs" >/dev/null
TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 history_size=4"
export TSAN_OPTIONS
make -s -j"$jobs" -C tests check TESTS='unit/test_store' >/dev/null || {
    cat tests/unit/test_store.log; exit 1; }
# Debian's python3 sees python3-pytest; the python3 first on PATH may be another build.
# TSan slows harp-ctl's start (key generation) several times: the harness's waits scale.
HP_TEST_TIMEOUT_MULTIPLIER=4 HARP_BUILDDIR="$top/build-tsan-test" HARP_DP_BUILDDIR="$top/build-test" HARP_SRCDIR="$top" \
    /usr/bin/python3 -m pytest -p no:cacheprovider -q -r fEs \
    $(for t in control_api outbound publish users bans attacks_ctl_api attacks_ctl_link; do
        echo "$top/tests/integration/test_$t.py"; done)
unset TSAN_OPTIONS
cd "$top/build-test"
# -s keeps make from printing directory changes after the test runners' summaries.
exec make -s -j1 check
