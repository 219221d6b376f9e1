"""The static status page: www_dir/index.html and www_dir/status.json, written atomically.

Uptime (per day on the page's clock, `timezone`, and over the last 30 days, today included) is
    up results / results outside maintenance windows
from the per-day aggregate table, so a page for 20 services x 30 days reads ~600 rows.
Percentages are truncated (not rounded) to two decimals, so "100.00%" means no failure.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from collections.abc import Callable

from . import clock, reports
from .config import Config
from .reasons import plain, public, scrub
from .store import Store
from .texts import Say

DAYS = 30
HISTORY = 20
TIMES = 60  # response times drawn per service (its last timed checks)


def pct(up: int, total: int) -> float | None:
    """Uptime percentage truncated to two decimals (None without data)."""
    if total <= 0:
        return None
    return (up * 10000 // total) / 100


def build(cfg: Config, store: Store, now: int, published: bool = True, audience: str = "public",
          reasons: Callable[[str], str] | None = None) -> dict:
    """Everything the page shows, as the JSON-ready status.json document. `published`: reasons in
    the fixed vocabulary (reasons.py), else as written (the operators' `mottivme-monitor status`
    on the monitor host) or as `reasons` makes them (the operators' page: scrub). `audience`:
    "public" (the clients' page: the checks for them), or "operators" (every check)."""
    say = reasons or (public if published else (lambda reason: reason))
    days = clock.last_days(now, DAYS, cfg.tz)  # the readers' days (the rounds count them so)
    daily = store.daily(days[0])
    states = store.states()
    checks = [c for c in cfg.checks if audience == "operators" or c.audience == "public"]
    names = {c.name for c in checks}
    open_incidents = {i.check: i for i in store.open_incidents() if i.check in names}
    windows = [w for w in store.maintenance_active(now) if w.check in names or w.check == "*"]
    services = []
    for check in checks:
        st = states.get(check.name)
        window = store.maintenance_at(check.name, now)
        cells, up_sum, total_sum = [], 0, 0
        for d in days:
            total, up, maint = daily.get((check.name, d), (0, 0, 0))
            up_sum, total_sum = up_sum + up, total_sum + total
            cells.append({"date": d, "uptime": pct(up, total), "results": total, "maintenance": maint})
        if window is not None:
            state = "maintenance"
        elif st is None:
            state = "unknown"
        else:
            state = "up" if st.ok else check.down_word.lower()
        services.append({
            "name": check.name, "description": check.description, "group": check.group,
            "state": state,
            "ok": None if st is None else st.ok,
            "reason": "" if st is None else say(st.reason),
            "since": None if st is None else clock.iso(st.up_since if st.ok else st.down_since),
            "last_check": None if st is None else clock.iso(st.ts),
            "ms": None if st is None else st.ms,
            "uptime_30d": pct(up_sum, total_sum),
            "days": cells,
            "response_ms": store.response_times(check.name, TIMES) if check.type != "heartbeat" else [],
            "maintenance": None if window is None else {"until": clock.iso(window.ends), "reason": window.reason},
            "incident": _incident_json(open_incidents[check.name], now, say) if check.name in open_incidents else None,
        })
    down = sum(1 for s in services if s["state"] == "down")
    in_maint = sum(1 for s in services if s["state"] == "maintenance")
    warnings = sum(1 for s in services if s["state"] == "warning")
    text = summary_text(cfg.say, len(services), down, in_maint, warnings)
    return {
        "title": cfg.title if audience == "public" else cfg.say("ops_title", title=cfg.title),
        "language": cfg.language,
        "generated_at": clock.iso(now),
        "interval_seconds": cfg.interval_seconds,
        "summary": {"services": len(services), "down": down, "maintenance": in_maint, "warnings": warnings,
                    "text": text},
        "services": services,
        "incidents": {"open": [_incident_json(i, now, say) for i in open_incidents.values()],
                      "recent": [_incident_json(i, now, say) for i in store.recent_incidents(HISTORY, sorted(names))]},
        "maintenance": [{"check": w.check, "starts": clock.iso(w.starts), "ends": clock.iso(w.ends),
                         "reason": w.reason} for w in windows],
        # what the team posted (reports.py), open ones first, newest first; times on the readers' clock
        "timezone": cfg.timezone,
        "reports": [report_json(r, cfg.tz, published) for r in store.reports(limit=HISTORY)],
        "uptime_definition": f"up results / results outside maintenance windows, per day ({cfg.timezone}); "
                             "30-day figure over the last 30 days including today; truncated to 2 decimals",
    }


def summary_text(say: Say, total: int, down: int, in_maint: int, warnings: int) -> str:
    if down:
        return say("services_down", down=down, total=total)
    notes = [say("under_maintenance", n=in_maint) if in_maint else "",
             say("warnings", n=warnings, s="s" if warnings > 1 else "") if warnings else ""]
    return say("operational") + (f" ({', '.join(filter(None, notes))})" if any(notes) else "")


def report_json(report, tz, published: bool = True) -> dict:
    """An incident the team posted; `published`: without what only the team needs (clients count,
    post-mortem file)."""
    out = {"id": report.id, "title": report.title, "impact": report.impact, "services": report.services,
           "status": report.updates[0].status if report.updates else "investigating",
           "opened": reports.local_iso(report.opened, tz), "resolved": reports.local_iso(report.resolved, tz),
           "updates": [{"at": reports.local_iso(u.ts, tz), "status": u.status, "message": u.message,
                        "eta": reports.local_iso(u.eta, tz)} for u in report.updates]}
    if not published:
        out.update(clients=report.clients, postmortem=report.postmortem or None)
    return out


def _incident_json(incident, now: int, say) -> dict:
    end = incident.recovered or incident.resolved
    return {"check": incident.check, "started": clock.iso(incident.started),
            "ended": clock.iso(end) if incident.resolved else None,
            "duration_seconds": (end if incident.resolved else now) - incident.started,
            "reason": say(incident.reason)}


# -- HTML -------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:880px;margin:0 auto;padding:24px 16px}
h1{font-size:1.6em;margin:0 0 16px}h2{font-size:1.15em;margin:28px 0 10px}
.banner{padding:14px 18px;border-radius:8px;color:#fff;font-weight:600;font-size:1.1em}
.ok{background:#2e9d57}.bad{background:#c93c37}.maint{background:#3b73c4}
.svc{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:12px 16px;margin:10px 0}
.row{display:flex;justify-content:space-between;gap:12px;flex-wrap:wrap}
.name{font-weight:600}.desc{color:#5b6475;font-size:.9em}.reason{color:#a2302b;font-size:.9em}
.st{font-weight:600}.st.up{color:#2e9d57}.st.down{color:#c93c37}.st.maintenance{color:#3b73c4}.st.warning{color:#b7791f}.st.unknown{color:#7b8494}
.bar{display:flex;gap:2px;margin-top:8px}.bar span{flex:1;height:26px;border-radius:2px;background:#d5d9e0}
.d100{background:#2e9d57!important}.d99{background:#8cc152!important}.d95{background:#f0ad3a!important}
.dlow{background:#c93c37!important}.dmaint{background:#3b73c4!important}
.uptime{color:#5b6475;font-size:.85em;margin-top:4px}
.axis{display:flex;justify-content:space-between;color:#7b8494;font-size:.75em;margin-top:2px}
.times{display:block;width:100%;height:30px;margin-top:6px}
.times polyline{fill:none;stroke:#3b73c4;stroke-width:1.5;vector-effect:non-scaling-stroke}
.legend{color:#5b6475;font-size:.8em;margin:18px 0 4px}.key{margin-left:10px;white-space:nowrap}
.key i{display:inline-block;width:10px;height:10px;border-radius:2px;background:#d5d9e0;margin-right:4px;vertical-align:-1px}
.report{background:#fff;border:1px solid #e1e4ea;border-left:4px solid #c93c37;border-radius:8px;padding:12px 16px;margin:10px 0}
.report.resolved{border-left-color:#2e9d57}.report ol{list-style:none;margin:8px 0 0;padding:0}
.report li{margin:6px 0}.when{color:#5b6475;font-size:.85em}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.92em}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e1e4ea}
footer{color:#7b8494;font-size:.8em;margin-top:28px}
"""


def _cell_class(cell: dict) -> str:
    u = cell["uptime"]
    if u is None:
        return "dmaint" if cell["maintenance"] else ""
    return "d100" if u >= 99.9 else "d99" if u >= 99 else "d95" if u >= 95 else "dlow"


def _fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}%"


def render_html(data: dict) -> str:
    """A self-contained page (inline CSS, no scripts, no external assets); everything escaped;
    in the data's language, its times on its clock (texts.py)."""
    e = html.escape
    say = Say(data.get("language", "en"), data.get("timezone") or "UTC")
    s = data["summary"]
    banner = "bad" if s["down"] else ("maint" if s["maintenance"] else "ok")
    parts = [f"<!doctype html><html lang=\"{e(say.lang)}\"><head><meta charset=\"utf-8\">"
             f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
             f"<title>{e(data['title'])}</title><style>{CSS}</style></head><body><main>",
             f"<h1>{e(data['title'])}</h1>",
             f"<div class=\"banner {banner}\">{e(s['text'])}</div>"]
    posted = data.get("reports", [])
    if any(not r["resolved"] for r in posted):
        parts.append(f"<h2>{e(say('incidents'))}</h2>" + "".join(_report_html(r, say) for r in posted if not r["resolved"]))
    parts.append(_legend(say))
    group = None
    for svc in data["services"]:
        if svc["group"] and svc["group"] != group:
            group = svc["group"]
            parts.append(f"<h2>{e(group)}</h2>")
        if svc["state"] == "down":
            label = say("page_down_since", start=say.when(svc["since"]))
        elif svc["state"] == "warning":
            label = say("page_warning_since", start=say.when(svc["since"]))
        elif svc["state"] == "maintenance":
            label = say("page_maintenance_until", end=say.when(svc["maintenance"]["until"]))
        else:
            label = say({"up": "page_up", "unknown": "page_unknown"}[svc["state"]])
        uptime = (say("no_uptime") if svc["uptime_30d"] is None
                  else say("uptime_30d", pct=_fmt_pct(svc["uptime_30d"])))
        cells = "".join(
            f"<span class=\"{_cell_class(c)}\" title=\"{e(say.day(c['date'], year=True))}: "
            f"{e(_fmt_pct(c['uptime']) if c['uptime'] is not None else say('cell_maintenance' if c['maintenance'] else 'cell_no_data'))}\"></span>"
            for c in svc["days"])
        detail = ""
        if svc["state"] in ("down", "warning") and svc["reason"]:
            detail = f"<div class=\"reason\">{e(svc['reason'])}</div>"
        elif svc["state"] == "maintenance" and svc["maintenance"]["reason"]:
            detail = f"<div class=\"desc\">{e(svc['maintenance']['reason'])}</div>"
        parts.append(
            f"<div class=\"svc\" id=\"svc-{e(svc['name'])}\"><div class=\"row\"><div>"
            f"<div class=\"name\">{e(svc['name'])}</div>"
            + (f"<div class=\"desc\">{e(svc['description'])}</div>" if svc["description"] else "")
            + f"</div><div class=\"st {e(svc['state'])}\">{e(label)}</div></div>{detail}"
            f"<div class=\"bar\">{cells}</div>"
            + (f"<div class=\"axis\"><span>{e(say.day(svc['days'][0]['date']))}</span>"
               f"<span>{e(say('axis_today', date=say.day(svc['days'][-1]['date'])))}</span></div>" if svc["days"] else "")
            + f"<div class=\"uptime\">{e(uptime)}</div>{_times(svc.get('response_ms') or [], say)}</div>")
    if any(r["resolved"] for r in posted):
        parts.append(f"<h2>{e(say('past_incidents'))}</h2>" + "".join(_report_html(r, say) for r in posted if r["resolved"]))
    parts.append(_incident_table(say("open_incidents"), data["incidents"]["open"], True, say))
    parts.append(_incident_table(say("incident_history"), data["incidents"]["recent"], False, say))
    if data["maintenance"]:
        rows = "".join(f"<tr><td>{e(m['check'] if m['check'] != '*' else say('all_services'))}</td>"
                       f"<td>{e(say.when(m['starts']))}</td><td>{e(say.when(m['ends']))}</td><td>{e(m['reason'])}</td></tr>"
                       for m in data["maintenance"])
        parts.append(f"<h2>{e(say('maintenance'))}</h2><table><tr><th>{e(say('th_service'))}</th>"
                     f"<th>{e(say('th_start'))}</th><th>{e(say('th_end'))}</th><th>{e(say('th_reason'))}</th></tr>{rows}</table>")
    parts.append(f"<footer>{e(say('footer', at=say.when(data['generated_at']), zone=say.timezone))}</footer></main></body></html>\n")
    return "".join(parts)


def _times(ms: list[int], say: Say) -> str:
    """The service's last response times as a small inline SVG line (no script), with a caption."""
    if len(ms) < 2:
        return ""
    top = max(max(ms), 1)
    step = 300 / (len(ms) - 1)
    points = " ".join(f"{i * step:.1f},{28 - 26 * v / top:.1f}" for i, v in enumerate(ms))
    caption = say("response_time", n=len(ms), last=ms[-1], max=max(ms))
    return (f"<svg class=\"times\" viewBox=\"0 0 300 30\" preserveAspectRatio=\"none\" role=\"img\" "
            f"aria-label=\"{html.escape(caption)}\"><polyline points=\"{points}\"/></svg>"
            f"<div class=\"uptime\">{html.escape(caption)}</div>")


def _legend(say: Say) -> str:
    """What the colours of the 30-day bars mean."""
    e = html.escape
    keys = "".join(f"<span class=\"key\"><i class=\"{cls}\"></i>{e(text)}</span>" for cls, text in say.raw("legend_keys"))
    return f"<div class=\"legend\">{e(say('legend', zone=say.timezone))} {keys}</div>"


def _report_html(r: dict, say: Say) -> str:
    """One incident the team posted: title, services, its updates newest first."""
    e = html.escape
    states = say.raw("update_state")
    updates = "".join(
        f"<li><b>{e(states.get(u['status'], u['status'].capitalize()))}</b> — {e(u['message'])}"
        + (f" <span class=\"when\">{e(say('expected', eta=say.at(u['eta'])))}</span>" if u["eta"] else "")
        + f"<div class=\"when\">{e(say.at(u['at']))}</div></li>"
        for u in r["updates"])
    return (f"<div class=\"report{' resolved' if r['resolved'] else ''}\" id=\"incident-{r['id']}\">"
            f"<div class=\"name\">{e(r['title'])}</div>"
            f"<div class=\"desc\">{e(say('affects', services=', '.join(r['services'])))} {e(r['impact'])}</div>"
            f"<ol>{updates}</ol></div>")


def _incident_table(title: str, incidents: list, open_: bool, say: Say) -> str:
    e = html.escape
    if not incidents:
        return f"<h2>{e(title)}</h2><p class=\"desc\">{e(say('none'))}</p>" if open_ else ""
    rows = "".join(
        f"<tr><td>{e(i['check'])}</td><td>{e(say.when(i['started']))}</td>"
        f"<td>{e(say.when(i['ended']) if i['ended'] else say('ongoing'))}</td>"
        f"<td>{e(clock.duration(i['duration_seconds']))}</td><td>{e(i['reason'])}</td></tr>"
        for i in incidents)
    return (f"<h2>{e(title)}</h2><table><tr><th>{e(say('th_service'))}</th><th>{e(say('th_start'))}</th>"
            f"<th>{e(say('th_end'))}</th><th>{e(say('th_duration'))}</th><th>{e(say('th_last_error'))}</th></tr>"
            f"{rows}</table>")


def _write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)       # no fsync: the page is rewritten every round anyway
        os.chmod(tmp, 0o644)          # the web server reads it
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def ops_dir(cfg: Config) -> str:
    """The operators' page: `ops` beside www_dir, never inside the public page's folder (Caddy
    serves it at /ops/ behind its login)."""
    return os.path.join(os.path.dirname(os.path.abspath(cfg.www_dir)), "ops")


def write(cfg: Config, store: Store, now: int) -> dict:
    """Regenerate the clients' page (www_dir/index.html, status.json: the public checks, reasons
    in plain words of the page's language, from the fixed vocabulary) and the operators' (ops_dir: every check, reasons as written with
    URLs and passwords hidden; Caddy asks for its login); returns the clients' data."""
    data = build(cfg, store, now, reasons=lambda reason: plain(reason, cfg.say))  # the clients': plain words
    ops = build(cfg, store, now, published=False, audience="operators", reasons=scrub)
    for directory, doc in ((cfg.www_dir, data), (ops_dir(cfg), ops)):
        os.makedirs(directory, exist_ok=True)
        _write_atomic(os.path.join(directory, "status.json"), json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        _write_atomic(os.path.join(directory, "index.html"), render_html(doc))
    return data
