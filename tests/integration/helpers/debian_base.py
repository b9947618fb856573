# SPDX-License-Identifier: AGPL-3.0-or-later
"""debian:bookworm-slim for an engine that cannot pull it (no registry is reachable here):
a debootstrap --variant=minbase root of Debian 12, trimmed the way the official slim image is
(no documentation, manual pages or translations, and dpkg told to leave them out), imported
with `docker import`.

debootstrap takes minutes, so its tarball is cached under /var/tmp/harp-image-cache/, keyed
by the date: repeated runs on one day import the same tarball instead of bootstrapping again,
and a new day picks up the archive's updates. Older tarballs are removed when a new one is
made. Concurrent runs take a lock; the tarball appears by rename, whole or not at all."""
import datetime
import fcntl
import glob
import os
import shutil
import subprocess
import tempfile

REF = "debian:bookworm-slim"
CACHE = "/var/tmp/harp-image-cache"
MIRROR = "http://deb.debian.org/debian"

# What the official slim image configures (debuerreotype's slimify): dpkg drops these paths.
SLIM_DPKG = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""
SOURCES = """Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def available():
    """None when a base can be made here, else why not."""
    if os.geteuid() != 0:
        return "debootstrap needs root"
    if not shutil.which("debootstrap") and not os.path.exists("/usr/sbin/debootstrap"):
        return "debootstrap is not installed (Debian package debootstrap)"
    return None


def _bootstrap(out):
    root = tempfile.mkdtemp(prefix="harp-debootstrap-", dir="/var/tmp")
    try:
        debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
        r = subprocess.run([debootstrap, "--variant=minbase", "bookworm", root, MIRROR],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("debootstrap failed: " + (r.stdout + r.stderr)[-2000:])
        with open(f"{root}/etc/dpkg/dpkg.cfg.d/docker-slim", "w") as f:
            f.write(SLIM_DPKG)
        os.remove(f"{root}/etc/apt/sources.list")
        with open(f"{root}/etc/apt/sources.list.d/debian.sources", "w") as f:
            f.write(SOURCES)
        for pattern in ("usr/share/doc/*", "usr/share/man/*", "usr/share/info/*",
                        "usr/share/locale/*", "var/lib/apt/lists/*", "var/cache/apt/*.bin",
                        "var/cache/apt/archives/*.deb", "var/log/*.log", "var/log/apt/*"):
            for p in glob.glob(f"{root}/{pattern}"):
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p)
                else:
                    os.remove(p)
        tmp = out + ".part"
        subprocess.run(["tar", "-C", root, "--numeric-owner", "-cf", tmp, "."], check=True)
        os.rename(tmp, out)
    finally:
        # debootstrap leaves proc, sys or dev/pts mounted when it fails half-way: unmount
        # whatever is below the root, deepest first, before removing it.
        with open("/proc/mounts") as f:
            mounts = [line.split()[1] for line in f]
        for m in sorted((m for m in mounts if m.startswith(root + "/")), reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def tarball():
    """Today's cached tarball, made when missing."""
    os.makedirs(CACHE, exist_ok=True)
    out = os.path.join(CACHE, f"bookworm-minbase-{datetime.date.today():%Y%m%d}.tar")
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(out):
            _bootstrap(out)
            for old in glob.glob(os.path.join(CACHE, "bookworm-minbase-*.tar*")):
                if old != out:
                    os.remove(old)
    return out


def ensure(docker):
    """Makes REF exist on the engine (docker: the CLI's argv prefix). Returns True when it was
    imported here, False when the engine had it already."""
    if subprocess.run(docker + ["image", "inspect", REF], capture_output=True).returncode == 0:
        return False
    path = tarball()
    with open(path, "rb") as f:
        r = subprocess.run(docker + ["import", "--change", 'CMD ["bash"]', "-", REF],
                           stdin=f, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("docker import failed: " + r.stderr[-2000:])
    return True
