"""Status page: uptime arithmetic from a known history, HTML content, escaping, speed."""

import json
import re
from datetime import UTC

import pytest

from mottivme_monitor import clock, config, statuspage
from mottivme_monitor.checks import Result
from mottivme_monitor.store import Store

CHANNELS = {"whatsapp": {"apprise": ""}, "email": {"apprise": ""}, "phone": {"apprise": ""}}


def make_cfg(tmp_path, checks, **top):
    return config.parse({"db": str(tmp_path / "state.sqlite"), "www_dir": str(tmp_path / "www"),
                         "title": "Mottivme <status>", "channels": CHANNELS, "checks": checks, **top})


def ts(text):
    return clock.parse_iso(text)


def test_uptime_from_a_known_history(tmp_path):
    cfg = make_cfg(tmp_path, [
        {"name": "n8n", "type": "http", "url": "http://127.0.0.1:9/", "description": "Workflows & <webhooks>"},
        {"name": "backup", "type": "heartbeat", "max_age_minutes": 1560}])
    step = 600   # one result every 10 minutes: 144 a day
    with Store(cfg.db) as store:
        day1, day2, day3 = ts("2025-03-01T00:00:00Z"), ts("2025-03-02T00:00:00Z"), ts("2025-03-03T00:00:00Z")
        for t in range(day1, day2, step):                       # day 1: always up
            store.record_result("n8n", t, Result(True, 10, ""), tz=UTC)
        for t in range(day2, day3, step):                       # day 2: down 06:00-12:00, 6 of 24 hours
            down = day2 + 6 * 3600 <= t < day2 + 12 * 3600
            store.record_result("n8n", t, Result(not down, 10, "HTTP 503" if down else ""), tz=UTC)
        for t in range(day3, day3 + 6 * 3600, step):            # today: up 00:00-05:50 (36 results)
            store.record_result("n8n", t, Result(True, 10, ""), tz=UTC)
        data = statuspage.write(cfg, store, day3 + 6 * 3600)

    n8n, backup = data["services"]
    days = {d["date"]: d["uptime"] for d in n8n["days"]}
    assert len(n8n["days"]) == 30 and n8n["days"][-1]["date"] == "2025-03-03"
    assert (days["2025-03-01"], days["2025-03-02"], days["2025-03-03"]) == (100.0, 75.0, 100.0)
    assert [d["uptime"] for d in n8n["days"][:27]] == [None] * 27
    # 30 days: (144 + 108 + 36) up of (144 + 144 + 36) = 288/324 = 88.888...% -> truncated to 88.88
    assert n8n["uptime_30d"] == 88.88
    assert backup["uptime_30d"] is None and backup["state"] == "unknown"
    assert n8n["state"] == "up" and n8n["since"] == "2025-03-02T12:00:00Z"

    on_disk = json.loads((tmp_path / "www" / "status.json").read_text())
    assert on_disk == json.loads(json.dumps(data))

    html = (tmp_path / "www" / "index.html").read_text()
    assert 'title="2025-03-02: 75.00%"' in html and 'title="2025-03-01: 100.00%"' in html
    assert 'title="2025-02-02: no data"' in html
    assert "88.88% uptime over 30 days" in html and "no uptime data yet" in html
    assert "All systems operational" in html
    assert "Mottivme &lt;status&gt;" in html and "Workflows &amp; &lt;webhooks&gt;" in html
    assert "<script" not in html and "<link" not in html and "src=" not in html   # self-contained
    assert re.search(r"Generated 2025-03-03 06:00 UTC", html)


def test_down_services_incidents_and_maintenance_on_the_page(tmp_path):
    cfg = make_cfg(tmp_path, [{"name": "a", "type": "http", "url": "http://127.0.0.1:9/"},
                              {"name": "b", "type": "http", "url": "http://127.0.0.1:9/"},
                              {"name": "c", "type": "http", "url": "http://127.0.0.1:9/"}])
    t = ts("2025-03-01T10:00:00Z")
    with Store(cfg.db) as store:
        store.record_result("a", t, Result(False, 5, "HTTP <503>"), tz=UTC)
        store.record_result("b", t, Result(True, 5, ""), tz=UTC)
        store.start_maintenance(["c"], t - 60, 30, "disk swap")
        store.record_result("c", t, Result(False, 5, "connection refused"), tz=UTC)
        store.create_incident("a", t - 1200, "HTTP <503>")
        old = store.create_incident("b", t - 7200, "timeout after 10 s")
        store.update_incident(old.id, recovered=t - 7200 + 47 * 60, resolved=t - 7200 + 48 * 60)
        data = statuspage.write(cfg, store, t)
    assert data["summary"] == {"services": 3, "down": 1, "maintenance": 1, "warnings": 0,
                               "text": "1 of 3 services down"}
    assert [s["state"] for s in data["services"]] == ["down", "up", "maintenance"]
    assert data["services"][0]["incident"]["started"] == "2025-03-01T09:40:00Z"
    assert data["incidents"]["recent"][0]["duration_seconds"] == 47 * 60
    html = (tmp_path / "www" / "index.html").read_text()
    assert "1 of 3 services down" in html and "Down since 2025-03-01 10:00 UTC" in html
    # a reason outside the published vocabulary is named by its kind only (escaped or not, never
    # shown), in plain words on the clients' page
    assert "503&gt;" not in html and "HTTP <503>" not in html and "the service is not working as expected" in html
    assert "Maintenance until 2025-03-01 10:29 UTC" in html and "disk swap" in html
    assert "47 min" in html and "ongoing" in html


def test_a_warning_check_is_a_warning_on_the_page_not_an_outage(tmp_path):
    cfg = make_cfg(tmp_path, [{"name": "n8n", "type": "http", "url": "http://127.0.0.1:9/"},
                              {"name": "secrets-n1", "type": "heartbeat", "max_age_minutes": 1560, "max_value": 82,
                               "unit": "days", "value_label": "oldest secret", "severity": "warning"}])
    t = ts("2025-03-01T10:00:00Z")
    with Store(cfg.db) as store:
        store.record_result("n8n", t, Result(True, 5, ""), tz=UTC)
        store.record_result("secrets-n1", t, Result(False, None, "oldest secret at 85 days > 82 days"), tz=UTC)
        data = statuspage.write(cfg, store, t)
    assert [s["state"] for s in data["services"]] == ["up", "warning"]
    assert data["summary"]["text"] == "All systems operational (1 warning)" and data["summary"]["down"] == 0
    html = (tmp_path / "www" / "index.html").read_text()
    assert "Warning since 2025-03-01 10:00 UTC" in html and "oldest secret at 85 days &gt; 82 days" in html
    assert 'class="banner ok"' in html


def test_a_severity_other_than_page_or_warning_is_refused(tmp_path):
    import pytest

    with pytest.raises(config.ConfigError, match="'severity' must be one of page, warning"):
        make_cfg(tmp_path, [{"name": "x", "type": "heartbeat", "max_age_minutes": 5, "severity": "info"}])


def test_published_reasons_never_carry_what_a_check_or_a_server_wrote_freely(tmp_path):
    leaky = {
        "a": 'connection to server at "10.0.0.5", port 5432 failed: FATAL: password "p%40ss" is wrong',
        "b": "reported failure: n8n-backup on n8n1 failed: supabase dump: pg_dump: postgresql://u:pw@db/x",
        "c": "status is 'internal token abc123', expected 'ok'",
        "d": "connection refused (10.0.0.5 port 5432)",
        "e": "DNS lookup failed: Name or service not known for internal.example",
    }
    cfg = make_cfg(tmp_path, [{"name": n, "type": "http", "url": "http://127.0.0.1:9/"} for n in leaky])
    t = ts("2025-03-01T10:00:00Z")
    with Store(cfg.db) as store:
        for name, reason in leaky.items():
            store.record_result(name, t, Result(False, 5, reason), tz=UTC)
            store.create_incident(name, t - 600, reason)
        data = statuspage.write(cfg, store, t)
    published = json.dumps(data) + (tmp_path / "www" / "index.html").read_text()
    for secret in ("10.0.0.5", "p%40ss", "pw@db", "abc123", "internal.example", "n8n1"):
        assert secret not in published, secret
    assert [s["reason"] for s in data["services"]] == [  # their kinds, in plain words for the clients
        "the service is not working as expected", "the service is not working as expected",
        "the service is not working as expected", "the service could not be reached", "the service could not be reached"]


def test_status_page_for_20_services_and_30_days_reads_the_days_aggregates(tmp_path):
    """A month of minute results: the 30-day figure comes from the per-day aggregates (1439 of 1440
    up), not from the raw rows (all up). Its time: bench/monitor.py."""
    checks = [{"name": f"svc{i}", "type": "http", "url": "http://127.0.0.1:9/"} for i in range(20)]
    cfg = make_cfg(tmp_path, checks)
    now = ts("2025-03-31T12:00:00Z")
    with Store(cfg.db) as store:
        with store.tx() as c:     # a month of minute results, as the per-day aggregates hold them
            c.executemany("INSERT INTO daily (check_name, day, total, up, maint) VALUES (?,?,1440,1439,0)",
                          [(f"svc{i}", d) for i in range(20) for d in clock.last_days(now, 30)])
            c.executemany("INSERT INTO results (check_name, ts, ok, ms, reason) VALUES (?,?,1,5,'')",
                          [(f"svc{i}", now - m * 60) for i in range(20) for m in range(0, 43200, 10)])
        for i in range(20):
            store.record_result(f"svc{i}", now, Result(True, 5, ""), tz=UTC)
        data = statuspage.write(cfg, store, now)
    assert data["services"][0]["uptime_30d"] == 99.93


def test_the_clients_page_has_their_services_the_operators_page_every_check_with_its_reason(tmp_path):
    """Issue 16 item 3: the public page is for clients (n8n, the APIs); the servers' own checks
    (backups, disks, capacity) and the reasons as written go on /ops/, behind a login — with
    URLs and passwords hidden even there."""
    cfg = make_cfg(tmp_path, [
        {"name": "n8n", "type": "http", "url": "http://127.0.0.1:9/", "description": "Automations"},
        {"name": "supabase-db", "type": "postgres", "dsn": "postgresql://x", "query": "select 1"},
        {"name": "backup-n8n1", "type": "heartbeat", "max_age_minutes": 1560, "audience": "operators"}])
    now = ts("2025-03-03T06:00:00Z")
    with Store(cfg.db) as store:
        store.record_result("n8n", now - 60, Result(True, 10, ""), tz=UTC)
        leak = "connection to postgresql://postgres:hunter22@db.internal:5432/postgres failed: password=hunter22"
        store.record_result("supabase-db", now - 60, Result(False, 5, leak), tz=UTC)
        store.record_result("backup-n8n1", now - 60, Result(False, None, "no ping for 27 h (max 26 h)"), tz=UTC)
        public = statuspage.write(cfg, store, now)
    assert [s["name"] for s in public["services"]] == ["n8n", "supabase-db"]
    assert public["summary"]["text"] == "1 of 2 services down"
    assert (json.loads((tmp_path / "www" / "status.json").read_text())["services"][1]["reason"]
            == "the service is not working as expected")
    page = (tmp_path / "www" / "index.html").read_text()
    assert "backup-n8n1" not in page and "hunter22" not in page
    assert not (tmp_path / "www" / "ops").exists()  # beside the public page's folder, not in it
    ops = json.loads((tmp_path / "ops" / "status.json").read_text())
    assert [s["name"] for s in ops["services"]] == ["n8n", "supabase-db", "backup-n8n1"]
    assert ops["summary"]["text"] == "2 of 3 services down" and ops["title"] == "Mottivme <status> — operators"
    reasons = {s["name"]: s["reason"] for s in ops["services"]}
    assert reasons["backup-n8n1"] == "no ping for 27 h (max 26 h)"
    assert reasons["supabase-db"] == "connection to <url> failed: password=<hidden>"
    ops_page = (tmp_path / "ops" / "index.html").read_text()
    assert "backup-n8n1" in ops_page and "hunter22" not in ops_page and "db.internal" not in ops_page
    bad = {"name": "x", "type": "http", "url": "http://127.0.0.1:9/", "audience": "team"}
    with pytest.raises(config.ConfigError, match="'audience' must be one of public, operators"):
        make_cfg(tmp_path, [bad])
