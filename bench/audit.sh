#!/bin/sh
# SPDX-License-Identifier: AGPL-3.0-or-later
# The audit log's cost on a registration burst: 500 registrations (bench/audit_burst.py)
# against harp-ctl from BUILDDIR and from BUILDDIR-noaudit, the same sources built with
# -DHARP_BENCH_NO_AUDIT (the log not written), REPS rounds in alternating order; prints the
# medians and their ratio. usage: bench/audit.sh [BUILDDIR]
set -e
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-$SRC/build}" && pwd)
NB=$B-noaudit
REPS=${REPS:-7}
if [ ! -x "$NB/harp-ctl/harp-ctl" ] || [ "$NB/harp-ctl/harp-ctl" -ot "$SRC/harp-ctl/audit.c" ]; then
    mkdir -p "$NB"
    (cd "$NB" && "$SRC/configure" -q CFLAGS="-g -O2 -std=c11 -DHARP_BENCH_NO_AUDIT" &&
        make -s -j2 -C proto && make -s -j2 -C schema && make -s -j2 -C harp-ctl)
fi
with="" without=""
i=0
while [ $i -lt "$REPS" ]; do
    if [ $((i % 2)) -eq 0 ]; then
        with="$with $(python3 "$SRC/bench/audit_burst.py" "$B/harp-ctl/harp-ctl")"
        without="$without $(python3 "$SRC/bench/audit_burst.py" "$NB/harp-ctl/harp-ctl")"
    else
        without="$without $(python3 "$SRC/bench/audit_burst.py" "$NB/harp-ctl/harp-ctl")"
        with="$with $(python3 "$SRC/bench/audit_burst.py" "$B/harp-ctl/harp-ctl")"
    fi
    i=$((i + 1))
done
python3 - "$with" "$without" <<'PY'
import statistics, sys
w = [float(x) for x in sys.argv[1].split()]
n = [float(x) for x in sys.argv[2].split()]
print("with audit log (s):   ", " ".join(f"{x:.3f}" for x in w))
print("without audit log (s):", " ".join(f"{x:.3f}" for x in n))
print(f"median with {statistics.median(w):.3f} s, without {statistics.median(n):.3f} s, "
      f"ratio {statistics.median(w) / statistics.median(n):.3f}")
PY
