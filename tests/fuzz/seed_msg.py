#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Rewrites tests/fuzz/corpus/msg/ from tests/fixtures/proto/: one file per case, its message
in compact JSON (what fuzz_msg takes). Run it after adding fixture cases."""
import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "proto")
CORPUS = os.path.join(HERE, "corpus", "msg")

os.makedirs(CORPUS, exist_ok=True)
for old in glob.glob(os.path.join(CORPUS, "*.json")):
    os.unlink(old)
for path in sorted(glob.glob(os.path.join(FIXTURES, "*.json"))):
    with open(path) as f:
        case = json.load(f)
    with open(os.path.join(CORPUS, os.path.basename(path)), "w") as f:
        f.write(json.dumps(case["message"], separators=(",", ":")))
