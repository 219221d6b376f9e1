"""The n8n stack in /opt/n8n: PostgreSQL, n8n, Caddy (HTTPS), from templates/."""

import json

from pyinfra import host, inventory
from pyinfra.api import HiddenValue, deploy
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from tasks import hostprograms, operations, scaling
from tasks.config import secret
from tasks.docker import compose_command


def n8n_environment(d, s, n8n_host: str, public_url: str, remote: bool = False) -> dict[str, str]:
    """Non-secret environment of every n8n process (main, workers, webhook processors). `remote`:
    a worker on an n8n_workers server, reaching PostgreSQL and Redis through its SSH tunnel."""
    env = {
        "DB_TYPE": "postgresdb",
        "DB_POSTGRESDB_HOST": "127.0.0.1" if remote else "postgres",
        "DB_POSTGRESDB_PORT": str(d.tunnel_postgres_port if remote else 5432),
        "DB_POSTGRESDB_DATABASE": d.postgres_db,
        "DB_POSTGRESDB_USER": d.postgres_user,
        "N8N_HOST": n8n_host,
        "N8N_PORT": "5678",
        "N8N_PROTOCOL": "https",
        "N8N_PROXY_HOPS": "1",
        "WEBHOOK_URL": public_url,
        "N8N_EDITOR_BASE_URL": public_url,
        "GENERIC_TIMEZONE": d.timezone,
        "TZ": d.timezone,
        "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "true",
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_RUNNERS_MODE": d.n8n_runners_mode,
        "N8N_METRICS": "true" if d.n8n_metrics else "false",
        # execution pruning is done by n8n itself (SOP 05: 30 days)
        "EXECUTIONS_DATA_PRUNE": "true" if d.executions_prune else "false",
        "EXECUTIONS_DATA_MAX_AGE": str(d.executions_max_age_hours),
        "EXECUTIONS_DATA_PRUNE_MAX_COUNT": str(d.executions_prune_max_count),
    }
    if s.queue_mode:
        env.update({
            "EXECUTIONS_MODE": "queue",
            "QUEUE_BULL_REDIS_HOST": "127.0.0.1" if remote else "redis",
            "QUEUE_BULL_REDIS_PORT": str(d.tunnel_redis_port if remote else 6379),
            "QUEUE_HEALTH_CHECK_ACTIVE": "true",
            "OFFLOAD_MANUAL_EXECUTIONS_TO_WORKERS": "true",  # n8n 2.x warns without it
            "N8N_WORKER_SERVER_ADDRESS": "127.0.0.1",  # a worker's /healthz: for its own healthcheck only
            "N8N_GRACEFUL_SHUTDOWN_TIMEOUT": str(d.n8n_worker_drain_seconds),
        })
    env.update({k: str(v) for k, v in d.n8n_extra_env.items()})
    return env


def n8n_image(version: str | None = None) -> str:
    """The n8n image of this host: `n8n_image_repo`:`n8n_version` (so --data n8n_version=X works).
    The compose files name it `n8n_image_repo`:${N8N_VERSION}, the version being in the stack's
    .env: the one place the deploy and the host programs (deploy-version) agree on."""
    return f"{host.data.n8n_image_repo}:{version or host.data.n8n_version}"


def n8n_host() -> str:
    return host.data.get("n8n_host_override") or secret("N8N_HOST").unmask()


def public_url() -> str:
    """https://<N8N_HOST>/ (the sandbox adds its forwarded port)."""
    return host.data.get("n8n_public_url") or f"https://{n8n_host()}/"


def local_resolve() -> str:
    """curl --resolve pin: reach the host's own Caddy whatever DNS says."""
    return f"{n8n_host()}:443:127.0.0.1"


def local_url(path: str = "") -> str:
    return f"https://{n8n_host()}/{path}"


def compose(args: str) -> str:
    d = host.data
    return f"cd {d.stack_dir} && {compose_command()} -p {d.compose_project} {args}"


def host_settings(s) -> dict:
    """The host programs' settings of an n8n server (mottivme_host.settings), backup part aside."""
    d = host.data
    return hostprograms.stack_settings(d, compose=compose_command(), project=d.compose_project,
                                      stack_dir=d.stack_dir, services=s.main_services, n8n_host=n8n_host())


def stack_services(s) -> list[str]:
    """Every compose service of the main server's stack."""
    return ["postgres"] + (["redis"] if s.queue_mode else []) + s.main_services + ["caddy"]


def stack_secrets(s) -> dict:
    names = ("N8N_ENCRYPTION_KEY", "POSTGRES_PASSWORD") + (("REDIS_PASSWORD",) if s.queue_mode else ())
    return {k: secret(k) for k in names}


def worker_hosts() -> list:
    return list(inventory.get_group("n8n_workers", default=[]))


@deploy("n8n stack")
def n8n_stack():
    d = host.data
    files.directory(name="stack directory", path=d.stack_dir, mode="750")
    files.directory(name="caddy config directory", path=f"{d.stack_dir}/caddy", mode="755")
    s = scaling.settings(d)
    scaling.refuse_if_unfit(s, len(worker_hosts()))
    ctx = dict(n8n_host=n8n_host(), public_url=public_url(), scaling=s,
               n8n_env=n8n_environment(d, s, n8n_host(), public_url()), tunnel=bool(s.queue_mode and worker_hosts()))
    compose_file = files.template(name="compose file", src="templates/docker-compose.yml.j2",
                                  dest=f"{d.stack_dir}/docker-compose.yml", mode="644", **ctx)
    env_file = files.template(
        name="secrets env file (0600)", src="templates/n8n.env.j2", dest=f"{d.stack_dir}/.env",
        user="root", group="root", mode="600",
        queue_mode=s.queue_mode, secrets=stack_secrets(s), n8n_version=d.n8n_version)
    caddyfile = files.template(name="Caddyfile", src="templates/Caddyfile.j2",
                               dest=f"{d.stack_dir}/caddy/Caddyfile", mode="644", **ctx)

    for ref in (d.postgres_image, n8n_image(), d.caddy_image) + ((d.redis_image,) if s.queue_mode else ()):
        operations.image(name=f"image {ref}", ref=ref, archive_dir=d.image_archive_dir)

    applied = server.shell(name="apply configuration (compose up -d)",
                           commands=[compose(f"up -d --remove-orphans -t {d.n8n_worker_drain_seconds + 30}")],
                           _if=any_changed(compose_file, env_file))
    operations.compose_running(name="services running", stack_dir=d.stack_dir, project=d.compose_project,
                               services=stack_services(s), compose=compose_command())
    server.shell(name="reload Caddy (Caddyfile changed)",
                 commands=[compose("exec -T caddy caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile")],
                 _if=[caddyfile.did_change, applied.did_not_change])

    if len(s.main_services) > 1:
        operations.compose_healthy(name="workers / webhook processors healthy", stack_dir=d.stack_dir,
                                   project=d.compose_project, services=s.main_services[1:], timeout=d.n8n_ready_timeout,
                                   compose=compose_command())
    operations.n8n_ready(name="n8n ready (/healthz/readiness through Caddy)",
                         url=local_url("healthz/readiness"), resolve=local_resolve(),
                         timeout=d.n8n_ready_timeout, logs_command=compose("logs --no-color --tail 40 n8n"))
    owner = json.dumps({
        "email": secret("N8N_OWNER_EMAIL").unmask(), "password": secret("N8N_OWNER_PASSWORD").unmask(),
        "firstName": d.n8n_owner_first_name, "lastName": d.n8n_owner_last_name,
    })
    operations.n8n_owner(name="n8n owner account claimed", base_url=local_url(), resolve=local_resolve(),
                         payload=HiddenValue(owner))
