# SPDX-License-Identifier: AGPL-3.0-or-later
"""Start-up configuration (spec 1.2, 1.3): HaRP's variables, each invalid value a start-up
error naming the variable, quotes from compose files removed with a warning, the effective
settings logged once with secrets masked, and `config check` doing the same without starting."""
import os
import shutil
import socket
import sys

import pytest

from harness import base_env, http_request, run_ctl, wait_for, HARP_CTL

import subprocess
import signal


def env_for(tmp_path, **kw):
    e = dict(HP_SHARED_KEY="cfg-key-secret", NC_INSTANCE_URL="http://nc.local",
             HP_STATE_DIR=str(tmp_path / "state"), HP_CONTROL_ADDRESS="127.0.0.1:1")
    e.update(kw)
    return base_env(**{k: v for k, v in e.items() if v is not None})


@pytest.mark.parametrize("var,value", [
    ("NC_INSTANCE_URL", None),
    ("NC_INSTANCE_URL", ""),
    ("NC_INSTANCE_URL", "nc.local"),
    ("HP_SHARED_KEY", None),
    ("HP_SHARED_KEY", "tab\there"),
    ("HP_SHARED_KEY", "back\\slash"),
    ("HP_SHARED_KEY", '"'),
    ("HP_LOG_LEVEL", "loud"),
    ("HP_SESSION_LIFETIME", "10.5"),
    ("HP_SESSION_LIFETIME", "three"),
    ("HP_BLACKLIST_COUNT", "ten"),
    ("HP_BLACKLIST_WINDOW", "0"),
    ("HP_TIMEOUT_SERVER", "30x"),
    ("HP_FRP_CERT_VALIDITY_DAYS", "12a"),
    ("HP_EXAPPS_ADDRESS", "8780"),
    ("HP_CONTROL_ADDRESS", "localhost"),
    ("HP_K8S_VERIFY_SSL", "perhaps"),
])
def test_invalid_values_stop_serve_and_config_check_naming_the_variable(tmp_path, var, value):
    env = env_for(tmp_path, **{var: value})
    if value is None:
        env.pop(var, None)
    for args in (["serve"], ["config", "check"]):
        r = run_ctl(args, env, timeout=10)
        assert r.returncode == 2, (args, r.stderr)
        assert var.split("_FILE")[0] in r.stderr, r.stderr
        assert "cfg-key-secret" not in r.stderr + r.stdout
    assert not os.path.exists(tmp_path / "state"), "nothing is created on a bad configuration"


def test_both_key_variables_are_refused(tmp_path):
    (tmp_path / "key").write_text("k2\n")
    r = run_ctl(["config", "check"], env_for(tmp_path, HP_SHARED_KEY_FILE=str(tmp_path / "key")))
    assert r.returncode == 2 and "set exactly one" in r.stderr


def test_key_file_and_config_check_summary(tmp_path):
    (tmp_path / "key").write_text("file-key-secret\n\n")
    env = env_for(tmp_path, HP_SHARED_KEY=None, HP_SHARED_KEY_FILE=str(tmp_path / "key"),
                  NC_INSTANCE_URL='"https://nc.example/index.php/"', HP_LOG_LEVEL="INFO",
                  HP_K8S_BEARER_TOKEN="k8s-secret-token")
    r = run_ctl(["config", "check"], env)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"HP_SHARED_KEY_FILE={tmp_path / 'key'}" in out
    assert "file-key-secret" not in out + r.stderr
    assert "k8s-secret-token" not in out and "HP_K8S_BEARER_TOKEN=(set, masked)" in out
    assert "NC_INSTANCE_URL=https://nc.example/index.php/" in out
    assert "HP_LOG_LEVEL=info" in out and out.rstrip().endswith("configuration OK")
    assert "NC_INSTANCE_URL: surrounding quotes or whitespace removed" in r.stderr
    assert not os.path.exists(tmp_path / "state")


def test_flags_override_environment(tmp_path):
    env = env_for(tmp_path, HP_LOG_LEVEL="loud")
    r = run_ctl(["config", "check", "--log-level", "debug", "--state-dir", "/srv/x",
                 "--control=127.0.0.1:9999"], env)
    assert r.returncode == 0, r.stderr
    assert "HP_LOG_LEVEL=debug" in r.stdout and "HP_STATE_DIR=/srv/x" in r.stdout
    assert "HP_CONTROL_ADDRESS=127.0.0.1:9999" in r.stdout


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def own_netns():
    """unshare(1) and nsenter(1) as root: the default port 8200 is then free whatever the
    machine runs."""
    return (os.geteuid() == 0 and shutil.which("unshare") and shutil.which("nsenter") and
            IP is not None)


IP = shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin")


HEARTBEAT = """import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", 8200, timeout=5)
c.request("GET", "/heartbeat")
r = c.getresponse()
sys.stdout.write("%d %s" % (r.status, r.read().decode()))
"""


@pytest.mark.skipif(not own_netns() and not port_free(8200),
                    reason="127.0.0.1:8200 is in use and no network namespace can be made")
def test_serve_runs_with_only_key_url_and_state_dir(tmp_path):
    """The acceptance line: nothing but HP_SHARED_KEY, NC_INSTANCE_URL and HP_STATE_DIR set
    (defaults for the rest, so the API is on 127.0.0.1:8200), a missing state dir created.
    HP_CERTS_DIR too, in the test's directory: the default /certs is the machine's. As root it
    runs in a network namespace of its own, where 8200 is free."""
    env = {"HP_SHARED_KEY": "only-three-secret", "NC_INSTANCE_URL": "http://nc.local",
           "HP_STATE_DIR": str(tmp_path / "new" / "state"), "HP_CERTS_DIR": str(tmp_path / "certs"),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    argv = [HARP_CTL, "serve"]
    if own_netns():
        argv = ["unshare", "--net", "--", "sh", "-c", '"$1" link set lo up && exec "$0" serve',
                HARP_CTL, IP]
    log = open(tmp_path / "serve.log", "wb")
    p = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)

    def heartbeat():
        cmd = [sys.executable, "-c", HEARTBEAT]
        if own_netns():
            cmd = ["nsenter", f"--net=/proc/{p.pid}/ns/net", "--"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return r.stdout if r.returncode == 0 else None
    try:
        def up():
            assert p.poll() is None, (tmp_path / "serve.log").read_text()
            return heartbeat() is not None
        wait_for(up, what="harp-ctl on 127.0.0.1:8200")
        assert heartbeat() == '200 {"status": "ok"}'
        assert os.path.exists(tmp_path / "new" / "state" / "harp.db")
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=60) == 0
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert "only-three-secret" not in text
    assert "HP_SHARED_KEY=(set, masked)" in text


def test_quoted_values_are_normalised_with_a_warning_in_the_log(ctl_factory):
    c = ctl_factory(env={"NC_INSTANCE_URL": "'http://nc.local/'",
                         "HP_BLACKLIST_COUNT": ' "5" '}).start()
    log = c.log()
    assert "NC_INSTANCE_URL: surrounding quotes or whitespace removed" in log
    assert "HP_BLACKLIST_COUNT: surrounding quotes or whitespace removed" in log
    assert "HP_BLACKLIST_COUNT=5" in log


def test_quoted_shared_key_is_stripped_as_harp_does(ctl_factory):
    c = ctl_factory(key='"quoted-key-secret"').start()
    c.secrets.append("quoted-key-secret")
    assert c.request("GET", "/info", key="quoted-key-secret").status == 200
    assert c.request("GET", "/info", key='"quoted-key-secret"').status == 401
    assert "HP_SHARED_KEY: surrounding quotes or spaces removed" in c.log()


def test_log_level_filters_lines(ctl_factory):
    c = ctl_factory(env={"HP_LOG_LEVEL": "warning"}).start()
    c.request("GET", "/info")
    c.request("GET", "/info", key="bad")
    assert " info " not in c.log()
    assert "notice config: HP_LOG_LEVEL=warning" in c.log()


def test_sigterm_exits_zero_and_logs_the_stop(ctl):
    ctl.stop()
    assert "SIGTERM received, stopping" in ctl.log()


def immutable_dir(path):
    """A directory nobody can write, root included (chattr +i); None where that is refused."""
    path.mkdir()
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        return None
    return path


@pytest.mark.parametrize("case", ["control", "state_under_file", "state_is_file",
                                  "state_immutable", "certs_under_file", "certs_immutable"])
def test_config_check_refuses_what_serve_refuses_naming_the_variable_before_any_settings(
        tmp_path, case):
    (tmp_path / "file").write_text("")
    ro = None
    if case.endswith("immutable"):
        ro = immutable_dir(tmp_path / "ro")
        if ro is None:
            pytest.skip("chattr +i is not supported here")
    kw, want = {
        "control": (dict(HP_CONTROL_ADDRESS="localhost:8200"),
                    "HP_CONTROL_ADDRESS: localhost:8200 is not an IP address"),
        "state_under_file": (dict(HP_STATE_DIR=str(tmp_path / "file" / "state")),
                             f"HP_STATE_DIR: cannot create {tmp_path}/file/state: Not a directory"),
        "state_is_file": (dict(HP_STATE_DIR=str(tmp_path / "file")),
                          f"HP_STATE_DIR: cannot open {tmp_path}/file/harp.lock: Not a directory"),
        "state_immutable": (dict(HP_STATE_DIR=str(tmp_path / "ro")),
                            f"HP_STATE_DIR: cannot open {tmp_path}/ro/harp.lock: Operation not "
                            "permitted"),
        "certs_under_file": (dict(HP_CERTS_DIR=str(tmp_path / "file" / "certs")),
                             f"HP_CERTS_DIR: cannot write {tmp_path}/file/certs/frp: Not a "
                             "directory"),
        "certs_immutable": (dict(HP_CERTS_DIR=str(tmp_path / "ro")),
                            f"HP_CERTS_DIR: cannot write {tmp_path}/ro/frp: Operation not "
                            "permitted"),
    }[case]
    env = env_for(tmp_path, **dict(dict(HP_CERTS_DIR=str(tmp_path / "certs")), **kw))
    try:
        check = run_ctl(["config", "check"], env, timeout=30)
        serve = run_ctl(["serve"], env, timeout=30)
    finally:
        if ro is not None:
            subprocess.run(["chattr", "-i", str(ro)])
    assert check.returncode == 2, check.stderr
    assert check.stderr.startswith(f"harp-ctl: configuration error: {want}"), check.stderr
    assert len(check.stderr.strip().splitlines()) == 1, check.stderr
    assert check.stdout == "", "no settings after an error"
    assert serve.returncode != 0, serve.stderr
    lines = serve.stderr.strip().splitlines()
    # The error comes alone: one error line, no settings, no warning.
    assert len(lines) == 1 and " error " in lines[0] and want in lines[0], serve.stderr
    assert "config:" not in serve.stderr and "warning" not in serve.stderr


def test_config_check_creates_nothing_and_serve_logs_settings_once_started(tmp_path):
    env = env_for(tmp_path, HP_CERTS_DIR=str(tmp_path / "certs"))
    r = run_ctl(["config", "check"], env)
    assert r.returncode == 0 and "configuration OK" in r.stdout, r.stderr
    assert not os.path.exists(tmp_path / "state") and not os.path.exists(tmp_path / "certs")
