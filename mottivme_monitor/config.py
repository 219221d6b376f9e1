"""Load and validate the JSON configuration (see the package docstring for its shape).

`${VAR}` in any string value is replaced from the environment (unset -> ""). Every
problem is raised as ConfigError with a one-line message naming the place in the
file; the CLI prints it with the file name and exits 2.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .texts import LANGUAGES, Say

ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CHECK_TYPES = ("http", "postgres", "heartbeat")
JSON_OPS = ("equals", "in", "exists", "max", "min", "max_age_seconds", "each")

DEFAULT_LADDER = {
    "steps": [{"after_minutes": 5, "channels": ["whatsapp"]},
              {"after_minutes": 15, "channels": ["whatsapp", "email"]},
              {"after_minutes": 60, "channels": ["phone"]}],
    "reminder_minutes": 60,
    "recovery_successes": 2,
}

COMMON_KEYS = {"name", "type", "description", "group", "ladder", "severity", "clients_after_minutes", "audience",
               "inhibited_by"}
SEVERITIES = ("page", "warning")  # warning: its messages and page say WARNING, not DOWN
# who sees a check on the status page: "public" (the clients' page, /) or "operators" only (/ops/,
# behind a login: the servers' backups, disks, capacity, secrets)
AUDIENCES = ("public", "operators")
TYPE_KEYS = {
    "http": {"url", "method", "headers", "body", "expect_status", "json", "max_response_ms",
             "timeout_seconds", "tls_min_days", "tls_verify", "ca_file", "resolve"},
    "postgres": {"dsn", "query", "timeout_seconds", "max_value", "unit", "value_label"},
    "heartbeat": {"max_age_minutes", "max_value", "unit", "value_label", "sender"},
}
TOP_KEYS = {"db", "www_dir", "listen", "ping_token", "title", "public_url", "interval_seconds",
            "raw_history_days", "ladder", "channels", "checks", "deadman_url", "timezone", "incidents", "language"}
INCIDENT_KEYS = {"update_minutes", "channels", "clients_channel", "postmortem_dir"}


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line."""


@dataclass(frozen=True)
class Step:
    after_minutes: float
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Ladder:
    steps: tuple[Step, ...]
    reminder_minutes: float
    recovery_successes: int


@dataclass(frozen=True)
class Channel:
    name: str
    type: str                      # "apprise" or "webhook"
    url: str                       # apprise URL or webhook URL; "" = disabled
    auth: str = ""                 # webhook: "user:password" for HTTP basic auth
    form: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True)
class Check:
    name: str
    type: str
    spec: Mapping[str, Any]        # the type-specific keys, defaults filled in
    ladder: Ladder
    description: str = ""
    group: str = ""
    severity: str = "page"  # "warning": not an outage (a secret due for rotation); see SEVERITIES
    clients_after_minutes: float | None = None  # down this long: the clients' channel is told (None: never)
    audience: str = "public"  # "operators": on the operators' page only (backups, disk, capacity...); AUDIENCES
    # a heartbeat check's name: while that one has gone silent (no fresh ping; not over a limit, not
    # in maintenance), this one opens no incident (Alertmanager's inhibition): a server that stopped
    # reporting is one alert (its disk report's), not one per report
    inhibited_by: str = ""

    @property
    def down_word(self) -> str:
        """What a failing result of this check is called: DOWN, or WARNING (severity "warning")."""
        return "WARNING" if self.severity == "warning" else "DOWN"


@dataclass(frozen=True)
class Incidents:
    """The incidents the team posts (reports.py): how often the team is asked for an update, on
    which channels, the clients' channel (also told of an outage past a check's
    clients_after_minutes; "" = none) and where post-mortems are written."""
    update_minutes: float = 15
    channels: tuple[str, ...] = ()
    clients_channel: str = ""
    postmortem_dir: str = ""


@dataclass(frozen=True)
class Config:
    path: str
    db: str
    www_dir: str
    listen_host: str
    listen_port: int
    ping_token: str
    title: str
    public_url: str
    interval_seconds: int
    raw_history_days: int
    ladder: Ladder
    channels: Mapping[str, Channel]
    checks: tuple[Check, ...]
    deadman_url: str = ""  # pinged after every round (a dead man's switch outside); "" = none
    timezone: str = "America/Sao_Paulo"  # the clock of the people who read the page and the reports
    incidents: Incidents = field(default_factory=Incidents)
    language: str = "en"  # what alerts and the page say (texts.py): "pt-BR" or "en"

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    @cached_property
    def say(self) -> Say:
        """The texts in `language`, times on `timezone` (texts.py)."""
        return Say(self.language, self.timezone)

    @cached_property
    def tz(self) -> ZoneInfo:
        """`timezone` as a clock (checked when the configuration was read)."""
        return ZoneInfo(self.timezone)

    def senders(self) -> list[str]:
        """The servers named as a heartbeat check's `sender`, sorted: each pings with a token of its own."""
        return sorted({c.spec["sender"] for c in self.checks if c.type == "heartbeat" and c.spec["sender"]})


def expand_env(value: Any, env: Mapping[str, str]) -> Any:
    """Replace ${VAR} in every string of a JSON value (unset variables become "")."""
    if isinstance(value, str):
        return ENV_VAR.sub(lambda m: env.get(m.group(1), ""), value)
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    return value


def load(path: str, env: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate the configuration file."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise ConfigError("file not found") from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    return parse(expand_env(raw, os.environ if env is None else env), path)


def parse(data: Any, path: str = "<config>") -> Config:
    """Validate an already expanded configuration object."""
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a JSON object")
    _no_unknown(data, TOP_KEYS, "")
    channels = _channels(data.get("channels", {}))
    ladder = _ladder(data.get("ladder", DEFAULT_LADDER), "ladder" if "ladder" in data else "default ladder", channels)
    raw_checks = data.get("checks")
    if not isinstance(raw_checks, list) or not raw_checks:
        raise ConfigError("'checks' must be a non-empty list")
    checks, seen = [], set()
    for i, raw in enumerate(raw_checks):
        check = _check(raw, f"checks[{i}]", ladder, channels)
        if check.name in seen:
            raise ConfigError(f"checks[{i}]: duplicate name '{check.name}'")
        seen.add(check.name)
        checks.append(check)
    by_name = {c.name: c for c in checks}
    for i, check in enumerate(checks):
        other = by_name.get(check.inhibited_by)
        if check.inhibited_by and (other is None or other is check or other.type != "heartbeat" or other.inhibited_by):
            raise ConfigError(f"checks[{i}] ({check.name}): 'inhibited_by' must name another heartbeat check, "
                              "one not inhibited itself")
    host, port = _listen(data.get("listen", "127.0.0.1:8321"))
    return Config(
        path=path,
        db=_str(data, "db", "", required=True),
        www_dir=_str(data, "www_dir", "", required=True),
        listen_host=host, listen_port=port,
        ping_token=_str(data, "ping_token", ""),
        title=_str(data, "title", "Status"),
        public_url=_str(data, "public_url", ""),
        interval_seconds=int(_num(data, "interval_seconds", 60, "", minimum=1)),
        raw_history_days=int(_num(data, "raw_history_days", 35, "", minimum=1)),
        ladder=ladder, channels=channels, checks=tuple(checks),
        deadman_url=_deadman(data),
        timezone=_timezone(data),
        incidents=_incidents(data.get("incidents", {}), channels),
        language=_language(data),
    )


def _language(data: dict) -> str:
    name = _str(data, "language", "en")
    if name not in LANGUAGES:
        raise ConfigError(f"'language': {name!r} is not one of {', '.join(LANGUAGES)}")
    return name


def _timezone(data: dict) -> str:
    name = _str(data, "timezone", "America/Sao_Paulo")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"'timezone': unknown time zone {name!r} (e.g. America/Sao_Paulo)") from None
    return name


def _incidents(raw: Any, channels: Mapping[str, Channel]) -> Incidents:
    where = "incidents"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be an object")
    _no_unknown(raw, INCIDENT_KEYS, where)
    names = raw.get("channels", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}: 'channels' must be a list of channel names")
    clients = _str(raw, "clients_channel", "", where)
    for n in names + ([clients] if clients else []):
        if n not in channels:
            raise ConfigError(f"{where}: channel '{n}' is not defined in 'channels'")
    return Incidents(float(_num(raw, "update_minutes", 15, where, minimum=0)), tuple(names), clients,
                     _str(raw, "postmortem_dir", "", where))


def _deadman(data: dict) -> str:
    url = _str(data, "deadman_url", "")
    if url and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise ConfigError("'deadman_url' must be an http(s) URL (a healthchecks.io-style ping URL) or empty")
    return url


# -- pieces ---------------------------------------------------------------------------

def _no_unknown(obj: dict, allowed: set, where: str) -> None:
    for key in obj:
        if key not in allowed and not key.startswith("_"):   # "_comment" keys are allowed
            raise ConfigError(f"{where + ': ' if where else ''}unknown key '{key}'")


def _str(obj: dict, key: str, default: str, where: str = "", required: bool = False) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str) or (required and not value):
        raise ConfigError(f"{where + ': ' if where else ''}'{key}' must be a non-empty string"
                          if required else f"{where + ': ' if where else ''}'{key}' must be a string")
    return value


def _num(obj: dict, key: str, default, where: str, minimum: float | None = None):
    value = obj.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where + ': ' if where else ''}'{key}' must be a number")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where + ': ' if where else ''}'{key}' must be >= {minimum}")
    return value


def _listen(value: Any) -> tuple[str, int]:
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError("'listen' must be 'host:port'")
    host, _, port = value.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise ConfigError("'listen' must be 'host:port'")
    return host.strip("[]"), int(port)


def _channels(raw: Any) -> dict[str, Channel]:
    if not isinstance(raw, dict):
        raise ConfigError("'channels' must be an object")
    out = {}
    for name, spec in raw.items():
        where = f"channels.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: must be an object")
        kind = spec.get("type", "apprise")
        if kind == "apprise":
            _no_unknown(spec, {"type", "apprise", "url"}, where)
            url = spec.get("apprise", spec.get("url", ""))
            if not isinstance(url, str):
                raise ConfigError(f"{where}: 'apprise' must be a string (an apprise URL)")
            out[name] = Channel(name, "apprise", url)
        elif kind == "webhook":
            _no_unknown(spec, {"type", "url", "auth", "form", "timeout_seconds"}, where)
            form = spec.get("form", {})
            if not isinstance(form, dict) or not all(isinstance(v, str) for v in form.values()):
                raise ConfigError(f"{where}: 'form' must be an object of strings")
            url = _str(spec, "url", "", where)
            if url and not url.startswith(("http://", "https://")):
                raise ConfigError(f"{where}: 'url' must start with http:// or https://")
            out[name] = Channel(name, "webhook", url, auth=_str(spec, "auth", "", where), form=form,
                                timeout_seconds=_num(spec, "timeout_seconds", 10, where, minimum=0.1))
        else:
            raise ConfigError(f"{where}: unknown type '{kind}' (apprise or webhook)")
    return out


def _ladder(raw: Any, where: str, channels: Mapping[str, Channel]) -> Ladder:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be an object")
    _no_unknown(raw, {"steps", "reminder_minutes", "recovery_successes"}, where)
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise ConfigError(f"{where}: 'steps' must be a non-empty list")
    steps = []
    for i, s in enumerate(steps_raw):
        w = f"{where}.steps[{i}]"
        if not isinstance(s, dict):
            raise ConfigError(f"{w}: must be an object")
        _no_unknown(s, {"after_minutes", "channels"}, w)
        after = _num(s, "after_minutes", None, w, minimum=0)
        if after is None:
            raise ConfigError(f"{w}: 'after_minutes' is required")
        names = s.get("channels")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{w}: 'channels' must be a non-empty list of channel names")
        for n in names:
            if n not in channels:
                raise ConfigError(f"{w}: channel '{n}' is not defined in 'channels'")
        steps.append(Step(float(after), tuple(names)))
    steps.sort(key=lambda s: s.after_minutes)
    recovery = _num(raw, "recovery_successes", 2, where, minimum=1)
    if int(recovery) != recovery:
        raise ConfigError(f"{where}: 'recovery_successes' must be a whole number")
    return Ladder(tuple(steps), float(_num(raw, "reminder_minutes", 60, where, minimum=0)), int(recovery))


def _check(raw: Any, where: str, default_ladder: Ladder, channels: Mapping[str, Channel]) -> Check:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(f"{where}: 'name' must be 1-64 characters of letters, digits, '.', '_' or '-'")
    where = f"{where} ({name})"
    kind = raw.get("type")
    if kind not in CHECK_TYPES:
        raise ConfigError(f"{where}: 'type' must be one of {', '.join(CHECK_TYPES)}")
    _no_unknown(raw, COMMON_KEYS | TYPE_KEYS[kind], where)
    ladder = _ladder(raw["ladder"], f"{where}.ladder", channels) if "ladder" in raw else default_ladder
    spec = {"http": _http_spec, "postgres": _postgres_spec, "heartbeat": _heartbeat_spec}[kind](raw, where)
    if kind == "heartbeat" and not spec["value_label"]:
        spec["value_label"] = name.split("-")[0]      # "disk-n8n1" -> "disk at 91 % > 85 %"
    if kind == "postgres" and not spec["value_label"]:
        spec["value_label"] = name.replace("-", " ").replace("_", " ").replace(".", " ")
    severity = _str(raw, "severity", "page", where)
    if severity not in SEVERITIES:
        raise ConfigError(f"{where}: 'severity' must be one of {', '.join(SEVERITIES)}")
    clients_after = _num(raw, "clients_after_minutes", None, where, minimum=0)
    audience = _str(raw, "audience", "public", where)
    if audience not in AUDIENCES:
        raise ConfigError(f"{where}: 'audience' must be one of {', '.join(AUDIENCES)}")
    return Check(name=name, type=kind, spec=spec, ladder=ladder, description=_str(raw, "description", "", where),
                 group=_str(raw, "group", "", where), severity=severity,
                 clients_after_minutes=None if clients_after is None else float(clients_after), audience=audience,
                 inhibited_by=_str(raw, "inhibited_by", "", where))


def _http_spec(raw: dict, where: str) -> dict:
    url = _str(raw, "url", "", where, required=True)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: 'url' must start with http:// or https://")
    expect = raw.get("expect_status", [200])
    if isinstance(expect, int):
        expect = [expect]
    if not isinstance(expect, list) or not expect or not all(isinstance(s, int) for s in expect):
        raise ConfigError(f"{where}: 'expect_status' must be a list of status codes")
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ConfigError(f"{where}: 'headers' must be an object of strings")
    conditions = raw.get("json", [])
    if not isinstance(conditions, list):
        raise ConfigError(f"{where}: 'json' must be a list of conditions")
    for i, cond in enumerate(conditions):
        _json_condition(cond, f"{where}: json[{i}]")
    tls_verify = raw.get("tls_verify", True)
    if not isinstance(tls_verify, bool):
        raise ConfigError(f"{where}: 'tls_verify' must be true or false")
    return {
        "url": url,
        "method": _str(raw, "method", "GET", where).upper() or "GET",
        "headers": headers,
        "body": _str(raw, "body", "", where),
        "expect_status": expect,
        "json": conditions,
        "max_response_ms": _num(raw, "max_response_ms", None, where, minimum=1),
        "timeout_seconds": _num(raw, "timeout_seconds", 10, where, minimum=0.05),
        "tls_min_days": _num(raw, "tls_min_days", None, where, minimum=0),
        "tls_verify": tls_verify,
        "ca_file": _str(raw, "ca_file", "", where),
        "resolve": _str(raw, "resolve", "", where),
    }


def _json_condition(cond: Any, where: str) -> None:
    """{"path": ..., one op: value}; `each` holds a condition of its own, checked on every item of the
    list at path (`descend`: the key of a group's own list of items)."""
    ops = [k for k in cond if k in JSON_OPS] if isinstance(cond, dict) else []
    extra = {"descend"} if ops == ["each"] else set()
    if (not isinstance(cond, dict) or not isinstance(cond.get("path"), str) or len(ops) != 1
            or set(cond) - {"path", *JSON_OPS, *extra}):
        raise ConfigError(f"{where} must be {{\"path\": ..., one of {'|'.join(JSON_OPS)}: value}} "
                          "(with each, \"descend\" too)")
    if ops[0] == "in" and not isinstance(cond["in"], list):
        raise ConfigError(f"{where}: 'in' needs a list")
    if ops[0] in ("max", "min", "max_age_seconds") and (
            isinstance(cond[ops[0]], bool) or not isinstance(cond[ops[0]], (int, float))):
        raise ConfigError(f"{where}: '{ops[0]}' needs a number")
    if ops[0] == "each":
        if not isinstance(cond.get("descend", ""), str):
            raise ConfigError(f"{where}: 'descend' must be a key (a string)")
        _json_condition(cond["each"], f"{where}.each")


def _postgres_spec(raw: dict, where: str) -> dict:
    """A connection and a query; with `max_value`, a capacity check: the query's one value (first
    column of the first row, a number) must not exceed it."""
    return {"dsn": _str(raw, "dsn", "", where),
            "query": _str(raw, "query", "select 1", where) or "select 1",
            "timeout_seconds": _num(raw, "timeout_seconds", 10, where, minimum=1),
            "max_value": _num(raw, "max_value", None, where),
            "unit": _str(raw, "unit", "", where),
            "value_label": _str(raw, "value_label", "", where)}


def _heartbeat_spec(raw: dict, where: str) -> dict:
    max_age = _num(raw, "max_age_minutes", None, where, minimum=0.1)
    if max_age is None:
        raise ConfigError(f"{where}: 'max_age_minutes' is required")
    sender = _str(raw, "sender", "", where)
    if "sender" in raw and not sender:
        raise ConfigError(f"{where}: 'sender' must be a non-empty string (the inventory name of the server whose "
                          "token this heartbeat takes), or left out (the master ping_token)")
    return {"max_age_minutes": max_age,
            "max_value": _num(raw, "max_value", None, where),
            "unit": _str(raw, "unit", "", where),
            "value_label": _str(raw, "value_label", "", where),
            "sender": sender}
