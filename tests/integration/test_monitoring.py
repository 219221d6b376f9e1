"""The monitor host: installed by deploy.py, watching the real n8n, the Supabase stand-in and the
n8n server's reports; paging through a real receiver; silenced by the runbooks."""

import base64
import datetime as dt
import json
import re
import time

import pytest

from tests.helpers import monitor_status, run_pyinfra

RECEIVER_PORT = 8599
STATUS_HOST = "status.sbx.test"  # group_data/sandbox.py monitor_status_host
# a webhook receiver on the monitor host stands in for WhatsApp's API (apprise's json:// posts to it)
RECEIVER = f"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # the dead man's switch (healthchecks.io's protocol)
        with open('/tmp/itest-whatsapp.log', 'ab') as f:
            f.write(b'GET ' + self.path.encode() + b'\\n')
        self.send_response(200); self.end_headers(); self.wfile.write(b'OK')
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        with open('/tmp/itest-whatsapp.log', 'ab') as f:
            f.write(self.path.encode() + b' ' + body.replace(b'\\n', b' ') + b'\\n')
        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')
http.server.HTTPServer(('127.0.0.1', {RECEIVER_PORT}), H).serve_forever()
"""


def service(doc: dict, name: str) -> dict:
    return next(s for s in doc["services"] if s["name"] == name)


def at(minutes: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).isoformat(timespec="seconds")


@pytest.fixture
def paused_monitor(monitor, first_deploy):
    """The monitor with its timer stopped (the test drives the clock) and a WhatsApp stand-in."""
    monitor.sh("systemctl stop mottivme-monitor.timer")
    monitor.sh("cp -a /etc/mottivme-monitor/secrets.env /root/monitor-secrets.keep && "
               f"echo \"MONITOR_WHATSAPP_URL='json://127.0.0.1:{RECEIVER_PORT}/whatsapp'\" >> /etc/mottivme-monitor/secrets.env && "
               f"echo \"MONITOR_DEADMAN_URL='http://127.0.0.1:{RECEIVER_PORT}/deadman/itest-uuid'\" "
               ">> /etc/mottivme-monitor/secrets.env")
    code = base64.b64encode(RECEIVER.encode()).decode()
    monitor.sh(f"echo {code} | base64 -d > /root/itest-receiver.py && "
               "systemd-run --unit itest-whatsapp python3 /root/itest-receiver.py && rm -f /tmp/itest-whatsapp.log")
    yield monitor
    monitor.sh("systemctl stop itest-whatsapp", check=False)
    monitor.sh("mv /root/monitor-secrets.keep /etc/mottivme-monitor/secrets.env")
    monitor.sh("systemctl start mottivme-monitor.timer")


def messages(monitor, about: str = "n8n", channel: str = "/whatsapp") -> list[str]:
    """The titles of the messages about one check on one channel (the driven clock also ages the
    other checks' heartbeats), in the deploy's language (monitor_language pt-BR):
    "[FORA DO AR 5 min] n8n: HTTP 502 — desde ..." and "[RESOLVIDO] n8n voltou após ..."."""
    titles = [json.loads(m[len(channel) + 1:]).get("title", "")
              for m in monitor.sh("cat /tmp/itest-whatsapp.log 2>/dev/null || true").splitlines()
              if m.startswith(channel + " ")]
    return [t for t in titles if t.split("] ", 1)[-1].startswith((f"{about}: ", f"{about} voltou"))]


def n8n_down(n8n_server):
    n8n_server.sh("mottivme-host compose stop n8n")


def n8n_up(n8n_server):
    n8n_server.sh("mottivme-host compose up -d n8n && "
                  "for i in $(seq 120); do curl -skf --resolve localhost:443:127.0.0.1 "
                  "https://localhost/healthz/readiness >/dev/null && exit 0; sleep 1; done; exit 1")


def test_monitor_watches_the_stack_and_the_reports(seeded, monitor, n8n_server, vault, supabase_host):
    """deploy.py set up the monitor: timer, receiver and Caddy run; the n8n server's backup
    heartbeat and disk report arrive; every default check that has its variables is up, the
    capacity checks included; a capacity limit crossed is a warning, not an outage."""
    assert monitor.sh("systemctl is-active mottivme-monitor.timer mottivme-monitor-ping caddy").split() == ["active"] * 3
    n8n_server.sh("n8n-backup --no-offsite --check --tag manual")
    for server in (n8n_server, vault, monitor):  # every managed server reports its disk, memory and CPU
        server.sh("mottivme-report-disk; sleep 1; mottivme-report-disk")  # the first has no CPU sample to compare
    n8n_server.sh("n8n-supabase-cleanup")
    n8n_server.sh("n8n-restore --drill --snapshot deadbeef", check=False)  # a drill that fails
    monitor.sh("mottivme-monitor run")
    doc = monitor_status(monitor)
    name = n8n_server.name
    for check in ("n8n", "supabase-db", f"backup-{name}", f"disk-{name}"):
        assert service(doc, check)["state"] == "up", service(doc, check)
    # the scheduled jobs report to checks of their own, every server its disk and memory: pinged
    # (no grace "no ping yet" reason)
    reports = [f"{kind}-{server.name}" for server in (n8n_server, vault, monitor) for kind in ("disk", "memory", "cpu")]
    for check in (f"check-{name}", f"cleanup-{name}", *reports):
        assert (service(doc, check)["state"], service(doc, check)["reason"]) == ("up", ""), service(doc, check)
    drill = service(doc, f"drill-{name}")
    # the operators' page (behind its login): the reason as the server sent it
    assert drill["state"] == "warning", drill
    assert drill["reason"].startswith("reported failure: restore drill failed: find snapshot: no snapshot 'deadbeef'"), drill
    assert "rest:" not in drill["reason"].replace("rest:<url>", ""), drill  # the vault's URL (its password) hidden
    assert "reported failure: restore drill failed: find snapshot: no snapshot 'deadbeef'" in \
        monitor.sh("mottivme-monitor status")  # the operators' view on the monitor host: all of it
    # the clients' page: their services only, reasons in the fixed vocabulary; /ops/ needs the login
    public = {s["name"] for s in monitor_status(monitor, "public")["services"]}
    assert {"n8n", "supabase-db"} <= public and not any(s.split("-")[0] in ("backup", "drill", "disk") for s in public)
    ops = monitor.sh(f"curl -sk -o /dev/null -w '%{{http_code}}' --resolve {STATUS_HOST}:443:127.0.0.1 "
                     f"https://{STATUS_HOST}/ops/status.json")
    assert ops == "401", ops
    assert "Todos os sistemas funcionando" in doc["summary"]["text"]  # a warning is not an outage
    # checks whose variables are not set in the sandbox (Railway, GoHighLevel...) are left out
    assert not {"gohighlevel", "socialfy"} & {s["name"] for s in doc["services"]}
    assert f"disk-{name}" in monitor.sh("mottivme-monitor status")
    # capacity (SOP 05, Escalabilidade): SQL on the Supabase stand-in, within its limits
    for check in ("supabase-size", "supabase-connections", "supabase-slow-queries", "leads-per-day"):
        assert (service(doc, check)["state"], service(doc, check)["reason"]) == ("up", ""), service(doc, check)
    # three statements running for more than a second on the stand-in: over the slow-queries limit (2)
    supabase_host.sh("for i in 1 2 3; do nohup docker exec supabase-db psql -U postgres -qc 'select pg_sleep(15)' "
                     ">/dev/null 2>&1 & done; sleep 3")
    checked = {c["name"]: c for c in json.loads(monitor.sh("mottivme-monitor check --json", check=False))}
    slow = checked["supabase-slow-queries"]
    assert (slow["state"], slow["reason"]) == ("WARNING", "slow queries at 3 queries > 2 queries"), slow
    assert checked["supabase-connections"]["state"] == "UP", checked["supabase-connections"]
    # connections past 80 % of the stand-in's max_connections: a warning that names the share in use
    sql = "docker exec supabase-db psql -U postgres -Atqc"
    most = int(supabase_host.sh(f"{sql} 'show max_connections'").strip())
    busy = most * 85 // 100
    supabase_host.sh(f"docker exec -d supabase-db sh -c 'for i in $(seq {busy}); do "
                     "psql -U postgres -qc \"select pg_sleep(60) -- itest connections\" & done; wait'")
    try:
        sleeping = "select count(*) from pg_stat_activity where query like '%itest connections%' and pid <> pg_backend_pid()"
        for _ in range(60):
            if int(supabase_host.sh(f"{sql} \"{sleeping}\"").strip()) >= busy:
                break
            time.sleep(0.5)
        checked = {c["name"]: c for c in json.loads(monitor.sh("mottivme-monitor check --json", check=False))}
        conn = checked["supabase-connections"]
        share = re.fullmatch(r"connections at (\d+) ?% > 80 ?%", conn["reason"])
        assert conn["state"] == "WARNING" and share and 85 <= int(share[1]) <= 100, conn
    finally:
        supabase_host.sh(f"{sql} \"select count(pg_terminate_backend(pid)) from pg_stat_activity where query like "
                         "'%itest connections%' and pid <> pg_backend_pid()\"")
    # 150 new leads today: more than tier bronze's 100 a day -> a warning by e-mail, not a page
    stand_in = "docker exec supabase-db psql -U postgres -v ON_ERROR_STOP=1 -Atqc"
    supabase_host.sh(f"{stand_in} \"insert into conversation_history (lead_id, role, message) "
                     "select 900000 + g, 'user', 'itest lead' from generate_series(1, 150) g\"")
    try:
        monitor.sh("mottivme-monitor run")
        leads = service(monitor_status(monitor), "leads-per-day")
        assert leads["state"] == "warning", leads
        assert leads["reason"] == re.search(r"leads per day at 15\d leads > 100 leads", leads["reason"])[0], leads
        assert re.search(r"leads-per-day\s.*leads per day at 15\d leads > 100 leads",
                         monitor.sh("mottivme-monitor status")), monitor.sh("mottivme-monitor status")
        assert "Todos os sistemas funcionando" in monitor_status(monitor)["summary"]["text"]
    finally:
        supabase_host.sh(f"{stand_in} \"delete from conversation_history where message = 'itest lead'\"")


def test_outage_pages_once_the_status_page_stays_up_and_recovery_is_announced(paused_monitor, n8n_server, sandbox_env):
    monitor = paused_monitor
    n8n_down(n8n_server)
    try:
        monitor.sh(f"mottivme-monitor run --now {at(1)}")
        monitor.sh(f"mottivme-monitor run --now {at(3)}")
        assert messages(monitor) == [], "nobody is paged before 5 minutes"
        doc = monitor_status(monitor)  # served by the monitor's Caddy while n8n is down
        assert service(doc, "n8n")["state"] == "down"
        hc = run_pyinfra(["-y", "inventory.py", "runbooks/health_check.py"], sandbox_env)
        assert hc.returncode != 0 and "n8n" in hc.stdout + hc.stderr
        monitor.sh(f"mottivme-monitor run --now {at(7)}")
        monitor.sh(f"mottivme-monitor run --now {at(8)}")
        sent = messages(monitor)
        assert len(sent) == 1 and sent[0].startswith("[FORA DO AR ") and "] n8n: " in sent[0], sent
    finally:
        n8n_up(n8n_server)
    monitor.sh(f"mottivme-monitor run --now {at(9)}")
    monitor.sh(f"mottivme-monitor run --now {at(10)}")
    monitor.sh(f"mottivme-monitor run --now {at(11)}")
    sent = messages(monitor)
    assert len(sent) == 2 and sent[1].startswith("[RESOLVIDO] n8n voltou após "), sent
    assert service(monitor_status(monitor), "n8n")["state"] == "up"
    # every round, outage or not, told the dead man's switch outside that the monitor is alive
    pings = [m for m in monitor.sh("cat /tmp/itest-whatsapp.log").splitlines() if m.startswith("GET /deadman/")]
    assert pings == ["GET /deadman/itest-uuid"] * 7, pings
    hc = run_pyinfra(["-y", "inventory.py", "runbooks/health_check.py"], sandbox_env)
    assert hc.returncode == 0, hc.stdout[-2000:] + hc.stderr[-2000:]


def test_the_n8n_server_pages_when_the_monitor_falls_silent_and_once_when_it_is_back(monitor, first_deploy, n8n_server):
    """Who watches the monitor (monitor_watch): the n8n server runs the monitor's own program on
    one check, the monitor's status page; the page an hour old (the monitor's timer stopped) is
    down, paged after silent_minutes on the watch's WhatsApp channel, once; the monitor back, one
    "resolved"."""
    assert n8n_server.sh("systemctl is-active mottivme-monitor.timer").strip() == "active"
    n8n_server.sh("systemctl stop mottivme-monitor.timer && rm -f /var/lib/mottivme-monitor/state.sqlite && "
                  "cp -a /etc/mottivme-monitor/secrets.env /root/watch-secrets.keep && "
                  f"echo \"MONITOR_WHATSAPP_URL='json://127.0.0.1:{RECEIVER_PORT}/whatsapp'\" "
                  ">> /etc/mottivme-monitor/secrets.env")
    code = base64.b64encode(RECEIVER.encode()).decode()
    n8n_server.sh(f"echo {code} | base64 -d > /root/itest-receiver.py && "
                  "systemd-run --unit itest-whatsapp python3 /root/itest-receiver.py && rm -f /tmp/itest-whatsapp.log")
    monitor.sh("systemctl stop mottivme-monitor.timer && sed -i -E "
               "'s/\"generated_at\": \"[^\"]+\"/\"generated_at\": \"2026-01-01T00:00:00Z\"/' "
               "/var/lib/mottivme-monitor/www/status.json")
    try:
        n8n_server.sh(f"mottivme-monitor run --now {at(0)} && mottivme-monitor run --now {at(9)}")
        assert messages(n8n_server, "monitor") == [], "nobody is paged before 10 minutes"
        n8n_server.sh(f"mottivme-monitor run --now {at(10)} && mottivme-monitor run --now {at(11)}")
        (sent,) = messages(n8n_server, "monitor")
        assert "[FORA DO AR 10 min] monitor: generated_at is " in sent and " old, expected at most 3 min" in sent, sent
    finally:
        monitor.sh("systemctl start mottivme-monitor.timer && mottivme-monitor run >/dev/null")
    n8n_server.sh(f"mottivme-monitor run --now {at(12)} && mottivme-monitor run --now {at(13)}")
    sent = messages(n8n_server, "monitor")
    assert len(sent) == 2 and "[RESOLVIDO] monitor voltou após 12 min" in sent[1], sent
    n8n_server.sh("systemctl stop itest-whatsapp; mv /root/watch-secrets.keep /etc/mottivme-monitor/secrets.env && "
                  "systemctl start mottivme-monitor.timer")


def test_maintenance_window_silences_and_the_restart_runbook_opens_one(paused_monitor, n8n_server, sandbox_env):
    monitor = paused_monitor
    r = run_pyinfra(["-y", "inventory.py", "runbooks/maintenance.py", "--data", "checks=n8n", "--data", "minutes=60",
                     "--data", "reason=itest"], sandbox_env)
    assert r.returncode == 0, r.stderr[-2000:]
    n8n_down(n8n_server)
    try:
        for minute in (21, 27, 37):  # 16 minutes of outage inside the window
            monitor.sh(f"mottivme-monitor run --now {at(minute)}")
        assert messages(monitor) == []
    finally:
        n8n_up(n8n_server)
    r = run_pyinfra(["-y", "inventory.py", "runbooks/maintenance.py", "--data", "action=end", "--data", "checks=n8n"],
                    sandbox_env)
    assert r.returncode == 0, r.stderr[-2000:]
    monitor.sh(f"mottivme-monitor run --now {at(38)}")

    # the restart runbook opens a window before it restarts n8n and closes it afterwards
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restart_n8n.py"], sandbox_env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    out = r.stdout + r.stderr
    assert out.index("maintenance start (n8n)") < out.index("restart n8n and wait") < out.index("maintenance end (n8n)")
    assert "n8n" not in monitor.sh("mottivme-monitor maintenance list").replace("no maintenance", "")


def test_a_secret_due_for_rotation_warns_by_email_not_by_page_and_the_rotation_clears_it(
        paused_monitor, n8n_server, sandbox_env):
    monitor, check = paused_monitor, f"secrets-{n8n_server.name}"
    monitor.sh(f"echo \"MONITOR_EMAIL_URL='json://127.0.0.1:{RECEIVER_PORT}/email'\" >> /etc/mottivme-monitor/secrets.env")
    # the deploy started the count; 85 days pass for restic's password (days of the server's own
    # clock zone, as secret-age counts them: UTC's date is a day ahead from 21:00 in Sao Paulo)
    assert "RESTIC_PASSWORD: 0 days old" in n8n_server.sh("mottivme-host secret-age")
    n8n_server.sh("python3 -c \"import json, datetime as d; p = '/var/lib/mottivme/secret-ages.json'; "
                  "r = json.load(open(p)); r['secrets']['RESTIC_PASSWORD']['since'] = "
                  "str(d.date.today() - d.timedelta(days=85)); json.dump(r, open(p, 'w'))\"")
    out = n8n_server.sh("mottivme-host secret-age --report")
    assert "! RESTIC_PASSWORD: 85 days old" in out and "rotate it (mottivme rotate-secrets)" in out
    assert "WARN  secret age: RESTIC_PASSWORD 85 days old" in n8n_server.sh("mottivme-host doctor", check=False)

    monitor.sh(f"mottivme-monitor run --now {at(1)}")
    monitor.sh(f"mottivme-monitor run --now {at(2)}")
    warned = messages(monitor, check, "/email")
    assert len(warned) == 1 and "oldest secret at 85 days" in warned[0], warned
    assert messages(monitor, check, "/whatsapp") == [], "a secret's age is a warning, never a page"
    assert "oldest secret at 85 days" in service(monitor_status(monitor), check)["reason"]

    r = run_pyinfra(["-y", "inventory.py", "runbooks/rotate_secrets.py", "--data", "secrets=restic"], sandbox_env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "RESTIC_PASSWORD: 0 days old" in n8n_server.sh("mottivme-host secret-age")
    monitor.sh(f"mottivme-monitor run --now {at(3)}")  # the rotation reported the new age itself
    sent = messages(monitor, check, "/email")
    assert len(sent) == 2 and sent[1].startswith("[RESOLVIDO] "), sent
    assert service(monitor_status(monitor), check)["state"] == "up"


def test_the_team_posts_an_incident_the_page_and_the_clients_get_it_and_resolving_leaves_a_postmortem(
        paused_monitor, sandbox_env):
    """runbooks/incident.py from this machine, as the on-call engineer runs it: the post is on the
    status page Caddy serves, the team's and the clients' channels get it, 15 quiet minutes ask
    the team for an update, and the resolution leaves a post-mortem on the monitor."""
    monitor = paused_monitor
    monitor.sh(f"echo \"MONITOR_CLIENTS_URL='json://127.0.0.1:{RECEIVER_PORT}/clients'\" "
               ">> /etc/mottivme-monitor/secrets.env")
    r = run_pyinfra(["-y", "inventory.py", "runbooks/incident.py", "--data", "services=n8n",
                     "--data", "title=Automations delayed", "--data", "impact=New leads wait up to 30 min",
                     "--data", "clients=12", "--data", "eta=45m", "--data", "notify_clients=yes"], sandbox_env)
    assert r.returncode == 0 and "incident #1 opened: Automations delayed" in r.stdout + r.stderr, r.stdout[-3000:]
    doc = monitor_status(monitor, "public")  # the clients' status.json, through the monitor's Caddy
    (posted,) = [p for p in doc["reports"] if p["title"] == "Automations delayed"]
    assert posted["status"] == "investigating" and posted["updates"][0]["eta"].endswith("-03:00")
    assert "clients" not in posted
    log = monitor.sh("cat /tmp/itest-whatsapp.log")
    assert "/clients " in log and "[Investigando] Automations delayed" in log
    assert "/whatsapp " in log

    monitor.sh(f"mottivme-monitor run --now {at(16)}")
    titles = [json.loads(line.split(" ", 1)[1]).get("title", "")
              for line in monitor.sh("cat /tmp/itest-whatsapp.log").splitlines() if line.startswith("/whatsapp ")]
    assert any(t.startswith("[ATUALIZAÇÃO PENDENTE] incidente #1 (Automations delayed)") for t in titles), titles

    r = run_pyinfra(["-y", "inventory.py", "runbooks/incident.py", "--data", "action=resolve", "--data", "id=1",
                     "--data", "message=Back to normal"], sandbox_env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    path = re.search(r"post-mortem skeleton: (\S+\.md)", r.stdout + r.stderr)[1]
    postmortem = monitor.sh(f"cat {path}")
    assert "# Post-mortem: incidente #1 — Automations delayed" in postmortem and "| Clientes afetados | 12 |" in postmortem
    assert ("publicado, investigando: New leads wait up to 30 min" in postmortem
            and "publicado, resolvido: Back to normal" in postmortem), postmortem
    assert monitor_status(monitor)["reports"][0]["resolved"]
