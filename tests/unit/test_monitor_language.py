"""Portuguese (the deploy's monitor_language): the team's alerts, the clients' notices and the
status page say it in pt-BR, on São Paulo's clock; in English the alerts' times stay in UTC. The
status page's days are the configured clock's in both."""

import json
import re

import pytest

from mottivme_monitor import clock, config, reports
from mottivme_monitor.store import Incident
from mottivme_monitor.texts import Say
from sandbox.receivers import Service, WebhookReceiver, at, cli, write_config

SP = "America/Sao_Paulo"  # 03:12 UTC (T0) is 00:12 there


def pt_config(tmp_path, service, hooks, **top):
    channels = {"whatsapp": {"apprise": hooks.url("/whatsapp").replace("http://", "json://")}}
    ladder = {"steps": [{"after_minutes": 5, "channels": ["whatsapp"]}], "reminder_minutes": 60,
              "recovery_successes": 1}
    checks = [{"name": "n8n", "type": "http", "url": service.url(), "timeout_seconds": 2,
               "description": "Automações (n8n)"}]
    return write_config(tmp_path, checks, channels, ladder, language="pt-BR", timezone=SP,
                        public_url="https://status.example.test/", **top)


def test_the_team_is_paged_in_portuguese_on_sao_paulos_clock(tmp_path):
    with WebhookReceiver() as hooks, Service(status=503) as service:
        path = pt_config(tmp_path, service, hooks)
        for minute in (0, 4, 5):
            assert cli(path, "run", "--now", at(minute))[0] == 0
        (page,) = hooks.paths("/whatsapp")
        assert page.json["title"] == "[FORA DO AR 5 min] n8n: HTTP 503 — desde 00:12"
        assert page.json["message"].splitlines() == [
            "n8n: Automações (n8n)", "Motivo: HTTP 503", "Fora do ar desde: 01/03 00:12 (5 min)",
            "Página de status: https://status.example.test/"]
        cli(path, "run", "--now", at(65))
        assert hooks.paths("/whatsapp")[-1].json["title"] == "[AINDA FORA DO AR 65 min] n8n: HTTP 503 — desde 00:12"
        service.status = 200
        cli(path, "run", "--now", at(70))
        resolved = hooks.paths("/whatsapp")[-1].json
        assert resolved["title"] == "[RESOLVIDO] n8n voltou após 70 min"
        assert "Indisponível: 00:12 – 01:22 (70 min)" in resolved["message"]
        assert "Último erro: HTTP 503" in resolved["message"]


def test_the_status_page_speaks_portuguese_with_a_legend_and_a_date_axis(tmp_path):
    with WebhookReceiver() as hooks, Service(status=503) as service:
        path = pt_config(tmp_path, service, hooks)
        for minute in (0, 1, 2):
            cli(path, "run", "--now", at(minute))
        page = (tmp_path / "www" / "index.html").read_text()
    # the last response times as an inline line (no script), three checks so far
    points = re.search(r'<svg class="times"[^>]*><polyline points="([^"]+)"/></svg>', page)[1]
    assert len(points.split()) == 3
    assert re.search(r"tempo de resposta, últimas 3 verificações: [0-9]+ ms agora, no máximo [0-9]+ ms", page)
    assert '<html lang="pt-BR">' in page
    assert "1 de 1 serviços fora do ar" in page and "Fora do ar desde 01/03/2025 00:12" in page
    assert "Últimos 30 dias, uma barra por dia (America/Sao_Paulo), o mais antigo à esquerda:" in page
    assert "sem falhas" in page and "<span>31/01</span><span>hoje, 01/03</span>" in page  # the axis: its dates
    assert 'title="01/03/2025: ' in page  # a day's bar: its date, in Portuguese
    assert "Histórico de incidentes" not in page and "Incidentes em aberto" in page
    assert "Gerado em 01/03/2025 00:14." in page
    assert "UTC</" not in page.replace("(UTC)", "")  # no time shown in UTC


def test_the_30_bars_are_the_readers_days(tmp_path):
    """A check at 00:02 UTC on 1 March is 21:02 on 28 February in São Paulo: it counts in the bar of
    the 28th there (the page's clock), not in the UTC day's; "today" is São Paulo's."""
    with WebhookReceiver() as hooks, Service(status=200) as service:
        path = pt_config(tmp_path, service, hooks)
        for minute in (-190, 0):  # 2025-02-28 21:02 and 2025-03-01 00:12 in São Paulo
            cli(path, "run", "--now", at(minute))
        doc = json.loads((tmp_path / "www" / "status.json").read_text())
        page = (tmp_path / "www" / "index.html").read_text()
        days = {d["date"]: d["results"] for d in doc["services"][0]["days"]}
        assert (days["2025-02-28"], days["2025-03-01"]) == (1, 1)
        assert doc["services"][0]["days"][-1]["date"] == "2025-03-01"
        assert "per day (America/Sao_Paulo)" in doc["uptime_definition"]
        assert "<span>hoje, 01/03</span>" in page
        cli(path, "run", "--now", at(170))  # 06:02 UTC, 03:02 there: the same day in both
        doc = json.loads((tmp_path / "www" / "status.json").read_text())
    assert doc["services"][0]["days"][-1] == {"date": "2025-03-01", "uptime": 100.0, "results": 2, "maintenance": 0}


def test_the_clients_hear_of_an_outage_in_portuguese():
    say = Say("pt-BR", SP)
    t0 = clock.parse_iso(at(0))
    incident = Incident(id=1, check="supabase-db", started=t0, reason="HTTP 503", last_step=0, last_notified=None,
                        channels=[], recovered=t0 + 1200, resolved=None, resolve_pending=[])
    title, body = reports.outage_notice("supabase-db", "Banco de dados", incident, t0 + 900, "https://s.test/",
                                        say)
    assert title == "[Investigando] Banco de dados está indisponível"
    assert body == ("Banco de dados está indisponível desde 01/03/2025 00:12 (o serviço respondeu com um erro, "
                    "HTTP 503). Nossa equipe já está trabalhando nisso; publicaremos atualizações. Status: https://s.test/")
    title, body = reports.outage_notice("supabase-db", "Banco de dados", incident, t0 + 1300, "", say,
                                        resolved=True)
    assert title == "[Resolvido] Banco de dados voltou a funcionar"
    assert body == "Banco de dados ficou indisponível de 01/03/2025 00:12 a 01/03/2025 00:32 (20 min)."


def test_an_unknown_language_is_refused_naming_the_choices(tmp_path):
    path = write_config(tmp_path, [{"name": "x", "type": "http", "url": "http://127.0.0.1:1/"}],
                        {"whatsapp": {"apprise": ""}, "email": {"apprise": ""}, "phone": {"apprise": ""}},
                        language="es")
    with pytest.raises(config.ConfigError, match="'language': 'es' is not one of pt-BR, en"):
        config.load(str(path))


def test_the_teams_reminder_and_the_post_mortem_in_portuguese():
    from mottivme_monitor.store import Report, Update

    say, t0 = Say("pt-BR", SP), clock.parse_iso(at(0))
    updates = (Update(id=2, report_id=3, ts=t0 + 900, status="resolved", message="Voltou ao normal", eta=None),
               Update(id=1, report_id=3, ts=t0, status="investigating", message="Leads esperando", eta=t0 + 1800))
    report = Report(id=3, title="Automações atrasadas", impact="Leads esperam 30 min", services=["n8n"], clients=12,
                    opened=t0, resolved=t0 + 900, reminded=None, postmortem="", updates=updates)
    title, body = reports.reminder(report, t0 + 1800, say)
    assert title == "[ATUALIZAÇÃO PENDENTE] incidente #3 (Automações atrasadas): nenhuma atualização há 15 min"
    assert body.splitlines()[0] == "Serviços: n8n. Última atualização 01/03/2025 00:27: Voltou ao normal"
    text = reports.postmortem(report, [], [], say)
    assert text.startswith("# Post-mortem: incidente #3 — Automações atrasadas\n")
    assert "| Clientes afetados | 12 |" in text and "| Resolvido | 01/03/2025 00:27 (15 min após a primeira falha) |" in text
    assert "- 01/03/2025 00:12 — publicado, investigando: Leads esperando (previsão de solução 01/03/2025 00:42)" in text
    assert "## Plano de prevenção" in text and "## Linha do tempo" in text


@pytest.mark.parametrize("reason, pt, en", [
    ("HTTP 503", "o serviço respondeu com um erro, HTTP 503", "the service answered with an error, HTTP 503"),
    ("timeout after 10 s", "o serviço não respondeu a tempo", "the service did not answer in time"),
    ("connection refused (10.0.0.5 port 5432)", "não foi possível conectar ao serviço", "the service could not be reached"),
    ("DNS lookup failed: no such host internal.example", "não foi possível conectar ao serviço",
     "the service could not be reached"),
    ("took 6100 ms > 5000 ms", "o serviço está respondendo devagar", "the service is answering slowly"),
    ("certificate expires in 3 days (< 14)", "um problema no certificado de segurança do serviço",
     "a problem with the service's security certificate"),
    ("status is 'token abc', expected 'ok'", "o serviço não está funcionando como esperado",
     "the service is not working as expected"),
    ("database size at 420 MB > 400 MB", "database size at 420 MB > 400 MB", "database size at 420 MB > 400 MB"),
    ("monitor error: ValueError: x", "o monitor não conseguiu verificar o serviço", "the monitor could not check the service"),
    ("", "", ""),
])
def test_the_clients_read_a_reason_in_plain_words_of_their_language(reason, pt, en):
    from mottivme_monitor.reasons import plain

    assert plain(reason, Say("pt-BR", SP)) == pt
    assert plain(reason, Say()) == en
