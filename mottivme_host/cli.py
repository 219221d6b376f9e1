"""`mottivme-host <command> [options]`, and the same commands by their old names
(/usr/local/sbin/n8n-backup is a link to mottivme-host: the name it is called by picks the command)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from . import settings as settings_mod
from .common import Fail, stderr_line
from .run import Runner

# name the program is called by -> command
ALIASES = {"n8n-backup": "backup", "n8n-restore": "restore", "n8n-supabase-cleanup": "cleanup",
           "n8n-deploy-version": "deploy-version", "n8n-restart": "restart", "n8n-rotate-secrets": "rotate",
           "mottivme-report-disk": "report-disk"}


def _commands():
    from . import (
        backup,
        cleanup,
        compose,
        deploy_version,
        doctor,
        psql,
        queue_guard,
        report_disk,
        restart,
        restore,
        rotate,
        secret_age,
        set_version,
        status,
        stop_workers,
        updates,
        vault_prune,
    )

    return {
        "backup": backup, "restore": restore, "cleanup": cleanup, "deploy-version": deploy_version,
        "restart": restart, "rotate": rotate, "set-version": set_version,
        "report-disk": report_disk, "compose": compose, "psql": psql, "status": status,
        "doctor": doctor, "secret-age": secret_age, "vault-prune": vault_prune, "updates": updates,
        "queue-guard": queue_guard, "stop-workers": stop_workers,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mottivme-host", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in _commands().items():
        sp = sub.add_parser(name, help=module.__doc__.strip().splitlines()[0],
                            description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sp)
        sp.set_defaults(module=module)
    return p


def main(argv: list[str] | None = None, runner: Runner | None = None, settings=None) -> int:
    argv = list(sys.argv if argv is None else argv)
    name = os.path.basename(argv[0])
    args = argv[1:]
    if name in ALIASES:
        args = [ALIASES[name], *args]
    ns = parser().parse_args(args)
    prog = next((alias for alias, cmd in ALIASES.items() if cmd == ns.command), ns.command)
    s = settings if settings is not None else settings_mod.load()
    runner = runner or Runner()
    # a lost SSH session (HUP) or a kill (TERM) interrupts like Ctrl-C: the program's own
    # clean-up runs (Python's default for HUP would end it with none). A signal the caller ignores
    # stays ignored: deploy-version's rollback runs n8n-restore that way, and it must not be cut.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _terminate)
    try:
        return ns.module.main(ns, s, runner) or 0
    except Fail as e:
        stderr_line(f"{prog}: FAILED {e.message}")
        return e.code
    except KeyboardInterrupt:
        stderr_line(f"{prog}: FAILED interrupted")
        return 130


def _terminate(signum, frame):
    raise KeyboardInterrupt
