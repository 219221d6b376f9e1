"""How old each rotatable secret on this server is (SOP 05: rotate every 90 days).

mottivme-host secret-age [--report]

Prints one line per secret (PostgreSQL's and restic's passwords): its age in days and the day
it is due. A line starting with "!" is within `secret_warn_days` of `secret_max_age_days`, or
past it. --report also sends the oldest age to the monitor, whose check warns (e-mail, not a
page) from that point on; cron sends it daily and the rotation sends it as soon as it is done.

The age counts from the day this server first held the secret's current value. The record
(`secret_ages`, root only) keeps per secret a fingerprint of its value - HMAC-SHA256 under a
random key of this record, never the value - and that day. A value changed by the rotation
or by hand is seen as new at the next run. A server that held a secret before this record
existed counts from the first run (its older history is unknown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets

from . import envfile
from .common import Fail, send, write_private
from .deploy_version import env_path
from .run import Runner
from .settings import Settings

ROTATABLE = ("POSTGRES_PASSWORD", "RESTIC_PASSWORD")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report", action="store_true", help="also send the oldest age (days) to the monitor")


def current_values(s: Settings) -> dict[str, str]:
    """The rotatable secrets this server holds now, where the deploy and the rotation keep them."""
    values = {}
    if os.path.exists(env_path(s)):
        pg = envfile.read(env_path(s)).get("POSTGRES_PASSWORD")
        if pg:
            values["POSTGRES_PASSWORD"] = pg
    if s.backup is not None:
        try:
            with open(s.backup.password_file) as f:
                restic = f.read().rstrip("\n")
        except FileNotFoundError:
            restic = ""
        if restic:
            values["RESTIC_PASSWORD"] = restic
    return values


def _valid(record) -> bool:
    """The record's shape: a 64-hex-digit key, and per secret a fingerprint and an ISO day."""
    if not (isinstance(record, dict) and isinstance(record.get("key"), str) and isinstance(record.get("secrets"), dict)):
        return False
    if not re.fullmatch(r"[0-9a-f]{64}", record["key"]):
        return False
    for entry in record["secrets"].values():
        if not (isinstance(entry, dict) and isinstance(entry.get("fingerprint"), str)
                and isinstance(entry.get("since"), str)):
            return False
        try:
            dt.date.fromisoformat(entry["since"])
        except ValueError:
            return False
    return True


def _load(path: str) -> tuple[dict, bool]:
    """(record, new): the record as it is, or a new one when there is none; a damaged one is Fail."""
    fix = "move it aside and run again (the ages then count from today)"
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError:
        return {"key": secrets.token_hex(32), "secrets": {}}, True
    except (OSError, ValueError) as e:
        raise Fail(f"cannot read {path} ({e}): {fix}") from None
    if not _valid(record):
        raise Fail(f"{path} is damaged: {fix}")
    return record, False


def _save(path: str, record: dict) -> None:
    """Atomically, 0600 from the first byte, in a directory only root enters."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    write_private(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def _today(now: dt.datetime | None) -> dt.date:
    """The server's own day (its clock zone, America/Sao_Paulo as deployed): a secret's age turns
    at local midnight, as the people who read it count days, not at 21:00 (UTC's midnight)."""
    return (now or dt.datetime.now(dt.UTC)).astimezone().date()


def refresh(s: Settings, now: dt.datetime | None = None, save: bool = True) -> dict[str, dt.date]:
    """Record every secret whose value is new (unless `save` is False: status and doctor only
    read), and return each secret's first day with its value."""
    today = _today(now)
    record, changed = _load(s.secret_ages)  # a new record is kept even empty (the deploy looks for it)
    key = bytes.fromhex(record["key"])
    since = {}
    for name, value in current_values(s).items():
        mark = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
        entry = record["secrets"].get(name)
        if not (isinstance(entry, dict) and hmac.compare_digest(str(entry.get("fingerprint", "")), mark)):
            entry = {"fingerprint": mark, "since": today.isoformat()}
            record["secrets"][name] = entry
            changed = True
        since[name] = dt.date.fromisoformat(entry["since"])
    if changed and save:
        _save(s.secret_ages, record)
    return since


def lines(s: Settings, since: dict[str, dt.date], now: dt.datetime | None = None) -> list[str]:
    today = _today(now)
    out = []
    for name in ROTATABLE:
        if name not in since:
            continue
        age = (today - since[name]).days
        due = since[name] + dt.timedelta(days=s.secret_max_age_days)
        if age >= s.secret_max_age_days:
            out.append(f"! {name}: {age} days old, due on {due}: rotate it now (mottivme rotate-secrets)")
        elif due_soon(s, age):
            out.append(f"! {name}: {age} days old, due on {due}: rotate it (mottivme rotate-secrets)")
        else:
            out.append(f"{name}: {age} days old, due on {due}")
    return out


def due_soon(s: Settings, days: int) -> bool:
    """A secret this old is within secret_warn_days of secret_max_age_days, or past it."""
    return days >= s.secret_max_age_days - s.secret_warn_days


def oldest(since: dict[str, dt.date], now: dt.datetime | None = None) -> tuple[str, int] | None:
    """(name, days) of the oldest secret; None when the server holds none."""
    today = _today(now)
    return max(((name, (today - d).days) for name, d in since.items()), key=lambda x: x[1], default=None)


def report(s: Settings, runner: Runner, days: int) -> None:
    """POST the oldest age to the monitor (the URL holds the heartbeat token: curl reads it on stdin)."""
    r = s.reports
    if not (r and r.secrets_url):
        return
    res = send(runner, r.secrets_url, r.curl_args, str(days))
    if not res.ok:
        raise Fail(f"the monitor did not take the secret-age report "
                   f"({res.stderr.strip()[:160] or f'curl exit {res.returncode}'})")


def main(ns, s: Settings, runner: Runner) -> int:
    since = refresh(s)
    for line in lines(s, since) or ["no rotatable secret on this server"]:
        print(line)
    old = oldest(since)
    if ns.report and old is not None:
        report(s, runner, old[1])
    return 0
