"""The templates render with every value from group_data, handed to them as the settings objects
of tasks/settings.py (never `host.data`), and the results are valid. Every group_data key is held
by one settings class, or said to be read elsewhere."""

import re
import shutil
import subprocess
from collections import Counter
from dataclasses import FrozenInstanceError, fields

import pytest
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pyinfra.api import HiddenValue
from pyinfra.api.host import HostData

from tasks import groupdata, scaling, settings
from tasks.groupdata import Data
from tasks.n8n import n8n_environment, with_runners
from tests.helpers import GOOD_SECRETS, ROOT, group_data


def of(d, *names):
    """The settings objects `names` ("base", "stack", ...) of group data `d`, as the deploy hands
    them to a template (`files.template(..., stack=..., backup=...)`)."""
    classes = {c.__name__.lower(): c for c in settings.CLASSES}
    return {n: classes[n].from_data(d) for n in names}


class NoHostData:
    def __getattr__(self, name):
        raise AssertionError(f"a template read host.data.{name}: hand it a settings object (tasks/settings.py)")


def render(name, **ctx):
    """Render as pyinfra's files.template does (from the repository's root, which its includes name):
    the template sees `host` too, but may not read its data."""
    ctx["host"] = type("Host", (), {"data": NoHostData()})
    env = Environment(loader=FileSystemLoader(str(ROOT)), undefined=StrictUndefined, keep_trailing_newline=True)
    return env.get_template(f"templates/{name}").render(**ctx)


def environment(d, s, remote=False):
    o = of(d, "base", "stack", "workers")
    return n8n_environment(o["base"], o["stack"], o["workers"], s, "n8n.example.test", "https://n8n.example.test/",
                           remote=remote)


def compose_config(tmp_path, text, name="docker-compose.yml"):
    """`docker-compose config` of a rendered file (skips when docker-compose is missing)."""
    (tmp_path / name).write_text(text)
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=x\nN8N_ENCRYPTION_KEY=y\nREDIS_PASSWORD=z\nN8N_VERSION=2.41.1\n"
                                   "N8N_RUNNERS_AUTH_TOKEN=runners-token\n")
    if not shutil.which("docker-compose"):
        pytest.skip("docker-compose not installed (sandbox/install-host-deps.sh installs it)")
    r = subprocess.run(["docker-compose", "-f", str(tmp_path / name), "config"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def render_compose(d, tier, tunnel=False, **data):
    d = Data(d, n8n_tier=tier, **data)
    s = scaling.settings(d)
    return s, render("docker-compose.yml.j2", n8n_host="n8n.example.test", public_url="https://n8n.example.test/",
                     scaling=s, tunnel=tunnel, n8n_env=environment(d, s), timezone=d["timezone"],
                     with_runners=with_runners(of(d, "stack")["stack"], s), **of(d, "stack", "workers"))


def render_worker_compose(d, **data):
    d = Data(d, n8n_tier="ouro", **data)
    s = scaling.settings(d)
    return s, render("docker-compose-worker.yml.j2", scaling=s, n8n_env=environment(d, s, remote=True),
                     timezone=d["timezone"], with_runners=with_runners(of(d, "stack")["stack"], s, worker_server=True),
                     **of(d, "stack"))


@pytest.mark.parametrize("groups", [(), ("sandbox",)])
def test_compose_file_is_valid_and_pins_versions(tmp_path, groups):
    d = group_data(*groups)
    _, text = render_compose(d, "bronze")
    assert ":latest" not in text and f"image: {d['n8n_image_repo']}:${{N8N_VERSION}}" in text
    # every other image by its exact tag and the digest images.lock holds for it
    for ref in (d["postgres_image"], d["caddy_image"]):
        assert f"image: {ref}@{d['images_lock'][ref]}" in text
    assert "EXECUTIONS_DATA_MAX_AGE: \"720\"" in text  # SOP 05: 30 days of executions
    assert "N8N_BASIC_AUTH" not in text  # does nothing since n8n 1.0
    assert "redis" not in text and "EXECUTIONS_MODE" not in text  # bronze: no queue
    out = compose_config(tmp_path, text)
    # the running version is the one in .env (the deploy writes it, an emergency deploy changes it)
    assert f"image: {d['n8n_image_repo']}:2.41.1" in out
    assert f"image: {d['postgres_image']}@{d['images_lock'][d['postgres_image']]}" in out
    # PostgreSQL and n8n publish no port; only Caddy's 80/443 are published
    published = [line for line in out.splitlines() if "published:" in line]
    assert sorted(x.split(":")[1].strip() for x in published) == ["443", "80"]


def mount(v) -> tuple[str, str]:
    """(volume, path) of a service's mount as `compose config` prints it (v1: a string, v2: a mapping)."""
    return tuple(v.split(":")[:2]) if isinstance(v, str) else (v["source"], v["target"])


def test_n8ns_files_are_on_volumes_and_workflows_write_only_to_the_files_one(tmp_path):
    """Every n8n process mounts n8n_volumes (what the backup archives); the directory n8n 2.x lets
    workflows use is one of them, so a workflow's files outlive the container."""
    d = group_data()
    for tier, tunnel in (("bronze", False), ("prata", False)):
        _, text = render_compose(d, tier, tunnel)
        svc = yaml.safe_load(compose_config(tmp_path, text))["services"]
        n8n = [x for name, x in svc.items() if name.startswith("n8n") and not name.endswith("-runners")]
        for x in n8n:
            assert {mount(v) for v in x["volumes"]} == {
                ("n8n_data", "/home/node/.n8n"), ("n8n_files", "/home/node/.n8n-files")}
            assert x["environment"]["N8N_RESTRICT_FILE_ACCESS_TO"] == "/home/node/.n8n-files"
    _, text = render_worker_compose(group_data())
    services = yaml.safe_load(compose_config(tmp_path, text))["services"]
    workers = [x for name, x in services.items() if not name.endswith("-runners")]
    assert len(workers) == 2 and all({mount(v)[0] for v in x["volumes"]} == {"n8n_data", "n8n_files"} for x in workers)
    # the runners have no volume of n8n's (nor any other)
    assert all("volumes" not in x for name, x in services.items() if name.endswith("-runners"))


def test_prata_adds_redis_and_a_worker_on_the_main_server(tmp_path):
    s, text = render_compose(group_data(), "prata")
    assert s.main_services == ["n8n", "n8n-worker-1"]
    out = compose_config(tmp_path, text)
    assert "EXECUTIONS_MODE: queue" in out and "QUEUE_BULL_REDIS_HOST: redis" in out
    assert "- worker" in out and "--concurrency=10" in out
    assert "redis-server -" in out and "requirepass $$REDIS_PASSWORD" in out  # password on stdin, not argv
    # every n8n process keeps the last finished executions in Redis: one that a worker finished before
    # the queuing process asked after it is found there (not deleted, its webhook left unanswered)
    services = yaml.safe_load(out)["services"]
    for name in ("n8n", "n8n-worker-1"):
        env = services[name]["environment"]
        assert env["N8N_EXECUTIONS_QUEUE_KEEP_LAST_COMPLETED"] == env["N8N_EXECUTIONS_QUEUE_KEEP_LAST_FAILED"] == "1000"
    _, bronze = render_compose(group_data(), "bronze")
    assert "N8N_EXECUTIONS_QUEUE_KEEP" not in bronze  # no queue, nothing to keep
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
    caddy = render("Caddyfile.j2", n8n_host="n8n.example.test", scaling=s, owner_claimed=True, **of(d, "base"))
    assert "handle /webhook/*" in caddy and "n8n-webhook-1:5678 n8n-webhook-2:5678" in caddy
    # a processor restarting: the webhook goes to the other one (retried, health-checked), not lost;
    # a processor counts as back only when it is ready (/healthz answers before its database is
    # connected, and a webhook it takes then fails: "Database is not ready!")
    pool = caddy[caddy.index("handle /webhook/*"):caddy.index("handle {", caddy.index("handle /webhook/*"))]
    assert "lb_try_duration 30s" in pool and "health_uri /healthz/readiness\n" in pool
    # one connection per request: a drained processor (n8n-restart) gets no request on a kept-alive one
    assert "transport http {\n\t\t\t\tkeepalive off\n\t\t\t}" in pool
    # and the restart runbook moves to the next processor only when this one is ready
    health = {svc: block for svc, block in yaml.safe_load(text)["services"].items() if "healthcheck" in block}
    assert {"n8n", "n8n-webhook-1", "n8n-webhook-2"} <= set(health)
    for svc, block in health.items():
        if svc.startswith("n8n"):
            assert "/healthz/readiness'" in " ".join(block["healthcheck"]["test"]), svc


def test_worker_server_compose(tmp_path):
    d = group_data()
    _, text = render_worker_compose(d)
    out = compose_config(tmp_path, text)
    assert out.count("network_mode: host") == 2 and out.count(f"image: {d['n8n_image_repo']}:2.41.1") == 2
    assert "QUEUE_HEALTH_CHECK_PORT: '5681'" in out.replace('"', "'") and "5682" in out
    assert "DB_POSTGRESDB_HOST: 127.0.0.1" in out and "QUEUE_BULL_REDIS_HOST: 127.0.0.1" in out
    # healthy means ready: database connected (the restart runbook waits on it)
    assert out.count("5681/healthz/readiness") == 1 and out.count("5682/healthz/readiness") == 1


def test_code_nodes_run_in_runners_containers_that_hold_no_secret_but_their_token(tmp_path):
    """External mode (n8n's advice for production): a runners container beside each n8n process
    that runs executions, reaching only its broker, with none of .env's secrets but the token."""
    d = group_data()
    for tier, executing in (("bronze", ["n8n"]), ("prata", ["n8n-worker-1"])):
        _, text = render_compose(d, tier)
        conf = yaml.safe_load(compose_config(tmp_path, text))
        svc = conf["services"]
        assert sorted(x for x in svc if x.endswith("-runners")) == [f"{x}-runners" for x in executing], tier
        for name in executing:
            r = svc[f"{name}-runners"]
            assert r["image"] == f"{d['n8n_runners_image_repo']}:2.41.1"  # n8n's version, from .env
            assert "env_file" not in r and "volumes" not in r and "ports" not in r
            assert r["environment"] == {"N8N_RUNNERS_AUTH_TOKEN": "runners-token",
                                        "N8N_RUNNERS_TASK_BROKER_URI": f"http://{name}:5679",
                                        "GENERIC_TIMEZONE": d["timezone"], "TZ": d["timezone"]}
            assert list(r["networks"]) == ["runners"]  # not backend (PostgreSQL, Redis), not frontend
            assert svc[name]["environment"]["N8N_RUNNERS_MODE"] == "external"
            assert svc[name]["environment"]["N8N_RUNNERS_BROKER_LISTEN_ADDRESS"] == "0.0.0.0"
            # `$env` in a Code node would send n8n's environment to the runners: blocked, whatever
            # n8n_extra_env says
            assert svc[name]["environment"]["N8N_BLOCK_ENV_ACCESS_IN_NODE"] == "true"
            assert "runners" in svc[name]["networks"]
        net = conf["networks"]["runners"]
        assert net["internal"] is True and net["driver_opts"] == {"com.docker.network.bridge.name": "mottivme-run"}
        assert net["ipam"]["config"] == [{"subnet": d["n8n_runners_subnet"]}]
        # the main process in queue mode hands every execution (manual ones too) to the workers
        assert "runners" not in svc["n8n"]["networks"] or tier == "bronze"
    _, text = render_compose(d, "bronze", n8n_extra_env={"N8N_BLOCK_ENV_ACCESS_IN_NODE": "false"})
    assert 'N8N_BLOCK_ENV_ACCESS_IN_NODE: "true"' in text and 'N8N_BLOCK_ENV_ACCESS_IN_NODE: "false"' not in text
    # internal mode: n8n launches its runner itself; no runners container, no network for them
    _, text = render_compose(d, "prata", n8n_runners_mode="internal")
    conf = yaml.safe_load(compose_config(tmp_path, text))
    assert not [x for x in conf["services"] if x.endswith("-runners")] and "runners" not in conf["networks"]
    assert all("N8N_RUNNERS_BROKER_LISTEN_ADDRESS" not in x.get("environment", {}) for x in conf["services"].values())


def test_each_worker_on_a_worker_server_has_its_runners_on_its_own_broker_port(tmp_path):
    d = group_data()
    _, text = render_worker_compose(d)
    conf = yaml.safe_load(compose_config(tmp_path, text))
    svc = conf["services"]
    for i in (1, 2):
        worker, r = svc[f"n8n-worker-{i}"], svc[f"n8n-worker-{i}-runners"]
        # the worker is on the host's network (its tunnel's ends); its broker listens on the runners'
        # bridge only (its gateway, 172.31.254.1 of n8n_runners_subnet), where its runners reach it
        assert worker["network_mode"] == "host" and worker["environment"]["N8N_RUNNERS_BROKER_PORT"] == str(5700 + i)
        assert worker["environment"]["N8N_RUNNERS_BROKER_LISTEN_ADDRESS"] == "172.31.254.1"
        assert "network_mode" not in r and list(r["networks"]) == ["runners"]
        assert r["environment"]["N8N_RUNNERS_TASK_BROKER_URI"] == f"http://172.31.254.1:{5700 + i}"
        assert set(r["environment"]) == {"N8N_RUNNERS_AUTH_TOKEN", "N8N_RUNNERS_TASK_BROKER_URI", "GENERIC_TIMEZONE", "TZ"}
    net = conf["networks"]["runners"]
    assert net["driver_opts"] == {"com.docker.network.bridge.name": "mottivme-run"}
    assert net["ipam"]["config"] == [{"subnet": "172.31.254.0/28"}]
    _, text = render_worker_compose(d, n8n_runners_mode="internal")
    assert "-runners" not in text and "N8N_RUNNERS_BROKER_LISTEN_ADDRESS" not in text


def test_env_file_holds_the_secrets():
    secrets = {k: HiddenValue(v) for k, v in GOOD_SECRETS.items()}
    text = render("n8n.env.j2", secrets=secrets, queue_mode=False, n8n_version="2.41.1")
    assert "\nN8N_VERSION=2.41.1\n" in text
    assert f"N8N_ENCRYPTION_KEY={GOOD_SECRETS['N8N_ENCRYPTION_KEY']}" in text
    assert f"DB_POSTGRESDB_PASSWORD={GOOD_SECRETS['POSTGRES_PASSWORD']}" in text
    assert "*MASKED*" not in text


ACME = {"caddy_acme_ca": "https://10.9.0.5:14000/dir", "caddy_acme_ca_root": "-----BEGIN CERTIFICATE-----\n..."}


def caddyfiles(d) -> dict[str, str]:
    """Both Caddyfiles of group data `d`: the n8n server's (its site first) and the monitor's."""
    return {"n8n.example.test": render("Caddyfile.j2", n8n_host="n8n.example.test", scaling=scaling.settings(d),
                                       owner_claimed=True, **of(d, "base")),
            d["monitor_status_host"]: render("Caddyfile-monitor.j2", **of(d, "base", "monitor"), ops_auth="/etc/caddy/ops-auth")}


def test_caddyfile_production_is_caddys_automatic_https_with_hsts():
    for name, text in caddyfiles(group_data()).items():
        site = f"\n{name} {{\n"
        assert site in text and "{" not in text.splitlines()  # no global options block
        assert "tls " not in text and "acme_ca" not in text and "local_certs" not in text
        assert "Strict-Transport-Security" in text and 'X-Content-Type-Options "nosniff"' in text
    n8n = caddyfiles(group_data())["n8n.example.test"]
    assert "reverse_proxy n8n:5678" in n8n and "handle /metrics* {" in n8n


def test_caddyfile_with_an_acme_ca_of_its_own_takes_every_certificate_from_it():
    """The sandbox's ACME CA (pebble), or a company's: the same automatic HTTPS, its URL and root
    in the global options; the extra name localhost gets Caddy's local CA (it cannot have a public one)."""
    for name, text in caddyfiles(Data(group_data("sandbox"), **ACME)).items():
        assert text.index("{\n\t# automatic HTTPS from this ACME CA") < text.index(f"\n{name}, localhost {{\n")
        assert "\tacme_ca https://10.9.0.5:14000/dir\n\tacme_ca_root /etc/caddy/acme-ca-root.pem\n}" in text
        assert "tls " not in text and "local_certs" not in text
        assert "Strict-Transport-Security" not in text  # a browser would pin localhost
    only_ca = caddyfiles(Data(group_data(), caddy_acme_ca="https://acme-staging-v02.api.letsencrypt.org/directory"))
    assert all("acme_ca https://acme-staging" in t and "acme_ca_root" not in t for t in only_ca.values())


def test_caddyfile_with_caddys_local_ca():
    for name, text in caddyfiles(Data(group_data(), caddy_tls="internal")).items():
        assert "{\n\t# certificates from Caddy's own local CA" in text and "\tlocal_certs\n}" in text
        assert f"{name} {{\n\ttls internal\n" in text


@pytest.mark.parametrize("tier", ["bronze", "platina"])
def test_until_the_owner_is_claimed_caddy_serves_the_public_only_503(tier):
    d = Data(group_data(), n8n_tier=tier)
    text = render("Caddyfile.j2", n8n_host="n8n.example.test", scaling=scaling.settings(d), owner_claimed=False,
                  **of(d, "base"))
    site = text[text.index("n8n.example.test {"):]
    # n8n only for its health (the deploy waits on it); everything else, setup page and webhooks, 503
    assert site.count("reverse_proxy") == 1 and "handle /healthz* {\n\t\treverse_proxy n8n:5678" in site
    assert 'respond "n8n is being set up" 503' in site and "/webhook/" not in site
    assert "handle /metrics* {" in site and 'X-Content-Type-Options "nosniff"' in site


def test_cron_runs_the_host_programs():
    cron = render("cron-n8n.j2", **of(group_data(), "base", "backup", "cleanup"))
    assert "17 3 * * * root /usr/local/sbin/n8n-backup" in cron
    assert "41 4 * * 0 root /usr/local/sbin/n8n-supabase-cleanup" in cron
    assert "n8n-restore --drill" in cron


def test_no_template_holds_a_program():
    """Templates are configuration only: the programs are mottivme_host (tested in tests/unit/mottivme_host)."""
    scripts = sorted(p.name for p in (ROOT / "templates").iterdir()
                     if p.read_text().startswith("#!") and not p.name.endswith(".nft.j2"))  # nft: a ruleset
    assert scripts == []


def test_monitor_caddyfile_serves_the_page_and_the_pings():
    d = group_data()
    text = render("Caddyfile-monitor.j2", **of(d, "base", "monitor"), ops_auth="/etc/caddy/ops-auth")
    assert "status.mottivme.com.br {" in text and f"root * {d['monitor_state_dir']}/www" in text
    assert f"reverse_proxy {d['monitor_ping_listen']}" in text and "handle /ping/*" in text
    # the operators' page asks for its login (the file the deploy writes, 0600 caddy)
    ops = text[text.index("handle /ops/* {"):]
    assert ops.index("import /etc/caddy/ops-auth") < ops.index("file_server") < ops.index("handle {")


def test_monitor_units():
    d = group_data()
    ctx = dict(**of(d, "monitor"), venv="/opt/mottivme-monitor/venv", lib="/opt/mottivme-monitor/lib",
               config="/etc/mottivme-monitor/config.json", secrets="/etc/mottivme-monitor/secrets.env",
               interval=60, description="mottivme monitor: one round")
    run = render("mottivme-monitor.service.j2", **ctx)
    assert "Type=oneshot" in run and "User=mottivme-monitor" in run
    assert "EnvironmentFile=/etc/mottivme-monitor/secrets.env" in run
    assert "-m mottivme_monitor --config /etc/mottivme-monitor/config.json run" in run
    assert "OnUnitActiveSec=60s" in render("mottivme-monitor.timer.j2", **ctx)
    assert " serve" in render("mottivme-monitor-ping.service.j2", **ctx)
    n8n = render("cron-monitor-reports.j2", **of(d, "monitor"), n8n_server=True)
    other = render("cron-monitor-reports.j2", **of(d, "monitor"), n8n_server=False)
    assert "*/5 * * * * root /usr/local/sbin/mottivme-report-disk" in n8n and "mottivme-report-disk" in other
    assert "mottivme-host secret-age --report" in n8n and "secret-age" not in other  # an n8n server's secrets


def test_queue_guard_unit_runs_the_host_program_at_group_datas_interval():
    d = group_data()
    st = of(d, "stack")["stack"]
    unit = render("mottivme-queue-guard.service.j2", entry="/usr/local/sbin/mottivme-host",
                  seconds=st.queue_guard_seconds, grace=st.queue_guard_grace_seconds)
    assert "ExecStart=/usr/local/sbin/mottivme-host queue-guard --interval 2 --grace 15\n" in unit
    # put back before Bull's stalled check (30 s) can drop it, whatever the checks' phase
    assert st.queue_guard_grace_seconds + 2 * st.queue_guard_seconds < 30
    assert "Restart=always" in unit and "WantedBy=multi-user.target" in unit


def test_log_rotation_docker_daemon_tunnel_and_vault_rest_server():
    d = group_data()
    rotated = render("logrotate-n8n-backup.j2", **of(d, "stack", "backup", "cleanup")).splitlines()[1]
    assert rotated == "/var/log/n8n-backup.log /var/log/n8n-cleanup.log /var/log/n8n-deploy.log {"
    assert '"max-size": "20m", "max-file": "5"' in render("docker-daemon.json.j2", **of(d, "docker"))
    tunnel = render("n8n-tunnel.service.j2", key="/k", address="10.0.0.5", port=2222, **of(d, "workers"))
    assert "-L 127.0.0.1:6379:127.0.0.1:6379" in tunnel and "n8n-tunnel@10.0.0.5" in tunnel
    rest = render("restic-rest-server.default.j2", tls_dir="/etc/restic-rest-server", **of(d, "backup"))
    assert "LISTEN = :8000" in rest and "BACKUP_DIR = /srv/restic" in rest
    args = rest.split('ARGS = "', 1)[1].split('"', 1)[0].split()
    assert {"--append-only", "--private-repos", "--tls"} <= set(args) and "--no-auth" not in args
    assert args[args.index("--htpasswd-file") + 1] == "/etc/restic-rest-server/users.htpasswd"
    tunnel_sshd = render("sshd-worker-tunnel.conf.j2", **of(d, "workers"))
    assert "Match User n8n-tunnel" in tunnel_sshd and "AllowTcpForwarding local" in tunnel_sshd
    assert "PermitListen none" in tunnel_sshd


# --- one settings layer (tasks/settings.py) ----------------------------------------------------

def test_no_template_reads_host_data():
    """Templates get what they use as settings objects: a setting traces group_data -> a field of
    tasks/settings.py -> its uses, never through `host.data` (or `host["data"]`)."""
    offenders = [p.name for p in sorted((ROOT / "templates").iterdir())
                 if re.search(r"\bhost\s*(\.\s*data\b|\[)", p.read_text())]
    assert offenders == []


class Recording(Data):
    """group_data that writes down every key read from it."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.reads = []

    def __getattr__(self, k):
        self.reads.append(k)
        return super().__getitem__(k)

    def get(self, k, default=None):
        self.reads.append(k)
        return super().get(k, default)


def test_every_group_data_key_is_held_by_exactly_one_settings_class():
    defined = set(groupdata.load())  # group_data/all.py: every tunable
    held = Counter(k for c in settings.CLASSES for k in c.keys().values())
    assert [k for k, n in held.items() if n > 1] == [], "a key is held by two classes: give it one owner"
    assert sorted(defined - set(held) - set(settings.READ_ELSEWHERE)) == [], \
        "a group_data key nobody reads: hold it in a class of tasks/settings.py (or list it in READ_ELSEWHERE)"
    optional = {f.metadata["key"] for c in settings.CLASSES for f in fields(c) if f.metadata["optional"]}
    assert sorted(set(held) - defined - optional) == [], "a settings field with no key in group_data/all.py"
    assert sorted(optional & defined) == [], "a key of group_data/all.py is always there: not optional"
    assert sorted(set(settings.READ_ELSEWHERE) - defined) == [] and not set(settings.READ_ELSEWHERE) & set(held)
    # what READ_ELSEWHERE gives to tasks/scaling.py is exactly what scaling.settings() reads
    d = Recording(group_data())
    scaling.settings(d)
    assert set(d.reads) == {k for k, v in settings.READ_ELSEWHERE.items() if v == "tasks/scaling.py"}


@pytest.mark.parametrize("cls", settings.CLASSES, ids=lambda c: c.__name__)
def test_from_data_reads_each_key_of_its_class_once(cls):
    d = Recording(group_data())
    obj = cls.from_data(d)
    assert Counter(d.reads) == Counter(cls.keys().values())
    assert [f.name for f in fields(cls) if not f.metadata["optional"] and getattr(obj, f.name) is None] == []
    with pytest.raises(FrozenInstanceError):
        obj.__setattr__(next(iter(cls.keys())), "changed")


def test_other_groups_only_override_keys_of_all():
    """group_data/<group>.py overrides all.py's keys (the sandbox adds only its own sandbox_* ones)."""
    defined = set(group_data())
    for f in sorted((ROOT / "group_data").glob("*.py")):
        extra = set(groupdata.load(f.stem)) - defined
        assert sorted(k for k in extra if k != "sandbox" and not k.startswith("sandbox_")) == [], f.name


@pytest.mark.parametrize("kind", ["Data", "pyinfra HostData"])
@pytest.mark.parametrize("cls", settings.CLASSES, ids=lambda c: c.__name__)
def test_a_missing_key_is_named(cls, kind):
    for f in fields(cls):
        if f.metadata["optional"]:
            continue
        values = {k: v for k, v in group_data().items() if k != f.metadata["key"]}
        d = Data(values) if kind == "Data" else HostData("n8n-1", values)
        with pytest.raises(settings.SettingsError, match=rf"group_data key '{f.metadata['key']}' is missing"):
            cls.from_data(d)


def test_optional_host_data_is_none_when_absent_and_wins_when_set():
    assert settings.Base.from_data(HostData("h", group_data())).ssh_user is None
    st = settings.Stack.from_data(HostData("h", {"n8n_public_url": "https://localhost:8443/"}, group_data()))
    assert st.public_url == "https://localhost:8443/" and st.host_override is None


def test_secret_files_render_as_files_template_would(tmp_path):
    """operations.render_secret (for secret_file, which never prints what it writes) gives the same
    text as the template rendered the way pyinfra's files.template renders it."""
    from tasks import operations

    secrets = {k: HiddenValue(v) for k, v in GOOD_SECRETS.items()}
    secrets["REDIS_PASSWORD"] = HiddenValue("redis-password-0123456789")
    for queue in (False, True):
        hidden = operations.render_secret("n8n.env.j2", secrets=secrets, queue_mode=queue, n8n_version="2.41.1")
        assert hidden.unmask() == render("n8n.env.j2", secrets=secrets, queue_mode=queue, n8n_version="2.41.1")
        assert GOOD_SECRETS["POSTGRES_PASSWORD"] not in repr(hidden) + str(hidden)


class Op:
    """An operation as tasks/n8n.workers_recreated sees it while the deploy plans."""

    def __init__(self, will_change=False):
        self.will_change = will_change


@pytest.mark.parametrize("server", ["main (prata)", "worker server (ouro)"])
def test_a_deploy_knows_while_it_plans_whether_compose_up_re_creates_a_running_worker(server):
    """What decides the held stop before `compose up -d` (tasks/n8n.workers_recreated): a worker's
    definition, the env file, the workers' image; not a change elsewhere in the stack."""
    from tasks.n8n import workers_recreated

    d = group_data()

    def text(**data):
        return (render_compose(d, "prata", **data) if server.startswith("main") else render_worker_compose(d, **data))[1]

    now, same, quiet = text().splitlines(), text(), Op()
    assert not workers_recreated(now, same, quiet, [quiet])
    assert workers_recreated(now, text(n8n_worker_concurrency=7), quiet, [quiet])  # its command
    assert workers_recreated(now, same, Op(True), [quiet])  # the env file (secrets, N8N_VERSION)
    assert workers_recreated(now, same, quiet, [Op(True)])  # n8n's (or the runners') image moved under its tag
    # a runner beside a worker re-created alone would take its worker's Code nodes mid-run
    runner_changed = re.sub(r"(n8n-worker-1-runners:\n)", r"\1    stop_grace_period: 99s\n", same, count=1)
    assert runner_changed != same and workers_recreated(now, runner_changed, quiet, [quiet])
    # a host's file that does not read as a compose file: the running workers are stopped first
    assert workers_recreated(["services:", "\tbroken: [", ""], same, quiet, [quiet])
    assert workers_recreated(["just a string"], same, quiet, [quiet])
    assert not workers_recreated(None, same, Op(True), [Op(True)])  # a fresh server: nothing runs yet
    if server.startswith("main"):  # Caddy's or PostgreSQL's image: the workers keep running
        moved = {**d["images_lock"], "caddy:2.10.0": "sha256:" + "1" * 64, "postgres:17.6": "sha256:" + "2" * 64}
        assert text(images_lock=moved) != same
        assert not workers_recreated(now, text(images_lock=moved), quiet, [quiet])
        # prata -> ouro: the worker leaves the main server (--remove-orphans removes it)
        assert not workers_recreated(now, render_compose(d, "ouro", tunnel=True)[1], Op(True), [Op(True)])
        # the runners' network (compose stops what is attached to a network it re-creates)
        assert workers_recreated(now, text(n8n_runners_subnet="172.31.99.0/28"), quiet, [quiet])
