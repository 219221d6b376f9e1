"""One monitoring round (`run`): check, record, escalate, notify, publish the status page."""

from __future__ import annotations

import traceback
from collections.abc import Callable

from . import checks, clock, ladder, notify, reports, statuspage
from .config import Check, Config
from .store import Incident, Store

Printer = Callable[[str], None]


def result_line(check: Check, result: checks.Result, maintenance: bool = False) -> str:
    ms = f"{result.ms} ms" if result.ms is not None else "-"
    tail = result.reason + (" [maintenance]" if maintenance else "")
    return f"{check.name:<24} {'UP' if result.ok else check.down_word:<7} {ms:>9}  {tail}".rstrip()


def silent(state, window) -> bool:
    """A heartbeat check that failed because no fresh ping came (not a value over its limit, not a
    reported failure), outside a maintenance window: what inhibits the checks naming it."""
    return not state.ok and window is None and (state.reason or "").startswith((checks.NO_PING, checks.NEVER_PINGED))


def run_round(cfg: Config, store: Store, now: int, out: Printer = print) -> None:
    """Run every check concurrently, then handle each check; a failure in one never stops the others."""
    beats = [c.name for c in cfg.checks if c.type == "heartbeat"]
    pings = {name: store.latest_ping(name, now) for name in beats}
    results = checks.run_all(cfg.checks, pings, now, {name: store.first_result(name) for name in beats})
    recorded = {}
    for check in cfg.checks:
        state, window = store.record_result(check.name, now, results[check.name], tz=cfg.tz)
        recorded[check.name] = (state, window)
        out(result_line(check, results[check.name], window is not None))

    just_resolved = set()
    for check in cfg.checks:
        state, window = recorded[check.name]
        if not state.ok and check.inhibited_by and silent(*recorded[check.inhibited_by]) \
                and store.open_incident(check.name) is None:
            continue  # the heartbeat it names went silent: that one is the one alert (config: inhibited_by)
        try:
            resolved = _escalate(cfg, store, check, state, window is not None, now, out)
            if resolved is not None:
                just_resolved.add(resolved)
        except Exception:  # noqa: BLE001 - log and go on with the next check
            out(f"error {check.name}: escalation failed\n{traceback.format_exc().rstrip()}")

    for incident in store.incidents_owing_resolved():
        if incident.id not in just_resolved:
            _retry_resolved(cfg, store, incident, now, out)
    for step in (_tell_clients, _remind_reports):  # the team's communication (reports.py)
        try:
            step(cfg, store, now, out, just_resolved, recorded)
        except Exception:  # noqa: BLE001 - the page and the dead man's ping still come
            out(f"error {step.__name__}: failed\n{traceback.format_exc().rstrip()}")

    store.prune(now, cfg.raw_history_days)
    statuspage.write(cfg, store, now)
    if cfg.deadman_url:  # the round got this far: the monitor is alive (what watches it from outside hears)
        problem = notify.ping_deadman(cfg.deadman_url)
        if problem:
            out(f"error deadman: the dead man's switch ping failed ({problem}): whatever watches the monitor "
                "from outside will report it down")


def _escalate(cfg: Config, store: Store, check: Check, state, in_maintenance: bool, now: int,
              out: Printer) -> int | None:
    """Apply the ladder to one check; returns the id of an incident resolved now, if any."""
    incident = store.open_incident(check.name)
    if incident is not None and not state.ok and incident.reason != state.reason:
        incident = store.update_incident(incident.id, reason=state.reason)
    last_end = (store.maintenance_ended_between(check.name, state.down_since, now)
                if not state.ok else None)
    plan = ladder.decide(check, state, incident, in_maintenance, last_end, now, cfg.public_url, cfg.say)
    if plan is None:
        return None

    if plan.kind == "resolve":
        incident = store.update_incident(incident.id, recovered=state.up_since, resolved=now,
                                         resolve_pending=list(plan.channels))
        outcomes = deliver(cfg, store, plan, plan.channels, now, out)
        store.update_incident(incident.id, resolve_pending=[o.channel for o in outcomes if o.status == "failed"])
        return incident.id

    if incident is None:
        incident = store.create_incident(check.name, plan.started, state.reason)
        out(f"incident {check.name}: opened (down since {clock.iso(plan.started)})")
    outcomes = deliver(cfg, store, plan, plan.channels, now, out)
    done, sent = ladder.delivered(outcomes)
    if done:
        fields = {"last_notified": now, "channels": sorted(set(incident.channels) | set(sent))}
        if plan.kind != "reminder":
            fields["last_step"] = plan.step
        store.update_incident(incident.id, **fields)
    else:
        out(f"notify {check.name}: every channel failed; retrying next round")
    return None


def _tell_clients(cfg: Config, store: Store, now: int, out: Printer, just_resolved: set, recorded: dict) -> None:
    """The clients' channel hears of an outage once it has lasted its check's clients_after_minutes
    (SOP 05's DR scenarios: Supabase 15 minutes, n8n and Railway 30), and of its end."""
    channel = cfg.incidents.clients_channel
    if not channel:
        return

    def send(check: Check, incident: Incident, resolved: bool) -> bool:
        title, body = reports.outage_notice(check.name, check.description, incident, now, cfg.public_url, cfg.say,
                                            resolved=resolved)
        plan = ladder.Plan("clients", check.name, (channel,), title, body)
        return ladder.delivered(deliver(cfg, store, plan, plan.channels, now, out))[0]

    for check in cfg.checks:
        if check.clients_after_minutes is None:
            continue
        state, window = recorded[check.name]
        incident = store.open_incident(check.name)
        if (incident is not None and incident.clients_told is None and not state.ok and window is None
                and now - incident.started >= check.clients_after_minutes * 60):
            if send(check, incident, resolved=False):  # else tried again next round
                store.update_incident(incident.id, clients_told=now)
    for incident_id in just_resolved:
        incident = store.incident(incident_id)
        check = cfg.check(incident.check)
        if incident.clients_told is not None and check is not None:
            send(check, incident, resolved=True)


def _remind_reports(cfg: Config, store: Store, now: int, out: Printer, *_) -> None:
    """An open incident the team posted with no update for incidents.update_minutes: the team's
    channels are asked for one (SOP 05: update the status page every 15 minutes)."""
    if not cfg.incidents.channels:
        return
    for report in store.reports(open_only=True, limit=100):
        if reports.update_due(report, now, cfg.incidents.update_minutes):
            title, body = reports.reminder(report, now, cfg.say)
            plan = ladder.Plan("update-due", f"incident-{report.id}", cfg.incidents.channels, title, body)
            done, _ = ladder.delivered(deliver(cfg, store, plan, plan.channels, now, out))
            if done:
                store.set_report(report.id, reminded=now)


def _retry_resolved(cfg: Config, store: Store, incident: Incident, now: int, out: Printer) -> None:
    """Resend a RESOLVED notice that failed earlier (for up to a day)."""
    if now - incident.resolved > 86400:
        store.update_incident(incident.id, resolve_pending=[])
        out(f"notify {incident.check}: gave up on the RESOLVED notice to {', '.join(incident.resolve_pending)}")
        return
    outage = (incident.recovered or incident.resolved) - incident.started
    say = cfg.say
    plan = ladder.Plan("resolve", incident.check, tuple(incident.resolve_pending),
                       say("resolved_title", check=incident.check, duration=clock.duration(outage)),
                       say("outage", start=say.hm(incident.started), end=say.hm(incident.recovered or incident.resolved),
                           duration=clock.duration(outage)))
    outcomes = deliver(cfg, store, plan, plan.channels, now, out)
    store.update_incident(incident.id, resolve_pending=[o.channel for o in outcomes if o.status == "failed"])


def deliver(cfg: Config, store: Store, plan: ladder.Plan, channels, now: int, out: Printer):
    """Send to each channel, log each outcome (database and stdout); never raises."""
    outcomes = []
    for name in channels:
        channel = cfg.channels.get(name)
        if channel is None:     # a channel removed from the config since it was notified
            outcome = notify.Outcome(name, "skipped", "channel no longer configured")
        else:
            outcome = notify.send(channel, plan.title, plan.body)
        outcomes.append(outcome)
        store.log_notification(now, plan.check, name, plan.kind, outcome.status, outcome.detail, plan.title)
        detail = f" ({outcome.detail})" if outcome.detail else ""
        out(f"notify {plan.check} -> {name}: {outcome.status}{detail}: {plan.title}")
    return outcomes
