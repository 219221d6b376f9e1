"""Incidents the team posts (SOP 05, "Comunicação de Incidentes"): identify (the services, the
impact, how many clients), communicate (the status page, the clients' channel, the team), update
every 15 minutes with an estimate, and a post-mortem within a day.

The monitor opens its own incidents when a check fails (ladder.py); these are the team's words
about them, for the people who use the services. Everything here is pure: texts and decisions from
the store's records. Times are shown in the monitor's time zone (America/Sao_Paulo as deployed).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from . import clock
from .reasons import plain, public
from .store import Incident, Report
from .texts import Say

# Statuspage's words, which status-page readers know: what the team knows so far
STATUSES = ("investigating", "identified", "monitoring", "resolved")
ETA_IN = re.compile(r"^(?:(\d{1,3})h)?(?:(\d{1,4})m(?:in)?)?$")
ETA_AT = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ReportError(ValueError):
    """A value the team gave cannot be used; the message says which and how to write it."""


def local(ts: int | None, tz: ZoneInfo) -> str:
    """'2026-12-03 00:45 -03' (the reader's clock, with its offset: -03, +0530); '—' for none."""
    return Say("en", tz.key).local(ts)


def local_iso(ts: int | None, tz: ZoneInfo) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz).isoformat(timespec="minutes")


def parse_eta(text: str | None, now: int, tz: ZoneInfo) -> int | None:
    """When the team expects it resolved: '45m', '2h', '1h30m' from now, or 'HH:MM' on the
    reader's clock (the next such time). None/'' = no estimate."""
    if not text:
        return None
    text = text.strip().lower().replace(" ", "")
    m = ETA_IN.match(text)
    if m and (m.group(1) or m.group(2)):
        return now + int(m.group(1) or 0) * 3600 + int(m.group(2) or 0) * 60
    m = ETA_AT.match(text)
    if m:
        today = datetime.fromtimestamp(now, tz)
        at = today.replace(hour=int(m.group(1)), minute=int(m.group(2)), second=0, microsecond=0)
        if at.timestamp() <= now:
            at = (today + timedelta(days=1)).replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
        return int(at.timestamp())
    raise ReportError(f"--eta {text!r}: give minutes or hours from now (45m, 2h, 1h30m) or a time (14:30)")


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise ReportError(f"status {status!r}: one of {', '.join(STATUSES)}")
    return status


def update_due(report: Report, now: int, every_minutes: float) -> bool:
    """An open report whose last update (or reminder) is `every_minutes` old: remind the team."""
    if report.resolved is not None or every_minutes <= 0:
        return False
    return now - max(report.last_posted, report.reminded or 0) >= every_minutes * 60


def reminder(report: Report, now: int, say: Say) -> tuple[str, str]:
    """The team's "post an update" reminder (SOP: update the status page every 15 minutes), in
    `say`'s language and on its clock."""
    title = say("update_due", id=report.id, title=report.title, quiet=clock.duration(now - report.last_posted))
    body = "\n".join([
        say("update_due_body", services=", ".join(report.services), at=say.local(report.last_posted),
            last=report.updates[0].message if report.updates else report.impact),
        say("update_due_how", id=report.id),
    ])
    return title, body


def client_notice(report: Report, public_url: str, say: Say) -> tuple[str, str]:
    """What the clients' channel gets for the report's newest update, in `say`'s language."""
    u = report.updates[0]
    title = f"[{say.raw('update_state').get(u.status, u.status.capitalize())}] {report.title}"
    body = "\n".join(filter(None, [
        u.message,
        say("affected", services=", ".join(report.services)) if u.status != "resolved" else "",
        say("eta", eta=say.local(u.eta)) if u.eta and u.status != "resolved" else "",
        say("updated", at=say.local(u.ts)) + (say("status", url=public_url) if public_url else ""),
    ]))
    return title, body


def outage_notice(check_name: str, description: str, incident: Incident, now: int, public_url: str,
                  say: Say, resolved: bool = False) -> tuple[str, str]:
    """What the clients' channel gets when a service has been down for its check's
    clients_after_minutes (SOP 05's DR scenarios: Supabase 15 minutes, Railway and n8n 30), and
    when it is back, in `say`'s language."""
    what = description or check_name
    status = say("status", url=public_url) if public_url else ""
    if resolved:
        outage = (incident.recovered or now) - incident.started
        return (say("client_resolved", what=what),
                say("client_resolved_body", what=what, start=say.local(incident.started),
                    end=say.local(incident.recovered or now), duration=clock.duration(outage)) + status)
    return (say("client_down", what=what),
            say("client_down_body", what=what, start=say.local(incident.started),
                reason=plain(incident.reason, say)) + status)


def postmortem_name(report: Report, tz: ZoneInfo) -> str:
    return f"{datetime.fromtimestamp(report.opened, tz):%Y-%m-%d}-incident-{report.id}.md"


def postmortem(report: Report, incidents: list[Incident], notifications: list, say: Say) -> str:
    """The post-mortem's skeleton (SOP 05, Post-incidente: document what happened, a prevention
    plan, a review with the team): the facts filled in from the monitor's history and the updates
    posted; the analysis left for the team. In `say`'s language, on its clock."""
    states = say.raw("update_state")
    events = []
    for i in incidents:
        events.append((i.started, say("pm_down_why", check=i.check, reason=public(i.reason)) if i.reason
                       else say("pm_down", check=i.check)))
        if i.recovered or i.resolved:
            events.append((i.recovered or i.resolved,
                           say("pm_up", check=i.check, duration=clock.duration((i.recovered or i.resolved) - i.started))))
    for n in notifications:
        events.append((n["ts"], say("pm_sent", channel=n["channel"], outcome=n["outcome"], message=n["message"])))
    for u in report.updates:
        eta = say("pm_eta", eta=say.local(u.eta)) if u.eta else ""
        status = u.status if say.lang == "en" else states.get(u.status, u.status).lower()
        events.append((u.ts, say("pm_posted", status=status, message=u.message, eta=eta)))
    events.sort(key=lambda e: e[0])
    first_down = min([i.started for i in incidents] + [report.opened])
    values = [
        ", ".join(report.services),
        report.impact,
        say("pm_unknown") if report.clients is None else str(report.clients),
        say.local(first_down),
        say.local(report.opened),
        say("pm_after", at=say.local(report.resolved), duration=clock.duration(report.resolved - first_down))
        if report.resolved else say("pm_not_yet"),
        str(len(report.updates)),
    ]
    lines = [line.format(id=report.id, title=report.title, tz=say.timezone) for line in say.raw("pm_head")]
    lines += ["", "| | |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in zip(say.raw("pm_rows"), values, strict=True)]
    lines += ["", *say.raw("pm_body"), ""]
    lines += [f"- {say.local(ts)} — {text}" for ts, text in events]
    lines += ["", *say.raw("pm_sections")]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
