"""This server at a glance: n8n's version, each container's state, the last backup's age and size, disk.

mottivme-host status

Read-only; the console's `mottivme status` prints it for every server. A line starting with
"!" needs attention (a container not running or unhealthy, no backup for over a day, a secret
due for rotation within a week, a disk over 85 % full).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil

from . import envfile, secret_age
from .common import Fail
from .deploy_version import env_path
from .run import Runner
from .settings import Settings

BACKUP_MAX_AGE_H = 26  # a daily backup, plus slack
DISK_WARN_PERCENT = 85


def unwell(state: str) -> bool:
    """A container state (`docker ps` Status) that needs attention: not up, unhealthy, restarting, starting."""
    return not state.startswith("Up") or any(w in state for w in ("unhealthy", "Restarting", "starting"))


def hours_since(iso: str, now: dt.datetime) -> float:
    """Hours from an ISO 8601 time (with its offset) to `now`."""
    return (now - dt.datetime.fromisoformat(iso.strip().replace("Z", "+00:00"))).total_seconds() / 3600


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def containers(s: Settings, runner: Runner) -> list[tuple[str, str]]:
    """(service, status) of each container of the stack's compose project, by its labels (any compose version)."""
    r = runner.run(["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={s.compose_project}",
                    "--format", '{{.Label "com.docker.compose.service"}}\t{{.Status}}'], check=False)
    rows = [tuple(line.split("\t", 1)) for line in r.stdout.splitlines() if "\t" in line] if r.ok else []
    return sorted(rows)


def lines(s: Settings, runner: Runner, now: dt.datetime | None = None) -> list[str]:
    now = now or dt.datetime.now(dt.UTC)
    out = []
    version = envfile.read(env_path(s)).get("N8N_VERSION", "?") if os.path.exists(env_path(s)) else "?"
    out.append(f"n8n {version}")
    rows = containers(s, runner)
    if not rows:
        out.append("! no container of the stack (run deploy.py, or `mottivme-host compose up -d`)")
    for service, status in rows:
        out.append(f"{'! ' if unwell(status) else ''}{service}: {status}")
    if s.backup is not None:
        path = os.path.join(s.backup.dir, "last-manifest.json")
        try:
            with open(path) as f:
                m = json.load(f)
            age = hours_since(m["finished"], now)
            size = sum(int(x.get("size", 0)) for x in m.get("files", {}).values())
            flag = "! " if age > BACKUP_MAX_AGE_H else ""
            out.append(f"{flag}last backup: {m['finished']} ({age:.1f} h ago), {size / 1e6:.1f} MB, "
                       f"sources {', '.join(m.get('sources', {}))}")
        except (OSError, ValueError, KeyError):
            out.append("! last backup: none recorded on this server (run `mottivme backup-now`)")
    try:
        out += secret_age.lines(s, secret_age.refresh(s, now, save=False), now)
    except Fail as e:
        out.append(f"! secret ages: {e}")
    du = shutil.disk_usage("/")
    percent = 100 * du.used / du.total
    out.append(f"{'! ' if percent > DISK_WARN_PERCENT else ''}disk /: {percent:.0f} % used, {du.free / 1e9:.1f} GB free")
    return out


def main(ns, s: Settings, runner: Runner) -> int:
    for line in lines(s, runner):
        print(line)
    return 0
