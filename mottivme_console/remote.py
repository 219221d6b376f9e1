"""The console's commands on the servers themselves, over Fabric connections built from the
inventory's own SSH settings (the hosts of .env, or the sandbox's): ssh, logs, psql, status.
Everything on a server goes through its host programs (`mottivme-host compose|psql|status`), so
the console knows no compose version, path or password."""

from __future__ import annotations

import os
import re
import socket
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
        for name, data in _hosts(inv.get(group, [])):
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


def _hosts(entries) -> list[tuple[str, dict]]:
    """A group's (name, data) pairs: a source may also list a group by host names alone (the
    sandbox's `sandbox` group, for its group_data), whose data is in the other groups."""
    return [e for e in entries if isinstance(e, tuple)]


def hosts_of(groups: dict, group: str) -> list[tuple[str, dict]]:
    return _hosts(groups.get(group, []))


def pick(groups: dict, name: str | None, group: str = "n8n_servers") -> tuple[str, dict]:
    """The server `name` (any group), or the one server of `group`; one line naming the choices otherwise."""
    every = {n: d for hosts in groups.values() for n, d in _hosts(hosts)}
    if name:
        if name not in every:
            raise Exit(f"mottivme: no server {name!r} in the inventory: choose one of {', '.join(sorted(every))}", 2)
        return name, every[name]
    hosts = _hosts(groups.get(group, []))
    if len(hosts) != 1:
        names = ", ".join(n for n, _ in hosts) or "none"
        raise Exit(f"mottivme: name the server with --server ({group}: {names})", 2)
    return hosts[0]


def _policy(strict: str, known: str):
    """OpenSSH's StrictHostKeyChecking for paramiko: "yes" refuses a host whose key is not known;
    "accept-new" (pyinfra's default) appends it to the known-hosts file (never rewrites the file);
    "off"/"no" accepts it."""
    import paramiko

    class AcceptNew(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client, hostname, key):
            if known != "/dev/null":
                with open(known, "a") as f:
                    f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")

    if strict == "yes":
        return paramiko.RejectPolicy()
    return AcceptNew() if strict == "accept-new" else paramiko.AutoAddPolicy()


def connection(name: str, data: dict, timeout: float = 15):
    """A Fabric connection with the inventory's SSH settings for this host."""
    from fabric import Connection

    key = data.get("ssh_key")
    c = Connection(host=data.get("ssh_hostname") or name, user=data.get("ssh_user") or "root",
                   port=int(data.get("ssh_port") or 22),
                   connect_kwargs={"key_filename": key, "look_for_keys": not key, "allow_agent": not key},
                   connect_timeout=timeout)
    known = data.get("ssh_known_hosts_file") or str(Path("~/.ssh/known_hosts").expanduser())
    strict = str(data.get("ssh_strict_host_key_checking") or "accept-new")
    if known != "/dev/null" and os.path.exists(known):
        try:  # read only: paramiko never saves this file (a mismatching key is still refused)
            c.client.load_system_host_keys(known)
        except Exception as e:  # noqa: BLE001 - e.g. @cert-authority lines paramiko cannot read
            raise Exit(f"mottivme: cannot read the known-hosts file {known} ({e.__class__.__name__}): set "
                       "SSH_KNOWN_HOSTS_FILE to a file of plain host keys", 2) from None
    c.client.set_missing_host_key_policy(_policy(strict, known))
    return c


def _root(data: dict, command: str) -> str:
    """The host programs need root (host.json is 0600, the Docker socket): sudo for another user."""
    return command if (data.get("ssh_user") or "root") == "root" else f"sudo -n {command}"


def run_on(name: str, data: dict, command: str, *, pty: bool = False, warn: bool = False, hide: bool = False):
    command = _root(data, command) if command.startswith("mottivme-host ") else command
    try:
        return connection(name, data).run(command, pty=pty, warn=warn, hide=hide,
                                          **({} if pty else {"in_stream": False}))
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
        for name, data in _hosts(groups.get(group, [])):
            print(f"== {name} ({group})", flush=True)
            try:
                r = run_on(name, data, "mottivme-host status", warn=True)
            except Exit as e:  # the others are still reported: this is when status matters most
                print(f"! unreachable: {e.message or e.code}", flush=True)
                bad = True
                continue
            bad = bad or not r.ok or any(line.startswith("!") for line in r.stdout.splitlines())
    if bad:
        raise Exit("mottivme status: something needs attention (lines starting with !)", 1)


def access() -> None:
    """SOP 05's access table from what the servers hold: each person of group_data `people` (state,
    key fingerprint), each key a server holds that nobody is listed for, by server, and each n8n
    server's accounts (the person's, and those nobody is listed for)."""
    from tasks import access as rules
    from tasks import groupdata
    from tasks.groups import N8N_SERVERS, NAMES

    groups = inventory()
    people = groupdata.load().get("people", [])
    servers, accounts, seen = {}, {}, set()

    def ask(name: str, data: dict, command: str) -> str | None:
        try:
            r = run_on(name, data, command, warn=True, hide=True)
            return r.stdout if r.ok else None
        except Exit:
            return None

    for group in NAMES:  # the servers the deploy manages (it puts people's keys on them)
        for name, data in _hosts(groups.get(group, [])):
            if name in seen:
                continue
            seen.add(name)
            servers[name] = ask(name, data, "cat ~/.ssh/authorized_keys 2>/dev/null || true")
            if group == N8N_SERVERS.name:  # its n8n accounts, from n8n's own database
                text = ask(name, data, f"mottivme-host psql n8n --rows -c {quote(rules.N8N_ACCOUNTS_SQL)}")
                accounts[name] = None if text is None else rules.parse_accounts(text)
    rows = rules.access_report(people, servers, accounts)
    head = ["who", "e-mail", "state", "SSH key", *servers, *(f"n8n@{n}" for n in accounts)]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip(), flush=True)
    print("yes: the key logs in there; n8n@<server>: the person's n8n account there (owner, member, invited, "
          "disabled; -: none); ?: the server did not answer. People: group_data `people` (docs/access.md); a "
          "deploy adds the present and removes the absent.", flush=True)
    ssh = slice(4, 4 + len(servers))
    n8n = slice(4 + len(servers), None)
    stale = [r[0] for r in rows if r[2] == "absent" and ("yes" in r[ssh] or set(r[n8n]) - {"-", "?", "disabled"})]
    if stale or "?" in {v for r in rows for v in r[4:]}:
        raise Exit("mottivme access: " + (f"{', '.join(stale)} still on a server: mottivme deploy takes them off"
                                          if stale else "a server did not answer (SSH, or n8n's database: ?)"), 1)


def _say(level: str, check: str, found: str, fix: str = "") -> None:
    from mottivme_host.doctor import line  # the servers' own doctor prints its findings the same way

    print(line(level, check, found, fix), flush=True)


def _addresses(name: str) -> set[str]:
    try:
        return {a[4][0] for a in socket.getaddrinfo(name, 443, proto=socket.IPPROTO_TCP)}
    except OSError:
        return set()


def doctor(drift: bool) -> None:
    """One screen of findings, each with its fix: the configuration, a pending rotation, the
    monitor and the vault answering, DNS, then every server's own checks (`mottivme-host doctor`),
    and with `drift` what a deploy would change. Exit 1 when anything FAILs."""
    from tasks import groupdata, rotation

    groups = inventory()
    failed = False
    _say("ok", "configuration", ".env (or the sandbox) has every variable, valid")
    waiting = sorted(k for k, v in rotation.pending().items() if os.environ.get(k) != v)
    if waiting:
        names = ",".join(n for n, var in rotation.ROTATABLE.items() if var in waiting)
        _say("FAIL", "secret rotation", f"unfinished ({', '.join(waiting)}): deploys are refused until it ends",
             f"mottivme rotate-secrets --secrets {names}")
        failed = True
    else:
        _say("ok", "secret rotation", "none pending")
    if groups.get("monitors"):
        from tasks.monitoring import FREE_FORM_FIX, free_form_whatsapp

        for c in free_form_whatsapp(groupdata.load().get("monitor_channels", {})):
            _say("WARN", "WhatsApp alerts", f"channel {c} is a free-form message: Meta delivers it only within 24 h "
                 "of the recipient's last message, so an outage page may never arrive", FREE_FORM_FIX)
    for group, what in (("monitors", "monitor"), ("backup_vault", "backup vault")):
        for name, data in _hosts(groups.get(group, [])):
            why = answers(name, data)
            if why:
                failed = True
                _say("FAIL", what, f"{name} does not answer ({why})", "is the server up? ssh to it; then mottivme deploy")
            else:
                _say("ok", what, f"{name} answers")
    for name, data in _hosts(groups.get("n8n_servers", [])):
        mine = [g for g, hosts in groups.items() if name in hosts or any(n == name for n, _ in _hosts(hosts))]
        gd = groupdata.load(*mine)
        if not gd.get("doctor_check_dns", True):
            continue
        host = os.environ.get("N8N_HOST", "")
        server = _addresses(data.get("ssh_hostname") or name)
        for label, fqdn in (("DNS of N8N_HOST", host), ("DNS of the status page", gd.get("monitor_status_host", ""))):
            if not fqdn:
                continue
            got = _addresses(fqdn)
            if not got:
                failed = True
                _say("FAIL", label, f"{fqdn} does not resolve", "an A record for it (Caddy needs it for the certificate)")
            elif label.endswith("N8N_HOST") and server and not got & server:
                _say("WARN", label, f"{fqdn} -> {', '.join(sorted(got))}, the server is {', '.join(sorted(server))}",
                     "point it at the server (unless a proxy in front is meant)")
            else:
                _say("ok", label, f"{fqdn} -> {', '.join(sorted(got))}")
    for group in SERVER_GROUPS:
        for name, data in _hosts(groups.get(group, [])):
            print(f"== {name} ({group})", flush=True)
            try:
                r = run_on(name, data, "mottivme-host doctor", warn=True)
            except Exit as e:
                _say("FAIL", "reachable", str(e.message or e.code), "is the server up? mottivme ssh " + name)
                failed = True
                continue
            failed = failed or not r.ok
    if drift:
        print("== drift (pyinfra inventory.py deploy.py --dry)", flush=True)
        changes = _drift()
        if changes:
            failed = True
            _say("FAIL", "drift", f"a deploy would change {len(changes)} operation(s): {', '.join(changes[:5])}",
                 "mottivme deploy --dry shows them; mottivme deploy puts them back")
        else:
            _say("ok", "drift", "a deploy would change nothing")
    if failed:
        raise Exit("mottivme doctor: something is wrong (FAIL lines above, each with its fix)", 1)


def _drift() -> list[str]:
    """The operations a deploy would change now (pyinfra's dry-run plan)."""
    import json
    import subprocess

    r = subprocess.run([sys.executable, "-m", "pyinfra", "-y", "--dry", "--json", "inventory.py", "deploy.py"],
                       cwd=ROOT, capture_output=True, text=True)
    try:
        plan = json.loads(r.stdout)["plan"]
    except (ValueError, KeyError, TypeError):
        raise Exit(f"mottivme doctor: the dry run failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}", 1) from None
    return [f"{op['name']} ({', '.join(op['hosts_with_change'])})" for op in plan if op.get("hosts_with_change")]


def update(apply: bool = False, to: str | None = None, deploy=None, reboot: bool = False, window=None) -> None:
    """SOP 05's monthly update, the report: what the registries offer against images.lock (a moved
    tag, newer n8n versions), then per server the images its containers run against the lock,
    Debian packages with a pending upgrade and whether a reboot is required. Each finding names
    its next step. Exit 1 when a server or a registry could not be asked.

    `apply`: then move n8n to `to` (default: the newest version the registry offers) the safe way:
    the pins move in group data (the old version kept in n8n_other_versions, for an emergency
    deploy back) and in images.lock, and `deploy()` rolls it out (deploy.py: a snapshot first, the
    health gate, an automatic rollback, worker servers following).

    `reboot`: last, the servers whose report says a reboot is required, one at a time
    (reboot_servers; `window(action, reason)` opens and closes the monitor's maintenance window)."""
    import json

    from mottivme_host.deploy_version import valid_version, version_key
    from tasks import images
    from tasks.config import active_source
    from tasks.groups import NAMES

    groups = inventory()  # the configuration and images.lock checked first
    source = active_source()
    lock = images.read(source.images_lock())
    data = source.image_data()
    registries = images.Registries(*source.registries())
    waiting, failed, needs_reboot = 0, False, []
    print("== images (images.lock against what the registries serve now)", flush=True)
    try:
        now = images.current(images.locked_refs(data), registries)
        n8n_ref = f"{data['n8n_image_repo']}:{data['n8n_version']}"
        newer = sorted((t for t in registries.tags(n8n_ref)
                        if valid_version(t) and version_key(t) > version_key(data["n8n_version"])), key=version_key)
    except Exception as e:  # noqa: BLE001 - any network or registry failure: one line, the servers still reported
        _say("FAIL", "registries", f"cannot ask them: {e}", "is this machine online? mottivme update again")
        now, newer, failed = {}, [], True
    moved = [r for r, d in now.items() if lock.get(r) != d]
    for ref in moved:
        waiting += 1
        _say("UPDATE", ref, f"the registry now serves {now[ref]}, images.lock has {lock.get(ref, 'nothing')}",
             "check the new image, then make images-lock and mottivme deploy")
    if now and not moved:
        _say("ok", "images", f"{len(now)} images: the registries serve what images.lock pins")
    if newer:
        waiting += 1
        _say("UPDATE", "n8n", f"group data runs {data['n8n_version']}; the registry offers {', '.join(newer[-5:])}",
             f'n8n_version = "{newer[-1]}" in group_data/all.py (the old one into n8n_other_versions, for a '
             "rollback), make images-lock, mottivme deploy (snapshot first, rollback on failure)")
    elif now:
        _say("ok", "n8n", f"{data['n8n_version']} is the newest version the registry offers")
    seen = set()
    for group in NAMES:  # the servers the deploy manages (each has the host programs)
        for name, hdata in _hosts(groups.get(group, [])):
            if name in seen:
                continue
            seen.add(name)
            print(f"== {name} ({group})", flush=True)
            try:
                r = run_on(name, hdata, "mottivme-host updates", warn=True, hide=True)
            except Exit as e:
                _say("FAIL", "reachable", str(e.message or e.code), "is the server up? mottivme ssh " + name)
                failed = True
                continue
            try:
                report = json.loads(r.stdout)
            except ValueError:
                why = (r.stderr.strip().splitlines() or [f"exit {r.exited}"])[-1]
                _say("FAIL", "mottivme-host updates", why, "mottivme deploy (it installs the host programs)")
                failed = True
                continue
            waiting += _server_updates(name, report, lock, "" if (hdata.get("ssh_user") or "root") == "root" else "sudo ")
            if report["reboot"]["required"]:
                needs_reboot.append((group, name, hdata))
    print(f"mottivme update: {waiting} update(s) waiting" if waiting else "mottivme update: nothing to update",
          flush=True)
    if failed:
        raise Exit("mottivme update: something could not be asked (FAIL lines above)"
                   + ("; nothing was applied or rebooted" if apply or reboot else ""), 1)
    if apply:
        target = to or (newer[-1] if newer else None)
        if target:
            move_n8n_pins(source, data, lock, registries, target)
            deploy()
        else:
            print(f"mottivme update --apply: nothing to apply (n8n {data['n8n_version']} is the newest the registry "
                  "offers)", flush=True)
    if reboot:
        reboot_servers(needs_reboot, window)


REBOOT_ORDER = ("n8n_workers", "backup_vault", "n8n_servers", "monitors")  # the monitor (which pages) last


def reboot_servers(servers: list[tuple[str, str, dict]], window) -> None:
    """Reboot `servers` ((group, name, host data)) one at a time: each must be back - a new boot
    answering SSH, systemd up, every container that ran before running and healthy again - within
    group data's reboot_timeout before the next goes down; one that is not stops the rest (exit 1).
    The monitor's maintenance window is open meanwhile, unless the monitor is the one rebooting."""
    import time

    from tasks import groupdata

    if not servers:
        print("mottivme update --reboot: no server needs a reboot", flush=True)
        return
    servers = sorted(servers, key=lambda s: REBOOT_ORDER.index(s[0]) if s[0] in REBOOT_ORDER else 0)
    for group, name, data in servers:
        timeout = int(groupdata.load(group)["reboot_timeout"])
        print(f"== reboot {name} ({group})", flush=True)
        before, mark = _unwell(name, data), _boot_mark(name, data)
        if mark is None:
            raise Exit(f"mottivme update: {name}: cannot read its boot id: not rebooted (mottivme ssh {name})", 1)
        in_window = group != "monitors" and window("start", f"mottivme update --reboot {name}", timeout)
        t0 = time.monotonic()
        try:
            connection(name, data).run(_root(data, "systemctl reboot"), warn=True, hide=True, in_stream=False)
        except Exception:  # noqa: BLE001 - the connection may go down with the server
            pass
        while _boot_mark(name, data, quiet=True) in (mark, None):
            if time.monotonic() - t0 > timeout:
                raise Exit(f"mottivme update: {name} is not back on a new boot {timeout} s after `systemctl reboot` "
                           "(the servers after it were not rebooted): its provider's console shows why", 1)
            time.sleep(2)
        left = max(1, int(timeout - (time.monotonic() - t0)))
        state = run_on(name, data, f"timeout {left} systemctl is-system-running --wait", warn=True,
                       hide=True).stdout.strip()
        while (still := _unwell(name, data) - before):
            if time.monotonic() - t0 > timeout:
                raise Exit(f"mottivme update: {name} rebooted, but not {', '.join(sorted(still))} again "
                           f"{timeout} s later (the servers after it were not rebooted): mottivme logs ... "
                           f"--server {name}", 1)
            time.sleep(3)
        if in_window:
            window("end", "", timeout)
        _say("ok" if state == "running" else "WARN", "reboot",
             f"{name} back in {time.monotonic() - t0:.0f} s, systemd {state or 'not answering'}, every container "
             "that ran before runs again", "" if state == "running" else f"mottivme ssh {name} --command "
             "'systemctl --failed'")


def _boot_mark(name: str, data: dict, quiet: bool = False) -> str | None:
    """What changes with every boot: the kernel's boot id and when PID 1 started (a container's
    restart too). None when the server does not answer (quiet)."""
    if quiet:  # a server going down and coming back: paramiko's log of each connection it drops
        import logging  # meanwhile (a traceback per attempt) is no news to anyone

        logging.getLogger("paramiko").addHandler(logging.NullHandler())
        logging.getLogger("paramiko").propagate = False
    try:
        r = connection(name, data, timeout=5).run("cat /proc/sys/kernel/random/boot_id; cut -d' ' -f22 /proc/1/stat",
                                                 warn=True, hide=True, in_stream=False)
    except Exception as e:  # noqa: BLE001 - down (rebooting), refused, reset
        if quiet:
            return None
        raise Exit(f"mottivme: {name}: {e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''}", 1) from None
    return " ".join(r.stdout.split()) if r.ok else None


def _unwell(name: str, data: dict) -> set[str]:
    """The containers `mottivme-host status` flags (not running, unhealthy, starting), by service
    name; "the stack" when it lists none (Docker not up yet, or a server without a stack)."""
    r = run_on(name, data, "mottivme-host status", warn=True, hide=True)
    flagged = {m.group(1) for m in re.finditer(r"^! ([a-z0-9][a-z0-9_.-]*): ", r.stdout, re.M)}
    return flagged | ({"the stack"} if re.search(r"^! no container of the stack", r.stdout, re.M) else set())


def move_n8n_pins(source, data, lock: dict[str, str], registries, target: str) -> None:
    """n8n_version to `target` in group data (the version it replaces into n8n_other_versions) and
    images.lock holding `target`'s digest, as the registry serves it now. Every check first, then
    the files; each change printed. Exit 2 (one line, nothing written) for a version that is not
    newer or that the registry does not offer, or a group_data file this cannot edit; nothing to
    move when group data pins `target` already."""
    from mottivme_host.deploy_version import valid_version, version_key
    from tasks import groupdata, images

    current = data["n8n_version"]
    ref = f"{data['n8n_image_repo']}:{target}"
    if not valid_version(target):
        raise Exit(f"mottivme update: --n8n {target!r} is not a version like 2.41.1", 2)
    if target == current:  # a re-run (after a deploy that did not finish): the deploy does the rest
        print(f"mottivme update: n8n_version already pins {target}; the deploy rolls it out where it is not yet",
              flush=True)
        return
    if version_key(target) <= version_key(current):
        raise Exit(f"mottivme update: n8n {target} is not newer than n8n_version {current}: deploy.py never goes "
                   f"back (mottivme emergency-deploy --n8n-version {target} does, with a snapshot)", 2)
    try:  # n8n's image and its runners' (external mode): a release is both
        missing = [r for r in images.version_refs(data, target) if target not in registries.tags(r)]
        digest = registries.digest(ref) if not missing else ""
    except Exception as e:  # noqa: BLE001 - any network or registry failure: one line
        raise Exit(f"mottivme update: cannot ask the registry for {ref}: {e}", 2) from None
    if missing:
        raise Exit(f"mottivme update: the registry does not offer {', '.join(missing)}: `mottivme update` lists "
                   "what it does", 2)
    others = [v for v in dict.fromkeys([*data["n8n_other_versions"], current]) if v != target]
    moved = dict(data, n8n_version=target, n8n_other_versions=others)
    # the lock gains what the move needs; a moved tag of another image stays as pinned (`make images-lock`)
    try:
        new_lock = {r: lock.get(r) or (digest if r == ref else registries.digest(r)) for r in images.locked_refs(moved)}
    except Exception as e:  # noqa: BLE001 - any network or registry failure: one line, nothing written
        raise Exit(f"mottivme update: cannot ask the registry for n8n {target}'s images: {e}", 2) from None
    groups = source.image_groups()
    texts: dict = {}
    for key in ("n8n_version", "n8n_other_versions"):
        path = groupdata.defined_in(key, *groups)
        try:
            texts[path] = groupdata.with_literal(texts.get(path, path.read_text()), path.name, key, moved[key])
        except ValueError as e:
            raise Exit(f"mottivme update: group_data/{e}", 2) from None
        if moved[key] != data[key]:
            print(f"== group_data/{path.name}: {key} = {moved[key]!r} (was {data[key]!r})", flush=True)
    lock_path = source.images_lock()
    for r in sorted(set(new_lock) - set(lock)):
        print(f"== {lock_path.name}: + {r} {new_lock[r]}", flush=True)
    for path, text in texts.items():
        groupdata.write_text(path, text)
    if new_lock != lock:
        images.write(lock_path, new_lock)
    print(f"mottivme update: n8n {current} -> {target} pinned; the deploy rolls it out (a snapshot first, "
          "rollback on failure)", flush=True)


def _server_updates(name: str, report: dict, lock: dict[str, str], sudo: str = "") -> int:
    """One server's findings (mottivme-host updates' report); how many wait for an update. `sudo`:
    what the suggested commands need before them (`sudo ` for an SSH user other than root)."""
    waiting = 0
    for c in report["containers"]:
        tagged = c["image"].partition("@")[0]
        digest, repo = lock.get(tagged), tagged.rpartition(":")[0]
        if not digest:
            _say("WARN", c["service"], f"runs {c['image']}, which images.lock does not pin", "mottivme deploy")
        elif f"{repo}@{digest}" in c["digests"]:
            _say("ok", c["service"], f"{tagged} as images.lock pins it")
        else:
            waiting += 1
            _say("UPDATE", c["service"], f"runs {tagged} as {', '.join(c['digests']) or 'an image of no registry'}; "
                 f"images.lock pins {digest}", "mottivme deploy")
    pkgs, age = report["packages"], report["package_lists_age_hours"]
    stale = (" (package lists: no successful refresh on record)" if age is None
             else f" (package lists {age:.0f} h old)" if age > 48 else "")
    if isinstance(pkgs, str):  # apt could not tell (dpkg interrupted, a broken source...)
        _say("FAIL", "packages", f"apt-get -s failed: {pkgs}", f"mottivme ssh {name}, then {sudo}apt-get -f install")
    elif pkgs:
        waiting += 1
        security = sum(p["security"] for p in pkgs)
        names = ", ".join(p["name"] for p in pkgs[:6]) + (", ..." if len(pkgs) > 6 else "")
        _say("UPDATE", "packages", f"{len(pkgs)} pending ({security} security): {names}{stale}",
             f"mottivme ssh {name} --command '{sudo}apt-get update && {sudo}apt-get dist-upgrade' in a maintenance window "
             "(unattended-upgrades takes the security ones by itself)")
    else:
        _say("ok", "packages", f"none pending{stale}")
    if report["reboot"]["required"]:
        waiting += 1
        by = ", ".join(report["reboot"]["packages"]) or "an upgrade"
        _say("UPDATE", "reboot", f"required (by {by})", f"in a maintenance window: mottivme ssh {name} --command '{sudo}reboot'")
    else:
        _say("ok", "reboot", "not required")
    return waiting
