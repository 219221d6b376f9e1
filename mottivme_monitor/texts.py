"""What the monitor says to people, in the configuration's `language`: "pt-BR" (the deploy's
default, group_data monitor_language: the team and its clients read Portuguese and live in São
Paulo) or "en". In Portuguese, times are on the configuration's clock (`timezone`); in English
the alerts' times stay in UTC, as before, while posted incidents (with their offset) and the
status page's days are on the configuration's clock in both languages. Identifiers (check names, states in status.json, the published
reasons' fixed vocabulary) are not translated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from . import clock

LANGUAGES = ("pt-BR", "en")

_TEXT = {
    "en": {
        "DOWN": "DOWN", "WARNING": "WARNING", "STILL": "STILL {word}",
        "resolved_title": "[RESOLVED] {check} is up again after {duration}",
        "outage": "Outage: {start} – {end} ({duration})",
        "last_error": "Last error: {reason}",
        "alert_title": "[{label} {duration}] {check}: {reason} — since {start}",
        "reason": "Reason: {reason}",
        "down_since": "Down since: {start} ({duration})",
        "since": "Since: {start} ({duration})",
        "status_page": "Status page: {url}",
        # the clients' channel
        "client_resolved": "[Resolved] {what} is working again",
        "client_resolved_body": "{what} was unavailable from {start} to {end} ({duration}).",
        "client_down": "[Investigating] {what} is unavailable",
        # a reason in plain words, for the clients (reasons.plain)
        "plain_http": "the service answered with an error, {code}", "plain_timeout": "the service did not answer in time",
        "plain_unreachable": "the service could not be reached", "plain_slow": "the service is answering slowly",
        "plain_certificate": "a problem with the service's security certificate",
        "plain_other": "the service is not working as expected",
        "plain_unchecked": "the monitor could not check the service",
        "client_down_body": "{what} has been unavailable since {start} ({reason}). Our team is working on it; "
                            "we will post updates.",
        "status": " Status: {url}",
        "update_state": {"investigating": "Investigating", "identified": "Identified", "monitoring": "Monitoring",
                         "resolved": "Resolved"},
        "affected": "Affected: {services}.",
        "eta": "Expected resolution: {eta}.",
        "updated": "Updated {at}.",
        # the status page
        "services_down": "{down} of {total} services down",
        "operational": "All systems operational",
        "under_maintenance": "{n} under maintenance",
        "warnings": "{n} warning{s}",
        "page_down_since": "Down since {start}", "page_warning_since": "Warning since {start}",
        "page_maintenance_until": "Maintenance until {end}", "page_up": "Up", "page_unknown": "No data yet",
        "no_uptime": "no uptime data yet", "uptime_30d": "{pct} uptime over 30 days",
        "cell_maintenance": "maintenance", "cell_no_data": "no data",
        "incidents": "Incidents", "past_incidents": "Past incidents", "open_incidents": "Open incidents",
        "incident_history": "Incident history", "none": "None.", "ongoing": "ongoing",
        "maintenance": "Maintenance", "all_services": "all services",
        "th_service": "Service", "th_start": "Start", "th_end": "End", "th_duration": "Duration",
        "th_last_error": "Last error", "th_reason": "Reason",
        "affects": "Affects: {services}.", "expected": "Expected resolution: {eta}",
        "footer": "Generated {at}. Uptime = up results / results outside maintenance, per day ({zone}).",
        "legend": "Last 30 days, one bar a day ({zone}), oldest on the left:",
        "legend_keys": (("d100", "no failure"), ("d99", "99 % or more"), ("d95", "95 % or more"),
                        ("dlow", "less"), ("dmaint", "maintenance"), ("", "no data")),
        "axis_today": "today, {date}",
        "response_time": "response time, last {n} checks: {last} ms now, {max} ms at most",
        "ops_title": "{title} — operators",
        # the team's reminder to post an update, and the post-mortem's skeleton
        "update_due": "[UPDATE DUE] incident #{id} ({title}): no update posted for {quiet}",
        "update_due_body": "Services: {services}. Last update {at}: {last}",
        "update_due_how": "Post one (with an estimate): mottivme-monitor incident update {id} --message '...' --eta 30m",
        "pm_down": "monitor: {check} down", "pm_down_why": "monitor: {check} down ({reason})",
        "pm_up": "monitor: {check} up again after {duration}",
        "pm_sent": "sent to {channel} ({outcome}): {message}",
        "pm_posted": "posted, {status}: {message}{eta}", "pm_eta": " (expected resolution {eta})",
        "pm_rows": ("Services", "Impact", "Clients affected", "First failure seen by the monitor", "Incident posted",
                    "Resolved", "Updates posted"),
        "pm_unknown": "unknown", "pm_not_yet": "not yet", "pm_after": "{at} ({duration} after the first failure)",
        "pm_head": ("# Post-mortem: incident #{id} — {title}", "",
                    "Write it within a day of the resolution and review it with the team (SOP 05, Post-incidente).",
                    "Times are {tz}."),
        "pm_body": ("## Timeline", "", "From the monitor's history and the updates posted:"),
        "pm_sections": ("## What happened", "", "_The cause, and how it was found._", "",
                        "## What we did", "", "_What fixed it; what was tried before._", "",
                        "## What went well, what did not", "", "_Detection, communication, the runbooks._", "",
                        "## Prevention plan", "", "| Action | Owner | Due |", "|---|---|---|", "| | | |", "",
                        "## Review", "", "Reviewed with the team on: ____  by: ____", ""),
    },
    "pt-BR": {
        "DOWN": "FORA DO AR", "WARNING": "ALERTA", "STILL": "AINDA {word}",
        "resolved_title": "[RESOLVIDO] {check} voltou após {duration}",
        "outage": "Indisponível: {start} – {end} ({duration})",
        "last_error": "Último erro: {reason}",
        "alert_title": "[{label} {duration}] {check}: {reason} — desde {start}",
        "reason": "Motivo: {reason}",
        "down_since": "Fora do ar desde: {start} ({duration})",
        "since": "Desde: {start} ({duration})",
        "status_page": "Página de status: {url}",
        "client_resolved": "[Resolvido] {what} voltou a funcionar",
        "client_resolved_body": "{what} ficou indisponível de {start} a {end} ({duration}).",
        "client_down": "[Investigando] {what} está indisponível",
        "plain_http": "o serviço respondeu com um erro, {code}", "plain_timeout": "o serviço não respondeu a tempo",
        "plain_unreachable": "não foi possível conectar ao serviço", "plain_slow": "o serviço está respondendo devagar",
        "plain_certificate": "um problema no certificado de segurança do serviço",
        "plain_other": "o serviço não está funcionando como esperado",
        "plain_unchecked": "o monitor não conseguiu verificar o serviço",
        "client_down_body": "{what} está indisponível desde {start} ({reason}). Nossa equipe já está "
                            "trabalhando nisso; publicaremos atualizações.",
        "status": " Status: {url}",
        "update_state": {"investigating": "Investigando", "identified": "Causa identificada",
                         "monitoring": "Monitorando", "resolved": "Resolvido"},
        "affected": "Afetados: {services}.",
        "eta": "Previsão de solução: {eta}.",
        "updated": "Atualizado em {at}.",
        "services_down": "{down} de {total} serviços fora do ar",
        "operational": "Todos os sistemas funcionando",
        "under_maintenance": "{n} em manutenção",
        "warnings": "{n} alerta{s}",
        "page_down_since": "Fora do ar desde {start}", "page_warning_since": "Alerta desde {start}",
        "page_maintenance_until": "Em manutenção até {end}", "page_up": "Funcionando",
        "page_unknown": "Sem dados ainda",
        "no_uptime": "sem dados de disponibilidade ainda", "uptime_30d": "{pct} de disponibilidade em 30 dias",
        "cell_maintenance": "manutenção", "cell_no_data": "sem dados",
        "incidents": "Incidentes", "past_incidents": "Incidentes anteriores", "open_incidents": "Incidentes em aberto",
        "incident_history": "Histórico de incidentes", "none": "Nenhum.", "ongoing": "em andamento",
        "maintenance": "Manutenção", "all_services": "todos os serviços",
        "th_service": "Serviço", "th_start": "Início", "th_end": "Fim", "th_duration": "Duração",
        "th_last_error": "Último erro", "th_reason": "Motivo",
        "affects": "Afeta: {services}.", "expected": "Previsão de solução: {eta}",
        "footer": "Gerado em {at}. Disponibilidade = verificações com sucesso / verificações fora de "
                  "manutenção, por dia ({zone}).",
        "legend": "Últimos 30 dias, uma barra por dia ({zone}), o mais antigo à esquerda:",
        "legend_keys": (("d100", "sem falhas"), ("d99", "99 % ou mais"), ("d95", "95 % ou mais"),
                        ("dlow", "menos"), ("dmaint", "manutenção"), ("", "sem dados")),
        "axis_today": "hoje, {date}",
        "response_time": "tempo de resposta, últimas {n} verificações: {last} ms agora, no máximo {max} ms",
        "ops_title": "{title} — equipe",
        "update_due": "[ATUALIZAÇÃO PENDENTE] incidente #{id} ({title}): nenhuma atualização há {quiet}",
        "update_due_body": "Serviços: {services}. Última atualização {at}: {last}",
        "update_due_how": "Publique uma (com previsão): mottivme-monitor incident update {id} --message '...' --eta 30m",
        "pm_down": "monitor: {check} fora do ar", "pm_down_why": "monitor: {check} fora do ar ({reason})",
        "pm_up": "monitor: {check} voltou após {duration}",
        "pm_sent": "enviado para {channel} ({outcome}): {message}",
        "pm_posted": "publicado, {status}: {message}{eta}", "pm_eta": " (previsão de solução {eta})",
        "pm_rows": ("Serviços", "Impacto", "Clientes afetados", "Primeira falha vista pelo monitor",
                    "Incidente publicado", "Resolvido", "Atualizações publicadas"),
        "pm_unknown": "desconhecido", "pm_not_yet": "ainda não",
        "pm_after": "{at} ({duration} após a primeira falha)",
        "pm_head": ("# Post-mortem: incidente #{id} — {title}", "",
                    "Escreva-o até um dia depois da resolução e revise-o com a equipe (SOP 05, Post-incidente).",
                    "Horários: {tz}."),
        "pm_body": ("## Linha do tempo", "", "Do histórico do monitor e das atualizações publicadas:"),
        "pm_sections": ("## O que aconteceu", "", "_A causa, e como foi encontrada._", "",
                        "## O que fizemos", "", "_O que resolveu; o que foi tentado antes._", "",
                        "## O que funcionou, o que não funcionou", "", "_Detecção, comunicação, os runbooks._", "",
                        "## Plano de prevenção", "", "| Ação | Responsável | Prazo |", "|---|---|---|", "| | | |", "",
                        "## Revisão", "", "Revisado com a equipe em: ____  por: ____", ""),
    },
}


@dataclass(frozen=True)
class Say:
    """The texts of one language, and its clock for times."""

    lang: str = "en"
    timezone: str = "UTC"

    def __call__(self, key: str, **kw) -> str:
        return _TEXT[self.lang][key].format(**kw)

    def raw(self, key: str):
        return _TEXT[self.lang][key]

    def hm(self, ts: int, now: int | None = None) -> str:
        """A time for an alert: English '03:12 UTC' (clock.hm); Portuguese on the configured clock,
        '00:12', or '02/12 00:12' when not on the same day as `now`."""
        if self.lang == "en":
            return clock.hm(ts, now)
        tz = ZoneInfo(self.timezone)
        dt = datetime.fromtimestamp(ts, tz)
        if now is not None and datetime.fromtimestamp(now, tz).date() == dt.date():
            return dt.strftime("%H:%M")
        return dt.strftime("%d/%m %H:%M")

    def local(self, ts: int | None) -> str:
        """A time for the clients and the posted incidents, on the configured clock: English
        '2026-12-03 00:45 -03' (with its offset), Portuguese '03/12/2026 00:45'; '—' for none."""
        if ts is None:
            return "—"
        dt = datetime.fromtimestamp(ts, ZoneInfo(self.timezone))
        if self.lang != "en":
            return dt.strftime("%d/%m/%Y %H:%M")
        text = dt.strftime("%Y-%m-%d %H:%M %z")
        return text[:-2] if text.endswith("00") else text

    def at(self, iso_text: str | None) -> str:
        """A posted incident's time (ISO with the reader's offset): English '2026-12-03 00:45
        (UTC-03:00)', Portuguese '03/12/2026 00:45'."""
        if not iso_text:
            return "—"
        if self.lang == "en":
            return f"{iso_text[:16].replace('T', ' ')} (UTC{iso_text[16:]})"
        return self.when(iso_text)

    def day(self, iso_date: str, year: bool = False) -> str:
        """A day of the 30-day bars ('2025-03-01'): English as it is; Portuguese '01/03' ('01/03/2025'
        with `year`)."""
        if self.lang == "en":
            return iso_date
        y, m, d = iso_date[:10].split("-")
        return f"{d}/{m}/{y}" if year else f"{d}/{m}"

    def when(self, iso_text: str | None) -> str:
        """An ISO time ('2025-03-01T10:00:00Z') for the page: English '2025-03-01 10:00 UTC';
        Portuguese '01/03/2025 07:00' on the configured clock."""
        if not iso_text:
            return "—"
        if self.lang == "en":
            return iso_text[:16].replace("T", " ") + " UTC"
        dt = datetime.fromtimestamp(clock.parse_iso(iso_text), UTC).astimezone(ZoneInfo(self.timezone))
        return dt.strftime("%d/%m/%Y %H:%M")


ENGLISH = Say()
