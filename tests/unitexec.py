#!/usr/bin/python3
"""Prints a shell script that runs a systemd unit's ExecStart= the way systemd would, for a
root where systemd cannot run as PID 1 (tests/package.sh runs it in a chroot).

    unitexec.py ROOT UNIT [post]     e.g. unitexec.py /tmp/root harp-dp@1.service

With "post" it prints the unit's ExecStartPost= commands instead, to run once ExecStart=
has started (systemd starts units ordered After= this one only when they succeed).

It reads the unit file and its drop-ins (ROOT/{etc,run,lib,usr/lib}/systemd/system, the
template's and the instance's .d/*.conf), expands the specifiers %i %I %n %N %p %H %%, and
applies: User= Group= (setpriv with the user's groups), Environment= and EnvironmentFile=
(read here, as PID 1 reads them as root), StateDirectory= and StateDirectoryMode= (created
and owned by the user), UMask=, WorkingDirectory=, NoNewPrivileges= and an empty
CapabilityBoundingSet= (setpriv). Any other setting that changes how the command runs is an
error, so that the script never silently differs from the unit.
"""
import os
import shlex
import socket
import sys

UNIT_DIRS = ["etc/systemd/system", "run/systemd/system", "usr/local/lib/systemd/system",
             "lib/systemd/system", "usr/lib/systemd/system"]
# Settings that systemd applies around the process and that this script does not need to
# reproduce to run it (sandboxing, restart policy, descriptions).
IGNORED = {"Type", "Restart", "RestartSec", "TimeoutStartSec", "ProtectSystem", "ProtectHome", "PrivateTmp",
           "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules",
           "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname",
           "RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime",
           "RestrictSUIDSGID", "LockPersonality", "SystemCallArchitectures",
           "AmbientCapabilities"}


def die(msg):
    sys.exit(f"unitexec: {msg}")


def parse(path, sections):
    section = None
    lines = open(path, encoding="utf-8").read().replace("\\\n", " ").splitlines()
    for line in lines:
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        sections.setdefault(section, []).append((key.strip(), value.strip()))


def load(root, unit):
    name, _, suffix = unit.rpartition(".")
    prefix, at, instance = name.partition("@")
    template = f"{prefix}@.{suffix}" if at else None
    sections = {}
    for d in UNIT_DIRS:
        for candidate in (unit, template):
            if candidate and os.path.isfile(os.path.join(root, d, candidate)):
                parse(os.path.join(root, d, candidate), sections)
                break
        else:
            continue
        break
    else:
        die(f"{unit}: no unit file under {root}")
    # Drop-ins of the template and of the instance apply in file name order; for one name the
    # instance's wins over the template's, and an earlier directory over a later one.
    dropins = {}
    for candidate in (template, unit):
        if not candidate:
            continue
        for d in reversed(UNIT_DIRS):
            dd = os.path.join(root, d, candidate + ".d")
            if os.path.isdir(dd):
                for f in os.listdir(dd):
                    if f.endswith(".conf"):
                        dropins[f] = os.path.join(dd, f)
    for k in sorted(dropins):
        parse(dropins[k], sections)
    spec = {"i": instance, "I": instance, "n": unit, "N": name, "p": prefix,
            "H": socket.gethostname(), "%": "%"}
    return sections, spec


def expand(value, spec):
    out, i = [], 0
    while i < len(value):
        if value[i] == "%" and i + 1 < len(value):
            if value[i + 1] not in spec:
                die(f"specifier %{value[i + 1]} not handled")
            out.append(spec[value[i + 1]])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def env_file(path):
    env = {}
    for line in open(path, encoding="utf-8").read().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, eq, value = line.partition("=")
        if not eq:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def main():
    if len(sys.argv) not in (3, 4) or sys.argv[3:] not in ([], ["post"]):
        die("usage: unitexec.py ROOT UNIT [post]")
    root, unit, post = sys.argv[1], sys.argv[2], len(sys.argv) == 4
    sections, spec = load(root, unit)
    env, files, exec_start, exec_post = {}, [], [], []
    user = group = workdir = None
    umask = "0022"
    state_dirs, state_mode = [], "0755"
    nnp = False
    bounding = None
    for key, value in sections.get("Service", []):
        value = expand(value, spec)
        if key == "ExecStart":
            exec_start = [value] if value else []
        elif key == "ExecStartPost":
            exec_post = exec_post + [value] if value else []
        elif key == "Environment":
            for word in shlex.split(value):
                k, _, v = word.partition("=")
                env[k] = v
        elif key == "EnvironmentFile":
            files.append(value)
        elif key == "User":
            user = value
        elif key == "Group":
            group = value
        elif key == "StateDirectory":
            state_dirs += value.split() if value else []
        elif key == "StateDirectoryMode":
            state_mode = value
        elif key == "UMask":
            umask = value
        elif key == "WorkingDirectory":
            workdir = value
        elif key == "NoNewPrivileges":
            nnp = value in ("yes", "true", "1", "on")
        elif key == "CapabilityBoundingSet":
            bounding = value
        elif key not in IGNORED:
            die(f"{unit}: [Service] {key}= not handled")
    # EnvironmentFile= settings override Environment= ones, later files earlier ones.
    for f in files:
        optional = f.startswith("-")
        path = os.path.join(root, f.lstrip("-").lstrip("/"))
        if os.path.isfile(path):
            env.update(env_file(path))
        elif not optional:
            die(f"{unit}: EnvironmentFile {f} is missing")
    if len(exec_start) != 1:
        die(f"{unit}: expected one ExecStart=, found {len(exec_start)}")
    for cmd in exec_start + exec_post:
        if cmd[:1] in "-@+!:" or "$" in cmd:
            die(f"{unit}: Exec prefixes and $ variables are not handled: {cmd}")
    if bounding not in (None, ""):
        die(f"{unit}: only an empty CapabilityBoundingSet= is handled")
    user = user or "root"
    group = group or user
    out = ["set -e", f"umask {umask}"]
    for d in state_dirs if not post else []:
        path = shlex.quote("/var/lib/" + d)
        out.append(f"mkdir -p {path}")
        out.append(f"chown {shlex.quote(user)}:{shlex.quote(group)} {path}")
        out.append(f"chmod {state_mode} {path}")
    if workdir:
        out.append(f"cd {shlex.quote(workdir.lstrip('-'))}")
    setpriv = ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups"]
    if nnp:
        setpriv.append("--no-new-privs")
    if bounding == "":
        setpriv.append("--bounding-set=-all")
    pw = f"$(getent passwd {shlex.quote(user)} | cut -d: -f6)"
    base = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8", "USER": user, "LOGNAME": user}
    base.update(env)
    envargs = " ".join(shlex.quote(f"{k}={v}") for k, v in base.items())
    for cmd in exec_post if post else exec_start:
        out.append(f"{'' if post else 'exec '}env -i HOME=\"{pw}\" {envargs} "
                   f"{' '.join(setpriv)} -- {' '.join(shlex.quote(a) for a in shlex.split(cmd))}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
