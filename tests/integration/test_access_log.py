"""The access log (HP_ACCESS_LOG): one line per request on harp-dp's standard output, and the
request id (X-Request-ID) shared with the upstream."""
import json
import re

from harness import wait_for


def lines(dp, prefix):
    with open(dp.log_path, errors="replace") as f:
        return [line for line in f.read().splitlines() if line.startswith(prefix)]


def test_json_lines_and_request_ids(make_gateway):
    gw = make_gateway(env={"HP_ACCESS_LOG": "json"})
    r = gw.get("/exapps/testapp/public/a?secret=1", {"X-Request-ID": "abc-123"})
    assert r.status == 200
    sent = dict((k.lower(), v) for k, v in gw.backend.requests[-1]["headers"])
    assert sent["x-request-id"] == "abc-123"
    # Another spelling of the client's is dropped; an invalid one is replaced.
    r = gw.get("/exapps/testapp/public/b", {"X_Request_ID": "forged", "X-Request-ID": "a b"})
    hdrs = gw.backend.requests[-1]["headers"]
    ids = [v for k, v in hdrs if k.lower().replace("_", "-") == "x-request-id"]
    assert len(ids) == 1 and re.fullmatch(r"[0-9a-f]{32}", ids[0]), hdrs
    assert gw.get("/exapps/testapp/nothing").status == 404
    dp = gw.dps[0]
    wait_for(lambda: len(lines(dp, "{")) >= 3, what="three access-log lines")
    got = [json.loads(line) for line in lines(dp, "{")]
    a = next(e for e in got if e["request_id"] == "abc-123")
    assert (a["app"], a["method"], a["path"], a["status"], a["reason"], a["dp"]) == \
        ("testapp", "GET", "/exapps/testapp/public/a", 200, "", "dp0")
    assert a["client"] == "127.0.0.1" and a["bytes"] > 0 and a["duration"] >= 0
    assert a["upstream"] == f"127.0.0.1:{gw.backend.port}"
    assert any(e["request_id"] == ids[0] for e in got)
    n = next(e for e in got if e["path"] == "/exapps/testapp/nothing")
    assert (n["status"], n["reason"], n["upstream"]) == (404, "no_route", "")


def test_text_lines_and_off(make_gateway):
    gw = make_gateway(ndp=2, env={"HP_ACCESS_LOG": "text"})
    for _ in range(4):
        assert gw.get("/exapps/testapp/public/t").status == 200
    wait_for(lambda: sum(len([x for x in lines(d, "20") if " dp=" in x]) for d in gw.dps) >= 4,
             what="four text lines")
    line = next(x for d in gw.dps for x in lines(d, "20") if " dp=" in x)
    assert re.search(r" app=testapp method=GET path=/exapps/testapp/public/t status=200 "
                     r"reason=- bytes=\d+ duration=[0-9.]+ upstream=127\.0\.0\.1:\d+ "
                     r"request_id=[0-9a-f]{32}$", line), line
    off = make_gateway()
    assert off.get("/exapps/testapp/public/x").status == 200
    assert "x-request-id" not in [k.lower() for k, _ in off.backend.requests[-1]["headers"]]


def test_invalid_mode_is_refused(ctl_factory, fake_nc):
    c = ctl_factory(env={"NC_INSTANCE_URL": fake_nc.url})
    r = c.cli("config", "check", env={"NC_INSTANCE_URL": fake_nc.url, "HP_ACCESS_LOG": "yes"})
    assert r.returncode != 0 and "HP_ACCESS_LOG" in (r.stdout + r.stderr)


def test_request_id_length_limit(make_gateway):
    gw = make_gateway(env={"HP_ACCESS_LOG": "json"})
    for value, kept in (("a" * 128, True), ("a" * 129, False), ("\xe9t\xe9", False)):
        assert gw.get("/exapps/testapp/public/l", {"X-Request-ID": value}).status == 200
        ids = [v for k, v in gw.backend.requests[-1]["headers"] if k.lower() == "x-request-id"]
        assert len(ids) == 1 and (ids[0] == value) == kept, (len(value), ids)
