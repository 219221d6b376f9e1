"""The escalation ladder: from a check's state after a result, decide what to send.

decide() is pure (no I/O): it looks at the check's state, its open incident and the
maintenance situation, and returns the Plan for this round. The round (rounds.py) sends
the plan and then applies what was delivered (apply_*), so a step whose every enabled
channel failed is not marked and is retried on the next round.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import clock
from .config import Check
from .reasons import public
from .store import Incident, State
from .texts import ENGLISH, Say


@dataclass(frozen=True)
class Plan:
    kind: str                    # "open+step" | "step" | "reminder" | "resolve"
    check: str
    channels: tuple[str, ...]
    title: str                   # the one-line message
    body: str                    # a few lines of detail
    step: int | None = None      # ladder step index for "step"
    started: int | None = None   # ladder start (incident start) for a new incident


def effective_start(state: State, last_maintenance_end: int | None) -> int:
    """Downtime counts from down_since, or from the end of a maintenance window inside it."""
    assert state.down_since is not None
    if last_maintenance_end is not None and last_maintenance_end > state.down_since:
        return last_maintenance_end
    return state.down_since


def highest_step(check: Check, down_seconds: float) -> int | None:
    """Index of the highest step whose after_minutes is reached, or None."""
    crossed = [i for i, s in enumerate(check.ladder.steps) if down_seconds >= s.after_minutes * 60]
    return crossed[-1] if crossed else None


def decide(check: Check, state: State, incident: Incident | None, in_maintenance: bool,
           last_maintenance_end: int | None, now: int, public_url: str = "", say: Say = ENGLISH) -> Plan | None:
    """What to send for this check this round (None = nothing), in `say`'s language."""
    ladder = check.ladder
    if in_maintenance:
        return None                                   # silenced, and the ladder does not advance
    if state.ok:
        if incident is not None and state.ok_streak >= ladder.recovery_successes:
            outage = (state.up_since or now) - incident.started
            title = say("resolved_title", check=check.name, duration=clock.duration(outage))
            body = "\n".join(filter(None, [
                say("outage", start=say.hm(incident.started, now), end=say.hm(state.up_since or now, now),
                    duration=clock.duration(outage)),
                say("last_error", reason=public(incident.reason)) if incident.reason else "",
                _status_line(public_url, say)]))
            return Plan("resolve", check.name, tuple(incident.channels), title, body)
        return None

    start = effective_start(state, last_maintenance_end)
    down_for = now - start
    step = highest_step(check, down_for)
    if step is None:
        return None                                   # short failure: no incident, nothing sent
    word = say(check.down_word)
    if incident is None or step > incident.last_step:
        kind, label = ("open+step" if incident is None else "step"), word
        channels = ladder.steps[step].channels
    elif (ladder.reminder_minutes > 0 and incident.last_step >= 0 and incident.last_notified is not None
          and now - incident.last_notified >= ladder.reminder_minutes * 60):
        kind, label, step = "reminder", say("STILL", word=word), incident.last_step
        channels = ladder.steps[step].channels
    else:
        return None
    reason = public(state.reason)  # alerts leave the monitor host: the fixed vocabulary only
    title = say("alert_title", label=label, duration=clock.duration(down_for), check=check.name, reason=reason,
                start=say.hm(start, now))
    body = "\n".join(filter(None, [
        f"{check.name}: {check.description}" if check.description else "",
        say("reason", reason=reason),
        say("since" if check.severity == "warning" else "down_since", start=say.hm(start),
            duration=clock.duration(down_for)),
        _status_line(public_url, say)]))
    return Plan(kind, check.name, tuple(channels), title, body, step=step, started=start)


def delivered(outcomes) -> tuple[bool, list[str]]:
    """(counts as done, channels that received it): done unless every enabled channel failed."""
    sent = [o.channel for o in outcomes if o.status == "sent"]
    failed = [o for o in outcomes if o.status == "failed"]
    return bool(sent) or not failed, sent


def _status_line(public_url: str, say: Say) -> str:
    return say("status_page", url=public_url) if public_url else ""
