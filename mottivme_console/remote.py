"""The console's commands on the servers themselves, over Fabric connections built from the
inventory's own SSH settings (the hosts of .env, or the sandbox's): ssh, logs, psql, status.
Everything on a server goes through its host programs (`mottivme-host compose|psql|status`), so
the console knows no compose version, path or password."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from shlex import quote

from invoke.exceptions import Exit

from mottivme_console.catalog import ROOT

SERVER_GROUPS = ("n8n_servers", "n8n_workers")  # the servers `status` reports on, in this order


def inventory() -> dict[str, list]:
    """{group: [(name, host data)]} as `pyinfra inventory.py` sees it (configuration checked first)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from inventory_sources import choose
    from tasks.config import load_inventory

    os.chdir(ROOT)
    try:
        return load_inventory(choose())
    except SystemExit as e:  # it printed every problem already
        raise Exit(code=int(e.code or 2)) from None


def answers(name: str, data: dict, timeout: float = 8) -> str | None:
    """None when the host's SSH server lets us in, else why not (one line)."""
    try:
        c = connection(name, data, timeout)
        c.open()
        c.close()
        return None
    except Exception as e:  # noqa: BLE001 - any failure means: it does not answer
        return f"{e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else 'no answer'}"


def targets(groups: tuple[str, ...]) -> list[str]:
    """The hosts a runbook runs on: those of its groups in the inventory. A monitor that does not
    answer is left out with a warning (no maintenance window, people may be paged), unless the
    runbook works on the monitor alone; with no host at all, one line and exit 2."""
    inv = inventory()
    hosts = []
    for group in groups:
        for name, data in inv.get(group, []):
            if name in hosts:
                continue
            if group == "monitors" and set(groups) != {"monitors"}:
                why = answers(name, data)
                if why:
                    print(f"mottivme: warning: the monitor {name} does not answer ({why}): no maintenance window "
                          "is opened, its checks may page people during this work", file=sys.stderr)
                    continue
            hosts.append(name)
    if not hosts:
        raise Exit(f"mottivme: no host of {', '.join(groups)} in the inventory (.env or the sandbox)", 2)
    return hosts


def pick(groups: dict, name: str | None, group: str = "n8n_servers") -> tuple[str, dict]:
    """The server `name` (any group), or the one server of `group`; one line naming the choices otherwise."""
    every = {n: d for hosts in groups.values() for n, d in hosts}
    if name:
        if name not in every:
            raise Exit(f"mottivme: no server {name!r} in the inventory: choose one of {', '.join(sorted(every))}", 2)
        return name, every[name]
    hosts = groups.get(group, [])
    if len(hosts) != 1:
        names = ", ".join(n for n, _ in hosts) or "none"
        raise Exit(f"mottivme: name the server with --server ({group}: {names})", 2)
    return hosts[0]


def connection(name: str, data: dict, timeout: float = 15):
    """A Fabric connection with the inventory's SSH settings for this host."""
    import paramiko
    from fabric import Connection

    key = data.get("ssh_key")
    c = Connection(host=data.get("ssh_hostname") or name, user=data.get("ssh_user") or "root",
                   port=int(data.get("ssh_port") or 22),
                   connect_kwargs={"key_filename": key, "look_for_keys": not key, "allow_agent": not key},
                   connect_timeout=timeout)
    known = data.get("ssh_known_hosts_file") or str(Path("~/.ssh/known_hosts").expanduser())
    strict = str(data.get("ssh_strict_host_key_checking") or "accept-new")
    if known != "/dev/null" and os.path.exists(known):
        c.client.load_host_keys(known)
    # like OpenSSH: "yes" refuses an unknown key; accept-new (pyinfra's default) records it; off accepts it
    c.client.set_missing_host_key_policy(paramiko.RejectPolicy() if strict == "yes" else paramiko.AutoAddPolicy())
    return c


def run_on(name: str, data: dict, command: str, *, pty: bool = False, warn: bool = False):
    try:
        return connection(name, data).run(command, pty=pty, warn=warn, **({} if pty else {"in_stream": False}))
    except Exception as e:  # noqa: BLE001 - an unreachable server is one line, not a traceback
        if e.__class__.__name__ == "UnexpectedExit":
            raise Exit(code=e.result.exited) from None
        raise Exit(f"mottivme: {name}: {e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''}", 1) from None


def ssh(server: str | None, command: str | None) -> None:
    name, data = pick(inventory(), server)
    if command:
        run_on(name, data, command, pty=True)
        return
    try:
        connection(name, data).shell()
    except Exception as e:  # noqa: BLE001
        raise Exit(f"mottivme: {name}: {e.__class__.__name__}: {e}", 1) from None


def logs(service: str, follow: bool, tail: str, server: str | None) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", service) or not re.fullmatch(r"[0-9]{1,6}|all", tail):
        raise Exit("mottivme logs: SERVICE is a compose service name (n8n, postgres, caddy, ...) and --tail a "
                   "number of lines or all", 2)
    name, data = pick(inventory(), server)
    run_on(name, data, f"mottivme-host compose logs --no-color --tail {tail} {'-f ' if follow else ''}{service}",
           pty=follow)


def psql(database: str, sql: str | None, server: str | None) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", database):
        raise Exit("mottivme psql: DATABASE is n8n or a database backup source's name (supabase)", 2)
    name, data = pick(inventory(), server)
    run_on(name, data, f"mottivme-host psql {database}" + (f" -c {quote(sql)}" if sql else ""), pty=not sql)


def status() -> None:
    groups = inventory()
    bad = False
    for group in SERVER_GROUPS:
        for name, data in groups.get(group, []):
            print(f"== {name} ({group})", flush=True)
            r = run_on(name, data, "mottivme-host status", warn=True)
            bad = bad or not r.ok or any(line.startswith("!") for line in r.stdout.splitlines())
    if bad:
        raise Exit("mottivme status: something needs attention (lines starting with !)", 1)
