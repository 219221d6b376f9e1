"""Time helpers: the monitor keeps every timestamp as integer UTC epoch seconds.

`--now` (the injectable clock) is parsed here; formatting for humans ("03:12 UTC",
"47 min", "26 h") lives here too so every message reads the same.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, tzinfo


def real_now() -> int:
    """The real clock, UTC epoch seconds."""
    return int(time.time())


def parse_iso(text: str) -> int:
    """Parse an ISO 8601 timestamp ("2025-01-01T03:12:00Z", "+00:00" offsets, or naive = UTC)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def to_dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def iso(ts: int | None) -> str | None:
    """UTC ISO 8601 with a Z, or None."""
    if ts is None:
        return None
    return to_dt(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def day(ts: int, tz: tzinfo = UTC) -> str:
    """The day of a timestamp on the clock `tz` (UTC unless given), YYYY-MM-DD."""
    return datetime.fromtimestamp(ts, tz=tz).strftime("%Y-%m-%d")


def last_days(now: int, count: int, tz: tzinfo = UTC) -> list[str]:
    """The `count` days (on the clock `tz`, UTC unless given) ending with today, oldest first."""
    today = datetime.fromtimestamp(now, tz=tz).date()
    return [(today - timedelta(days=count - 1 - i)).isoformat() for i in range(count)]


def hm(ts: int, now: int | None = None) -> str:
    """'03:12 UTC', or '2025-01-02 03:12 UTC' when `ts` is not on the same UTC day as `now`."""
    dt = to_dt(ts)
    if now is not None and day(ts) == day(now):
        return dt.strftime("%H:%M UTC")
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds: float) -> str:
    """A short human duration: '0 min', '47 min', '2 h 5 min', '26 h', '3 d 4 h'."""
    minutes = max(0, int(seconds // 60))
    if minutes < 120:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" if rest == 0 else f"{hours} h {rest} min"
    days, hours = divmod(hours, 24)
    return f"{days} d" if hours == 0 else f"{days} d {hours} h"
