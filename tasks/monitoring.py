"""Monitoring off the n8n servers: the monitor host, and what the n8n servers report to it.

`monitoring()` installs mottivme_monitor/ (this project's monitor) on a `monitors` host: its own
virtualenv, a systemd timer that runs every check each minute, the heartbeat receiver, and Caddy
serving the static status page (HTTPS). The checks are data (group_data `monitor_checks`);
secrets stay in .env and reach the host only in a 0600 file that systemd reads.

`reporting()` makes each server report to it: its disk, memory and CPU every few minutes (and an
n8n server in queue mode the executions waiting for a worker); an n8n server also the daily
backup's heartbeat (success and failure hooks) and its oldest secret's age daily (a warning from
secret_warn_days before secret_max_age_days, with monitor_warning_ladder). Capacity checks
(Supabase's size, connections, slow queries, leads per day against the tier) are SQL checks with
a limit, warnings too.

Each server's URLs carry its own token (mottivme_monitor/tokens.py, derived from
MONITOR_PING_TOKEN), and each heartbeat check names its `sender`, so the monitor takes a check's
heartbeat only from the server it belongs to; the master token stays in .env and on the monitor.

`maintenance()` opens or closes a maintenance window (used by the runbooks, so planned work
pages nobody).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
from io import StringIO
from pathlib import Path

from pyinfra import host, inventory, logger
from pyinfra.api import HiddenValue, deploy
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, pip, server, systemd
from pyinfra.operations.util import any_changed

from mottivme_monitor.config import expand_env
from mottivme_monitor.tokens import server_token
from mottivme_monitor.whatsapp import whatsapp_form
from tasks import groups, operations, scaling, settings, vaultkeys
from tasks.config import peer

PACKAGE = Path(__file__).resolve().parent.parent / "mottivme_monitor"
ETC = "/etc/mottivme-monitor"
CONFIG = f"{ETC}/config.json"
SECRETS = f"{ETC}/secrets.env"
COMMAND = "/usr/local/bin/mottivme-monitor"  # mottivme_monitor/launcher.py
LAUNCH = f"{ETC}/launch.json"
PING_ENV = "/etc/mottivme/monitor-ping.env"
OPS_AUTH = "/etc/caddy/ops-auth"  # the Caddyfile imports it: basicauth of the operators' page
_VAR = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


# the scheduled jobs of an n8n server that report to the monitor (mottivme_host common.report_job):
# job -> (what it is, days after which a job that did not report is late: a warning, not a page)
JOBS = {"check": ("weekly restic repository check", 8), "cleanup": ("weekly cleanup of old Supabase rows", 8),
        "drill": ("monthly restore drill", 32)}


def monitor_hosts() -> list:
    return list(inventory.get_group("monitors", default=[]))


def requirements() -> list[str]:
    """mottivme_monitor/requirements.txt as pip.packages wants it (extras split into their
    packages, so the installed-version check matches and a second run changes nothing)."""
    out = []
    for line in (PACKAGE / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\[([A-Za-z0-9_,-]+)\]==(\S+)", line)
        if m and m.group(1).lower() == "psycopg":
            out += [f"psycopg=={m.group(3)}", f"psycopg-{m.group(2)}=={m.group(3)}"]
        else:
            out.append(line)
    return out


def variables(obj) -> set[str]:
    """The ${VAR} names an object (a check, a channel) refers to."""
    return set(_VAR.findall(json.dumps(obj)))


def free_form_whatsapp(channels: dict, env=None) -> list[str]:
    """The channels whose WhatsApp URL is a free-form message ("NAME (VAR)"): Meta delivers one a
    business starts only within 24 h of the recipient's last message, so a page may never arrive."""
    env = os.environ if env is None else env
    out = []
    for name, spec in channels.items():
        url = expand_env(str(spec.get("apprise", spec.get("url", ""))), env)  # as the monitor will read it
        if whatsapp_form(url) == "free-form":
            out.append(f"{name} ({', '.join(sorted(variables(spec))) or 'group_data monitor_channels'})")
    return out


FREE_FORM_FIX = ("an approved template: whatsapp://TEMPLATE:TOKEN@PHONE_ID/TO?lang=pt_BR&:body=1 "
                 "(docs/monitoring.md, WhatsApp)")


def checks(m: settings.Monitor) -> tuple[list[dict], list[str]]:
    """(checks to render, "name (VAR not set)" for the ones left out)."""
    out, skipped = [], []
    n8n = list(inventory.get_group("n8n_servers", default=[]))
    warning = {"severity": "warning", "ladder": m.warning_ladder}
    ops = {"audience": "operators"}  # the servers' own checks: on the operators' page, not the clients'
    capacity = [{**ops, **warning, **c} for c in m.capacity_checks]
    tier = scaling.settings(n8n[0].data if n8n else host.data)
    if m.leads_query and tier.leads_per_day is not None:
        capacity.append({**ops, **warning, "name": "leads-per-day", "type": "postgres", "dsn": "${SUPABASE_DB_URL}",
                         "description": f"leads per day (tier {tier.tier}: up to {tier.leads_per_day})",
                         "query": m.leads_query, "max_value": tier.leads_per_day, "unit": "leads",
                         "value_label": "leads per day"})
    for check in [*m.checks, *capacity]:
        c = {**m.http_defaults, **check} if check["type"] == "http" else dict(check)
        if c.get("severity") == "warning":  # a warning e-mails (monitor_warning_ladder) unless it has a ladder
            c.setdefault("ladder", m.warning_ladder)
        missing = sorted(v for v in variables(c) if not os.environ.get(v))
        if missing:
            skipped.append(f"{c['name']} ({', '.join(missing)} not set)")
            continue
        if c["name"] == "n8n" and m.resolve_private and n8n:
            c["resolve"] = peer(n8n[0])[0]  # the sandbox has no DNS: connect to the n8n server itself
        out.append(c)
    for s in n8n:
        # that server's own settings (group_data/n8n_servers.py may differ from the monitor's)
        st, bk = settings.Stack.from_data(s.data), settings.Backup.from_data(s.data)
        cl = settings.Cleanup.from_data(s.data)
        scheduled = {"check": True, "cleanup": bool(cl.retention_days), "drill": bk.drill_monthly}
        out.append({"name": f"backup-{s.name}", "description": f"daily backup of {s.name}", "type": "heartbeat",
                    "sender": s.name, "max_age_minutes": m.backup_max_age_hours * 60, **ops})
        out.append({"name": f"secrets-{s.name}", "description": f"age of the rotatable secrets on {s.name}",
                    "type": "heartbeat", "sender": s.name, "max_age_minutes": 26 * 60, "value_label": "oldest secret",
                    "max_value": st.secret_max_age_days - st.secret_warn_days - 1, "unit": "days", **warning, **ops})
        for job, (what, days) in JOBS.items():
            if scheduled[job]:
                out.append({"name": f"{job}-{s.name}", "description": f"{what} on {s.name}", "type": "heartbeat",
                            "sender": s.name, "max_age_minutes": days * 24 * 60, **warning, **ops})
    for h in managed_hosts():
        for kind, check in reports(h, m).items():
            out.append({"name": f"{kind}-{h.name}", "type": "heartbeat", "sender": h.name,
                        "max_age_minutes": m.disk_report_minutes * 3, **check, **ops})
    # a server that stops reporting (down, unreachable) is one alert, its disk report's: while that
    # one has gone silent, the server's other heartbeats open no incident (the monitor's inhibited_by)
    names = {c["name"] for c in out}
    for c in out:
        disk = f"disk-{c.get('sender')}"
        if c["type"] == "heartbeat" and c["name"] != disk and disk in names:
            c["inhibited_by"] = disk
    return out, skipped


def reports(h, m: settings.Monitor) -> dict[str, dict]:
    """What server `h` reports every monitor_disk_report_minutes (mottivme-report-disk), by kind:
    its check's description, limit and ladder. One list for the checks the monitor renders and
    the URLs the server gets (report_settings)."""
    warning = {"severity": "warning", "ladder": m.warning_ladder}
    out = {"disk": {"description": f"disk space on {h.name} ({disk_path(h, m)})", "max_value": m.disk_max_percent,
                    "unit": "%"},
           "memory": {"description": f"memory in use on {h.name}", "max_value": m.memory_max_percent, "unit": "%",
                      **warning},
           "cpu": {"description": f"CPU busy on {h.name}", "max_value": m.cpu_max_percent, "unit": "%", **warning}}
    if queue_mode(h):
        out["queue"] = {"description": f"executions waiting for a worker on {h.name}",
                        "max_value": m.queue_max_waiting, "unit": "executions", "value_label": "queue", **warning}
    return out


def queue_mode(h) -> bool:
    """An n8n server whose stack holds n8n's queue (Redis): it reports the executions waiting."""
    return "n8n_servers" in h.groups and scaling.settings(h.data).queue_mode


# monitor_language -> the language a phone call speaks and a voice of Twilio's that speaks it
VOICES = {"pt-BR": ("pt-BR", "Polly.Camila"), "en": ("en-US", "Polly.Joanna")}


def spoken(channels: dict, language: str) -> dict:
    """monitor_channels with {language} and {voice} in a webhook's form (Twilio's <Say voice="..."
    language="...">) put as monitor_language's, so a call reads the alert in the alert's language."""
    lang, voice = VOICES.get(language, (language, ""))

    def put(v: str) -> str:
        return v.replace("{language}", lang).replace("{voice}", voice)
    return {name: ({**c, "form": {k: put(v) for k, v in c["form"].items()}} if isinstance(c.get("form"), dict) else c)
            for name, c in channels.items()}


def config(m: settings.Monitor, timezone: str) -> tuple[dict, list[str]]:
    """The monitor's configuration (mottivme_monitor/config.py) and the checks left out; `timezone`
    (Base.timezone) is the status page's and the posted incidents' clock."""
    rendered, skipped = checks(m)
    return {
        **_program(m, timezone),
        "listen": m.ping_listen,
        "ping_token": "${MONITOR_PING_TOKEN}",
        "deadman_url": "${MONITOR_DEADMAN_URL}",  # empty: nothing outside watches the monitor
        "title": m.title,
        "interval_seconds": m.interval_seconds,
        "ladder": m.ladder,
        "channels": spoken(m.channels, m.language),
        "checks": rendered,
        "incidents": m.incidents,  # post-mortems: postmortems/ beside the database, in state_dir
    }, skipped


def watch_config(m: settings.Monitor, timezone: str) -> dict:
    """The n8n servers' watch of the monitor (group_data monitor_watch), as a configuration of the
    monitor's own program: one http check, the monitor's status.json regenerated within its last
    three rounds, whose ladder pages `channels` once it has failed for `silent_minutes`; one
    "resolved" at its first good check."""
    w = m.watch or {}
    minutes, names = w.get("silent_minutes"), w.get("channels")
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0:
        raise settings.SettingsError("group_data monitor_watch: 'silent_minutes' must be a number of minutes above 0")
    if not names or not isinstance(names, list) or any(n not in m.channels or "apprise" not in m.channels[n]
                                                       for n in names):
        apprise = sorted(n for n, c in m.channels.items() if "apprise" in c)
        raise settings.SettingsError(f"group_data monitor_watch: 'channels' must name channels of monitor_channels "
                                     f"with an apprise URL (one of {', '.join(apprise)})")
    check = {**m.http_defaults, "name": "monitor", "type": "http",
             "description": f"the monitor's status page (https://{m.status_host}/), regenerated every round",
             "url": f"https://{m.status_host}/status.json", "expect_status": [200],
             "json": [{"path": "generated_at", "max_age_seconds": 3 * m.interval_seconds}]}
    if address := monitor_address(m):
        check["resolve"] = address  # the sandbox has no DNS: connect to the monitor itself
    return {
        **_program(m, timezone),
        "title": f"{m.title}: watch of the monitor from {host.name}",
        "interval_seconds": 60,
        "ladder": {"steps": [{"after_minutes": minutes, "channels": names}],
                   "reminder_minutes": m.ladder.get("reminder_minutes", 60), "recovery_successes": 1},
        "channels": {n: m.channels[n] for n in names},
        "checks": [check],
    }


def _program(m: settings.Monitor, timezone: str) -> dict:
    """What the monitor's program needs wherever it runs (the monitor, an n8n server's watch): its
    database and page in state_dir, how long it keeps results, its clock and its language."""
    return {"db": f"{m.state_dir}/state.sqlite", "www_dir": f"{m.state_dir}/www",
            "raw_history_days": m.raw_history_days, "timezone": timezone, "language": m.language}


def monitor_address(m: settings.Monitor) -> str:
    """The monitor's address where its status host has no DNS (monitor_resolve_private, the
    sandbox); "" where DNS leads to it."""
    mons = monitor_hosts()
    return peer(mons[0])[0] if mons and m.resolve_private else ""


def ops_auth(user: str, password: str, salt_from: str) -> str:
    """Caddy's basicauth block for the operators' page: bcrypt with a salt derived from another
    secret (`salt_from`, MONITOR_PING_TOKEN: never from the password itself, which would make the
    salt a fast hash of it), so the file is the same on every run; base64-encoded as Caddy 2.6
    (Debian's) reads it. Cost 8: the password is random (the variable's check), and Caddy hashes
    every request to /ops/, asked or not."""
    hashed = vaultkeys.stable_bcrypt(password, salt_from, f"monitor-ops:{user}", cost=8)
    return f"basicauth {{\n\t{user} {base64.b64encode(hashed.encode()).decode()}\n}}\n"


def secrets_env(conf: dict) -> str:
    """The values of every ${VAR} the configuration uses, for systemd's EnvironmentFile (and the
    command's shell wrapper): single-quoted, so nothing in them is expanded."""
    lines = ["# Managed by mottivme-infra (tasks/monitoring.py): secrets of the monitor, root only."]
    for name in sorted(variables(conf)):
        value = os.environ.get(name, "")
        if "'" in value or "\n" in value:
            raise ValueError(f"{name} contains a quote or a newline, which the monitor's environment file "
                             "cannot hold: choose a value without them")
        if value:
            lines.append(f"{name}='{value}'")
    return "\n".join(lines) + "\n"


def install(m: settings.Monitor, conf: dict, role: str, description: str, packages: list[str]) -> list:
    """mottivme_monitor with configuration `conf`: its virtualenv, the program, configuration and
    secrets (0600), the `mottivme-monitor` command and the timer of its rounds (`description`: its
    systemd units'; `packages`: the pinned ones its virtualenv gets). `role` names the operations
    ("monitor", "watch"). Returns the operations whose change means a restart."""
    venv, lib = f"{m.dir}/venv", f"{m.dir}/lib"
    apt.packages(name=f"{role}: python3-venv", packages=["python3-venv", "curl"], no_recommends=True)
    server.user(name=f"{role}: system user {m.user}", user=m.user, system=True,
                home=m.state_dir, shell="/usr/sbin/nologin", create_home=False)
    for path, owner, mode in ((m.dir, "root", "755"), (lib, "root", "755"), (ETC, "root", "755"),
                              (m.state_dir, m.user, "755"),
                              (f"{m.state_dir}/www", m.user, "755")):
        files.directory(name=f"{role}: {path}", path=path, user=owner, group=owner, mode=mode)

    pip.virtualenv(name=f"{role}: virtualenv", path=venv, python="python3", venv=True)
    pip.packages(name=f"{role}: Python packages (pinned)", packages=packages, virtualenv=venv,
                 extra_install_args=m.pip_extra_args or None)
    code = operations.tree(name=f"{role}: the program (mottivme_monitor/)", src=str(PACKAGE),
                           dest=f"{lib}/mottivme_monitor")
    for c in free_form_whatsapp(conf["channels"]):
        logger.warning(f"[{host.name}] {role}: channel {c}: a free-form WhatsApp message arrives only within 24 h "
                       f"of the recipient's last message; use {FREE_FORM_FIX}")
    conf_op = files.put(name=f"{role}: configuration (checks, ladder, channels)",
                        src=StringIO(json.dumps(conf, indent=2) + "\n"), dest=CONFIG, mode="644")
    secrets_op = operations.secret_file(name=f"{role}: secrets (0600)", dest=SECRETS,
                                        content=HiddenValue(secrets_env(conf)))
    files.put(name=f"{role}: where its command finds things", dest=LAUNCH, mode="644",
              src=StringIO(json.dumps({"venv": venv, "lib": lib, "config": CONFIG, "secrets": SECRETS,
                                       "user": m.user}, indent=2, sort_keys=True) + "\n"))
    files.put(name=f"{role}: command {COMMAND}", src=str(PACKAGE / "launcher.py"), dest=COMMAND, mode="755")
    interval = conf["interval_seconds"]
    units = [files.template(name=f"{role}: unit {u}", src=f"templates/{u}.j2", dest=f"/etc/systemd/system/{u}",
                            mode="644", monitor=m, interval=interval, venv=venv, lib=lib, config=CONFIG,
                            secrets=SECRETS, description=description)
             for u in ("mottivme-monitor.service", "mottivme-monitor.timer")]
    systemd.daemon_reload(name=f"{role}: systemd reload (units changed)", _if=any_changed(*units))
    systemd.service(name=f"{role}: timer (a round every {interval} s)", service="mottivme-monitor.timer",
                    running=True, enabled=True)
    return [code, conf_op, secrets_op, *units]


@deploy("Monitor")
def monitoring():
    m, b = settings.Monitor.from_data(host.data), settings.Base.from_data(host.data)
    venv, lib = f"{m.dir}/venv", f"{m.dir}/lib"
    apt.packages(name="monitor: Caddy", packages=["caddy"], no_recommends=True)
    conf, skipped = config(m, b.timezone)
    for s in skipped:
        logger.warning(f"[{host.name}] monitor: check {s}: left out")
    installed = install(m, conf, "monitor", "mottivme monitor: one round of checks, notifications and the status page",
                        requirements())
    unit = files.template(name="monitor: unit mottivme-monitor-ping.service",
                          src="templates/mottivme-monitor-ping.service.j2",
                          dest="/etc/systemd/system/mottivme-monitor-ping.service", mode="644", monitor=m, venv=venv,
                          lib=lib, config=CONFIG, secrets=SECRETS)
    systemd.daemon_reload(name="monitor: systemd reload (receiver unit changed)", _if=unit.did_change)
    systemd.service(name="monitor: heartbeat receiver", service="mottivme-monitor-ping.service",
                    running=True, enabled=True)
    changed = any_changed(*installed, unit)
    systemd.service(name="monitor: restart the heartbeat receiver (changed)", service="mottivme-monitor-ping.service",
                    restarted=True, _if=changed)
    # a first round now, so the status page exists and a broken configuration fails this deploy
    server.shell(name="monitor: one round now (changed)", commands=[f"{COMMAND} run >/dev/null"], _if=changed)

    acme_root = operations.caddy_acme_root(b.caddy_acme_ca_root, b.acme_root_file, "monitor: Caddy")
    auth = operations.secret_file(name=f"monitor: the operators' page's login ({OPS_AUTH}, 0600 caddy)",
                                  dest=OPS_AUTH, content=HiddenValue(ops_auth(m.ops_user, os.environ["MONITOR_OPS_PASSWORD"],
                                                                      os.environ["MONITOR_PING_TOKEN"])),
                                  user="caddy", group="caddy")
    caddyfile = files.template(name="monitor: Caddyfile (status page, /ping/)", src="templates/Caddyfile-monitor.j2",
                               dest="/etc/caddy/Caddyfile", mode="644", base=b, monitor=m, ops_auth=OPS_AUTH)
    systemd.service(name="monitor: Caddy", service="caddy.service", running=True, enabled=True)
    server.shell(name="monitor: reload Caddy (Caddyfile changed)",
                 commands=["caddy validate --config /etc/caddy/Caddyfile --adapter caddyfile >/dev/null 2>&1 "
                           "|| caddy validate --config /etc/caddy/Caddyfile --adapter caddyfile",
                           "systemctl reload caddy"], _if=any_changed(caddyfile, acme_root, auth))


def ping_url(m: settings.Monitor, name: str, *, sender: str, fail: bool = False) -> str:
    """Where `sender` (the server the check `name` belongs to: its `sender` in checks()) sends that
    heartbeat, with that server's own token, never the master one (empty without a monitor host)."""
    if not monitor_hosts():
        return ""
    token = server_token(os.environ["MONITOR_PING_TOKEN"], sender)
    return f"https://{m.status_host}/ping/{token}/{name}" + ("/fail" if fail else "")


def ping_curl_args(m: settings.Monitor) -> str:
    """curl options for the pings (the sandbox: no DNS, Caddy's local CA)."""
    address = monitor_address(m)
    return f"-k --resolve {m.status_host}:443:{address}" if address else ""


def report_settings() -> dict | None:
    """The `reports` section of a server's host-program settings: every managed server reports its
    disk and memory (mottivme_host report-disk); an n8n server also its secrets' age and its
    scheduled jobs."""
    if not monitor_hosts():
        return None
    m = settings.Monitor.from_data(host.data)
    me = host.name
    out = {f"{kind}_url": ping_url(m, f"{kind}-{me}", sender=me) for kind in reports(host, m)}
    out.update(disk_path=disk_path(host, m), curl_args=ping_curl_args(m).split())
    if "n8n_servers" in host.groups:
        out["secrets_url"] = ping_url(m, f"secrets-{me}", sender=me)
        out["jobs"] = {job: ping_url(m, f"{job}-{me}", sender=me) for job in JOBS}
    return out


def disk_path(h, m: settings.Monitor) -> str:
    """The file system a server reports: the vault's repositories (their own volume, often), else
    monitor_disk_path (Docker's data on an n8n server)."""
    if "backup_vault" in h.groups:
        return settings.Backup.from_data(h.data).vault_path
    return m.disk_path


def managed_hosts() -> list:
    """Every server the deploy manages, in inventory order: each reports its disk and memory."""
    seen, out = set(), []
    for group in groups.NAMES:
        for h in inventory.get_group(group, default=[]):
            if h.name not in seen:
                seen.add(h.name)
                out.append(h)
    return out


@deploy("Reports to the monitor")
def reporting():
    """Cron runs `mottivme-report-disk` (mottivme_host/report_disk.py) and `mottivme-host secret-age
    --report` with the settings above."""
    m = settings.Monitor.from_data(host.data)
    files.file(name="reports: the old settings file is gone (now in the host programs' settings)", path=PING_ENV,
               present=False)
    files.template(name="reports: cron (disk and memory; an n8n server's secret age)",
                   src="templates/cron-monitor-reports.j2", dest="/etc/cron.d/mottivme-monitor-reports", mode="644",
                   monitor=m, n8n_server="n8n_servers" in host.groups)


@deploy("Watch of the monitor")
def watching():
    """An n8n server watches the monitor in return (group_data monitor_watch): the monitor's own
    program, installed here with watch_config(), pages when the monitor has gone silent."""
    m, b = settings.Monitor.from_data(host.data), settings.Base.from_data(host.data)
    installed = install(m, watch_config(m, b.timezone), "watch",
                        "mottivme monitor watch: is the monitor alive? (one round)",
                        # one http check: no PostgreSQL driver on the n8n servers
                        [r for r in requirements() if not r.lower().startswith("psycopg")])
    # a first round now when anything changed: a broken configuration fails this deploy
    server.shell(name="watch: one round now (changed)", commands=[f"{COMMAND} run >/dev/null"],
                 _if=any_changed(*installed))


@deploy("No watch of the monitor")
def unwatching():
    """An n8n server that no longer watches (monitor_watch None, no monitor host in the inventory):
    its watch's timer stops and goes, and so do its configuration and secrets (the apprise URLs);
    nothing is done on a server that never watched."""
    timer = "/etc/systemd/system/mottivme-monitor.timer"
    if not host.get_fact(File, path=timer):
        return
    systemd.service(name="watch: timer stopped (no watch)", service="mottivme-monitor.timer", running=False,
                    enabled=False)
    for path in (timer, "/etc/systemd/system/mottivme-monitor.service", CONFIG, SECRETS, COMMAND):
        files.file(name=f"watch: {path} removed", path=path, present=False)
    systemd.daemon_reload(name="watch: systemd reload")


def maintenance(action: str, checks: list[str], minutes: int = 30, reason: str = "") -> None:
    """Open (`start`) or close (`end`) a maintenance window on the monitor host(s): the checks
    named are silenced while it lasts; it expires by itself after `minutes`.

    + action: "start" or "end"
    + checks: check names ("*" for all)

    Example:

    .. code:: python

        if "monitors" in host.groups:
            maintenance("start", ["n8n"], minutes=15, reason="restart_n8n runbook")
    """
    names = " ".join(shlex.quote(c) for c in checks)
    if action == "start":
        command = f"{COMMAND} maintenance start {names} --minutes {int(minutes)} --reason {shlex.quote(reason)}"
    else:
        command = f"{COMMAND} maintenance end {names}"
    server.shell(name=f"monitor: maintenance {action} ({', '.join(checks)})", commands=[command])
