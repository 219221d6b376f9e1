"""What this server would take in the monthly update, as JSON: the images its containers run (by
digest), Debian packages with a pending upgrade, and whether a reboot is required.

mottivme-host updates

Read-only: apt is only simulated (`apt-get -s`) from the package lists as they are (the time of
their last successful refresh is reported; unattended-upgrades refreshes them daily). The
console's `mottivme update` prints it for every server beside what the registries offer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import time

from .run import Runner
from .settings import Settings

REBOOT = "/run/reboot-required"
# touched by Debian's apt after every successful `apt-get update` (/etc/apt/apt.conf.d/15update-stamp);
# the list files themselves keep the archive's Last-Modified time
UPDATE_STAMP = "/var/lib/apt/periodic/update-success-stamp"
# `apt-get -s` lines: Inst PACKAGE [INSTALLED] (CANDIDATE ORIGINS [ARCH])
INST = re.compile(r"^Inst (\S+) (?:\[(\S+)\] )?\((\S+) ([^\[)]*)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def containers(s: Settings, runner: Runner) -> list[dict]:
    """Each container of the stack: its service, the image it was started from and that image's
    digests (RepoDigests: `repo@sha256:...`, what a registry named it by). None without Docker
    (the vault, the monitor)."""
    if not shutil.which("docker"):
        return []
    r = runner.run(["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={s.compose_project}",
                    "--format", '{{.Label "com.docker.compose.service"}}\t{{.Image}}\t{{.ID}}'], check=False)
    out = []
    for line in (r.stdout.splitlines() if r.ok else []):
        service, image, cid = (line.split("\t") + ["", "", ""])[:3]
        img = runner.run(["docker", "inspect", "--format", "{{.Image}}", cid], check=False).stdout.strip()
        digests = runner.run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", img], check=False)
        try:
            repo_digests = json.loads(digests.stdout) if digests.ok else []
        except ValueError:
            repo_digests = []
        out.append({"service": service, "image": image, "digests": repo_digests or []})
    return sorted(out, key=lambda c: c["service"])


def packages(runner: Runner) -> list[dict] | str:
    """Packages `apt-get dist-upgrade` would upgrade or install, each with its candidate version and
    whether it comes from the security archive; apt's own error line when it cannot tell."""
    r = runner.run(["apt-get", "-s", "-o", "Debug::NoLocking=1", "-qq", "dist-upgrade"], check=False)
    if not r.ok:
        return (r.stderr.strip().splitlines() or [f"apt-get -s exited {r.returncode}"])[-1]
    out = []
    for line in r.stdout.splitlines():
        m = INST.match(line)
        if m:
            out.append({"name": m.group(1), "installed": m.group(2) or "", "candidate": m.group(3),
                        "security": "-security" in m.group(4) or "Debian-Security" in m.group(4)})
    return out


def lists_age_hours(now: float | None = None) -> float | None:
    """Hours since the package lists were last refreshed successfully (None: no record of it)."""
    try:
        return round(((now or time.time()) - os.path.getmtime(UPDATE_STAMP)) / 3600, 1)
    except OSError:
        return None


def reboot() -> dict:
    """Debian's own record: /run/reboot-required, with the packages that asked for it."""
    try:
        with open(REBOOT + ".pkgs") as f:
            pkgs = sorted({line.strip() for line in f if line.strip()})
    except OSError:
        pkgs = []
    return {"required": os.path.exists(REBOOT), "packages": pkgs}


def report(s: Settings, runner: Runner) -> dict:
    return {"containers": containers(s, runner), "packages": packages(runner),
            "package_lists_age_hours": lists_age_hours(), "reboot": reboot()}


def main(ns, s: Settings, runner: Runner) -> int:
    print(json.dumps(report(s, runner), indent=2))
    return 0
