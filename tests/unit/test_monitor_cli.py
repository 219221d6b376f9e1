"""The CLI as the operator and the systemd units use it: exit codes, config errors, maintenance, status."""

import json

import pytest

from mottivme_monitor import config
from mottivme_monitor.tokens import server_token
from sandbox.receivers import Service, WebhookReceiver, at, cli, cli_process, dead_port, write_config

CHANNELS = {"whatsapp": {"apprise": ""}, "email": {"apprise": ""}, "phone": {"apprise": ""}}


def test_check_exits_0_when_all_up_and_1_when_one_is_down_and_records_nothing(tmp_path):
    with Service() as up:
        cfg = write_config(tmp_path, [{"name": "n8n", "type": "http", "url": up.url(), "timeout_seconds": 2}],
                           CHANNELS)
        proc = cli_process(cfg, "check")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "n8n" in proc.stdout and " UP " in proc.stdout

        down = [{"name": "n8n", "type": "http", "url": up.url(), "timeout_seconds": 2},
                {"name": "api", "type": "http", "url": f"http://127.0.0.1:{dead_port()}/", "timeout_seconds": 2}]
        cfg = write_config(tmp_path, down, CHANNELS)
        proc = cli_process(cfg, "check")
        assert proc.returncode == 1
        line = next(li for li in proc.stdout.splitlines() if li.startswith("api"))
        assert "DOWN" in line and "connection refused" in line
        code, out = cli(cfg, "check", "--json")
        assert code == 1
        assert {r["name"]: r["state"] for r in json.loads(out)} == {"n8n": "UP", "api": "DOWN"}
    code, out = cli(cfg, "status", "--json")
    assert [s["state"] for s in json.loads(out)["services"]] == ["unknown", "unknown"]   # check records nothing


@pytest.mark.parametrize("content,problem", [
    (None, "file not found"),
    ("{not json", "invalid JSON at line 1"),
    (json.dumps({"db": "x", "www_dir": "y", "channels": CHANNELS, "checks": []}), "'checks' must be a non-empty list"),
    (json.dumps({"db": "x", "www_dir": "y", "checks": [{"name": "a", "type": "heartbeat", "max_age_minutes": 5}]}),
     "default ladder.steps[0]: channel 'whatsapp' is not defined in 'channels'"),
    (json.dumps({"db": "x", "www_dir": "y", "channels": {"whatsapp": {"apprise": ""}},
                 "ladder": {"steps": [{"after_minutes": 5, "channels": ["sms"]}]},
                 "checks": [{"name": "a", "type": "heartbeat", "max_age_minutes": 5}]}),
     "ladder.steps[0]: channel 'sms' is not defined in 'channels'"),
    (json.dumps({"db": "x", "www_dir": "y", "channels": CHANNELS,
                 "checks": [{"name": "a", "type": "http", "url": "http://h/", "expected_status": [200]}]}),
     "checks[0] (a): unknown key 'expected_status'"),
    (json.dumps({"db": "x", "www_dir": "y", "channels": CHANNELS,
                 "checks": [{"name": "a", "type": "http", "url": "http://h/", "sender": "n1"}]}),
     "checks[0] (a): unknown key 'sender'"),   # heartbeats only: nothing else takes pings
    (json.dumps({"db": "x", "www_dir": "y", "channels": CHANNELS,
                 "checks": [{"name": "a", "type": "heartbeat", "max_age_minutes": 5, "sender": ""}]}),
     "checks[0] (a): 'sender' must be a non-empty string (the inventory name of the server"),
    (json.dumps({"db": "x", "www_dir": "y", "channels": CHANNELS,
                 "checks": [{"name": "a", "type": "heartbeat", "max_age_minutes": 5, "sender": ["n1"]}]}),
     "checks[0] (a): 'sender' must be a string"),
])
def test_bad_config_exits_2_naming_the_file_and_the_problem(tmp_path, capsys, content, problem):
    path = tmp_path / "monitor.json"
    if content is None:                       # one of them as a real process, the rest in-process
        proc = cli_process(path, "run")
        code, err = proc.returncode, proc.stderr
    else:
        path.write_text(content)
        code, _ = cli(path, "run")
        err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0, "one line"
    assert err.startswith(f"error: {path}: ") and problem in err


def test_env_vars_are_expanded_and_an_empty_channel_is_skipped(tmp_path):
    raw = {"db": "${MON_DIR}/state.sqlite", "www_dir": "${MON_DIR}/www", "ping_token": "${MON_TOKEN}",
           "channels": {"whatsapp": {"apprise": "${MON_WA}"}, "email": {"apprise": "${MON_UNSET_VAR}"},
                        "phone": {"type": "webhook", "url": "${MON_UNSET_VAR}", "form": {"To": "${MON_TO}"}}},
           "checks": [{"name": "db", "type": "postgres", "dsn": "${MON_UNSET_VAR}"}]}
    expanded = config.expand_env(raw, {"MON_DIR": "/srv", "MON_TOKEN": "t0k", "MON_WA": "json://127.0.0.1:1/x",
                                       "MON_TO": "+55"})
    cfg = config.parse(expanded)
    assert (cfg.db, cfg.ping_token, cfg.channels["phone"].form) == ("/srv/state.sqlite", "t0k", {"To": "+55"})
    assert cfg.channels["whatsapp"].enabled and not cfg.channels["email"].enabled
    assert not cfg.channels["phone"].enabled and cfg.checks[0].spec["dsn"] == ""

    with WebhookReceiver() as hooks, Service(status=503) as svc:
        path = write_config(tmp_path, [{"name": "n8n", "type": "http", "url": svc.url(), "timeout_seconds": 2}],
                            {"whatsapp": {"apprise": "${MON_WA}"}, "email": {"apprise": "${MON_UNSET_VAR}"}},
                            {"steps": [{"after_minutes": 0, "channels": ["whatsapp", "email"]}]})
        proc = cli_process(path, "run", "--now", at(0),
                           env={"MON_WA": hooks.url("/wa").replace("http://", "json://")})
        assert proc.returncode == 0, proc.stderr
        assert "notify n8n -> email: skipped (its URL is empty)" in proc.stdout
        assert "notify n8n -> whatsapp: sent" in proc.stdout
        assert len(hooks.paths("/wa")) == 1


def test_maintenance_commands_are_idempotent_and_validate_names(tmp_path):
    cfg = write_config(tmp_path, [{"name": "n8n", "type": "heartbeat", "max_age_minutes": 5},
                                  {"name": "db", "type": "heartbeat", "max_age_minutes": 5}], CHANNELS)
    code, out = cli(cfg, "maintenance", "start", "n8n", "db", "--minutes", 30, "--reason", "upgrade", "--now", at(0))
    assert code == 0 and out.count("started, until 2025-03-01T03:42:00Z") == 2
    code, out = cli(cfg, "maintenance", "start", "n8n", "--minutes", 60, "--reason", "longer", "--now", at(10))
    assert "n8n: replaced, now until 2025-03-01T04:22:00Z (longer)" in out
    code, out = cli(cfg, "maintenance", "list", "--now", at(11))
    assert "n8n" in out and "longer" in out and "db" in out
    code, out = cli(cfg, "maintenance", "end", "db", "--now", at(12))
    assert code == 0 and "db: ended" in out
    code, out = cli(cfg, "maintenance", "end", "db", "--now", at(13))
    assert code == 0 and "db: nothing was open" in out
    code, out = cli(cfg, "maintenance", "list", "--now", at(80))          # expired by itself
    assert "no maintenance window is open" in out
    code, out = cli(cfg, "maintenance", "end", "--all", "--now", at(80))
    assert code == 0 and "nothing was open" in out
    assert cli(cfg, "maintenance", "start", "typo", "--minutes", 5, "--reason", "x")[0] == 2
    code, out = cli(cfg, "maintenance", "start", "*", "--minutes", 5, "--reason", "all", "--now", at(90))
    assert "maintenance *: started" in out
    code, out = cli(cfg, "status", "--now", at(91))
    assert "MAINTENANCE" in out and "maintenance: * until" in out


def test_run_prints_one_line_per_check_and_writes_the_page(tmp_path):
    with Service() as svc:
        cfg = write_config(tmp_path, [{"name": "n8n", "type": "http", "url": svc.url(), "timeout_seconds": 2},
                                      {"name": "backup", "type": "heartbeat", "max_age_minutes": 1560}], CHANNELS)
        code, out = cli(cfg, "run", "--now", at(0))
        code, out2 = cli(cfg, "run", "--now", at(26 * 60 + 1))  # still no ping a day and 2 h later
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("n8n") and " UP " in lines[0]
    assert lines[1].startswith("backup") and " UP " in lines[1] and "no ping yet" in lines[1]
    assert (tmp_path / "www" / "index.html").stat().st_mode & 0o644 == 0o644
    assert not [p for p in (tmp_path / "www").iterdir() if p.name.startswith(".tmp")]
    assert "backup" in out2 and "never pinged" in out2
    code, out = cli(cfg, "status", "--now", at(26 * 60 + 2))
    assert "1 of 2 services down" in out


def test_status_on_the_monitor_host_shows_the_operators_checks_too(tmp_path):
    """`mottivme-monitor status` is the operators' view: the checks the clients' page leaves out too."""
    with Service() as svc:
        cfg = write_config(tmp_path, [{"name": "n8n", "type": "http", "url": svc.url(), "timeout_seconds": 2},
                                      {"name": "backup-n1", "type": "heartbeat", "max_age_minutes": 1560,
                                       "audience": "operators"}], CHANNELS)
        cli(cfg, "run", "--now", at(0))
    code, out = cli(cfg, "status", "--now", at(1))
    assert "backup-n1" in out and "n8n" in out


def test_operators_see_the_full_reason_on_the_monitor_host_the_page_its_kind(tmp_path):
    cfg = write_config(tmp_path, [{"name": "db", "type": "postgres", "dsn": "postgresql://u:pw@127.0.0.1:9/db",
                                   "timeout_seconds": 2}], CHANNELS)
    cli(cfg, "run", "--now", at(0))
    code, out = cli(cfg, "status", "--now", at(1))
    assert "connection refused (127.0.0.1 port 9)" in out  # `mottivme-monitor status`: everything
    page = json.loads((tmp_path / "www" / "status.json").read_text())
    assert page["services"][0]["reason"] == "the service could not be reached"  # the clients': its kind, in plain words


def test_a_warning_alone_is_not_a_failed_health_check(tmp_path):
    with Service() as svc:
        cfg = write_config(tmp_path, [
            {"name": "n8n", "type": "http", "url": svc.url(), "timeout_seconds": 2},
            {"name": "secrets-n1", "type": "heartbeat", "max_age_minutes": 60, "severity": "warning"}], CHANNELS)
        cli(cfg, "run", "--now", at(0))
        code, out = cli(cfg, "check", "--now", at(120))  # the warning check: never pinged
        code_json, out_json = cli(cfg, "check", "--json", "--now", at(120))
    assert code == 0 and code_json == 0, out
    line = next(x for x in out.splitlines() if x.startswith("secrets-n1"))
    assert " WARNING " in line and "never pinged" in line
    assert {d["name"]: d["state"] for d in json.loads(out_json)} == {"n8n": "UP", "secrets-n1": "WARNING"}


def test_token_prints_a_servers_token_and_names_the_fix_otherwise(tmp_path, capsys):
    beats = [{"name": "backup-n1", "type": "heartbeat", "max_age_minutes": 5, "sender": "n1"},
             {"name": "disk-v1", "type": "heartbeat", "max_age_minutes": 5, "sender": "v1"},
             {"name": "manual", "type": "heartbeat", "max_age_minutes": 5}]
    cfg = write_config(tmp_path, beats, CHANNELS, ping_token="master-token-0123456789")
    code, out = cli(cfg, "token", "n1")
    assert code == 0 and out == server_token("master-token-0123456789", "n1") + "\n"
    assert "master-token" not in out and out != cli(cfg, "token", "v1")[1]
    capsys.readouterr()
    assert cli(cfg, "token", "n9") == (2, "")
    assert capsys.readouterr().err == ("error: no heartbeat check has sender 'n9' (senders: n1, v1); "
                                       "a check without a sender takes the master ping_token\n")
    cfg = write_config(tmp_path, beats, CHANNELS, ping_token="")
    assert cli(cfg, "token", "n1") == (2, "")
    assert "'ping_token' is empty (is MONITOR_PING_TOKEN set?)" in capsys.readouterr().err


def test_every_round_pings_the_dead_mans_switch_and_a_failed_ping_never_names_its_url(tmp_path):
    """Something outside watches the monitor (healthchecks.io's protocol): each round that runs to
    its end GETs deadman_url; a switch that does not answer is one line without the URL (its path
    is the switch's secret), and the round's work is done all the same."""
    with Service(status=503) as svc, WebhookReceiver() as switch:
        url = switch.url("/ping/6f1c0e1a-secret-uuid")
        cfg = write_config(tmp_path, [{"name": "n8n", "type": "http", "url": svc.url(), "timeout_seconds": 2}],
                           CHANNELS, deadman_url=url)
        for k in range(3):  # a round with a check down is still a round: the monitor itself is alive
            assert cli(cfg, "run", "--now", at(k))[0] == 0
        assert [r.method for r in switch.paths("/ping/6f1c0e1a-secret-uuid")] == ["GET"] * 3
        switch.status = 500
        code, out = cli(cfg, "run", "--now", at(3))
    assert code == 0 and "deadman: the dead man's switch ping failed (HTTP 500)" in out
    code, out = cli(write_config(tmp_path, [{"name": "n8n", "type": "heartbeat", "max_age_minutes": 5}], CHANNELS,
                                 deadman_url=f"http://127.0.0.1:{dead_port()}/ping/6f1c0e1a-secret-uuid"),
                    "run", "--now", at(4))
    assert code == 0 and "dead man's switch ping failed" in out and "6f1c0e1a" not in out
    status = json.loads((tmp_path / "www" / "status.json").read_text())
    assert "6f1c0e1a" not in json.dumps(status)  # nor on the status page
    with pytest.raises(config.ConfigError, match="'deadman_url' must be an http"):
        config.parse({"db": "x", "www_dir": "y", "channels": CHANNELS, "deadman_url": "hc-ping.com/uuid",
                      "checks": [{"name": "a", "type": "heartbeat", "max_age_minutes": 5}]})


def test_a_switch_that_is_not_http_or_dribbles_is_a_short_reason_in_bounded_time():
    """A dead man's switch answering something that is not HTTP, or one byte at a time, costs the
    round at most the ping's timeout and one short reason, never a traceback."""
    import socket
    import threading
    import time

    from mottivme_monitor import notify

    def serve(answer) -> int:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()

        def run():
            conn, _ = srv.accept()
            conn.recv(1024)
            answer(conn)
            conn.close()
            srv.close()

        threading.Thread(target=run, daemon=True).start()
        return srv.getsockname()[1]

    port = serve(lambda c: c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n"))
    assert notify.ping_deadman(f"http://127.0.0.1:{port}/ping/uuid", timeout=2) == "not an HTTP answer (BadStatusLine)"

    def dribble(c):
        for b in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
            try:
                c.sendall(bytes([b]))
            except OSError:
                return
            time.sleep(0.3)

    port = serve(dribble)
    t0 = time.monotonic()
    assert notify.ping_deadman(f"http://127.0.0.1:{port}/ping/uuid", timeout=1) == "no answer within 1 s"
    assert time.monotonic() - t0 < 10  # the whole answer, not each byte, is bounded: dribbled, it would take 30 s
