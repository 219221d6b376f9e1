"""Run this server's compose in its stack directory, whatever the compose version.

mottivme-host compose ARGS...     e.g.  mottivme-host compose ps
                                        mottivme-host compose logs -f n8n
                                        mottivme-host compose exec -T postgres psql -U n8n

Debian 13 (and Docker's repository) has Compose v2 (`docker compose`), Debian 12's own package
Compose v1 (`docker-compose`): the deploy records which one in /etc/mottivme/host.json, and
everything that runs compose on a server (these programs, the DR drill, the sandbox's seeding)
goes through it. The command replaces this process: logs stream, `exec` stays interactive.
"""

from __future__ import annotations

import argparse
import os

from .run import Runner
from .settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="compose's own arguments")


def main(ns, s: Settings, runner: Runner) -> int:
    cmd = [*s.compose, *ns.args]  # the stack's compose prefix (with its project name), then ARGS
    os.chdir(s.stack_dir)
    os.execvp(cmd[0], cmd)
    return 127  # not reached
