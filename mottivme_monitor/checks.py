"""The three check types. Each returns a Result; none raises.

- http: status in expect_status, json conditions, response time, certificate days left
  (`resolve`: connect to that address instead of the URL's host, like curl --resolve).
- postgres: connect (connect_timeout) and run the query; with max_value (a capacity check) its one
  value must not exceed it.
- heartbeat: judged from the newest ping at or before `now` (pings come from `serve`).

run_all() runs the network checks concurrently in daemon threads with an overall
deadline, so one hung service can never stall the round.
"""

from __future__ import annotations

import dataclasses
import decimal
import http.client
import json
import math
import re
import reprlib
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime

from . import clock, tlscert
from .config import Check

MAX_BODY = 1024 * 1024
USER_AGENT = "mottivme-monitor/1"


@dataclass(frozen=True)
class Result:
    ok: bool
    ms: int | None
    reason: str            # "" when ok


@dataclass(frozen=True)
class Ping:
    ts: int
    value: float | None
    failed: bool
    reason: str


def _secs(value: float) -> str:
    return f"{value:g} s"


def _describe_error(e: BaseException, timeout: float) -> str:
    """One short line for a network failure."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {e.verify_message or e.reason}"
    if isinstance(e, (TimeoutError, socket.timeout)):
        return f"timeout after {_secs(timeout)}"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ConnectionResetError):
        return "connection reset"
    if isinstance(e, http.client.RemoteDisconnected):
        return "connection closed without a response"
    if isinstance(e, socket.gaierror):
        return f"DNS lookup failed: {e.strerror}"
    if isinstance(e, ssl.SSLError):
        return f"TLS error: {e.reason or e}"
    if isinstance(e, http.client.HTTPException):
        return f"bad HTTP response: {type(e).__name__}"
    if isinstance(e, OSError):
        return e.strerror or str(e) or type(e).__name__
    return f"{type(e).__name__}: {e}"


# -- http ------------------------------------------------------------------------------

def _tls_context(verify: bool, ca_file: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _lookup(doc, path: str):
    """Follow 'a.b.0.c' into parsed JSON; raises KeyError when the path is absent."""
    node = doc
    for part in path.split(".") if path else []:
        if isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(path)
    return node


FUTURE_SLACK = 300  # seconds a time in a response may be ahead of this clock (max_age_seconds)


LABEL_MAX = 60     # characters of a remote item's name in a reason (a status page's component)
REASON_MAX = 300   # characters of any reason a network check gives (it is stored every round)


def _label(item, index: int) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    return f"[{name[:LABEL_MAX]!r}]" if isinstance(name, str) and name else f"[{index}]"


def _items(value: list, descend: str, where: str):
    """(where, item, is_group) for every item of a list, depth first. With `descend`, an item holding
    a list under that key (a status page's group of components) is a group: it comes first, then
    its own items; where: the item's path of names or positions, "components['Deployments']['Builds']"."""
    for i, item in enumerate(value):
        at = where + _label(item, i)
        inner = item.get(descend) if descend and isinstance(item, dict) else None
        if isinstance(inner, list):
            yield at, item, True
            yield from _items(inner, descend, at)
        else:
            yield at, item, False


def json_condition_failure(doc, cond: dict) -> str:
    """'' when the condition holds, else why not ("status is 'error', expected 'ok'")."""
    path = cond["path"]
    try:
        value = _lookup(doc, path)
        found = True
    except KeyError:
        value, found = None, False
    if "each" in cond:  # every item of a non-empty list meets the inner condition (the first that does not, named)
        if not found:
            return f"{path} is missing"
        if not isinstance(value, list) or not value:
            return f"{path} is {reprlib.repr(value)}, expected a non-empty list"
        descend, inner = cond.get("descend", ""), cond["each"]
        for where, item, group in _items(value, descend, path):
            if group:  # held to the condition where it has the value it reads; an empty group is no answer
                if not item[descend]:
                    return f"{where} holds no item"
                try:
                    _lookup(item, inner["path"])
                except KeyError:
                    continue
            why = json_condition_failure(item, inner)
            if why:
                return f"{where}: {why}"
        return ""
    if "exists" in cond:
        if found == bool(cond["exists"]):
            return ""
        return f"{path} is missing" if cond["exists"] else f"{path} is present, expected absent"
    if not found:
        return f"{path} is missing"
    if "equals" in cond:
        return "" if value == cond["equals"] else f"{path} is {reprlib.repr(value)}, expected {cond['equals']!r}"
    if "in" in cond:
        return "" if value in cond["in"] else f"{path} is {reprlib.repr(value)}, expected one of {cond['in']!r}"
    if "max_age_seconds" in cond:  # an ISO 8601 time (a status page's generated_at), on the real clock
        try:
            age = clock.real_now() - clock.parse_iso(str(value))
        except ValueError:
            return f"{path} is {reprlib.repr(value)}, expected an ISO 8601 time"
        if age > cond["max_age_seconds"]:
            return f"{path} is {clock.duration(age)} old, expected at most {clock.duration(cond['max_age_seconds'])}"
        if age < -FUTURE_SLACK:  # a clock ahead would pass for fresh until real time caught up
            return f"{path} is {clock.duration(-age)} in the future"
        return ""
    op = "max" if "max" in cond else "min"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{path} is {reprlib.repr(value)}, expected a number"
    if op == "max" and value > cond["max"]:
        return f"{path} is {value:g}, expected <= {cond['max']:g}"
    if op == "min" and value < cond["min"]:
        return f"{path} is {value:g}, expected >= {cond['min']:g}"
    return ""


def check_http(spec: dict) -> Result:
    """One request; see the module docstring for what makes it up."""
    url = urllib.parse.urlsplit(spec["url"])
    https = url.scheme == "https"
    timeout = float(spec["timeout_seconds"])
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json, */*", **spec["headers"]}
    der = None
    start = time.monotonic()
    try:
        if https:
            ctx = _tls_context(spec["tls_verify"], spec["ca_file"])
            conn = http.client.HTTPSConnection(url.hostname, url.port or 443, timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout)
        if spec["resolve"]:
            # like curl --resolve: connect to that address; Host, SNI and the certificate
            # check still use the URL's host name
            conn._create_connection = lambda addr, *a, **kw: socket.create_connection((spec["resolve"], addr[1]), *a, **kw)
        try:
            conn.connect()
            if https:
                der = conn.sock.getpeercert(binary_form=True)
            conn.request(spec["method"], target, body=spec["body"] or None, headers=headers)
            resp = conn.getresponse()
            body = resp.read(MAX_BODY)
        finally:
            conn.close()
    except FileNotFoundError:
        return Result(False, None, f"ca_file not readable: {spec['ca_file']}")
    except Exception as e:  # noqa: BLE001 - every failure becomes a reason
        return Result(False, _ms(start), _describe_error(e, timeout))
    ms = _ms(start)

    if resp.status not in spec["expect_status"]:
        return Result(False, ms, f"HTTP {resp.status}")
    if spec["json"]:
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):  # nested deeper than the parser goes: no answer either
            return Result(False, ms, "response is not JSON")
        for cond in spec["json"]:
            why = json_condition_failure(doc, cond)
            if why:
                return Result(False, ms, why)
    if spec["max_response_ms"] is not None and ms > spec["max_response_ms"]:
        return Result(False, ms, f"took {ms} ms > {spec['max_response_ms']:g} ms")
    if https and spec["tls_min_days"] is not None:
        why = _tls_days_failure(der, spec["tls_min_days"])
        if why:
            return Result(False, ms, why)
    return Result(True, ms, "")


def _tls_days_failure(der: bytes | None, min_days: float) -> str:
    """Certificate days left are measured against the real clock (like the TLS handshake)."""
    if not der:
        return "no server certificate"
    try:
        expires = tlscert.not_after(der)
    except ValueError as e:
        return f"cannot read certificate expiry: {e}"
    left = (expires - datetime.now(UTC)).total_seconds() / 86400
    days = int(left // 1)
    if left < 0:
        return f"certificate expired {int(-left)} days ago" if left <= -1 else "certificate expired today"
    if left < min_days:
        return f"certificate expires in {days} days (< {min_days:g})"
    return ""


def _ms(start: float) -> int:
    return int(round((time.monotonic() - start) * 1000))


# -- postgres --------------------------------------------------------------------------

def check_postgres(spec: dict) -> Result:
    """Connect and run the query; the reason is libpq's first line, kept short."""
    if not spec["dsn"]:
        return Result(False, None, "dsn is empty (is its environment variable set?)")
    try:
        import psycopg
    except ImportError:
        return Result(False, None, "psycopg is not installed")
    timeout = spec["timeout_seconds"]
    start = time.monotonic()
    try:
        with psycopg.connect(spec["dsn"], connect_timeout=max(1, int(timeout)), autocommit=True) as conn:
            rows = conn.execute(spec["query"]).fetchall()
    except Exception as e:  # noqa: BLE001
        return Result(False, _ms(start), _pg_reason(e))
    ms = _ms(start)
    if spec.get("max_value") is None:
        return Result(True, ms, "")
    value = rows[0][0] if rows and rows[0] else None
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return Result(False, ms, f"the query gave {value!r}, not a number (max {number(spec['max_value'])})")
    return Result(not (why := over_max(spec, value)), ms, why)


def number(value: float) -> str:
    """A value as people read it: 412, 412.3, 1234567 (never 1.23457e+06)."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def over_max(spec: dict, value: float | None) -> str:
    """'' when `value` is within the spec's max_value, else why not ("disk at 91 % > 85 %")."""
    if spec.get("max_value") is None:
        return ""
    unit = f" {spec['unit']}" if spec["unit"] else ""
    if value is None or math.isnan(value):
        return f"no value (max {number(spec['max_value'])}{unit})"
    if value > spec["max_value"]:
        return f"{spec['value_label']} at {number(value)}{unit} > {number(spec['max_value'])}{unit}"
    return ""


def _pg_reason(e: Exception) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    low = text.lower()
    where = re.search(r'server at "([^"]+)", port (\d+)', text)
    at = f" ({where.group(1)} port {where.group(2)})" if where else ""
    if "connection refused" in low:
        return f"connection refused{at}"
    if "timeout expired" in low or "timed out" in low:
        return f"timeout connecting to the database{at}"
    if "password authentication failed" in low:
        return "password authentication failed"
    return text[:200]


# -- heartbeat ------------------------------------------------------------------------

NEVER_PINGED, NO_PING = "never pinged", "no ping for "  # the reasons of a sender gone quiet (rounds.silent)

def check_heartbeat(spec: dict, ping: Ping | None, now: int, watched_since: int | None = None) -> Result:
    """Up when the newest ping is fresh, not an explicit failure, and its value within max_value.
    A check that has never been pinged gets max_age_minutes of grace from the first time the
    monitor recorded it (`watched_since`; None = brand new), like a new healthchecks.io check:
    a freshly installed monitor does not page about tonight's backup at once."""
    max_age = spec["max_age_minutes"] * 60
    if ping is None:
        if watched_since is None or now - watched_since < max_age:
            return Result(True, None, f"no ping yet (the first is due within {clock.duration(max_age)})")
        return Result(False, None, NEVER_PINGED)
    if ping.failed:
        return Result(False, None, f"reported failure: {ping.reason}" if ping.reason else "reported failure")
    age = now - ping.ts
    if age > max_age:
        return Result(False, None, f"{NO_PING}{clock.duration(age)} (max {clock.duration(max_age)})")
    if spec["max_value"] is not None and ping.value is None:
        unit = f" {spec['unit']}" if spec["unit"] else ""
        return Result(False, None, f"ping carried no value (max {number(spec['max_value'])}{unit})")
    why = over_max(spec, ping.value)
    return Result(not why, None, why)


# -- running them ----------------------------------------------------------------------

def run_one(check: Check) -> Result:
    """A network check, with any unexpected bug turned into a down result; its reason at most
    REASON_MAX characters (a remote service's text in it is stored every round)."""
    try:
        if check.type == "http":
            result = check_http(dict(check.spec))
        elif check.type == "postgres":
            result = check_postgres(dict(check.spec))
        else:
            raise ValueError(f"not a network check: {check.type}")
    except Exception as e:  # noqa: BLE001
        result = Result(False, None, f"monitor error: {type(e).__name__}: {e}")
    if len(result.reason) > REASON_MAX:
        result = dataclasses.replace(result, reason=result.reason[:REASON_MAX - 1] + "…")
    return result


def run_all(checks, pings: dict[str, Ping | None], now: int,
            watched_since: dict[str, int | None] | None = None) -> dict[str, Result]:
    """Run every check; network ones concurrently. `pings` holds the newest ping per heartbeat,
    `watched_since` when each was first recorded (see check_heartbeat)."""
    results: dict[str, Result] = {}
    running = []
    for check in checks:
        if check.type == "heartbeat":
            results[check.name] = check_heartbeat(dict(check.spec), pings.get(check.name), now,
                                                  (watched_since or {}).get(check.name))
            continue
        box: list[Result] = []       # written by the worker, read only after join
        t = threading.Thread(target=lambda c=check, b=box: b.append(run_one(c)),
                             name=f"check-{check.name}", daemon=True)
        t.start()
        running.append((check, t, box, time.monotonic()))
    for check, t, box, started in running:
        limit = float(check.spec.get("timeout_seconds", 10))
        t.join(max(0.0, started + limit * 2 + 5 - time.monotonic()))
        results[check.name] = box[0] if box else Result(False, None, f"timeout after {_secs(limit)} (check hung)")
    return {c.name: results[c.name] for c in checks}
