"""What this server would take in the monthly update, as JSON: the images its containers run (by
digest), Debian packages with a pending upgrade, and whether a reboot is required.

mottivme-host updates

Read-only: apt is only simulated (`apt-get -s`) from the package lists as they are (their age is
reported; unattended-upgrades refreshes them daily). The console's `mottivme update` prints it
for every server beside what the registries offer.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import time

from .run import Runner
from .settings import Settings

REBOOT = "/run/reboot-required"
LISTS = "/var/lib/apt/lists"
# `apt-get -s` lines: Inst PACKAGE [INSTALLED] (CANDIDATE ORIGINS [ARCH])
INST = re.compile(r"^Inst (\S+) (?:\[(\S+)\] )?\((\S+) ([^\[)]*)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def containers(s: Settings, runner: Runner) -> list[dict]:
    """Each container of the stack: its service, the image it was started from and that image's
    digests (RepoDigests: `repo@sha256:...`, what a registry named it by)."""
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


def packages(runner: Runner) -> list[dict]:
    """Packages `apt-get dist-upgrade` would upgrade or install, each with its candidate version and
    whether it comes from the security archive."""
    r = runner.run(["apt-get", "-s", "-o", "Debug::NoLocking=1", "-qq", "dist-upgrade"], check=False)
    out = []
    for line in r.stdout.splitlines():
        m = INST.match(line)
        if m:
            out.append({"name": m.group(1), "installed": m.group(2) or "", "candidate": m.group(3),
                        "security": "-security" in m.group(4) or "Debian-Security" in m.group(4)})
    return out


def lists_age_hours(now: float | None = None) -> float | None:
    """Hours since the package lists were last refreshed (None: never)."""
    files = [f for f in glob.glob(os.path.join(LISTS, "*")) if os.path.isfile(f) and not f.endswith("lock")]
    if not files:
        return None
    return round(((now or time.time()) - max(os.path.getmtime(f) for f in files)) / 3600, 1)


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
