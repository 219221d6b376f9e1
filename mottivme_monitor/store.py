"""SQLite state: results, per-day aggregates, incidents, the team's reports, pings, maintenance,
notification log.

The timer's `run` and the ping server (`serve`) write concurrently, so the database is in
WAL mode and every write is one short BEGIN IMMEDIATE transaction. The schema version
is PRAGMA user_version; MIGRATIONS[i] takes version i to i+1 inside one transaction.

Timestamps are integer UTC epoch seconds; days are 'YYYY-MM-DD' on the clock the rounds count
them on (the configuration's timezone: the status page's days).
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import tzinfo

from . import clock
from .checks import Ping, Result

MIGRATIONS: list[list[str]] = [
    [  # version 1
        """CREATE TABLE results (check_name TEXT NOT NULL, ts INTEGER NOT NULL, ok INTEGER NOT NULL,
               ms INTEGER, reason TEXT NOT NULL DEFAULT '', maint INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX results_check_ts ON results (check_name, ts)",
        "CREATE INDEX results_ts ON results (ts)",
        # Per-day counts so the status page never scans raw results. Results recorded
        # inside a maintenance window count only in `maint`, not in total/up.
        """CREATE TABLE daily (check_name TEXT NOT NULL, day TEXT NOT NULL,
               total INTEGER NOT NULL DEFAULT 0, up INTEGER NOT NULL DEFAULT 0,
               maint INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (check_name, day)) WITHOUT ROWID""",
        """CREATE TABLE state (check_name TEXT PRIMARY KEY, ok INTEGER NOT NULL, ts INTEGER NOT NULL,
               ms INTEGER, reason TEXT NOT NULL DEFAULT '', down_since INTEGER, up_since INTEGER,
               ok_streak INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE incidents (id INTEGER PRIMARY KEY, check_name TEXT NOT NULL,
               started INTEGER NOT NULL, reason TEXT NOT NULL DEFAULT '',
               last_step INTEGER NOT NULL DEFAULT -1, last_notified INTEGER,
               channels TEXT NOT NULL DEFAULT '[]', recovered INTEGER, resolved INTEGER,
               resolve_pending TEXT NOT NULL DEFAULT '[]')""",
        "CREATE INDEX incidents_check ON incidents (check_name, resolved)",
        """CREATE TABLE pings (id INTEGER PRIMARY KEY, name TEXT NOT NULL, ts INTEGER NOT NULL,
               value REAL, failed INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX pings_name_ts ON pings (name, ts)",
        """CREATE TABLE maintenance (id INTEGER PRIMARY KEY, check_name TEXT NOT NULL,
               starts INTEGER NOT NULL, ends INTEGER NOT NULL, reason TEXT NOT NULL DEFAULT '')""",
        """CREATE TABLE notifications (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL,
               check_name TEXT NOT NULL, channel TEXT NOT NULL, kind TEXT NOT NULL,
               outcome TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX notifications_ts ON notifications (ts)",
    ],
    [  # version 2: incidents the team posts (reports.py), and clients told of an outage
        """CREATE TABLE reports (id INTEGER PRIMARY KEY, title TEXT NOT NULL, impact TEXT NOT NULL,
               services TEXT NOT NULL DEFAULT '[]', clients INTEGER, opened INTEGER NOT NULL,
               resolved INTEGER, reminded INTEGER, postmortem TEXT NOT NULL DEFAULT '')""",
        """CREATE TABLE report_updates (id INTEGER PRIMARY KEY, report_id INTEGER NOT NULL REFERENCES reports (id),
               ts INTEGER NOT NULL, status TEXT NOT NULL, message TEXT NOT NULL, eta INTEGER)""",
        "CREATE INDEX report_updates_report ON report_updates (report_id, ts)",
        "ALTER TABLE incidents ADD COLUMN clients_told INTEGER",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The database cannot be used (e.g. it is newer than this monitor)."""


@dataclass(frozen=True)
class State:
    """The latest result of a check plus the run bookkeeping the ladder needs."""
    check: str
    ok: bool
    ts: int
    ms: int | None
    reason: str
    down_since: int | None     # first failure of the current unbroken run of failures
    up_since: int | None       # first success of the current run of successes
    ok_streak: int


@dataclass(frozen=True)
class Incident:
    id: int
    check: str
    started: int
    reason: str
    last_step: int             # index of the highest ladder step sent; -1 = none yet
    last_notified: int | None
    channels: list[str]        # channels that received something during the incident
    recovered: int | None      # first success of the recovery
    resolved: int | None       # when recovery_successes was reached
    resolve_pending: list[str] # channels still owed the RESOLVED notice
    clients_told: int | None = None  # when the clients' channel heard of it (check's clients_after_minutes)


@dataclass(frozen=True)
class Update:
    """One update the team posted to a report: what it says, in which status, with an ETA."""
    id: int
    report_id: int
    ts: int
    status: str                # reports.STATUSES
    message: str
    eta: int | None            # when the team expects it resolved


@dataclass(frozen=True)
class Report:
    """An incident the team posts (SOP 05, Comunicação): its title, impact, services, clients
    affected, and its updates (newest first)."""
    id: int
    title: str
    impact: str
    services: list[str]
    clients: int | None
    opened: int
    resolved: int | None
    reminded: int | None       # the last "post an update" reminder
    postmortem: str            # the skeleton written when it was resolved
    updates: tuple[Update, ...] = ()

    @property
    def last_posted(self) -> int:
        return max([self.opened] + [u.ts for u in self.updates])


@dataclass(frozen=True)
class Window:
    id: int
    check: str                 # a check name or '*'
    starts: int
    ends: int
    reason: str


class Store:
    """One connection; open a Store per thread."""

    def __init__(self, path: str):
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self._migrate()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def tx(self):
        """A short write transaction (taken at once, so concurrent writers queue up)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {version} is newer than this monitor ({SCHEMA_VERSION})")
        if version == SCHEMA_VERSION:
            return
        with self.tx() as c:
            version = c.execute("PRAGMA user_version").fetchone()[0]   # re-read under the lock
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target - 1]:
                    c.execute(statement)
                c.execute(f"PRAGMA user_version = {target}")

    # -- results and state ------------------------------------------------------------

    def record_result(self, check: str, ts: int, result: Result, *, tz: tzinfo) -> tuple[State, Window | None]:
        """Store one result, update the counts of its day (on the clock `tz`: the status page's
        days) and the check's state."""
        with self.tx() as c:
            window = self.maintenance_at(check, ts)
            maint = window is not None
            c.execute("INSERT INTO results (check_name, ts, ok, ms, reason, maint) VALUES (?,?,?,?,?,?)",
                      (check, ts, int(result.ok), result.ms, result.reason, int(maint)))
            c.execute("""INSERT INTO daily (check_name, day, total, up, maint) VALUES (?,?,?,?,?)
                         ON CONFLICT (check_name, day) DO UPDATE SET total = total + excluded.total,
                         up = up + excluded.up, maint = maint + excluded.maint""",
                      (check, clock.day(ts, tz), 0 if maint else 1, int(result.ok and not maint), int(maint)))
            prev = self.state(check)
            if result.ok:
                was_ok = prev is not None and prev.ok
                state = State(check, True, ts, result.ms, "", None,
                              prev.up_since if was_ok and prev.up_since is not None else ts,
                              prev.ok_streak + 1 if was_ok else 1)
            else:
                was_down = prev is not None and not prev.ok and prev.down_since is not None
                state = State(check, False, ts, result.ms, result.reason,
                              prev.down_since if was_down else ts, None, 0)
            c.execute("""INSERT OR REPLACE INTO state (check_name, ok, ts, ms, reason, down_since, up_since, ok_streak)
                         VALUES (?,?,?,?,?,?,?,?)""",
                      (check, int(state.ok), ts, state.ms, state.reason, state.down_since, state.up_since,
                       state.ok_streak))
        return state, window

    def state(self, check: str) -> State | None:
        row = self.conn.execute("SELECT * FROM state WHERE check_name = ?", (check,)).fetchone()
        return _state(row) if row else None

    def states(self) -> dict[str, State]:
        return {r["check_name"]: _state(r) for r in self.conn.execute("SELECT * FROM state")}

    def response_times(self, check: str, limit: int) -> list[int]:
        """The response times (ms) of the check's last `limit` timed results, oldest first."""
        rows = self.conn.execute("SELECT ms FROM results WHERE check_name = ? AND ms IS NOT NULL "
                                 "ORDER BY ts DESC LIMIT ?", (check, limit)).fetchall()
        return [r[0] for r in reversed(rows)]

    def daily(self, first_day: str) -> dict[tuple[str, str], tuple[int, int, int]]:
        """{(check, day): (total, up, maint)} for days >= first_day."""
        rows = self.conn.execute("SELECT check_name, day, total, up, maint FROM daily WHERE day >= ?", (first_day,))
        return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}

    # -- incidents ----------------------------------------------------------------------

    def open_incident(self, check: str) -> Incident | None:
        row = self.conn.execute("SELECT * FROM incidents WHERE check_name = ? AND resolved IS NULL "
                                "ORDER BY id DESC LIMIT 1", (check,)).fetchone()
        return _incident(row) if row else None

    def open_incidents(self) -> list[Incident]:
        return [_incident(r) for r in self.conn.execute(
            "SELECT * FROM incidents WHERE resolved IS NULL ORDER BY started")]

    def recent_incidents(self, limit: int = 20, checks: list[str] | None = None) -> list[Incident]:
        """The latest resolved incidents (of `checks` only, when given)."""
        only = f" AND check_name IN ({','.join('?' * len(checks))})" if checks is not None else ""
        return [_incident(r) for r in self.conn.execute(
            f"SELECT * FROM incidents WHERE resolved IS NOT NULL{only} ORDER BY started DESC, id DESC LIMIT ?",
            (*(checks or ()), limit))]

    def incidents_owing_resolved(self) -> list[Incident]:
        return [_incident(r) for r in self.conn.execute(
            "SELECT * FROM incidents WHERE resolved IS NOT NULL AND resolve_pending != '[]' ORDER BY id")]

    def create_incident(self, check: str, started: int, reason: str) -> Incident:
        with self.tx() as c:
            cur = c.execute("INSERT INTO incidents (check_name, started, reason) VALUES (?,?,?)",
                            (check, started, reason))
        return self.incident(cur.lastrowid)

    def incident(self, incident_id: int) -> Incident:
        return _incident(self.conn.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone())

    def update_incident(self, incident_id: int, **fields) -> Incident:
        """Set columns; list values are stored as JSON."""
        cols = ", ".join(f"{k} = ?" for k in fields)
        values = [json.dumps(sorted(v)) if isinstance(v, (list, set, tuple)) else v for v in fields.values()]
        with self.tx() as c:
            c.execute(f"UPDATE incidents SET {cols} WHERE id = ?", (*values, incident_id))
        return self.incident(incident_id)

    # -- reports the team posts ----------------------------------------------------------

    def open_report(self, title: str, impact: str, services: list[str], clients: int | None, now: int,
                    status: str, message: str, eta: int | None) -> Report:
        with self.tx() as c:
            rid = c.execute("INSERT INTO reports (title, impact, services, clients, opened) VALUES (?,?,?,?,?)",
                            (title, impact, json.dumps(services), clients, now)).lastrowid
            c.execute("INSERT INTO report_updates (report_id, ts, status, message, eta) VALUES (?,?,?,?,?)",
                      (rid, now, status, message, eta))
        return self.report(rid)

    def post_update(self, report_id: int, now: int, status: str, message: str, eta: int | None,
                    resolved: bool = False) -> Report:
        with self.tx() as c:
            c.execute("INSERT INTO report_updates (report_id, ts, status, message, eta) VALUES (?,?,?,?,?)",
                      (report_id, now, status, message, eta))
            if resolved:
                c.execute("UPDATE reports SET resolved = ? WHERE id = ?", (now, report_id))
        return self.report(report_id)

    def set_report(self, report_id: int, **fields) -> Report:
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.tx() as c:
            c.execute(f"UPDATE reports SET {cols} WHERE id = ?", (*fields.values(), report_id))
        return self.report(report_id)

    def report(self, report_id: int) -> Report | None:
        row = self.conn.execute("SELECT * FROM reports WHERE id = ?", (report_id,)).fetchone()
        return self._report(row) if row else None

    def reports(self, open_only: bool = False, limit: int = 20) -> list[Report]:
        """Open ones first, then the most recently opened (newest first)."""
        where = "WHERE resolved IS NULL" if open_only else ""
        rows = self.conn.execute(f"SELECT * FROM reports {where} ORDER BY resolved IS NOT NULL, opened DESC, id DESC "
                                 "LIMIT ?", (limit,))
        return [self._report(r) for r in rows]

    def _report(self, r) -> Report:
        updates = tuple(Update(u["id"], u["report_id"], u["ts"], u["status"], u["message"], u["eta"])
                        for u in self.conn.execute("SELECT * FROM report_updates WHERE report_id = ? "
                                                   "ORDER BY ts DESC, id DESC", (r["id"],)))
        return Report(r["id"], r["title"], r["impact"], json.loads(r["services"]), r["clients"], r["opened"],
                      r["resolved"], r["reminded"], r["postmortem"], updates)

    def incidents_between(self, checks: list[str], start: int, end: int) -> list[Incident]:
        """The monitor's incidents of `checks` that overlap start..end (a post-mortem's timeline)."""
        marks = ",".join("?" * len(checks)) or "''"
        return [_incident(r) for r in self.conn.execute(
            f"SELECT * FROM incidents WHERE check_name IN ({marks}) AND started <= ? "
            "AND coalesce(recovered, resolved, ?) >= ? ORDER BY started", (*checks, end, end, start))]

    def notifications_between(self, checks: list[str], start: int, end: int) -> list[sqlite3.Row]:
        """What the monitor sent about `checks` from start to end."""
        marks = ",".join("?" * len(checks)) or "''"
        return self.conn.execute(
            f"SELECT ts, check_name, channel, kind, outcome, message FROM notifications WHERE check_name IN ({marks}) "
            "AND ts BETWEEN ? AND ? ORDER BY ts, id", (*checks, start, end)).fetchall()

    # -- pings --------------------------------------------------------------------------

    def add_ping(self, name: str, ts: int, value: float | None = None, failed: bool = False,
                 reason: str = "") -> None:
        with self.tx() as c:
            c.execute("INSERT INTO pings (name, ts, value, failed, reason) VALUES (?,?,?,?,?)",
                      (name, ts, value, int(failed), reason[:300]))

    def first_result(self, check: str) -> int | None:
        """When this check was first recorded (within raw_history_days), or None."""
        row = self.conn.execute("SELECT min(ts) FROM results WHERE check_name = ?", (check,)).fetchone()
        return row[0] if row else None

    def latest_ping(self, name: str, at: int) -> Ping | None:
        """The newest ping at or before `at`."""
        row = self.conn.execute("SELECT ts, value, failed, reason FROM pings WHERE name = ? AND ts <= ? "
                                "ORDER BY ts DESC, id DESC LIMIT 1", (name, at)).fetchone()
        return Ping(row[0], row[1], bool(row[2]), row[3]) if row else None

    # -- maintenance --------------------------------------------------------------------

    def maintenance_at(self, check: str, ts: int) -> Window | None:
        """The window covering `check` (by name or '*') at `ts`, the one ending last."""
        row = self.conn.execute("SELECT * FROM maintenance WHERE check_name IN (?, '*') AND starts <= ? "
                                "AND ends > ? ORDER BY ends DESC LIMIT 1", (check, ts, ts)).fetchone()
        return _window(row) if row else None

    def maintenance_active(self, now: int) -> list[Window]:
        return [_window(r) for r in self.conn.execute(
            "SELECT * FROM maintenance WHERE starts <= ? AND ends > ? ORDER BY check_name", (now, now))]

    def maintenance_ended_between(self, check: str, after: int, upto: int) -> int | None:
        """The latest end of a window for `check` that closed in (after, upto]."""
        row = self.conn.execute("SELECT max(ends) FROM maintenance WHERE check_name IN (?, '*') "
                                "AND ends > ? AND ends <= ? AND starts < ends", (check, after, upto)).fetchone()
        return row[0]

    def start_maintenance(self, names: list[str], now: int, minutes: float, reason: str) -> list[tuple[Window, bool]]:
        """Open (or replace the end and reason of) a window per name; returns (window, replaced)."""
        ends = now + int(round(minutes * 60))
        out = []
        with self.tx() as c:
            for name in names:
                row = c.execute("SELECT id FROM maintenance WHERE check_name = ? AND starts <= ? AND ends > ? "
                                "ORDER BY ends DESC LIMIT 1", (name, now, now)).fetchone()
                if row:
                    c.execute("UPDATE maintenance SET ends = ?, reason = ? WHERE id = ?", (ends, reason, row[0]))
                    wid, replaced = row[0], True
                else:
                    wid = c.execute("INSERT INTO maintenance (check_name, starts, ends, reason) VALUES (?,?,?,?)",
                                    (name, now, ends, reason)).lastrowid
                    replaced = False
                out.append((wid, replaced))
        return [(_window(self.conn.execute("SELECT * FROM maintenance WHERE id = ?", (wid,)).fetchone()), rep)
                for wid, rep in out]

    def end_maintenance(self, names: list[str] | None, now: int) -> list[Window]:
        """End open windows for those names (None = all) now; returns the windows ended."""
        with self.tx() as c:
            if names is None:
                rows = c.execute("SELECT * FROM maintenance WHERE starts <= ? AND ends > ?", (now, now)).fetchall()
            else:
                marks = ",".join("?" * len(names))
                rows = c.execute(f"SELECT * FROM maintenance WHERE check_name IN ({marks}) AND starts <= ? "
                                 "AND ends > ?", (*names, now, now)).fetchall()
            for r in rows:
                c.execute("UPDATE maintenance SET ends = ? WHERE id = ?", (now, r["id"]))
        return [_window(r) for r in rows]

    # -- notification log and housekeeping ----------------------------------------------

    def log_notification(self, ts: int, check: str, channel: str, kind: str, outcome: str,
                         detail: str, message: str) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO notifications (ts, check_name, channel, kind, outcome, detail, message) "
                      "VALUES (?,?,?,?,?,?,?)", (ts, check, channel, kind, outcome, detail[:500], message))

    def prune(self, now: int, raw_days: int) -> None:
        """Drop raw rows older than raw_days (daily aggregates are kept 400 days)."""
        cutoff = now - raw_days * 86400
        with self.tx() as c:
            c.execute("DELETE FROM results WHERE ts < ?", (cutoff,))
            c.execute("DELETE FROM notifications WHERE ts < ?", (cutoff,))
            c.execute("DELETE FROM pings WHERE ts < ? AND id NOT IN (SELECT max(id) FROM pings GROUP BY name)",
                      (cutoff,))
            c.execute("DELETE FROM maintenance WHERE ends < ?", (cutoff,))
            c.execute("DELETE FROM daily WHERE day < ?", (clock.day(now - 400 * 86400),))


def _state(r) -> State:
    return State(r["check_name"], bool(r["ok"]), r["ts"], r["ms"], r["reason"], r["down_since"],
                 r["up_since"], r["ok_streak"])


def _incident(r) -> Incident:
    return Incident(r["id"], r["check_name"], r["started"], r["reason"], r["last_step"], r["last_notified"],
                    json.loads(r["channels"]), r["recovered"], r["resolved"], json.loads(r["resolve_pending"]),
                    r["clients_told"])


def _window(r) -> Window:
    return Window(r["id"], r["check_name"], r["starts"], r["ends"], r["reason"])
