"""Escalation ladder end to end: a real service, real apprise, real SMTP and webhook receivers,
the real CLI; the clock is driven with `run --now`."""

import base64
import json

import pytest

from sandbox.receivers import (
    Service,
    SmtpReceiver,
    WebhookReceiver,
    at,
    cli,
    cli_process,
    dead_port,
    write_config,
)

TITLE_5 = "[DOWN 5 min] n8n: HTTP 503 — since 03:12 UTC"


@pytest.fixture
def receivers():
    with WebhookReceiver() as hooks, SmtpReceiver() as smtp:
        yield hooks, smtp


def sop_config(tmp_path, service, hooks, smtp, reminder=60, whatsapp=None, **top):
    """The SOP ladder: 5 min WhatsApp, 15 min WhatsApp + e-mail, 60 min phone call."""
    channels = {
        "whatsapp": {"apprise": whatsapp or hooks.url("/whatsapp").replace("http://", "json://")},
        "email": {"apprise": smtp.apprise_url()},
        "phone": {"type": "webhook", "url": hooks.url("/phone"), "auth": "AC123:call-token",
                  "form": {"To": "+5511999990000", "From": "+5511888880000",
                           "Twiml": "<Response><Say>{message}</Say></Response>"}},
    }
    ladder = {"steps": [{"after_minutes": 5, "channels": ["whatsapp"]},
                        {"after_minutes": 15, "channels": ["whatsapp", "email"]},
                        {"after_minutes": 60, "channels": ["phone"]}],
              "reminder_minutes": reminder, "recovery_successes": 2}
    checks = [{"name": "n8n", "type": "http", "url": service.url(), "timeout_seconds": 2,
               "description": "Workflow engine"}]
    return write_config(tmp_path, checks, channels, ladder, **top)


def counts(hooks, smtp):
    return len(hooks.paths("/whatsapp")), len(smtp.messages), len(hooks.paths("/phone"))


def drive(config, minutes, hooks, smtp):
    """Run one round per minute; returns {minute: (whatsapp, email, phone) newly received}."""
    got = {}
    for k in minutes:
        before = counts(hooks, smtp)
        code, _ = cli(config, "run", "--now", at(k))
        assert code == 0
        after = counts(hooks, smtp)
        delta = tuple(a - b for a, b in zip(after, before, strict=True))
        if any(delta):
            got[k] = delta
    return got


def test_each_step_fires_once_at_its_threshold_then_one_resolved_per_channel(tmp_path, receivers):
    hooks, smtp = receivers
    with Service(status=503) as service:
        config = sop_config(tmp_path, service, hooks, smtp)
        got = drive(config, range(0, 71), hooks, smtp)
        assert got == {5: (1, 0, 0), 15: (1, 1, 0), 60: (0, 0, 1)}

        wa = hooks.paths("/whatsapp")
        assert wa[0].json["title"] == TITLE_5
        assert "Reason: HTTP 503" in wa[0].json["message"]
        assert wa[1].json["title"] == "[DOWN 15 min] n8n: HTTP 503 — since 03:12 UTC"
        assert smtp.messages[0].subject == "[DOWN 15 min] n8n: HTTP 503 — since 03:12 UTC"
        assert smtp.messages[0].rcpt_tos == ["ops@example.com"]
        call = hooks.paths("/phone")[0]
        assert call.form == {"To": "+5511999990000", "From": "+5511888880000",
                             "Twiml": "<Response><Say>[DOWN 60 min] n8n: HTTP 503 — since 03:12 UTC</Say></Response>"}
        assert call.headers["Authorization"] == "Basic " + base64.b64encode(b"AC123:call-token").decode()

        service.status = 200
        got = drive(config, range(71, 90), hooks, smtp)
        # recovery_successes = 2: the 2nd good round (minute 72) resolves; nothing after that
        assert got == {72: (1, 1, 1)}
        resolved = "[RESOLVED] n8n is up again after 71 min"
        assert hooks.paths("/whatsapp")[-1].json["title"] == resolved
        assert smtp.messages[-1].subject == resolved
        assert hooks.paths("/phone")[-1].form["Twiml"] == f"<Response><Say>{resolved}</Say></Response>"

    status = json.loads((tmp_path / "www" / "status.json").read_text())
    assert status["incidents"]["open"] == []
    (incident,) = status["incidents"]["recent"]
    assert incident["check"] == "n8n" and incident["started"] == at(0) and incident["ended"] == at(71)
    assert incident["duration_seconds"] == 71 * 60


def test_reminders_repeat_the_last_step_at_the_interval(tmp_path, receivers):
    hooks, smtp = receivers
    with Service(status=503) as service:
        config = sop_config(tmp_path, service, hooks, smtp, reminder=10)
        got = drive(config, range(0, 66), hooks, smtp)
    # steps at 5 and 15; reminders of the 15-minute step at 25, 35, 45, 55; phone at 60
    assert got == {5: (1, 0, 0), 15: (1, 1, 0), 25: (1, 1, 0), 35: (1, 1, 0), 45: (1, 1, 0), 55: (1, 1, 0),
                   60: (0, 0, 1)}
    assert hooks.paths("/whatsapp")[2].json["title"] == "[STILL DOWN 25 min] n8n: HTTP 503 — since 03:12 UTC"


def test_missed_rounds_send_only_the_highest_crossed_step_once(tmp_path, receivers):
    hooks, smtp = receivers
    with Service(status=503) as service:
        config = sop_config(tmp_path, service, hooks, smtp)
        got = drive(config, [0, 20, 21, 22], hooks, smtp)
    assert got == {20: (1, 1, 0)}
    assert smtp.messages[0].subject.startswith("[DOWN 20 min] n8n")


def test_flapping_service_pages_nobody(tmp_path, receivers):
    hooks, smtp = receivers
    with Service(status=503) as service:
        config = sop_config(tmp_path, service, hooks, smtp)
        for k in range(0, 120):
            service.status = 503 if k % 2 == 0 else 200
            assert cli(config, "run", "--now", at(k))[0] == 0
    assert counts(hooks, smtp) == (0, 0, 0)
    status = json.loads((tmp_path / "www" / "status.json").read_text())
    assert status["incidents"] == {"open": [], "recent": []}
    assert status["services"][0]["uptime_30d"] == 50.0


def test_maintenance_window_silences_and_is_not_downtime(tmp_path, receivers):
    hooks, smtp = receivers
    with Service(status=200) as service:
        config = sop_config(tmp_path, service, hooks, smtp)
        code, out = cli(config, "maintenance", "start", "n8n", "--minutes", 45, "--reason", "n8n upgrade",
                        "--now", at(0))
        assert code == 0 and "started" in out
        for k in range(0, 51):
            service.status = 503 if 5 <= k < 35 else 200      # 30 minutes down, inside the window
            assert cli(config, "run", "--now", at(k))[0] == 0
            if k == 20:
                html = (tmp_path / "www" / "index.html").read_text()
                assert "Maintenance until" in html and "n8n upgrade" in html
                status = json.loads((tmp_path / "www" / "status.json").read_text())
                assert status["services"][0]["state"] == "maintenance"
                assert status["maintenance"][0]["reason"] == "n8n upgrade"
    assert counts(hooks, smtp) == (0, 0, 0)
    status = json.loads((tmp_path / "www" / "status.json").read_text())
    today = status["services"][0]["days"][-1]
    assert today == {"date": "2025-03-01", "uptime": 100.0, "results": 6, "maintenance": 45}
    assert status["services"][0]["uptime_30d"] == 100.0
    assert status["incidents"]["recent"] == [] and status["maintenance"] == []


def test_ladder_counts_from_the_end_of_the_window_when_still_down(tmp_path, receivers):
    hooks, smtp = receivers
    with Service(status=503) as service:
        config = sop_config(tmp_path, service, hooks, smtp)
        cli(config, "maintenance", "start", "*", "--minutes", 30, "--reason", "planned", "--now", at(0))
        got = drive(config, range(0, 50), hooks, smtp)
    # window ends at minute 30: WhatsApp 5 min later, e-mail 15 min later, since = end of the window
    assert got == {35: (1, 0, 0), 45: (1, 1, 0)}
    assert hooks.paths("/whatsapp")[0].json["title"] == "[DOWN 5 min] n8n: HTTP 503 — since 03:42 UTC"


def test_ending_a_window_early_starts_the_ladder_then(tmp_path, receivers):
    hooks, smtp = receivers
    with Service(status=503) as service:
        config = sop_config(tmp_path, service, hooks, smtp)
        cli(config, "maintenance", "start", "n8n", "--minutes", 120, "--reason", "restore", "--now", at(0))
        got = drive(config, range(0, 10), hooks, smtp)
        code, out = cli(config, "maintenance", "end", "n8n", "--now", at(10))
        assert code == 0 and "n8n: ended" in out
        got.update(drive(config, range(10, 16), hooks, smtp))
    assert got == {15: (1, 0, 0)}


def test_a_new_process_continues_the_incident(tmp_path, receivers, monkeypatch):
    """The incident is opened in one process; later rounds in new processes neither re-page nor lose it."""
    hooks, smtp = receivers
    monkeypatch.setenv("MON_TEST_WHATSAPP", hooks.url("/whatsapp").replace("http://", "json://"))
    env = {"MON_TEST_WHATSAPP": hooks.url("/whatsapp").replace("http://", "json://")}
    with Service(status=503) as service:
        config = sop_config(tmp_path, service, hooks, smtp, whatsapp="${MON_TEST_WHATSAPP}")
        assert drive(config, [0, 5], hooks, smtp) == {5: (1, 0, 0)}
        proc = cli_process(config, "run", "--now", at(6), env=env)
        assert proc.returncode == 0, proc.stderr
        assert "notify" not in proc.stdout and counts(hooks, smtp) == (1, 0, 0)
        proc = cli_process(config, "run", "--now", at(15), env=env)
        assert proc.returncode == 0, proc.stderr
        assert counts(hooks, smtp) == (2, 1, 0)
        assert "notify n8n -> email: sent" in proc.stdout
        service.status = 200
        drive(config, [16, 17], hooks, smtp)
    assert counts(hooks, smtp) == (3, 2, 0)
    proc = cli_process(config, "status", "--json", "--now", at(18), env=env)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    (incident,) = status["incidents"]["recent"]
    assert (incident["started"], incident["ended"]) == (at(0), at(16))
    assert status["services"][0]["state"] == "up"


def test_dead_channel_is_logged_retried_and_does_not_stop_other_checks(tmp_path, receivers):
    hooks, smtp = receivers
    port = dead_port()
    with Service(status=503) as a, Service(status=503) as b:
        channels = {"whatsapp": {"apprise": hooks.url("/whatsapp").replace("http://", "json://")},
                    "broken": {"apprise": f"json://127.0.0.1:{port}/hook"}}
        checks = [{"name": "a", "type": "http", "url": a.url(), "timeout_seconds": 2,
                   "ladder": {"steps": [{"after_minutes": 5, "channels": ["broken"]}], "reminder_minutes": 0}},
                  {"name": "b", "type": "http", "url": b.url(), "timeout_seconds": 2}]
        ladder = {"steps": [{"after_minutes": 5, "channels": ["whatsapp"]}], "reminder_minutes": 0}
        config = write_config(tmp_path, checks, channels, ladder)
        for k in range(0, 5):
            cli(config, "run", "--now", at(k))
        code, out = cli(config, "run", "--now", at(5))
        assert code == 0
        assert "notify a -> broken: failed" in out and "every channel failed; retrying" in out
        assert "notify b -> whatsapp: sent" in out
        code, out = cli(config, "run", "--now", at(6))
        assert "notify a -> broken: failed" in out and "notify b" not in out
        with WebhookReceiver(port=port) as revived:
            code, out = cli(config, "run", "--now", at(7))
            assert "notify a -> broken: sent: [DOWN 7 min] a: HTTP 503" in out
            cli(config, "run", "--now", at(8))
            assert len(revived.paths("/hook")) == 1
    assert len(hooks.paths("/whatsapp")) == 1


def test_recovery_during_maintenance_is_announced_after_the_window(tmp_path, receivers):
    hooks, smtp = receivers
    with Service(status=503) as service:
        config = sop_config(tmp_path, service, hooks, smtp)
        assert drive(config, range(0, 6), hooks, smtp) == {5: (1, 0, 0)}        # incident open, WhatsApp paged
        cli(config, "maintenance", "start", "n8n", "--minutes", 20, "--reason", "fixing", "--now", at(6))
        service.status = 200
        assert drive(config, range(6, 26), hooks, smtp) == {}                   # silent inside the window
        assert drive(config, range(26, 30), hooks, smtp) == {26: (1, 0, 0)}     # RESOLVED once, to WhatsApp only
    assert hooks.paths("/whatsapp")[-1].json["title"] == "[RESOLVED] n8n is up again after 6 min"


def test_a_failed_resolved_notice_is_retried_until_delivered(tmp_path, receivers):
    hooks, smtp = receivers
    port = dead_port()
    with Service(status=503) as service:
        config = sop_config(tmp_path, service, hooks, smtp)
        drive(config, range(0, 6), hooks, smtp)
        # the WhatsApp provider goes away before the recovery
        sop_config(tmp_path, service, hooks, smtp, whatsapp=f"json://127.0.0.1:{port}/whatsapp")
        service.status = 200
        cli(config, "run", "--now", at(6))
        code, out = cli(config, "run", "--now", at(7))
        assert "notify n8n -> whatsapp: failed" in out and "[RESOLVED]" in out
        with WebhookReceiver(port=port) as back:
            code, out = cli(config, "run", "--now", at(8))
            assert "notify n8n -> whatsapp: sent: [RESOLVED] n8n is up again after 6 min" in out
            cli(config, "run", "--now", at(9))
            assert len(back.paths("/whatsapp")) == 1


def test_a_warning_check_says_warning_on_the_warning_ladder_and_reminds_daily(tmp_path):
    from mottivme_monitor import config, ladder
    from mottivme_monitor.store import Incident, State

    cfg = config.parse({
        "db": str(tmp_path / "s.sqlite"), "www_dir": str(tmp_path / "www"),
        "channels": {"whatsapp": {"apprise": ""}, "email": {"apprise": ""}},
        "ladder": {"steps": [{"after_minutes": 5, "channels": ["whatsapp"]}]},
        "checks": [{"name": "secrets-n1", "type": "heartbeat", "max_age_minutes": 1560, "max_value": 82,
                    "severity": "warning", "ladder": {"steps": [{"after_minutes": 0, "channels": ["email"]}],
                                                      "reminder_minutes": 1440, "recovery_successes": 1}}]})
    check = cfg.checks[0]
    down = State("secrets-n1", False, 1000, None, "oldest secret at 85 days > 82 days", 1000, None, 0)
    plan = ladder.decide(check, down, None, False, None, 1000)
    assert plan.kind == "open+step" and plan.channels == ("email",)
    assert plan.title.startswith("[WARNING 0 min] secrets-n1: oldest secret at 85 days > 82 days")
    assert "DOWN" not in plan.title + plan.body
    incident = Incident(1, "secrets-n1", 1000, down.reason, 0, 1000, ["email"], None, None, [])
    assert ladder.decide(check, down, incident, False, None, 1000 + 3600) is None  # no page, no hourly reminder
    again = ladder.decide(check, down, incident, False, None, 1000 + 86400)
    assert again.kind == "reminder" and again.title.startswith("[STILL WARNING 24 h]")
    up = State("secrets-n1", True, 2000, None, "", None, 2000, 1)
    assert ladder.decide(check, up, incident, False, None, 2000).title.startswith("[RESOLVED] secrets-n1")


def test_an_alert_says_the_published_reason_never_the_free_text(tmp_path):
    from mottivme_monitor import config, ladder
    from mottivme_monitor.store import Incident, State

    cfg = config.parse({"db": str(tmp_path / "s.sqlite"), "www_dir": str(tmp_path / "www"),
                        "channels": {"whatsapp": {"apprise": ""}},
                        "ladder": {"steps": [{"after_minutes": 5, "channels": ["whatsapp"]}]},
                        "checks": [{"name": "backup-n1", "type": "heartbeat", "max_age_minutes": 60}]})
    leak = "reported failure: n8n-backup failed: pg_dump postgresql://postgres:pw-1@10.0.0.5/db"
    down = State("backup-n1", False, 1000, None, leak, 1000, None, 0)
    plan = ladder.decide(cfg.checks[0], down, None, False, None, 1000 + 600)
    assert plan.title.startswith("[DOWN 10 min] backup-n1: reported failure — since")
    assert "pw-1" not in plan.title + plan.body and "10.0.0.5" not in plan.title + plan.body
    incident = Incident(1, "backup-n1", 1000, leak, 0, 1600, ["whatsapp"], None, None, [])
    up = State("backup-n1", True, 2000, None, "", None, 2000, 2)
    resolved = ladder.decide(cfg.checks[0], up, incident, False, None, 2000)
    assert "Last error: reported failure" in resolved.body and "pw-1" not in resolved.body


WA_TEMPLATE = "whatsapp://mottivme_alerta:EAAGtoken123@1234567890/5511999990000?lang=pt_BR&:body=1"


@pytest.mark.parametrize("url", [WA_TEMPLATE, "whatsapp://EAAGtoken123@1234567890/5511999990000?template=mottivme_alerta"
                                 "&lang=pt_BR&:body=1"])
def test_whatsapp_template_form_pages_with_the_message_as_its_one_parameter(tmp_path, receivers, monkeypatch, url):
    """Meta delivers a business-initiated WhatsApp message outside the recipient's 24-hour window
    only as an approved template: the page goes out as the template (its name, pt_BR) with the
    message, on one line, as its body parameter. Only Meta's address is replaced (apprise posts to
    the local receiver instead of graph.facebook.com); apprise builds and sends the real request."""
    from apprise.plugins.whatsapp import NotifyWhatsApp

    hooks, smtp = receivers
    monkeypatch.setattr(NotifyWhatsApp, "notify_url", hooks.url("/graph/{fb_ver}/{phone_id}/messages"))
    with Service(status=503) as service:
        config = sop_config(tmp_path, service, hooks, smtp, whatsapp=url)
        for k in range(0, 6):
            assert cli(config, "run", "--now", at(k))[0] == 0
    (sent,) = [r for r in hooks.requests if r.path.endswith("/1234567890/messages")]
    assert sent.headers["Authorization"] == "Bearer EAAGtoken123"
    payload = sent.json
    assert payload["to"] == "+5511999990000" and payload["type"] == "template", payload
    template = payload["template"]
    assert template["name"] == "mottivme_alerta" and template["language"] == {"code": "pt_BR"}
    (parameter,) = template["components"][0]["parameters"]
    text = parameter["text"]
    assert text.startswith(TITLE_5 + " — ") and "Reason: HTTP 503" in text
    assert "\n" not in text and "\t" not in text and "     " not in text and len(text) <= 1024


def test_a_long_message_is_cut_to_what_a_template_parameter_takes():
    from mottivme_monitor.whatsapp import TEMPLATE_PARAMETER_MAX, template_parameter, whatsapp_form

    text = template_parameter("[DOWN 5 min] n8n", "line\n\tnext     spaced\n" * 200)
    assert len(text) == TEMPLATE_PARAMETER_MAX and text.endswith("…") and "line next spaced line" in text
    assert whatsapp_form("whatsapp://EAAGtoken123@1234567890/5511999990000") == "free-form"
    assert whatsapp_form(WA_TEMPLATE) == "template" and whatsapp_form("json://127.0.0.1/x") == ""
    # as apprise reads them: query keys in any case, an empty template name is no template
    assert whatsapp_form("whatsapp://EAAGtoken123@1234567890/5511999990000?Template=alerta") == "template"
    assert whatsapp_form("whatsapp://EAAGtoken123:@1234567890/5511999990000") == "free-form"


def test_a_server_that_stops_reporting_is_one_alert_not_one_per_report(tmp_path, receivers):
    """disk-, memory- and cpu-v1 come in one report: the server stops, every one of them goes stale
    at once, and only disk-v1 (the check the others name in inhibited_by) pages. Once disk-v1 is
    answered again, a report still stale (memory-v1) alerts on its own ladder."""
    from mottivme_monitor.store import Store
    from sandbox.receivers import T0

    hooks, smtp = receivers
    channels = {"whatsapp": {"apprise": hooks.url("/whatsapp").replace("http://", "json://")},
                "email": {"apprise": smtp.apprise_url()}}
    warning = {"severity": "warning", "ladder": {"steps": [{"after_minutes": 0, "channels": ["email"]}],
                                                 "recovery_successes": 1}}
    beat = {"type": "heartbeat", "max_age_minutes": 15, "max_value": 90, "unit": "%"}
    config = write_config(tmp_path, [{"name": "disk-v1", **beat},
                                     {"name": "memory-v1", **beat, **warning, "inhibited_by": "disk-v1"},
                                     {"name": "cpu-v1", **beat, **warning, "inhibited_by": "disk-v1"}],
                          channels, {"steps": [{"after_minutes": 5, "channels": ["whatsapp"]}], "recovery_successes": 1})
    store = Store(str(tmp_path / "state.sqlite"))
    t0 = int(T0.timestamp())
    for name in ("disk-v1", "memory-v1", "cpu-v1"):
        store.add_ping(name, t0, value=40)
    got = drive(config, range(0, 40), hooks, smtp)
    assert got == {21: (1, 0, 0)}, got  # stale after 15 min, disk-v1's page 5 min later; no e-mail
    assert hooks.paths("/whatsapp")[0].json["title"].startswith("[DOWN 5 min] disk-v1:")
    store.add_ping("disk-v1", t0 + 40 * 60, value=40)  # the server is back, its memory report is not
    store.add_ping("cpu-v1", t0 + 40 * 60, value=40)
    got = drive(config, range(40, 42), hooks, smtp)
    assert got == {40: (1, 1, 0)}, got  # disk-v1's "resolved", memory-v1's own warning
    assert smtp.messages[0].subject.startswith("[WARNING ") and "memory-v1" in smtp.messages[0].subject


def test_a_full_disk_or_a_maintenance_window_on_it_silences_nothing(tmp_path, receivers):
    """Only a disk report gone silent inhibits: a disk over its limit (the server still reporting)
    or a maintenance window on the disk check leaves a failed backup to page on its own."""
    from mottivme_monitor.store import Store
    from sandbox.receivers import T0

    hooks, smtp = receivers
    channels = {"whatsapp": {"apprise": hooks.url("/whatsapp").replace("http://", "json://")}}
    beat = {"type": "heartbeat", "max_age_minutes": 15}
    config = write_config(tmp_path, [{"name": "disk-v1", **beat, "max_value": 90, "unit": "%"},
                                     {"name": "backup-v1", **beat, "inhibited_by": "disk-v1"}],
                          channels, {"steps": [{"after_minutes": 5, "channels": ["whatsapp"]}], "recovery_successes": 1})
    store = Store(str(tmp_path / "state.sqlite"))
    t0 = int(T0.timestamp())
    store.add_ping("disk-v1", t0, value=95)  # full, and reporting
    store.add_ping("backup-v1", t0, failed=True, reason="disk full")
    assert drive(config, range(0, 7), hooks, smtp) == {5: (2, 0, 0)}  # both page
    titles = sorted(x.json["title"].split(":")[0] for x in hooks.paths("/whatsapp"))
    assert titles == ["[DOWN 5 min] backup-v1", "[DOWN 5 min] disk-v1"]
    # the disk check in a maintenance window (gone silent meanwhile): a new backup failure pages
    for name in ("disk-v1", "backup-v1"):
        store.add_ping(name, t0 + 10 * 60, value=40)
    assert drive(config, range(10, 12), hooks, smtp) == {10: (2, 0, 0)}  # both resolved
    code, _ = cli(config, "maintenance", "start", "disk-v1", "--minutes", 120, "--reason", "resize", "--now", at(12))
    assert code == 0
    store.add_ping("backup-v1", t0 + 40 * 60, failed=True, reason="no space")
    got = drive(config, range(40, 47), hooks, smtp)
    assert got == {45: (1, 0, 0)} and hooks.paths("/whatsapp")[-1].json["title"].startswith("[DOWN 5 min] backup-v1")


@pytest.mark.parametrize("checks", [
    [{"name": "a", "inhibited_by": "nothing"}, {"name": "b"}],
    [{"name": "a", "inhibited_by": "a"}, {"name": "b"}],
    [{"name": "a", "inhibited_by": "b"}, {"name": "b", "inhibited_by": "a"}],  # a cycle silences both
    [{"name": "a", "inhibited_by": "b"}, {"name": "b", "type": "http", "url": "http://127.0.0.1:9/"}],
])
def test_inhibited_by_must_name_another_heartbeat_not_inhibited_itself(tmp_path, checks):
    from mottivme_monitor import config

    with pytest.raises(config.ConfigError, match=r"^checks\[0\] \(a\): 'inhibited_by' must name another heartbeat "
                                                 r"check, one not inhibited itself$"):
        config.parse({"db": "x", "www_dir": "y", "channels": {"email": {"apprise": ""}},
                      "ladder": {"steps": [{"after_minutes": 5, "channels": ["email"]}]},
                      "checks": [c if "type" in c else {"type": "heartbeat", "max_age_minutes": 5, **c} for c in checks]})
