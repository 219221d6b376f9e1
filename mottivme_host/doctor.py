"""What is wrong on this server, each finding with its fix (`mottivme doctor` runs it everywhere).

mottivme-host doctor

Checks: the stack's containers (running, healthy, not restarting), the compose file and the
Caddyfile as deployed, the certificate Caddy serves (past its renewal point?), disk and memory,
the last backup's age and the last repository check's, the backup vault's REST server answering
(with the certificate this server trusts), the oldest secret's age, a pending reboot, the firewall table and
sshd's effective settings. Each line: `ok`, `WARN` or `FAIL`, the check, what was found and, when
not ok, the fix. Exit 1 when a check FAILs (warnings alone: 0).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil

from . import secret_age, status
from .backup import CHECK_MAX_AGE_D
from .common import Fail
from .restic import Repo
from .run import Runner
from .settings import Settings

DISK_FAIL = 95  # percent used (status.DISK_WARN_PERCENT: a warning)
MEM_WARN, MEM_FAIL = 10, 3  # percent available


def line(level: str, check: str, found: str, fix: str = "") -> str:
    """One finding as printed (here and by the console's own checks)."""
    return f"{level:<4}  {check}: {found}" + (f" -- fix: {fix}" if fix and level != "ok" else "")


class Findings(list):
    def add(self, level: str, check: str, found: str, fix: str = "") -> None:
        self.append((level, check, found, fix))

    def lines(self) -> list[str]:
        return [line(*finding) for finding in self]

    @property
    def failed(self) -> bool:
        return any(level == "FAIL" for level, *_ in self)


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def _age_hours(path: str, now: dt.datetime) -> float | None:
    """Hours since the time written in `path` (last-success, last-check); None: none."""
    try:
        with open(path) as f:
            return status.hours_since(f.read(), now)
    except (OSError, ValueError):
        return None


def _cert_dates(text: str) -> tuple[dt.datetime, dt.datetime] | None:
    """notBefore/notAfter from `openssl x509 -noout -startdate -enddate`."""
    got = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        try:
            got[key] = dt.datetime.strptime(" ".join(value.split()), "%b %d %H:%M:%S %Y GMT").replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return (got["notBefore"], got["notAfter"]) if {"notBefore", "notAfter"} <= set(got) else None


def check(s: Settings, r: Runner, now: dt.datetime | None = None, root: str = "/") -> Findings:
    now = now or dt.datetime.now(dt.UTC)
    f = Findings()
    rows = status.containers(s, r)
    bad = [f"{svc} ({st})" for svc, st in rows if status.unwell(st)]
    if not rows:
        f.add("FAIL", "containers", "none of the stack exists", "mottivme deploy")
    elif bad:
        f.add("FAIL", "containers", ", ".join(bad), f"mottivme logs {bad[0].split()[0]}, then mottivme restart-n8n")
    else:
        f.add("ok", "containers", ", ".join(svc for svc, _ in rows) + ": running and healthy")

    cfg = r.run([*s.compose, "config", "-q"], cwd=s.stack_dir, check=False)
    if cfg.ok:
        f.add("ok", "compose file", "valid")
    else:
        f.add("FAIL", "compose file", (cfg.stderr.strip().splitlines() or ["invalid"])[-1][:160],
              "mottivme deploy (it writes the file; edits by hand are put back)")

    services = {svc for svc, _ in rows}
    if "caddy" in services:
        v = r.run([*s.compose, "exec", "-T", "caddy", "caddy", "validate", "--config", "/etc/caddy/Caddyfile",
                   "--adapter", "caddyfile"], cwd=s.stack_dir, check=False)
        if v.ok:
            f.add("ok", "Caddyfile", "valid")
        else:
            f.add("FAIL", "Caddyfile", ((v.stderr or v.stdout).strip().splitlines() or ["invalid"])[-1][:160],
                  "mottivme deploy")
        if s.n8n_host:
            _certificate(s, r, f, now)

    du = shutil.disk_usage(root)
    used = 100 * du.used / du.total
    level = "FAIL" if used >= DISK_FAIL else "WARN" if used >= status.DISK_WARN_PERCENT else "ok"
    f.add(level, "disk /", f"{used:.0f} % used, {du.free / 1e9:.1f} GB free",
          "free space (docker image prune; old logs), or a bigger disk")
    mem = _meminfo()
    if mem:
        avail = 100 * mem["MemAvailable"] / mem["MemTotal"]
        level = "FAIL" if avail < MEM_FAIL else "WARN" if avail < MEM_WARN else "ok"
        f.add(level, "memory", f"{avail:.0f} % available of {mem['MemTotal'] / 1e6:.1f} GB",
              "find the process (top); a bigger server or fewer workers (group_data n8n_tier)")

    if s.backup is not None:
        age = _age_hours(os.path.join(s.backup.dir, "last-success"), now)
        if age is None:
            f.add("FAIL", "last backup", "none succeeded on this server", "mottivme backup-now")
        elif age > status.BACKUP_MAX_AGE_H:
            f.add("FAIL", "last backup", f"{age:.0f} h ago", f"mottivme backup-now; why the daily one failed: {s.backup.log}")
        else:
            f.add("ok", "last backup", f"{age:.1f} h ago")
        age = _age_hours(os.path.join(s.backup.dir, "last-check"), now)
        if age is None or age > 24 * CHECK_MAX_AGE_D:
            f.add("WARN", "repository check", "never" if age is None else f"{age / 24:.0f} days ago",
                  "n8n-backup --check on the server (runs weekly by itself)")
        else:
            f.add("ok", "repository check", f"{age / 24:.1f} days ago")
        for url in s.backup.append_only_repositories:  # the vault's REST server, as the backup reaches it
            down = Repo(url, s.backup, r).vault_down()
            if down:
                f.add("FAIL", "backup vault", f"its REST server does not answer ({down[:160]})",
                      "on the vault: systemctl status restic-rest-server; then mottivme deploy")
            else:
                f.add("ok", "backup vault", "its REST server answers with the trusted certificate")

    try:
        old = secret_age.oldest(secret_age.refresh(s, now, save=False), now)
    except Fail as e:
        f.add("WARN", "secret age", str(e), "mottivme-host secret-age on the server starts a new record")
    else:
        if old:
            name, days = old
            level = "WARN" if secret_age.due_soon(s, days) else "ok"
            f.add(level, "secret age", f"{name} {days} days old (SOP 05: rotate every {s.secret_max_age_days})",
                  "mottivme rotate-secrets")

    if os.path.exists(os.path.join(root, "var/run/reboot-required")):
        f.add("WARN", "reboot", "required (a kernel or library update)", "reboot in a maintenance window")

    nft = r.run(["nft", "list", "table", "inet", "mottivme_fw"], check=False)
    if nft.ok:
        f.add("ok", "firewall", "table inet mottivme_fw loaded")
    else:
        f.add("FAIL", "firewall", "table inet mottivme_fw not loaded", "systemctl restart mottivme-firewall, or mottivme deploy")
    sshd = r.run(["sshd", "-T"], check=False)
    conf = dict(line.split(None, 1) for line in sshd.stdout.splitlines() if " " in line) if sshd.ok else {}
    weak = [k for k, want in (("passwordauthentication", "no"), ("kbdinteractiveauthentication", "no"))
            if conf.get(k, want) != want]
    if conf.get("permitrootlogin") == "yes":
        weak.append("permitrootlogin yes")
    if not sshd.ok:
        f.add("FAIL", "sshd", "its settings cannot be read (sshd -T)", "sshd -t; mottivme deploy")
    elif weak:
        f.add("FAIL", "sshd", "allows " + ", ".join(weak), "mottivme deploy (templates/sshd-hardening.conf.j2)")
    else:
        f.add("ok", "sshd", "keys only")
    return f


def _certificate(s: Settings, r: Runner, f: Findings, now: dt.datetime) -> None:
    got = r.run(["openssl", "s_client", "-connect", "127.0.0.1:443", "-servername", s.n8n_host],
                input="", check=False, timeout=20)
    dates = _cert_dates(r.run(["openssl", "x509", "-noout", "-startdate", "-enddate"], input=got.stdout,
                              check=False).stdout) if got.stdout else None
    if dates is None:
        f.add("FAIL", "certificate", f"none served for {s.n8n_host} on 443", "mottivme logs caddy")
        return
    start, end = dates
    left = end - now
    # Caddy renews with a third of the lifetime left: past that, renewing fails
    if left.total_seconds() <= 0:
        f.add("FAIL", "certificate", f"{s.n8n_host}: expired {end:%Y-%m-%d %H:%M} UTC", "mottivme logs caddy (ACME)")
    elif left < (end - start) / 3:
        f.add("FAIL", "certificate", f"{s.n8n_host}: {_days(left)} left, past its renewal point",
              "mottivme logs caddy: renewal is failing (DNS of N8N_HOST, ports 80/443)")
    else:
        f.add("ok", "certificate", f"{s.n8n_host}: {_days(left)} left")


def _days(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.0f} days" if delta.days >= 2 else f"{delta.total_seconds() / 3600:.1f} h"


def _meminfo() -> dict[str, int]:
    try:
        with open("/proc/meminfo") as fh:
            return {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in fh) if v.split()}
    except (OSError, ValueError):
        return {}


def main(ns, s: Settings, runner: Runner) -> int:
    found = check(s, runner)
    for line in found.lines():
        print(line)
    return 1 if found.failed else 0
