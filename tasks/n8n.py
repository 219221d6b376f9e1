"""The n8n stack in /opt/n8n: PostgreSQL, n8n, Caddy (HTTPS), from templates/."""

import json

from pyinfra import host
from pyinfra.api import HiddenValue, deploy
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from tasks import operations
from tasks.config import secret
from tasks.docker import compose_command

SERVICES = ["postgres", "n8n", "caddy"]


def n8n_image(version: str | None = None) -> str:
    """The n8n image of this host: `n8n_image_repo`:`n8n_version` (so --data n8n_version=X works)."""
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


def install_scripts(*names: str) -> None:
    """Host scripts from templates/<name>.sh.j2 into /usr/local/sbin: cron, the runbooks and a
    person over SSH all run the same code."""
    ctx = dict(compose=f"{compose_command()} -p {host.data.compose_project}", n8n_host=n8n_host(),
               n8n_image=n8n_image(), services=["n8n"])
    for name in names:
        files.template(name=f"script /usr/local/sbin/{name}", src=f"templates/{name}.sh.j2",
                       dest=f"/usr/local/sbin/{name}", mode="755", **ctx)


@deploy("n8n stack")
def n8n_stack():
    d = host.data
    files.directory(name="stack directory", path=d.stack_dir, mode="750")
    files.directory(name="caddy config directory", path=f"{d.stack_dir}/caddy", mode="755")
    ctx = dict(n8n_host=n8n_host(), public_url=public_url(), n8n_image=n8n_image())
    compose_file = files.template(name="compose file", src="templates/docker-compose.yml.j2",
                                  dest=f"{d.stack_dir}/docker-compose.yml", mode="644", **ctx)
    env_file = files.template(
        name="secrets env file (0600)", src="templates/n8n.env.j2", dest=f"{d.stack_dir}/.env",
        user="root", group="root", mode="600",
        secrets={k: secret(k) for k in ("N8N_ENCRYPTION_KEY", "POSTGRES_PASSWORD")})
    caddyfile = files.template(name="Caddyfile", src="templates/Caddyfile.j2",
                               dest=f"{d.stack_dir}/caddy/Caddyfile", mode="644", **ctx)

    for ref in (d.postgres_image, n8n_image(), d.caddy_image):
        operations.image(name=f"image {ref}", ref=ref, archive_dir=d.image_archive_dir)

    applied = server.shell(name="apply configuration (compose up -d)",
                           commands=[compose("up -d --remove-orphans")], _if=any_changed(compose_file, env_file))
    operations.compose_running(name="services running", stack_dir=d.stack_dir, project=d.compose_project,
                               services=SERVICES, compose=compose_command())
    server.shell(name="reload Caddy (Caddyfile changed)",
                 commands=[compose("exec -T caddy caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile")],
                 _if=[caddyfile.did_change, applied.did_not_change])

    install_scripts("n8n-restart", "n8n-deploy-version", "n8n-rotate-secrets")
    operations.n8n_ready(name="n8n ready (/healthz/readiness through Caddy)",
                         url=local_url("healthz/readiness"), resolve=local_resolve(),
                         timeout=d.n8n_ready_timeout, logs_command=compose("logs --no-color --tail 40 n8n"))
    owner = json.dumps({
        "email": secret("N8N_OWNER_EMAIL").unmask(), "password": secret("N8N_OWNER_PASSWORD").unmask(),
        "firstName": d.n8n_owner_first_name, "lastName": d.n8n_owner_last_name,
    })
    operations.n8n_owner(name="n8n owner account claimed", base_url=local_url(), resolve=local_resolve(),
                         payload=HiddenValue(owner))
