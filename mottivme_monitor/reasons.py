"""What a check's reason may say outside the monitor host: a fixed vocabulary.

A reason is written by the checks (checks.py) or comes with a failure ping from a server. Some
carry what must never be published - libpq echoing part of a connection string, a response
body's value, a host name and port of the private network, a program's own error text. The
status page, status.json and the alerts say `public(reason)`: the reason itself when it matches
one of the shapes below (numbers and fixed words only), else the name of its kind. The full
reason stays on the monitor host (`mottivme-monitor status`, the SQLite history) for operators.
"""

from __future__ import annotations

import re

_NUM = r"[0-9]+(?:\.[0-9]+)?"
_DUR = rf"{_NUM} (?:s|min|h|d)(?: {_NUM} (?:s|min|h))?"
_UNIT = r"(?: ?[%A-Za-z]{1,12})?"
_OVER = rf"[a-z][a-z ]{{0,30}} at {_NUM}{_UNIT} > {_NUM}{_UNIT}"  # a measure over its limit (checks.over_max)
# shapes published as they are (the whole reason must match)
EXACT = [re.compile(p) for p in (
    r"HTTP [1-5][0-9][0-9]",
    rf"timeout after {_NUM} s(?: \(check hung\))?",
    r"connection refused", r"connection reset", r"connection closed without a response",
    r"response is not JSON",
    rf"[a-z_][a-z0-9_.]{{0,40}} is {_DUR} old, expected at most {_DUR}",  # a time in the response (a path of the config)
    rf"[a-z_][a-z0-9_.]{{0,40}} is {_DUR} in the future",
    rf"took {_NUM} ms > {_NUM} ms",
    r"no server certificate", r"certificate expired today", rf"certificate expired {_NUM} days ago",
    rf"certificate expires in {_NUM} days \(< {_NUM}\)",
    r"timeout connecting to the database", r"password authentication failed",
    r"never pinged", r"reported failure",
    rf"no ping yet \(the first is due within {_DUR}\)",
    rf"no ping for {_DUR} \(max {_DUR}\)",
    _OVER,
    rf"ping carried no value \(max {_NUM}{_UNIT}\)",
    rf"no value \(max {_NUM}{_UNIT}\)",
)]
# everything else: by its beginning, the name of its kind
KINDS = [
    ("TLS certificate not trusted", "TLS certificate not trusted"),
    ("TLS error", "TLS error"),
    ("DNS lookup failed", "DNS lookup failed"),
    ("bad HTTP response", "bad HTTP response"),
    ("connection refused", "connection refused"),  # "connection refused (10.0.0.5 port 5432)"
    ("reported failure", "reported failure"),  # the server's own text stays on the monitor
    ("dsn is empty", "not configured"),
    ("ca_file not readable", "monitor configuration error"),
    ("psycopg is not installed", "monitor configuration error"),
    ("monitor error", "monitor error"),
    ("the query gave", "capacity query error"),  # its value may be anything the query returns
]
JSON_CONDITION = re.compile(r"^\S+ is (?:missing|present, expected absent|.+, expected .+)$"
                            r"|^[^\s\[]+\[.+\](?:: .+| holds no item)$")  # an item of a list (`each`)


_SECRETISH = re.compile(
    r"(?P<url>[A-Za-z][A-Za-z0-9+.-]*://\S+)"
    r"|(?P<auth>authorization|proxy-authorization)\s*[=:]\s*(?:(?:bearer|basic|token)\s+)?(?:\"[^\"]*\"|'[^']*'|\S+)"
    r"|(?P<bearer>\bbearer\s+\S+)"
    r"|(?P<name>[\w-]*(?:password|passwd|pwd|token|secret|api[_-]?key|credential)[\w-]*)\s*[=:]\s*"
    r"(?:\"[^\"]*\"|'[^']*'|\S+)", re.IGNORECASE)


def scrub(reason: str) -> str:
    """The reason for the operators' page (behind its login): as written, but every URL (a
    connection string holds its password), every Authorization/Bearer value and every
    `password=...`-like pair (`access_token: ...`, `X-Api-Key: ...`, quoted or not) hidden."""
    def hide(m: re.Match) -> str:
        if m.group("url"):
            return "<url>"
        if m.group("auth"):
            return f"{m.group('auth')}: <hidden>"
        if m.group("bearer"):
            return "Bearer <hidden>"
        return f"{m.group('name')}=<hidden>"
    return _SECRETISH.sub(hide, reason)


def public(reason: str) -> str:
    """The reason as it may be published (status page, status.json, alerts); "" stays ""."""
    if not reason:
        return ""
    if any(p.fullmatch(reason) for p in EXACT):
        return reason
    for prefix, kind in KINDS:
        if reason.startswith(prefix):
            return kind
    if JSON_CONDITION.match(reason):
        return "unexpected response content"
    return "check failed"


_UNREACHABLE = ("connection refused", "connection reset", "connection closed without a response", "DNS lookup failed",
                "timeout connecting to the database")


def plain(reason: str, say) -> str:
    """The reason in plain words of `say`'s language, for the clients (their page, their notices):
    what kind of failure, from public(reason); the HTTP status is kept (support asks for it)."""
    p = public(reason)
    if not p:
        return ""
    if m := re.fullmatch(r"HTTP [1-5][0-9][0-9]", p):
        return say("plain_http", code=m.group(0))
    if p in _UNREACHABLE:
        return say("plain_unreachable")
    if p.startswith("timeout"):
        return say("plain_timeout")
    if p.startswith("took "):
        return say("plain_slow")
    if "certificate" in p or p.startswith("TLS"):
        return say("plain_certificate")
    if re.fullmatch(_OVER, p):  # a measure over its limit (a warning): numbers, as they are
        return p
    if p in ("monitor error", "monitor configuration error", "not configured", "capacity query error"):
        return say("plain_unchecked")  # the monitor's own trouble, not the service's
    return say("plain_other")
