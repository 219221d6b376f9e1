"""The templates render with every value from group_data, and the results are valid."""

import shutil
import subprocess

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pyinfra.api import HiddenValue

from tasks import groupdata, scaling
from tasks.groupdata import Data
from tasks.n8n import n8n_environment
from tests.conftest import GOOD_SECRETS, ROOT


def group_data(*groups):
    return groupdata.load(*groups)


def render(name, data=None, **ctx):
    """Render as pyinfra's files.template does: the template sees `host.data`."""
    ctx["host"] = type("Host", (), {"data": data or Data()})
    env = Environment(loader=FileSystemLoader(str(ROOT / "templates")), undefined=StrictUndefined,
                      keep_trailing_newline=True)
    return env.get_template(name).render(**ctx)


def compose_config(tmp_path, text, name="docker-compose.yml"):
    """`docker-compose config` of a rendered file (skips when docker-compose is missing)."""
    (tmp_path / name).write_text(text)
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=x\nN8N_ENCRYPTION_KEY=y\nREDIS_PASSWORD=z\nN8N_VERSION=2.41.1\n")
    if not shutil.which("docker-compose"):
        pytest.skip("docker-compose not installed (sandbox/install-host-deps.sh installs it)")
    r = subprocess.run(["docker-compose", "-f", str(tmp_path / name), "config"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def render_compose(d, tier, tunnel=False):
    d = Data(d, n8n_tier=tier)
    s = scaling.settings(d)
    return s, render("docker-compose.yml.j2", data=d, n8n_host="n8n.example.test",
                     public_url="https://n8n.example.test/", scaling=s, tunnel=tunnel,
                     n8n_env=n8n_environment(d, s, "n8n.example.test", "https://n8n.example.test/"))


@pytest.mark.parametrize("groups", [(), ("sandbox",)])
def test_compose_file_is_valid_and_pins_versions(tmp_path, groups):
    d = group_data(*groups)
    _, text = render_compose(d, "bronze")
    assert ":latest" not in text and f"image: {d['n8n_image_repo']}:${{N8N_VERSION}}" in text
    assert "EXECUTIONS_DATA_MAX_AGE: \"720\"" in text  # SOP 05: 30 days of executions
    assert "N8N_BASIC_AUTH" not in text  # does nothing since n8n 1.0
    assert "redis" not in text and "EXECUTIONS_MODE" not in text  # bronze: no queue
    out = compose_config(tmp_path, text)
    # the running version is the one in .env (the deploy writes it, an emergency deploy changes it)
    assert f"image: {d['n8n_image_repo']}:2.41.1" in out
    # PostgreSQL and n8n publish no port; only Caddy's 80/443 are published
    published = [line for line in out.splitlines() if "published:" in line]
    assert sorted(x.split(":")[1].strip() for x in published) == ["443", "80"]


def test_prata_adds_redis_and_a_worker_on_the_main_server(tmp_path):
    s, text = render_compose(group_data(), "prata")
    assert s.main_services == ["n8n", "n8n-worker-1"]
    out = compose_config(tmp_path, text)
    assert "EXECUTIONS_MODE: queue" in out and "QUEUE_BULL_REDIS_HOST: redis" in out
    assert "- worker" in out and "--concurrency=10" in out
    assert "redis-server -" in out and "requirepass $$REDIS_PASSWORD" in out  # password on stdin, not argv
    published = [line for line in out.splitlines() if "published:" in line]
    assert sorted(x.split(":")[1].strip() for x in published) == ["443", "80"], "Redis is not published"


def test_ouro_publishes_redis_and_postgres_on_loopback_only_for_the_tunnel(tmp_path):
    s, text = render_compose(group_data(), "ouro", tunnel=True)
    assert s.main_services == ["n8n"] and s.server_services == ["n8n-worker-1", "n8n-worker-2"]
    out = compose_config(tmp_path, text)
    assert "- 127.0.0.1:5432:5432/tcp" in out and "- 127.0.0.1:6379:6379/tcp" in out
    published = [line for line in out.splitlines() if "published:" in line]
    assert sorted(x.split(":")[1].strip() for x in published) == ["443", "80"], "nothing else on a public address"


def test_platina_spreads_webhooks_over_the_processors():
    d = Data(group_data(), n8n_tier="platina")
    s = scaling.settings(d)
    _, text = render_compose(group_data(), "platina", tunnel=True)
    assert "N8N_DISABLE_PRODUCTION_MAIN_PROCESS" in text and '["webhook"]' in text
    caddy = render("Caddyfile.j2", data=d, n8n_host="n8n.example.test", scaling=s)
    assert "handle /webhook/*" in caddy and "n8n-webhook-1:5678 n8n-webhook-2:5678" in caddy


def test_worker_server_compose(tmp_path):
    d = Data(group_data(), n8n_tier="ouro")
    s = scaling.settings(d)
    text = render("docker-compose-worker.yml.j2", data=d, scaling=s,
                  n8n_env=n8n_environment(d, s, "n8n.example.test", "https://n8n.example.test/", remote=True))
    out = compose_config(tmp_path, text)
    assert out.count("network_mode: host") == 2 and out.count(f"image: {d['n8n_image_repo']}:2.41.1") == 2
    assert "QUEUE_HEALTH_CHECK_PORT: '5681'" in out.replace('"', "'") and "5682" in out
    assert "DB_POSTGRESDB_HOST: 127.0.0.1" in out and "QUEUE_BULL_REDIS_HOST: 127.0.0.1" in out


def test_env_file_holds_the_secrets():
    secrets = {k: HiddenValue(v) for k, v in GOOD_SECRETS.items()}
    text = render("n8n.env.j2", secrets=secrets, queue_mode=False, n8n_version="2.41.1")
    assert "\nN8N_VERSION=2.41.1\n" in text
    assert f"N8N_ENCRYPTION_KEY={GOOD_SECRETS['N8N_ENCRYPTION_KEY']}" in text
    assert f"DB_POSTGRESDB_PASSWORD={GOOD_SECRETS['POSTGRES_PASSWORD']}" in text
    assert "*MASKED*" not in text


def test_firewall_opens_only_configured_ports():
    text = render("firewall.nft.j2", data=group_data())
    assert "tcp dport { 22, 80, 443 } accept" in text
    assert "policy drop" in text
    assert not any(line.strip().startswith("flush") for line in text.splitlines())


@pytest.mark.parametrize("groups,tls", [((), None), (("sandbox",), "tls internal")])
def test_caddyfile(groups, tls):
    d = group_data(*groups)
    text = render("Caddyfile.j2", data=d, n8n_host="n8n.example.test", scaling=scaling.settings(d))
    assert "n8n.example.test {" in text and "reverse_proxy n8n:5678" in text
    assert (tls in text) if tls else ("tls " not in text)


def test_cron_runs_the_host_programs():
    cron = render("cron-n8n.j2", data=group_data())
    assert "17 3 * * * root /usr/local/sbin/n8n-backup" in cron
    assert "41 4 * * 0 root /usr/local/sbin/n8n-supabase-cleanup" in cron
    assert "n8n-restore --drill" in cron


def test_no_template_holds_a_program():
    """Templates are configuration only: the programs are mottivme_host (tested in tests/unit/mottivme_host)."""
    scripts = sorted(p.name for p in (ROOT / "templates").iterdir()
                     if p.read_text().startswith("#!") and not p.name.endswith(".nft.j2"))  # nft: a ruleset
    assert scripts == ["mottivme-monitor.sh.j2"]  # the monitor's launcher: issue 11 moves it next


@pytest.mark.parametrize("groups,site,tls", [((), "status.mottivme.com.br {", None),
                                            (("sandbox",), "localhost {", "tls internal")])
def test_monitor_caddyfile_serves_the_page_and_the_pings(groups, site, tls):
    d = group_data(*groups)
    text = render("Caddyfile-monitor.j2", data=d)
    assert site in text and f"root * {d['monitor_state_dir']}/www" in text
    assert f"reverse_proxy {d['monitor_ping_listen']}" in text and "handle /ping/*" in text
    assert (tls in text) if tls else ("tls " not in text)


def test_monitor_units_and_command(tmp_path):
    d = group_data()
    ctx = dict(data=d, venv="/opt/mottivme-monitor/venv", lib="/opt/mottivme-monitor/lib",
               config="/etc/mottivme-monitor/config.json", secrets="/etc/mottivme-monitor/secrets.env")
    run = render("mottivme-monitor.service.j2", **ctx)
    assert "Type=oneshot" in run and "User=mottivme-monitor" in run
    assert "EnvironmentFile=/etc/mottivme-monitor/secrets.env" in run
    assert "-m mottivme_monitor --config /etc/mottivme-monitor/config.json run" in run
    assert "OnUnitActiveSec=60s" in render("mottivme-monitor.timer.j2", **ctx)
    assert " serve" in render("mottivme-monitor-ping.service.j2", **ctx)
    script = tmp_path / "mottivme-monitor"
    script.write_text(render("mottivme-monitor.sh.j2", **ctx))
    r = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "*/5 * * * * root /usr/local/sbin/mottivme-report-disk" in render("cron-monitor-reports.j2", data=d)
