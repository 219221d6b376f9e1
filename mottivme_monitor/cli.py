"""Command line: `python -m mottivme_monitor --config PATH COMMAND` (see the package docstring).

Exit codes: 0 done (services may be down: the monitor worked), 1 `check` found a service
down, 2 bad configuration or usage, 3 the monitor itself failed.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import json
import os
import sqlite3
import sys
import traceback

from . import checks, clock, ladder, reports, rounds, statuspage
from .config import Config, ConfigError, load
from .store import Store, StoreError
from .tokens import server_token

DEFAULT_CONFIG = "/etc/mottivme-monitor/config.json"
EXIT_OK, EXIT_DOWN, EXIT_CONFIG, EXIT_FAILED = 0, 1, 2, 3


class UsageError(Exception):
    """A bad argument the parser cannot see (e.g. an unknown check name)."""


@functools.cache
def build_parser() -> argparse.ArgumentParser:
    """The argument parser (built once per process; argparse parsers are reusable)."""
    now = argparse.ArgumentParser(add_help=False)
    now.add_argument("--now", metavar="ISO8601", help="the clock to use (UTC), for tests and replays")
    p = argparse.ArgumentParser(prog="python -m mottivme_monitor",
                                description="Off-host monitor: checks, escalation ladder, status page, heartbeats.")
    p.add_argument("--config", default=os.environ.get("MOTTIVME_MONITOR_CONFIG", DEFAULT_CONFIG),
                   help=f"JSON configuration (default {DEFAULT_CONFIG})")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", parents=[now], help="one round: check, record, notify, write the status page")
    c = sub.add_parser("check", parents=[now], help="check now without recording or notifying (exit 1 if down)")
    c.add_argument("--json", action="store_true")
    s = sub.add_parser("serve", help="heartbeat receiver: /ping/<token>/<name>[/fail], /healthz")
    s.add_argument("--listen", metavar="HOST:PORT", help="override 'listen' (port 0 = any free port)")
    st = sub.add_parser("status", parents=[now], help="current state from the database (no checks run)")
    st.add_argument("--json", action="store_true")
    m = sub.add_parser("maintenance", help="silence checks for a while")
    msub = m.add_subparsers(dest="action", required=True, metavar="ACTION")
    ms = msub.add_parser("start", parents=[now], help="open (or replace) a window; NAME '*' = all checks")
    ms.add_argument("names", nargs="+", metavar="NAME")
    ms.add_argument("--minutes", type=float, required=True)
    ms.add_argument("--reason", required=True)
    me = msub.add_parser("end", parents=[now], help="end windows now")
    me.add_argument("names", nargs="*", metavar="NAME")
    me.add_argument("--all", action="store_true", help="end every open window")
    msub.add_parser("list", parents=[now], help="open windows")
    i = sub.add_parser("incident", help="incidents the team posts: open, update, resolve, list")
    isub = i.add_subparsers(dest="action", required=True, metavar="ACTION")
    tell = argparse.ArgumentParser(add_help=False)
    tell.add_argument("--eta", help="expected resolution: 45m, 2h, 1h30m from now, or 14:30 (the page's clock)")
    tell.add_argument("--notify-clients", action="store_true", help="send it to the clients' channel too")
    io = isub.add_parser("open", parents=[now, tell], help="post a new incident (the team is told; the page shows it)")
    io.add_argument("--service", action="append", required=True, metavar="CHECK",
                    help="an affected service, by its check name (repeatable)")
    io.add_argument("--title", required=True, help="one line for the page, e.g. 'Automations delayed'")
    io.add_argument("--impact", required=True, help="what the clients notice")
    io.add_argument("--clients", type=int, metavar="N", help="how many clients are affected")
    io.add_argument("--message", help="the first update (default: the impact)")
    io.add_argument("--status", default="investigating", help="investigating (default), identified or monitoring")
    iu = isub.add_parser("update", parents=[now, tell], help="post an update (the SOP: every 15 minutes)")
    iu.add_argument("id", type=int)
    iu.add_argument("--message", required=True)
    iu.add_argument("--status", help="investigating, identified or monitoring (default: as it was)")
    ir = isub.add_parser("resolve", parents=[now, tell], help="post the last update and write the post-mortem's skeleton")
    ir.add_argument("id", type=int)
    ir.add_argument("--message", required=True)
    il = isub.add_parser("list", parents=[now], help="open incidents, then the latest resolved ones")
    il.add_argument("--json", action="store_true")
    t = sub.add_parser("token", help="a server's heartbeat token (to send one of its pings by hand)")
    t.add_argument("server", help="the server's inventory name (the 'sender' of its heartbeat checks)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        sys.stdout.reconfigure(errors="replace")
    except (AttributeError, ValueError):
        pass
    try:
        cfg = load(args.config)
    except ConfigError as e:
        print(f"error: {args.config}: {e}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        now = clock.parse_iso(args.now) if getattr(args, "now", None) else clock.real_now()
    except ValueError:
        print(f"error: --now {args.now!r} is not an ISO 8601 time", file=sys.stderr)
        return EXIT_CONFIG
    try:
        handler = {"run": cmd_run, "check": cmd_check, "serve": cmd_serve, "status": cmd_status,
                   "maintenance": cmd_maintenance, "incident": cmd_incident, "token": cmd_token}[args.command]
        return handler(cfg, args, now)
    except (UsageError, reports.ReportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except Exception:  # noqa: BLE001 - the monitor itself failed: say so loudly
        traceback.print_exc()
        return EXIT_FAILED


def cmd_run(cfg: Config, args, now: int) -> int:
    os.makedirs(os.path.dirname(os.path.abspath(cfg.db)), exist_ok=True)
    with open(cfg.db + ".lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("another run is in progress; this round is skipped")
            return EXIT_OK
        with Store(cfg.db) as store:
            rounds.run_round(cfg, store, now)
    return EXIT_OK


def cmd_check(cfg: Config, args, now: int) -> int:
    beats = [c for c in cfg.checks if c.type == "heartbeat"]
    pings, seen, db_error = {}, {}, ""
    if beats:
        try:
            with Store(cfg.db) as store:
                pings = {c.name: store.latest_ping(c.name, now) for c in beats}
                seen = {c.name: store.first_result(c.name) for c in beats}
        except (sqlite3.Error, OSError, StoreError) as e:
            db_error = f"cannot read pings from {cfg.db}: {e}"
    results = checks.run_all(cfg.checks, pings, now, seen)
    if db_error:
        results.update({c.name: checks.Result(False, None, db_error) for c in beats})
    if args.json:
        print(json.dumps([{"name": c.name, "ok": results[c.name].ok, "state": "UP" if results[c.name].ok else c.down_word,
                           "ms": results[c.name].ms, "reason": results[c.name].reason} for c in cfg.checks], indent=1))
    else:
        print(f"{'NAME':<24} {'STATE':<7} {'MS':>9}  REASON")
        for c in cfg.checks:
            print(rounds.result_line(c, results[c.name]))
    # a warning (a secret due, a late weekly job) is not a failed health check: only what is down
    return EXIT_OK if all(results[c.name].ok or c.severity == "warning" for c in cfg.checks) else EXIT_DOWN


def cmd_serve(cfg: Config, args, now: int) -> int:
    from .server import make_server
    host, port = cfg.listen_host, cfg.listen_port
    if args.listen:
        host, _, p = args.listen.rpartition(":")
        if not p.isdigit():
            raise UsageError("--listen must be HOST:PORT")
        port = int(p)
    if not cfg.ping_token:
        raise UsageError(f"{cfg.path}: 'ping_token' is empty (is MONITOR_PING_TOKEN set?); refusing to serve")
    server = make_server(cfg, host.strip("[]"), port)
    bound_host, bound_port = server.server_address[:2]
    print(f"listening on http://{bound_host}:{bound_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK


def cmd_status(cfg: Config, args, now: int) -> int:
    with Store(cfg.db) as store:
        data = statuspage.build(cfg, store, now, published=False, audience="operators")  # on the monitor host: all of it
    if args.json:
        print(json.dumps(data, indent=1, ensure_ascii=False))
        return EXIT_OK
    print(data["summary"]["text"])
    print(f"{'NAME':<24} {'STATE':<12} {'SINCE':<21} {'30 DAYS':>8}  REASON")
    for s in data["services"]:
        uptime = "-" if s["uptime_30d"] is None else f"{s['uptime_30d']:.2f}%"
        reason = s["reason"] if s["state"] in ("down", "warning") else (s["maintenance"] or {}).get("reason", "")
        print(f"{s['name']:<24} {s['state'].upper():<12} {s['since'] or '-':<21} {uptime:>8}  {reason}".rstrip())
    for i in data["incidents"]["open"]:
        print(f"open incident: {i['check']} since {i['started']} ({clock.duration(i['duration_seconds'])}): {i['reason']}")
    for w in data["maintenance"]:
        print(f"maintenance: {w['check']} until {w['ends']}: {w['reason']}")
    return EXIT_OK


def _names(cfg: Config, names: list[str]) -> list[str]:
    known = [c.name for c in cfg.checks]
    for n in names:
        if n != "*" and n not in known:
            raise UsageError(f"unknown check '{n}' (known: {', '.join(known)}, or '*' for all)")
    return list(dict.fromkeys(names))


def cmd_maintenance(cfg: Config, args, now: int) -> int:
    with Store(cfg.db) as store:
        if args.action == "start":
            if args.minutes <= 0:
                raise UsageError("--minutes must be > 0")
            for window, replaced in store.start_maintenance(_names(cfg, args.names), now, args.minutes, args.reason):
                verb = "replaced, now until" if replaced else "started, until"
                print(f"maintenance {window.check}: {verb} {clock.iso(window.ends)} ({window.reason})")
        elif args.action == "end":
            if args.all == bool(args.names):
                raise UsageError("give check names or --all (not both)")
            names = None if args.all else _names(cfg, args.names)
            ended = store.end_maintenance(names, now)
            for window in ended:
                print(f"maintenance {window.check}: ended")
            closed = {w.check for w in ended}
            for name in (names or []):
                if name not in closed:
                    extra = ""
                    if name != "*" and store.maintenance_at(name, now) is not None:
                        extra = " (a window for all checks '*' is open: end '*' or --all)"
                    print(f"maintenance {name}: nothing was open{extra}")
            if names is None and not ended:
                print("maintenance: nothing was open")
        else:
            windows = store.maintenance_active(now)
            for w in windows:
                print(f"{w.check:<24} {clock.iso(w.starts)} -> {clock.iso(w.ends)}  {w.reason}")
            if not windows:
                print("no maintenance window is open")
    return EXIT_OK


def cmd_token(cfg: Config, args, now: int) -> int:
    """Print the token the receiver takes for the heartbeats of `server` (tokens.py), derived from
    ping_token here on the monitor host, so the operator never copies the master token to a server."""
    if not cfg.ping_token:
        raise UsageError(f"{cfg.path}: 'ping_token' is empty (is MONITOR_PING_TOKEN set?): no token to derive from")
    senders = cfg.senders()
    if args.server not in senders:
        raise UsageError(f"no heartbeat check has sender '{args.server}' (senders: {', '.join(senders) or 'none'}); "
                         "a check without a sender takes the master ping_token")
    print(server_token(cfg.ping_token, args.server))
    return EXIT_OK


def cmd_incident(cfg: Config, args, now: int) -> int:
    """The team's incidents (reports.py): each post goes to the team's channels, to the clients'
    channel with --notify-clients, and onto the status page at once."""
    tz = cfg.tz
    with Store(cfg.db) as store:
        if args.action == "list":
            found = store.reports()
            if args.json:
                print(json.dumps([statuspage.report_json(r, tz, published=False) for r in found], indent=1,
                                 ensure_ascii=False))
                return EXIT_OK
            for r in found:
                state = "resolved " + reports.local(r.resolved, tz) if r.resolved else f"open, {r.updates[0].status}"
                print(f"#{r.id} {r.title} ({', '.join(r.services)}): {state}; last update "
                      f"{reports.local(r.last_posted, tz)}: {r.updates[0].message}")
            if not found:
                print("no incident has been posted")
            return EXIT_OK
        eta = reports.parse_eta(args.eta, now, tz)
        if args.notify_clients and not cfg.incidents.clients_channel:
            raise UsageError("--notify-clients: no clients' channel (incidents.clients_channel) is configured")
        if args.notify_clients and not cfg.channels[cfg.incidents.clients_channel].enabled:
            raise UsageError("--notify-clients: the clients' channel has no address (set MONITOR_CLIENTS_URL in .env "
                             "and deploy); nothing was posted")
        if args.action == "open":
            unknown = [n for n in args.service if cfg.check(n) is None]
            if unknown:
                raise UsageError(f"unknown service {', '.join(unknown)} (the check names: "
                                 f"{', '.join(c.name for c in cfg.checks)})")
            if args.clients is not None and args.clients < 0:
                raise UsageError("--clients must be 0 or more")
            report = store.open_report(args.title, args.impact, list(dict.fromkeys(args.service)), args.clients, now,
                                       _open_status(args.status), args.message or args.impact, eta)
            print(f"incident #{report.id} opened: {report.title}")
        else:
            report = store.report(args.id)
            if report is None:
                raise UsageError(f"no incident #{args.id} (mottivme-monitor incident list)")
            if report.resolved is not None:
                raise UsageError(f"incident #{args.id} was resolved {reports.local(report.resolved, tz)}: "
                                 "open a new one")
            resolving = args.action == "resolve"
            status = "resolved" if resolving else _open_status(args.status or report.updates[0].status)
            report = store.post_update(report.id, now, status, args.message, None if resolving else eta,
                                       resolved=resolving)
            print(f"incident #{report.id}: {status}")
        problems = []
        if report.resolved is not None:  # resolved (and so recorded): the notices and the page go out anyway
            try:
                print(f"post-mortem skeleton: {_write_postmortem(cfg, store, report, tz)}")
            except OSError as e:
                problems.append(f"the post-mortem skeleton could not be written ({e.strerror or e})")
        if not _tell(cfg, store, report, now, args.notify_clients):
            problems.append("no channel took it (details above); the status page shows it")
        statuspage.write(cfg, store, now)
    for problem in problems:
        print(f"error: incident #{report.id} posted, but {problem}", file=sys.stderr)
    return EXIT_FAILED if problems else EXIT_OK


def _open_status(status: str) -> str:
    if reports.check_status(status) == "resolved":
        raise UsageError("status 'resolved': use `incident resolve`")
    return status


def _tell(cfg: Config, store: Store, report, now: int, clients: bool) -> bool:
    """The newest update to the team's channels, and to the clients' channel when asked; False
    when every channel with an address failed."""
    title, body = reports.client_notice(report, cfg.public_url, cfg.say)
    targets = list(cfg.incidents.channels) + ([cfg.incidents.clients_channel] if clients else [])
    plan = ladder.Plan("report", f"incident-{report.id}", tuple(dict.fromkeys(targets)), title, body)
    return ladder.delivered(rounds.deliver(cfg, store, plan, plan.channels, now, print))[0]


def _write_postmortem(cfg: Config, store: Store, report, tz) -> str:
    directory = cfg.incidents.postmortem_dir or os.path.join(os.path.dirname(os.path.abspath(cfg.db)), "postmortems")
    os.makedirs(directory, exist_ok=True)
    # the monitor's incidents of those services while it was open, and what it sent from their start
    incidents = store.incidents_between(report.services, report.opened, report.resolved)
    sent = store.notifications_between(report.services, min([report.opened] + [i.started for i in incidents]),
                                       report.resolved)
    path = os.path.join(directory, reports.postmortem_name(report, tz))
    with open(path, "w", encoding="utf-8") as f:
        f.write(reports.postmortem(report, incidents, sent, cfg.say))
    store.set_report(report.id, postmortem=path)
    return path
