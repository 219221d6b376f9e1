"""Incidents the team posts (SOP 05, Comunicação de Incidentes), end to end through the real CLI
with real webhook receivers: the team and the clients are told, the status page shows every
update in São Paulo's time, the team is asked for an update after 15 quiet minutes, the clients
hear of an outage past its service's threshold, and a resolved incident leaves a post-mortem."""

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mottivme_monitor import reports
from sandbox.receivers import T0, Service, WebhookReceiver, at, cli, write_config

SP = ZoneInfo("America/Sao_Paulo")


@pytest.fixture
def hooks():
    with WebhookReceiver() as h:
        yield h


def config(tmp_path, hooks, service, clients_after=None, **incidents):
    channels = {"whatsapp": {"apprise": hooks.url("/team").replace("http://", "json://")},
                "clients": {"apprise": hooks.url("/clients").replace("http://", "json://")}}
    check = {"name": "supabase-db", "type": "http", "url": service.url(), "timeout_seconds": 2,
             "description": "Supabase database"}
    if clients_after is not None:
        check["clients_after_minutes"] = clients_after
    ladder = {"steps": [{"after_minutes": 5, "channels": ["whatsapp"]}], "reminder_minutes": 0}
    return write_config(tmp_path, [check, {"name": "n8n", "type": "http", "url": service.url(), "timeout_seconds": 2}],
                        channels, ladder, public_url="https://status.example.test/",
                        incidents={"update_minutes": 15, "channels": ["whatsapp"], "clients_channel": "clients",
                                   **incidents})


def titles(hooks, path):
    return [r.json["title"] for r in hooks.paths(path)]


def page(tmp_path) -> tuple[dict, str]:
    return (json.loads((tmp_path / "www" / "status.json").read_text()),
            (tmp_path / "www" / "index.html").read_text())


def test_open_update_resolve_tells_the_team_the_clients_when_asked_and_the_page(tmp_path, hooks):
    with Service(status=503) as service:
        cfg = config(tmp_path, hooks, service)
        for k in range(0, 8):  # the monitor sees the database down and pages the team at 5 minutes
            cli(cfg, "run", "--now", at(k))
        code, out = cli(cfg, "incident", "open", "--service", "supabase-db", "--title", "Leads are not saved",
                        "--impact", "New leads wait in the queue", "--clients", "12", "--eta", "45m",
                        "--message", "We are looking into it",
                        "--notify-clients", "--now", at(8))
        assert code == 0 and "incident #1 opened: Leads are not saved" in out
        assert titles(hooks, "/clients") == ["[Investigating] Leads are not saved"]
        told = hooks.paths("/clients")[0].json["message"]
        # the readers' clock: 03:12 UTC + 8 min is 00:20 in São Paulo, the estimate 45 minutes on
        assert "We are looking into it" in told and "Expected resolution: 2025-03-01 01:05 -03." in told, told
        assert "Status: https://status.example.test/" in told
        assert titles(hooks, "/team")[-1] == "[Investigating] Leads are not saved"

        code, _ = cli(cfg, "incident", "update", "1", "--message", "Supabase is restoring the instance",
                      "--status", "identified", "--now", at(20))
        assert code == 0
        assert len(hooks.paths("/clients")) == 1, "no --notify-clients: the team only"
        doc, html = page(tmp_path)
        (report,) = doc["reports"]
        assert report["status"] == "identified" and report["services"] == ["supabase-db"]
        assert [u["message"] for u in report["updates"]] == ["Supabase is restoring the instance",
                                                             "We are looking into it"]  # newest first
        assert report["updates"][0]["at"].endswith("-03:00") and report["updates"][1]["eta"].endswith("-03:00")
        assert "clients" not in report, "how many clients: the team's, not the public page's"
        assert json.loads(cli(cfg, "incident", "list", "--json")[1])[0]["clients"] == 12
        assert html.index("<h2>Incidents</h2>") < html.index("Supabase is restoring the instance") \
            < html.index("We are looking into it")
        assert "(UTC-03:00)" in html

    with Service() as service:  # back; the monitor resolves its own incident, the team closes theirs
        cfg = config(tmp_path, hooks, service)
        for k in (30, 31):
            cli(cfg, "run", "--now", at(k))
        code, out = cli(cfg, "incident", "resolve", "1", "--message", "Saved again; queued leads replayed",
                        "--notify-clients", "--now", at(33))
        assert code == 0
        path = Path(out.split("post-mortem skeleton: ")[1].splitlines()[0])
        assert path.name == "2025-03-01-incident-1.md"
        assert titles(hooks, "/clients")[-1] == "[Resolved] Leads are not saved"
        doc, html = page(tmp_path)
        assert doc["reports"][0]["resolved"] and "<h2>Past incidents</h2>" in html and "<h2>Incidents</h2>" not in html

        pm = path.read_text()
        timeline = pm[pm.index("## Timeline"):pm.index("## What happened")]
        events = [line for line in timeline.splitlines() if line.startswith("- ")]
        # in time order: the monitor saw it down, paged the team, the posts, the monitor saw it back
        assert events[0] == "- 2025-03-01 00:12 -03 — monitor: supabase-db down (HTTP 503)"
        assert any("sent to whatsapp (sent): [DOWN 5 min] supabase-db" in e for e in events)
        posted = [e for e in events if "posted, " in e]
        assert [p.split("posted, ")[1].split(":")[0] for p in posted] == ["investigating", "identified", "resolved"]
        assert "monitor: supabase-db up again after 30 min" in timeline
        assert "| Clients affected | 12 |" in pm and "## Prevention plan" in pm and "Reviewed with the team on" in pm


def test_the_team_is_asked_for_an_update_after_15_quiet_minutes(tmp_path, hooks):
    with Service() as service:
        cfg = config(tmp_path, hooks, service)
        cli(cfg, "incident", "open", "--service", "n8n", "--title", "Slow automations", "--impact", "Delays",
            "--now", at(0))
        sent = len(hooks.paths("/team"))
        for k in (5, 14):
            cli(cfg, "run", "--now", at(k))
        assert len(hooks.paths("/team")) == sent, "not before 15 minutes"
        cli(cfg, "run", "--now", at(15))
        assert titles(hooks, "/team")[-1] == "[UPDATE DUE] incident #1 (Slow automations): no update posted for 15 min"
        assert "mottivme-monitor incident update 1 --message" in hooks.paths("/team")[-1].json["message"]
        cli(cfg, "run", "--now", at(16))
        assert len(hooks.paths("/team")) == sent + 1, "one reminder per quiet 15 minutes"
        cli(cfg, "incident", "update", "1", "--message", "Found it", "--now", at(20))
        cli(cfg, "run", "--now", at(30))
        assert len(hooks.paths("/team")) == sent + 2, "the update was posted 10 minutes ago: no reminder"
        cli(cfg, "run", "--now", at(35))
        assert titles(hooks, "/team")[-1].startswith("[UPDATE DUE] incident #1")
        cli(cfg, "incident", "resolve", "1", "--message", "Fixed", "--now", at(36))
        before = len(hooks.paths("/team"))
        cli(cfg, "run", "--now", at(60))
        assert len(hooks.paths("/team")) == before, "a resolved incident asks for nothing"


def test_clients_hear_of_an_outage_past_its_services_threshold_and_of_its_end(tmp_path, hooks):
    with Service(status=503) as service:
        cfg = config(tmp_path, hooks, service, clients_after=15)
        for k in range(0, 15):
            cli(cfg, "run", "--now", at(k))
        assert hooks.paths("/clients") == [], "Supabase: the clients hear of it after 15 minutes"
        for k in range(15, 25):
            cli(cfg, "run", "--now", at(k))
        assert titles(hooks, "/clients") == ["[Investigating] Supabase database is unavailable"]
        told = hooks.paths("/clients")[0].json["message"]
        assert "since 2025-03-01 00:12 -03 (the service answered with an error, HTTP 503)" in told, told
        assert "https://status.example.test/" in told
    with Service() as service:
        cfg = config(tmp_path, hooks, service, clients_after=15)
        for k in (25, 26):
            cli(cfg, "run", "--now", at(k))
        assert titles(hooks, "/clients")[-1] == "[Resolved] Supabase database is working again"
        assert "(25 min)" in hooks.paths("/clients")[-1].json["message"]


@pytest.mark.parametrize("args,problem", [
    (["open", "--service", "redis", "--title", "t", "--impact", "i"], "unknown service redis (the check names: "),
    (["open", "--service", "n8n", "--title", "t", "--impact", "i", "--eta", "soon"], "--eta 'soon': give minutes"),
    (["open", "--service", "n8n", "--title", "t", "--impact", "i", "--status", "resolved"],
     "status 'resolved': use `incident resolve`"),
    (["update", "7", "--message", "m"], "no incident #7"),
])
def test_a_bad_incident_command_is_one_line_and_changes_nothing(tmp_path, hooks, capsys, args, problem):
    with Service() as service:
        cfg = config(tmp_path, hooks, service)
        code, _ = cli(cfg, "incident", *args)
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and problem in err and err.count("\n") == 1
        assert hooks.requests == []
        assert cli(cfg, "incident", "list")[1] == "no incident has been posted\n"


def test_a_resolved_incident_takes_no_more_updates_and_clients_need_their_channel(tmp_path, hooks, capsys):
    with Service() as service:
        cfg = config(tmp_path, hooks, service)
        cli(cfg, "incident", "open", "--service", "n8n", "--title", "t", "--impact", "i", "--now", at(0))
        cli(cfg, "incident", "resolve", "1", "--message", "done", "--now", at(5))
        assert cli(cfg, "incident", "update", "1", "--message", "again", "--now", at(6))[0] == 2
        assert "was resolved 2025-03-01 00:17 -03" in capsys.readouterr().err
        (tmp_path / "other").mkdir()
        cfg = write_config(tmp_path / "other", [{"name": "n8n", "type": "http", "url": service.url()}],
                           {"whatsapp": {"apprise": ""}}, {"steps": [{"after_minutes": 5, "channels": ["whatsapp"]}]},
                           incidents={"channels": ["whatsapp"]})
        code, _ = cli(cfg, "incident", "open", "--service", "n8n", "--title", "t", "--impact", "i",
                      "--notify-clients")
        assert code == 2 and "no clients' channel" in capsys.readouterr().err
        assert cli(cfg, "incident", "list")[1] == "no incident has been posted\n"


def test_eta_is_a_duration_or_a_time_on_the_readers_clock():
    now = int(T0.timestamp())  # 03:12 UTC = 00:12 in São Paulo
    assert reports.parse_eta("45m", now, SP) == now + 45 * 60
    assert reports.parse_eta("1h30m", now, SP) == now + 90 * 60
    assert reports.local(reports.parse_eta("14:30", now, SP), SP).endswith(" 14:30 -03")
    # a time already past today is tomorrow's
    at_0010 = reports.parse_eta("00:10", now, SP)
    assert at_0010 - now == 24 * 3600 - 2 * 60
    assert reports.parse_eta("", now, SP) is None
    assert reports.local(now, ZoneInfo("Asia/Kolkata")) == "2025-03-01 08:42 +0530"
    with pytest.raises(reports.ReportError):
        reports.parse_eta("25:00", now, SP)


def test_clients_are_never_told_through_a_channel_without_an_address(tmp_path, hooks, capsys):
    """--notify-clients with MONITOR_CLIENTS_URL unset: refused, nothing posted (it would say
    "skipped" and exit 0, and the team would believe the clients were told)."""
    with Service() as service:
        cfg = config(tmp_path, hooks, service)
        raw = json.loads(cfg.read_text())
        raw["channels"]["clients"]["apprise"] = ""
        cfg.write_text(json.dumps(raw))
        code, _ = cli(cfg, "incident", "open", "--service", "n8n", "--title", "t", "--impact", "i",
                      "--notify-clients")
        assert code == 2 and "the clients' channel has no address" in capsys.readouterr().err
        assert cli(cfg, "incident", "list")[1] == "no incident has been posted\n"


def test_a_post_no_channel_took_fails_and_a_failed_clients_notice_is_sent_again(tmp_path, hooks, capsys):
    with WebhookReceiver(status=500) as broken, Service(status=503) as service:
        cfg = config(tmp_path, broken, service, clients_after=15)
        code, out = cli(cfg, "incident", "open", "--service", "n8n", "--title", "t", "--impact", "i", "--now", at(0))
        assert code == 3 and "incident #1 opened" in out
        assert "no channel took it" in capsys.readouterr().err
        for k in range(0, 17):
            cli(cfg, "run", "--now", at(k))
        tried = len(broken.paths("/clients"))
        assert tried >= 2, "the clients' notice is tried again while it fails"
        broken.status = 200
        cli(cfg, "run", "--now", at(17))
        cli(cfg, "run", "--now", at(18))
        assert len(broken.paths("/clients")) == tried + 1, "then once"
