"""What the deploy hands the monitor host: pinned packages, the ${VAR}s and their 0600 file; and
what it hands each server: heartbeat URLs with that server's own token, for its own checks."""

import hashlib
import hmac
import json
import threading
import urllib.error
import urllib.request

import pytest

from mottivme_monitor import config as monitor_config
from mottivme_monitor.clock import iso, real_now
from mottivme_monitor.server import make_server
from mottivme_monitor.tokens import server_token
from sandbox.receivers import Service, SmtpReceiver, WebhookReceiver, at, cli
from tasks import backup, groupdata, monitoring, settings
from tests.helpers import PROJECT_VARS, images_lock


def test_requirements_are_pinned_and_extras_split():
    reqs = monitoring.requirements()
    assert reqs and all("==" in r for r in reqs)
    assert not any("[" in r for r in reqs), "pip.packages compares names: extras are split into packages"


def test_variables_of_checks_and_channels():
    check = {"url": "https://${SUPABASE_PROJECT_REF}.supabase.co/", "headers": {"apikey": "${SUPABASE_ANON_KEY}"}}
    assert monitoring.variables(check) == {"SUPABASE_PROJECT_REF", "SUPABASE_ANON_KEY"}
    assert monitoring.variables({"url": "https://example.test/$HOME"}) == set()


def test_secrets_file_holds_only_set_variables_single_quoted(monkeypatch):
    monkeypatch.setenv("MONITOR_PING_TOKEN", "tok-123")
    monkeypatch.setenv("MONITOR_EMAIL_URL", "mailtos://u:p$w@smtp.example.test")
    monkeypatch.delenv("MONITOR_WHATSAPP_URL", raising=False)
    conf = {"ping_token": "${MONITOR_PING_TOKEN}",
            "channels": {"email": {"apprise": "${MONITOR_EMAIL_URL}"}, "wa": {"apprise": "${MONITOR_WHATSAPP_URL}"}}}
    text = monitoring.secrets_env(conf)
    assert "MONITOR_PING_TOKEN='tok-123'" in text
    assert "MONITOR_EMAIL_URL='mailtos://u:p$w@smtp.example.test'" in text
    assert "MONITOR_WHATSAPP_URL" not in text


def test_a_quote_in_a_secret_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("MONITOR_PING_TOKEN", "it's")
    with pytest.raises(ValueError, match="MONITOR_PING_TOKEN"):
        monitoring.secrets_env({"ping_token": "${MONITOR_PING_TOKEN}"})


# -- one heartbeat token per server ----------------------------------------------------

MASTER = "master-ping-token-0123456789abcdef"


class FakeHost:
    """An inventory host as tasks/ reads it: name, groups, group_data."""

    def __init__(self, name: str, *group_names: str):
        self.name, self.groups = name, list(group_names)
        self.data = groupdata.load(*[g for g in group_names if (groupdata.DIR / f"{g}.py").exists()])
        self.data["images_lock"] = images_lock(self.data)  # the inventory adds it to every host's data


class FakeInventory:
    def __init__(self, hosts):
        self.hosts = hosts

    def get_group(self, name, default=None):
        return [h for h in self.hosts if name in h.groups] or default


@pytest.fixture
def fleet(monkeypatch):
    """Two n8n servers, a worker server, the vault and the monitor; MONITOR_PING_TOKEN set."""
    hosts = [FakeHost("n1", "n8n_servers"), FakeHost("n2", "n8n_servers"), FakeHost("w1", "n8n_workers"),
             FakeHost("v1", "backup_vault"), FakeHost("mon", "monitors")]
    for name in PROJECT_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MONITOR_PING_TOKEN", MASTER)
    for module in (monitoring, backup):
        monkeypatch.setattr(module, "inventory", FakeInventory(hosts))
    return hosts


def on(monkeypatch, h: FakeHost) -> None:
    """Render as pyinfra does while it works on host `h`."""
    for module in (monitoring, backup):
        monkeypatch.setattr(module, "host", h)


def urls_of(h: FakeHost) -> dict[str, str]:
    """Every heartbeat URL host `h`'s host-program settings hold: {check name (or /fail): URL}."""
    r = monitoring.report_settings()
    urls = [r["disk_url"], r["memory_url"], r["cpu_url"], r.get("queue_url", ""), r.get("secrets_url", ""),
            *r.get("jobs", {}).values()]
    if "n8n_servers" in h.groups:
        b = backup.backup_settings()
        urls += [b["success_hook"], b["failure_hook"]]
    return {u.split("/ping/", 1)[1].split("/", 1)[1]: u for u in urls if u}


def test_the_token_is_hmac_of_the_master_and_the_server_name():
    want = hmac.new(MASTER.encode(), b"mottivme-ping:n1", hashlib.sha256).hexdigest()[:48]
    assert server_token(MASTER, "n1") == want
    assert len({server_token(MASTER, "n1"), server_token(MASTER, "n2"), server_token("other" + MASTER, "n1")}) == 3
    with pytest.raises(ValueError, match="MONITOR_PING_TOKEN"):
        server_token("", "n1")


def test_every_rendered_heartbeat_check_names_its_sender(fleet, monkeypatch):
    on(monkeypatch, fleet[-1])
    conf, _ = monitoring.config(settings.Monitor.from_data(fleet[-1].data), "America/Sao_Paulo")
    beats = [c for c in conf["checks"] if c["type"] == "heartbeat"]
    assert {c["name"] for c in beats} >= {"backup-n1", "secrets-n2", "check-n1", "disk-w1", "memory-v1", "disk-mon"}
    assert all(c["name"].endswith("-" + c["sender"]) for c in beats), [c for c in beats if "sender" not in c]
    assert {c["sender"] for c in beats} == {h.name for h in fleet}
    # a server that stops reporting pages once, for its disk report; its other heartbeats wait on it
    for c in beats:
        assert c.get("inhibited_by") == (None if c["name"].startswith("disk-") else f"disk-{c['sender']}"), c
    cfg = monitor_config.parse(monitor_config.expand_env(conf, {"MONITOR_PING_TOKEN": MASTER}))
    assert cfg.senders() == sorted(h.name for h in fleet)  # the monitor reads the senders the deploy wrote


def test_the_phone_call_speaks_the_language_of_the_alerts(fleet, monkeypatch):
    """group_data's Twilio call: its <Say> reads the alert in monitor_language's voice, and the
    monitor fills the message in as ever."""
    import dataclasses

    from mottivme_monitor.notify import form_fields

    on(monkeypatch, fleet[-1])
    m = settings.Monitor.from_data(fleet[-1].data)
    assert m.language == "pt-BR"
    for language, spoken in (("pt-BR", 'voice="Polly.Camila" language="pt-BR"'),
                             ("en", 'voice="Polly.Joanna" language="en-US"')):
        conf, _ = monitoring.config(dataclasses.replace(m, language=language), "America/Sao_Paulo")
        assert conf["channels"]["phone"]["form"]["Twiml"] == f"<Response><Say {spoken}>{{message}}</Say></Response>"
        cfg = monitor_config.parse(monitor_config.expand_env(conf, {"MONITOR_PING_TOKEN": MASTER}))
        assert form_fields(cfg.channels["phone"], "n8n fora do ar & lento")["Twiml"] == \
            f"<Response><Say {spoken}>n8n fora do ar &amp; lento</Say></Response>"
    assert m.channels["phone"]["form"]["Twiml"].count("{language}") == 1  # group data itself is left as it is


def test_capacity_checks_are_warnings_and_leads_are_measured_against_the_tier(fleet, monkeypatch):
    """SOP 05's scaling numbers: Supabase's SQL checks and leads per day against the tier's upper
    bound, CPU from every server, the queue from an n8n server in queue mode: all warnings."""
    monkeypatch.setenv("SUPABASE_DB_URL", "postgresql://postgres:pw@db.example.test:5432/postgres")
    for h in fleet:
        h.data["monitor_leads_query"] = "select count(*) from leads where created_at > now() - interval '1 day'"
    fleet[1].data["n8n_tier"] = "prata"  # n2 runs n8n's queue (Redis); n1 (the first: the tier's) stays bronze
    on(monkeypatch, fleet[-1])
    conf, _ = monitoring.config(settings.Monitor.from_data(fleet[-1].data), "America/Sao_Paulo")
    by_name = {c["name"]: c for c in conf["checks"]}
    capacity = ["supabase-size", "supabase-connections", "supabase-slow-queries", "leads-per-day",
                *(f"cpu-{h.name}" for h in fleet), "queue-n2"]
    for name in capacity:
        assert by_name[name]["severity"] == "warning", name
        assert by_name[name]["ladder"] == fleet[-1].data["monitor_warning_ladder"], name
    assert "queue-n1" not in by_name  # bronze: no queue
    leads = by_name["leads-per-day"]
    assert (leads["max_value"], leads["value_label"]) == (100, "leads per day")
    assert leads["description"] == "leads per day (tier bronze: up to 100)"
    assert leads["query"].startswith("select count(*) from leads")
    assert by_name["supabase-size"]["max_value"] == 400 and by_name["cpu-n1"]["max_value"] == 80
    cfg = monitor_config.parse(monitor_config.expand_env(conf, {"MONITOR_PING_TOKEN": MASTER}))
    assert cfg.check("leads-per-day").down_word == "WARNING"  # the monitor takes what the deploy wrote
    # the server in queue mode reports its queue, the other does not
    on(monkeypatch, fleet[1])
    assert monitoring.report_settings()["queue_url"].endswith("/queue-n2")
    on(monkeypatch, fleet[0])
    assert "queue_url" not in monitoring.report_settings()
    # no query configured, or a tier without an upper bound: no leads check
    for h in fleet:
        h.data["monitor_leads_query"] = ""
    on(monkeypatch, fleet[-1])
    assert "leads-per-day" not in {c["name"] for c in monitoring.config(settings.Monitor.from_data(fleet[-1].data), "America/Sao_Paulo")[0]["checks"]}
    monkeypatch.delenv("SUPABASE_DB_URL")
    assert "supabase-size" not in {c["name"] for c in monitoring.config(settings.Monitor.from_data(fleet[-1].data), "America/Sao_Paulo")[0]["checks"]}


def test_railway_status_is_checked_only_when_its_url_is_set_and_warns_by_e_mail(fleet, monkeypatch):
    """Railway's own status page: an e-mail warning on the operators' page (monitor_warning_ladder,
    as every warning check without a ladder of its own), and nothing is asked of Railway unless
    RAILWAY_STATUS_URL is set."""
    on(monkeypatch, fleet[-1])
    monkeypatch.delenv("RAILWAY_STATUS_URL", raising=False)
    conf, skipped = monitoring.config(settings.Monitor.from_data(fleet[-1].data), "America/Sao_Paulo")
    assert "railway-status" not in {c["name"] for c in conf["checks"]}
    assert "railway-status (RAILWAY_STATUS_URL not set)" in skipped
    monkeypatch.setenv("RAILWAY_STATUS_URL", "https://api.railwaystatus.com/status")
    conf, skipped = monitoring.config(settings.Monitor.from_data(fleet[-1].data), "America/Sao_Paulo")
    (check,) = [c for c in conf["checks"] if c["name"] == "railway-status"]
    assert check["ladder"] == fleet[-1].data["monitor_warning_ladder"]
    cfg = monitor_config.parse(monitor_config.expand_env(conf, {"MONITOR_PING_TOKEN": MASTER,
                                                               "RAILWAY_STATUS_URL": "https://api.railwaystatus.com/status"}))
    parsed = cfg.check("railway-status")
    assert (parsed.down_word, parsed.audience, parsed.spec["url"]) == ("WARNING", "operators",
                                                                       "https://api.railwaystatus.com/status")


def test_a_servers_urls_carry_its_own_token_for_its_own_checks_never_the_master(fleet, monkeypatch):
    for h in fleet:
        on(monkeypatch, h)
        urls = urls_of(h)
        assert {"disk-" + h.name, "memory-" + h.name, "cpu-" + h.name} <= set(urls)
        if "n8n_servers" in h.groups:
            assert {f"backup-{h.name}", f"backup-{h.name}/fail", f"secrets-{h.name}", f"drill-{h.name}"} <= set(urls)
        for path, url in urls.items():
            assert url == f"https://status.mottivme.com.br/ping/{server_token(MASTER, h.name)}/{path}"
            assert path.split("/")[0].endswith("-" + h.name), "a server pings only checks of its own"
            assert MASTER not in url
        settings_text = json.dumps([monitoring.report_settings(),
                                    backup.backup_settings() if "n8n_servers" in h.groups else {}])
        assert MASTER not in settings_text


def test_the_monitor_takes_each_servers_rendered_urls_and_nobody_elses(fleet, monkeypatch, tmp_path):
    """The contract end to end: the config the deploy renders, served by the real receiver,
    pinged with the URLs the deploy gives each server."""
    on(monkeypatch, fleet[-1])
    conf, _ = monitoring.config(settings.Monitor.from_data(fleet[-1].data), "America/Sao_Paulo")
    conf.update(db=str(tmp_path / "state.sqlite"), www_dir=str(tmp_path / "www"))
    cfg = monitor_config.parse(monitor_config.expand_env(conf, {"MONITOR_PING_TOKEN": MASTER}))
    server = make_server(cfg, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        urls = {}
        for h in fleet:
            on(monkeypatch, h)
            urls[h.name] = {p: u.replace("https://status.mottivme.com.br", base) for p, u in urls_of(h).items()}
        for name, own in urls.items():
            for path, url in own.items():  # (a job not scheduled here has a URL but no check)
                assert get(url) == (200 if cfg.check(path.split("/")[0]) else 404), (name, path)
            assert get(own[f"disk-{name}"]) == 200
        # n1's token on n2's URLs (a leaked n1 fakes nothing of n2's), and the master token
        n1, n2 = server_token(MASTER, "n1"), server_token(MASTER, "n2")
        for path, url in urls["n2"].items():
            assert get(url.replace(n2, n1)) == 403, path
            assert get(url.replace(n2, MASTER)) == 403, path
    finally:
        server.shutdown()
        server.server_close()


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"" if url.endswith("/fail") else None),
                                    timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def test_a_free_form_whatsapp_channel_is_named_without_its_secret():
    """The deploy and `mottivme doctor` warn about a free-form WhatsApp URL (Meta drops it outside
    the recipient's 24-hour window): by channel and variable, never the URL (it holds the token)."""
    from tasks.monitoring import free_form_whatsapp

    channels = {"whatsapp": {"apprise": "${MONITOR_WHATSAPP_URL}"}, "email": {"apprise": "${MONITOR_EMAIL_URL}"}}
    free = {"MONITOR_WHATSAPP_URL": "whatsapp://EAAGsecret999@1234567890/5511999990000",
            "MONITOR_EMAIL_URL": "mailtos://u:p@smtp.example.test"}
    (found,) = free_form_whatsapp(channels, free)
    assert found == "whatsapp (MONITOR_WHATSAPP_URL)" and "EAAGsecret999" not in found
    template = dict(free, MONITOR_WHATSAPP_URL="whatsapp://mottivme_alerta:EAAGsecret999@1234567890/5511999990000"
                                               "?lang=pt_BR&:body=1")
    assert free_form_whatsapp(channels, template) == []
    assert free_form_whatsapp(channels, {}) == []  # a channel that is off warns about nothing


# -- the n8n servers watch the monitor ------------------------------------------------------


def test_an_n8n_server_pages_when_the_monitors_page_goes_silent_and_once_when_it_is_back(fleet, monkeypatch, tmp_path):
    """The watch the deploy renders on an n8n server, run by the monitor's own CLI: the status
    page's generated_at an hour old is "down"; the team is paged after monitor_watch's
    silent_minutes on its channels, not before, not twice; a fresh page is one "resolved"."""
    on(monkeypatch, fleet[0])
    m = settings.Monitor.from_data(fleet[0].data)
    conf = monitoring.watch_config(m, "America/Sao_Paulo")
    (check,) = conf["checks"]
    assert check["url"] == f"https://{m.status_host}/status.json" and "resolve" not in check
    assert check["json"] == [{"path": "generated_at", "max_age_seconds": 3 * m.interval_seconds}]
    silent = m.watch["silent_minutes"]
    assert conf["ladder"]["steps"] == [{"after_minutes": silent, "channels": ["whatsapp", "email"]}]
    with WebhookReceiver() as hooks, SmtpReceiver() as smtp, Service(body={"generated_at": iso(real_now() - 3600)}) as page:
        monkeypatch.setenv("MONITOR_WHATSAPP_URL", hooks.url("/whatsapp").replace("http://", "json://"))
        monkeypatch.setenv("MONITOR_EMAIL_URL", smtp.apprise_url())
        path = tmp_path / "watch.json"
        path.write_text(json.dumps({**conf, "db": str(tmp_path / "db.sqlite"), "www_dir": str(tmp_path / "www"),
                                    "checks": [{**check, "url": page.url()}]}))
        for minute in (0, 5, silent - 1):
            assert cli(path, "run", "--now", at(minute))[0] == 0
        assert not hooks.paths("/whatsapp") and not smtp.messages
        for minute in (silent, silent + 1):
            assert cli(path, "run", "--now", at(minute))[0] == 0
        (sent,) = hooks.paths("/whatsapp")
        # in the deploy's language (monitor_language pt-BR), on São Paulo's clock (03:12 UTC)
        assert sent.json["title"] == (f"[FORA DO AR {silent} min] monitor: generated_at is 60 min old, expected at "
                                      f"most {3 * m.interval_seconds // 60} min — desde 00:12")
        assert len(smtp.messages) == 1
        page.body = {"generated_at": iso(real_now())}
        assert cli(path, "run", "--now", at(silent + 2))[0] == 0
        assert len(hooks.paths("/whatsapp")) == 2 and len(smtp.messages) == 2
        assert hooks.paths("/whatsapp")[-1].json["title"] == f"[RESOLVIDO] monitor voltou após {silent + 2} min"
        assert cli(path, "run", "--now", at(silent + 3))[0] == 0
        assert len(hooks.paths("/whatsapp")) == 2  # nothing more while it is up


def test_a_watch_that_names_no_apprise_channel_stops_the_deploy_naming_the_fix(fleet, monkeypatch):
    on(monkeypatch, fleet[0])
    m = settings.Monitor.from_data(fleet[0].data)
    for bad in ({"silent_minutes": 10, "channels": ["phone"]}, {"silent_minutes": 10, "channels": ["pager"]},
                {"silent_minutes": 10, "channels": []}):
        with pytest.raises(settings.SettingsError, match="'channels' must name channels of monitor_channels with an "
                                                          "apprise URL \\(one of clients, email, whatsapp\\)"):
            monitoring.watch_config(settings.Monitor(**{**m.__dict__, "watch": bad}), "America/Sao_Paulo")
    with pytest.raises(settings.SettingsError, match="'silent_minutes' must be a number of minutes above 0"):
        monitoring.watch_config(settings.Monitor(**{**m.__dict__, "watch": {"silent_minutes": 0, "channels": ["email"]}}),
                                "America/Sao_Paulo")


def test_the_operators_login_is_a_stable_bcrypt_caddy_reads_and_never_the_password():
    import base64

    import bcrypt

    salt_from = "ping-token-0123456789abcdef0123"
    block = monitoring.ops_auth("equipe", "s3cret-ops-password-0123", salt_from)
    assert block == monitoring.ops_auth("equipe", "s3cret-ops-password-0123", salt_from)  # the same file every run
    assert "s3cret" not in block
    user, encoded = block.splitlines()[1].split()
    assert block.startswith("basicauth {\n\t") and user == "equipe"
    hashed = base64.b64decode(encoded)  # Caddy 2.6 (Debian's) reads the hash base64-encoded
    assert bcrypt.checkpw(b"s3cret-ops-password-0123", hashed) and not bcrypt.checkpw(b"other", hashed)
    assert monitoring.ops_auth("equipe", "another-password-000000", salt_from) != block
    # the salt (characters 7-29 of "$2b$08$...") comes from the other secret, not from the
    # password: another password gets the same salt (no fast hash of the password in the file)
    other = base64.b64decode(monitoring.ops_auth("equipe", "another-password-000000", salt_from).split()[3]).decode()
    assert hashed.decode()[:29] == other[:29] and hashed.decode().startswith("$2b$08$")


def test_each_scheduled_job_is_late_on_its_own_schedule_and_then_one_warning(fleet, monkeypatch, tmp_path):
    """The deploy's job checks (weekly repository check and cleanup: 8 days; monthly drill: 32 days)
    are warnings; the drill's, run by the real monitor with the ladder the deploy renders, sends
    one e-mail once it is late, not before, and nothing more that day."""
    from mottivme_monitor.store import Store
    from sandbox.receivers import T0

    on(monkeypatch, fleet[-1])
    conf, _ = monitoring.config(settings.Monitor.from_data(fleet[-1].data), "America/Sao_Paulo")
    jobs = {c["name"]: c for c in conf["checks"] if c["name"] in ("check-n1", "cleanup-n1", "drill-n1")}
    assert {n: c["max_age_minutes"] for n, c in jobs.items()} == {"check-n1": 8 * 1440, "cleanup-n1": 8 * 1440,
                                                                  "drill-n1": 32 * 1440}
    assert all(c["severity"] == "warning" for c in jobs.values())
    with SmtpReceiver() as smtp:
        drill = {k: v for k, v in jobs["drill-n1"].items() if k != "inhibited_by"}  # alone here: no disk report
        config = at_config(tmp_path, [drill], {"email": {"apprise": smtp.apprise_url()}})
        Store(str(tmp_path / "state.sqlite")).add_ping("drill-n1", int(T0.timestamp()))
        late = 32 * 1440
        for minute in (0, late - 1):
            assert cli(config, "run", "--now", at(minute))[0] == 0
        assert smtp.messages == []  # a month and a day is not late yet
        for minute in (late + 1, late + 2, late + 60):
            assert cli(config, "run", "--now", at(minute))[0] == 0
        assert [m.subject.split(" —")[0] for m in smtp.messages] == ["[ALERTA 0 min] drill-n1: no ping for 32 d (max 32 d)"]


def at_config(tmp_path, checks: list, channels: dict):
    from sandbox.receivers import write_config
    return write_config(tmp_path, checks, channels, {"steps": [{"after_minutes": 5, "channels": list(channels)}]},
                        language="pt-BR", timezone="America/Sao_Paulo")
