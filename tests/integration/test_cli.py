# SPDX-License-Identifier: AGPL-3.0-or-later
"""The operators' CLI against the real daemon: tables by default, --json for scripts, --help
everywhere, and distinct exit codes when the daemon is unreachable or says no."""
import json
import os

import pytest

from harness import SCHEMA_VERSION, base_env, run_ctl


def app_body(port=23001):
    return {"exapp_token": "cli-token-secret", "exapp_version": "2.1.0", "host": "127.0.0.1",
            "port": port, "routes": [{"url": "^/public$", "access_level": 0,
                                      "bruteforce_protection": [401, 403]},
                                     {"url": "^/admin/.*", "access_level": 2}]}


@pytest.fixture
def with_app(ctl):
    ctl.secrets.append("cli-token-secret")
    assert ctl.request("POST", "/exapp_storage/CliApp", app_body()).status == 204
    return ctl


def test_status(with_app):
    r = with_app.cli("status")
    assert r.returncode == 0, r.stderr
    assert "harp 0.5.0" in r.stdout and "exapps:         1" in r.stdout
    j = json.loads(with_app.cli("status", "--json").stdout)
    assert j["exapps"] == 1 and j["schema_version"] == SCHEMA_VERSION and j["state_dir"] == with_app.state_dir


def test_exapp_list_table_and_json(with_app):
    r = with_app.cli("exapp", "list")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["APP", "ID", "VERSION", "HOST", "PORT", "ROUTES", "UPDATED"]
    assert lines[1].split()[:5] == ["cliapp", "2.1.0", "127.0.0.1", "23001", "2"]
    j = json.loads(with_app.cli("exapp", "list", "--json").stdout)
    assert [a["app_id"] for a in j["exapps"]] == ["cliapp"]
    assert "cli-token-secret" not in r.stdout + json.dumps(j)


def test_exapp_show(with_app):
    r = with_app.cli("exapp", "show", "CLIAPP")
    assert r.returncode == 0, r.stderr
    assert "app id:    cliapp" in r.stdout
    assert "PUBLIC  401,403" in r.stdout and "ADMIN   -" in r.stdout
    assert "cli-token-secret" not in r.stdout
    j = json.loads(with_app.cli("--json", "exapp", "show", "cliapp").stdout)
    assert j["routes"][1] == {"url": "^/admin/.*", "access_level": 2, "bruteforce_protection": []}


def test_exapp_rm(with_app):
    r = with_app.cli("exapp", "rm", "cliapp")
    assert (r.returncode, r.stdout.strip()) == (0, "removed cliapp")
    r = with_app.cli("exapp", "rm", "cliapp")
    assert r.returncode == 1 and "no ExApp 'cliapp'" in r.stderr
    r = with_app.cli("exapp", "show", "cliapp")
    assert r.returncode == 1 and "no ExApp" in r.stderr
    assert with_app.cli("exapp", "list").stdout.strip().endswith("(no ExApps registered)")


def test_bad_id_is_refused_with_the_reason(ctl):
    r = ctl.cli("exapp", "show", "a b")
    assert r.returncode == 1 and "app id" in r.stderr


def test_wrong_key_exit_1(ctl):
    r = ctl.cli("status", key="wrong")
    assert r.returncode == 1 and "rejected the shared key" in r.stderr


def test_unreachable_daemon_exit_3(ctl):
    ctl.stop()
    r = ctl.cli("exapp", "list")
    assert r.returncode == 3
    assert "cannot reach the control plane at 127.0.0.1:" in r.stderr


def test_key_from_the_state_directory(ctl):
    key_file = os.path.join(ctl.state_dir, "shared_key")
    with open(key_file, "w") as f:
        f.write(ctl.key + "\n")
    r = ctl.cli("status", key=None)
    assert r.returncode == 0, r.stderr


def test_no_key_anywhere_is_a_usage_error(ctl):
    r = ctl.cli("status", key=None)
    assert r.returncode == 2 and "no shared key" in r.stderr


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["status", "--help"],
                                  ["exapp", "--help"], ["config", "--help"],
                                  ["exapp", "list", "-h"]])
def test_help_everywhere(tmp_path, args):
    r = run_ctl(args, base_env())
    assert r.returncode == 0 and r.stdout.startswith("usage: harp-ctl")


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["exapp"], ["exapp", "show"],
                                  ["exapp", "list", "extra"], ["--bogus", "status"],
                                  ["status", "--control"], ["config"]])
def test_usage_errors_exit_2(args):
    r = run_ctl(args, base_env(HP_SHARED_KEY="k"))
    assert r.returncode == 2 and r.stderr


def test_version():
    r = run_ctl(["--version"], base_env())
    assert (r.returncode, r.stdout.strip()) == (0, "harp-ctl 0.5.0")


COMMANDS = [["serve"], ["status"], ["exapp", "list"], ["exapp", "show"], ["exapp", "rm"],
            ["dp", "list"], ["ban", "list"], ["ban", "add"], ["ban", "rm"], ["engine", "list"],
            ["engine", "add"], ["engine", "rm"], ["engine", "ping"], ["engine", "frpc"],
            ["tunnel", "list"], ["certs", "show"], ["certs", "export"], ["certs", "rotate"],
            ["config", "check"], ["audit", "key"], ["audit", "log"], ["audit", "verify"],
            ["audit", "proof"], ["audit", "check-proof"], ["audit", "prune"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_help_and_command_help_for_every_command(cmd):
    """`harp-ctl help CMD`, `harp-ctl CMD --help` and `harp-ctl help` work without a key or a
    running control plane; the top-level help names every command."""
    env = base_env(HP_CONTROL_ADDRESS="127.0.0.1:1")
    top = run_ctl(["help"], env)
    assert top.returncode == 0 and top.stdout.startswith("usage: harp-ctl"), top.stderr
    assert f"  {' '.join(cmd)} " in top.stdout, top.stdout
    flag = run_ctl([*cmd, "--help"], env)
    assert flag.returncode == 0 and flag.stdout.startswith("usage: harp-ctl"), flag.stderr
    word = run_ctl(["help", *cmd], env)
    assert (word.returncode, word.stdout) == (0, flag.stdout), word.stderr
    assert (run_ctl(["help", cmd[0]], env).returncode, top.stdout) == (0, run_ctl([], env).stderr)


def test_help_of_an_unknown_command_is_a_usage_error():
    r = run_ctl(["help", "frobnicate"], base_env())
    assert r.returncode == 2 and "unknown command" in r.stderr


def test_engine_list_says_why_the_local_engine_is_missing(ctl):
    r = ctl.cli("engine", "list")
    assert r.returncode == 0, r.stderr
    why = f"HP_DOCKER_SOCKET: {ctl.workdir}/no-docker.sock: No such file or directory"
    assert f"(no engines: no local engine, {why})" in r.stdout, r.stdout
    j = json.loads(ctl.cli("engine", "list", "--json").stdout)
    assert j == {"engines": [], "local_engine_error": why}


@pytest.mark.parametrize("frp", ["0.0.0.0:8782", "[::]:8782", "127.0.0.1:8782", "[::1]:8782"])
def test_engine_add_frpc_dir_without_server_refuses_an_unreachable_frp_address(
        ctl_factory, tmp_path, frp):
    ctl = ctl_factory(env={"HP_FRP_ADDRESS": frp}).start()
    before = ctl.cli("engine", "list", "--json").stdout
    out = tmp_path / "remote1"
    r = ctl.cli("engine", "add", "remote1", "--frpc-dir", str(out))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "--server HOST:PORT" in r.stderr and f"HP_FRP_ADDRESS is {frp}" in r.stderr
    assert not out.exists() and ctl.cli("engine", "list", "--json").stdout == before
    # Given the address the engine's host dials, it registers and writes the folder.
    r = ctl.cli("engine", "add", "remote1", "--frpc-dir", str(out), "--server", "gw.example:8782")
    assert r.returncode == 0, r.stderr
    assert 'serverAddr = "gw.example"' in (out / "frpc.toml").read_text()
    assert "remote1" in ctl.cli("engine", "list").stdout
