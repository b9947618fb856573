# SPDX-License-Identifier: AGPL-3.0-or-later
"""Control-link messages and frames for tests, built from the cases of tests/fixtures/proto/
(the format is in its README.md) rather than by hand: message("lookup", id=3) is the `lookup`
case with its id replaced. A frame is a 4-byte big-endian length and the compact JSON."""
import copy
import json
import os
import struct

FIXTURES = os.path.join(os.environ.get("HARP_SRCDIR") or os.path.join(
    os.path.dirname(__file__), "..", ".."), "tests", "fixtures", "proto")
DROP = object()  # an override that removes the field


def load(name):
    """The whole case <name>: {"note", "from", "message"[, "error"]}."""
    with open(os.path.join(FIXTURES, name + ".json")) as f:
        return json.load(f)


def message(name, **override):
    """The message of case <name>, a new dict, with the fields of <override> set (or removed
    when DROP)."""
    msg = copy.deepcopy(load(name)["message"])
    for k, v in override.items():
        if v is DROP:
            msg.pop(k, None)
        else:
            msg[k] = v
    return msg


def frame(msg):
    """The frame of <msg>: a dict (or list...) in compact JSON, or bytes sent as they are."""
    data = msg if isinstance(msg, bytes) else json.dumps(msg, separators=(",", ":")).encode()
    return struct.pack(">I", len(data)) + data


def split(buf):
    """(message, rest) when <buf> starts with a whole frame, else (None, buf)."""
    if len(buf) < 4:
        return None, buf
    n = struct.unpack(">I", buf[:4])[0]
    if len(buf) < 4 + n:
        return None, buf
    return json.loads(buf[4:4 + n]), buf[4 + n:]


PROTO_VERSION = message("hello")["proto"]
