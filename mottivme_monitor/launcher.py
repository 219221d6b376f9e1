#!/usr/bin/python3
"""`mottivme-monitor COMMAND ...` on the monitor host: the monitor's command, run as root, which
starts `python -m mottivme_monitor` from the monitor's virtualenv as the monitor's own user,
with its secrets in the environment (e.g. `mottivme-monitor status`, `mottivme-monitor
maintenance start n8n --minutes 30 --reason "..."`).

Installed by the deploy (tasks/monitoring.py) as /usr/local/bin/mottivme-monitor and run by the
system's python3 (standard library only); where things are comes from launch.json, written by
the deploy beside the configuration."""

from __future__ import annotations

import json
import os
import sys

LAUNCH = "/etc/mottivme-monitor/launch.json"


def read_env(path: str) -> dict[str, str]:
    """NAME='value' lines of the secrets file (tasks/monitoring.secrets_env writes them)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#") or "=" not in line:
                continue
            name, value = line.split("=", 1)
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            out[name] = value
    return out


def command(launch: dict, args: list[str], environ: dict) -> tuple[list[str], dict]:
    """The argv and environment that run the monitor as its user."""
    env = dict(environ)
    env.update(read_env(launch["secrets"]))
    env.update(PYTHONPATH=launch["lib"], PYTHONDONTWRITEBYTECODE="1")
    user = launch["user"]
    argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
            f"{launch['venv']}/bin/python", "-m", "mottivme_monitor", "--config", launch["config"], *args]
    return argv, env


def main() -> int:
    if os.geteuid() != 0:
        print(f"mottivme-monitor: run it as root (it reads the monitor's secrets and switches to its user; "
              f"see {LAUNCH})", file=sys.stderr)
        return 1
    try:
        with open(LAUNCH) as f:
            launch = json.load(f)
        argv, env = command(launch, sys.argv[1:], os.environ)
    except (OSError, ValueError, KeyError) as e:
        print(f"mottivme-monitor: the monitor is not deployed here ({e}): run `pyinfra inventory.py deploy.py`",
              file=sys.stderr)
        return 2
    os.execvpe(argv[0], argv, env)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
