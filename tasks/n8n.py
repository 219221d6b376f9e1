"""The n8n stack in /opt/n8n: PostgreSQL, n8n, Caddy (HTTPS), from templates/."""

from __future__ import annotations

import json
import os
import sys

import yaml
from pyinfra import host, inventory, logger
from pyinfra.api import HiddenValue, deploy
from pyinfra.facts.files import File, FileContents
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from tasks import access, hostprograms, operations, scaling, settings
from tasks.config import secret
from tasks.docker import compose_command


def n8n_environment(b: settings.Base, st: settings.Stack, w: settings.Workers, s: scaling.Scaling, n8n_host: str,
                    public_url: str, remote: bool = False) -> dict[str, str]:
    """Non-secret environment of every n8n process (main, workers, webhook processors). `remote`:
    a worker on an n8n_workers server, reaching PostgreSQL and Redis through its SSH tunnel."""
    env = {
        "DB_TYPE": "postgresdb",
        "DB_POSTGRESDB_HOST": "127.0.0.1" if remote else "postgres",
        "DB_POSTGRESDB_PORT": str(w.postgres_port if remote else 5432),
        "DB_POSTGRESDB_DATABASE": st.postgres_db,
        "DB_POSTGRESDB_USER": st.postgres_user,
        "N8N_HOST": n8n_host,
        "N8N_PORT": "5678",
        "N8N_PROTOCOL": "https",
        "N8N_PROXY_HOPS": "1",
        "WEBHOOK_URL": public_url,
        "N8N_EDITOR_BASE_URL": public_url,
        "GENERIC_TIMEZONE": b.timezone,
        "TZ": b.timezone,
        "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "true",
        # the one directory workflows' files go to: a volume of the stack, in the backup
        "N8N_RESTRICT_FILE_ACCESS_TO": st.volumes[st.files_volume],
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_RUNNERS_MODE": st.runners_mode,
        "N8N_METRICS": "true" if st.metrics else "false",
        # execution pruning is done by n8n itself (SOP 05: 30 days)
        "EXECUTIONS_DATA_PRUNE": "true" if st.executions_prune else "false",
        "EXECUTIONS_DATA_MAX_AGE": str(st.executions_max_age_hours),
        "EXECUTIONS_DATA_PRUNE_MAX_COUNT": str(st.executions_prune_max_count),
    }
    if s.queue_mode:
        env.update({
            "EXECUTIONS_MODE": "queue",
            "QUEUE_BULL_REDIS_HOST": "127.0.0.1" if remote else "redis",
            "QUEUE_BULL_REDIS_PORT": str(w.redis_port if remote else 6379),
            "QUEUE_HEALTH_CHECK_ACTIVE": "true",
            "OFFLOAD_MANUAL_EXECUTIONS_TO_WORKERS": "true",  # n8n 2.x warns without it
            "N8N_WORKER_SERVER_ADDRESS": "127.0.0.1",  # a worker's /healthz: for its own healthcheck only
            "N8N_GRACEFUL_SHUTDOWN_TIMEOUT": str(st.drain_seconds),
            # a finished execution stays findable in Redis: whoever queued it and asks after it
            # finished gets its end (group_data: n8n_queue_keep_finished)
            "N8N_EXECUTIONS_QUEUE_KEEP_LAST_COMPLETED": str(settings.keep_finished(st.queue_keep_finished)),
            "N8N_EXECUTIONS_QUEUE_KEEP_LAST_FAILED": str(settings.keep_finished(st.queue_keep_finished)),
        })
    env.update({k: str(v) for k, v in st.extra_env.items()})
    if st.external_runners:
        # `$env` in a Code node would carry n8n's whole environment (its secrets among it) into the
        # runners' container: in external mode it stays blocked whatever n8n_extra_env says
        env["N8N_BLOCK_ENV_ACCESS_IN_NODE"] = "true"
    return env


# The helpers below take this host's Stack settings; without them (a runbook) they read host.data.

def _release_image(repo: str, version: str, st: settings.Stack) -> str:
    """`repo`:`version`@digest from images.lock; a version the lock lacks stops the run here,
    before anything changes."""
    ref = f"{repo}:{version}"
    try:
        return st.pinned(ref)
    except settings.SettingsError:
        print(f"mottivme-infra: {host.name}: {ref} has no digest in images.lock: add its version to "
              "n8n_other_versions in group_data/all.py, `make images-add`, then run again. Nothing was changed.",
              file=sys.stderr)
        sys.exit(2)


def n8n_image(version: str | None = None, st: settings.Stack | None = None) -> str:
    """The n8n image of this host, pinned: `n8n_image_repo`:`n8n_version`@digest (so --data
    n8n_version=X works; images.lock must hold X). The compose files name it
    `n8n_image_repo`:${N8N_VERSION}, the version being in the stack's .env: the one place the
    deploy and the host programs (deploy-version) agree on; operations.image puts that tag on the
    locked digest."""
    st = st or settings.Stack.from_data(host.data)
    return _release_image(st.n8n_image_repo, version or st.n8n_version, st)


def runners_image(version: str | None = None, st: settings.Stack | None = None) -> list[str]:
    """The task runners' image at n8n's version, pinned like n8n's (external mode; [] otherwise)."""
    st = st or settings.Stack.from_data(host.data)
    return [_release_image(st.runners_image_repo, version or st.n8n_version, st)] if st.external_runners else []


def n8n_host(st: settings.Stack | None = None) -> str:
    st = st or settings.Stack.from_data(host.data)
    return st.host_override or secret("N8N_HOST").unmask()


def public_url(st: settings.Stack | None = None) -> str:
    """https://<N8N_HOST>/ (the sandbox adds its forwarded port)."""
    st = st or settings.Stack.from_data(host.data)
    return st.public_url or f"https://{n8n_host(st)}/"


def local_resolve(st: settings.Stack | None = None) -> str:
    """curl --resolve pin: reach the host's own Caddy whatever DNS says."""
    return f"{n8n_host(st)}:443:127.0.0.1"


def local_url(path: str = "", st: settings.Stack | None = None) -> str:
    return f"https://{n8n_host(st)}/{path}"


def compose(st: settings.Stack, dk: settings.Docker, args: str) -> str:
    return f"cd {st.dir} && {compose_command(dk)} -p {st.compose_project} {args}"


def host_settings(s: scaling.Scaling) -> dict:
    """The host programs' settings of an n8n server (mottivme_host.settings), backup part aside."""
    st, dk = settings.Stack.from_data(host.data), settings.Docker.from_data(host.data)
    return hostprograms.stack_settings(st, compose=compose_command(dk), project=st.compose_project,
                                      stack_dir=st.dir, services=s.main_services, n8n_host=n8n_host(st),
                                      pooled=s.webhook_services, runners=runner_services(st, s),
                                      queue_redis="container" if s.queue_mode else "")


def volume_owners(st: settings.Stack, project: str) -> str:
    """Shell: the files volume (`n8n_files_volume`) owned like n8n's other volume(s) (n8n's home,
    which the image gives to n8n's user). Docker makes a volume whose mount point the image lacks
    root's, and n8n does not run as root: it could not write there. Run after `compose up` made
    the volumes."""
    home = next(v for v in st.volumes if v != st.files_volume)

    def mountpoint(volume: str) -> str:
        return f"$(docker volume inspect -f '{{{{.Mountpoint}}}}' {project}_{volume})"

    return f'chown --reference="{mountpoint(home)}" "{mountpoint(st.files_volume)}"'



def with_runners(st: settings.Stack, s: scaling.Scaling, worker_server: bool = False) -> list[str]:
    """The n8n services that get a runners container beside them (external mode): those that run
    executions, on the main server or (`worker_server`) a worker server; none in internal mode."""
    if not st.external_runners:
        return []
    return s.server_services if worker_server else s.executing_services


def runner_services(st: settings.Stack, s: scaling.Scaling, worker_server: bool = False) -> list[str]:
    """The task runners' compose services (`<service>-runners`) of the main or a worker server."""
    return scaling.runners_of(with_runners(st, s, worker_server))


def stack_services(s, st: settings.Stack | None = None) -> list[str]:
    """Every compose service of the main server's stack."""
    st = st or settings.Stack.from_data(host.data)
    return (["postgres"] + (["redis"] if s.queue_mode else []) + s.main_services + runner_services(st, s)
            + ["caddy"])


def stack_secrets(s, st: settings.Stack | None = None) -> dict:
    st = st or settings.Stack.from_data(host.data)
    names = (("N8N_ENCRYPTION_KEY", "POSTGRES_PASSWORD") + (("REDIS_PASSWORD",) if s.queue_mode else ())
             + (("N8N_RUNNERS_AUTH_TOKEN",) if st.external_runners else ()))
    return {k: secret(k) for k in names}


def worker_hosts() -> list:
    return list(inventory.get_group("n8n_workers", default=[]))


def workers_recreated(compose_now: list[str] | None, compose_next: str, env_file, worker_images: list) -> bool:
    """Will `compose up -d` re-create a queue worker that the host's compose file (`compose_now`,
    its lines; None: none yet) names, or the task runner beside it (whose worker's Code nodes would
    lose it mid-run)? Their definitions differ in the next file (`compose_next`), or a network
    differs, or the env file every n8n service reads changes, or an image they run
    (`worker_images`: n8n's and the runners' image operations) is pulled. Known while the deploy
    plans, before any file is written. A worker the next file no longer names does not count:
    `--remove-orphans` removes it. A file on the host that does not read as a compose file counts
    (the held stop only ever stops workers that run)."""
    nxt = yaml.safe_load(compose_next)
    if not compose_now or not any(scaling.is_worker(svc) for svc in nxt.get("services") or {}):
        return False
    try:
        now = yaml.safe_load("\n".join(compose_now))
        services = now["services"]
        workers = [svc for svc in services if scaling.is_worker(svc) and svc in nxt["services"]]
    except (yaml.YAMLError, TypeError, KeyError, AttributeError):
        logger.warning(f"{getattr(host, 'name', 'a server')}: its compose file does not read as one; its workers are stopped before the new "
                       "configuration")
        return True
    if not workers:
        return False
    runners = scaling.runners_of(workers)
    return (env_file.will_change or any(op.will_change for op in worker_images)
            or now.get("networks") != nxt.get("networks")
            or any(services.get(svc) != nxt["services"].get(svc) for svc in workers + runners))


MAIN_COMPOSE = "templates/docker-compose.yml.j2"


@deploy("n8n stack")
def n8n_stack(version: str):
    """The main server's stack, running n8n `version` (tasks/versions.stack_version: the one it runs
    already; only versions.change_version() moves it)."""
    b, dk = settings.Base.from_data(host.data), settings.Docker.from_data(host.data)
    st, w = settings.Stack.from_data(host.data), settings.Workers.from_data(host.data)
    files.directory(name="stack directory", path=st.dir, mode="750")
    files.directory(name="caddy config directory", path=f"{st.dir}/caddy", mode="755")
    s = scaling.settings(host.data)
    scaling.refuse_if_unfit(s, len(worker_hosts()))
    # the images first: one that cannot be pulled (a digest its registry no longer serves) changes nothing
    n8n_refs = (n8n_image(version, st), *runners_image(version, st))  # what the workers run
    pulled = {ref: operations.image(name=f"image {ref.partition('@')[0]} (pinned by digest)", ref=ref)
              for ref in (st.postgres_ref, *n8n_refs, st.caddy_ref) + ((st.redis_ref,) if s.queue_mode else ())}
    ctx = dict(n8n_host=n8n_host(st), public_url=public_url(st), scaling=s,
               with_runners=with_runners(st, s), timezone=b.timezone,
               n8n_env=n8n_environment(b, st, w, s, n8n_host(st), public_url(st)),
               tunnel=bool(s.queue_mode and worker_hosts()))
    compose_path, compose_ctx = f"{st.dir}/docker-compose.yml", dict(stack=st, workers=w, **ctx)
    compose_now = host.get_fact(FileContents, path=compose_path)  # before this deploy (read while it plans)
    compose_file = files.template(name="compose file", src=MAIN_COMPOSE,
                                  dest=compose_path, mode="644", **compose_ctx)
    env_file = operations.secret_file(
        name="secrets env file (0600)", dest=f"{st.dir}/.env",
        content=operations.render_secret("n8n.env.j2", queue_mode=s.queue_mode, secrets=stack_secrets(s, st),
                                         n8n_version=version))
    # until n8n's owner is claimed (the marker below), Caddy answers the public 503: nobody but the
    # deploy, from inside the server, ever sees the setup page of a fresh n8n
    claimed_marker = f"{st.dir}/.owner-claimed"
    owner_claimed = bool(host.get_fact(File, path=claimed_marker))
    # ./caddy is Caddy's /etc/caddy: the root goes where Caddy's configuration names it
    acme_root = operations.caddy_acme_root(b.caddy_acme_ca_root,
                                           f"{st.dir}/caddy/{os.path.basename(b.acme_root_file)}", "Caddy")
    caddyfile = files.template(name="Caddyfile" + ("" if owner_claimed else " (closed until the owner is claimed)"),
                               src="templates/Caddyfile.j2", dest=f"{st.dir}/caddy/Caddyfile", mode="644", base=b,
                               owner_claimed=owner_claimed, **ctx)

    # a tag moved to the lock's new digest is applied too (n8n's, under the same version)
    changed = any_changed(compose_file, env_file, *pulled.values())
    # queue workers (tier prata) that `compose up -d` re-creates are stopped first, the queue held
    if workers_recreated(compose_now, operations.render(MAIN_COMPOSE, compose_ctx), env_file,
                         [pulled[ref] for ref in n8n_refs]):
        operations.workers_stopped_before_apply(name="workers stopped before the new configuration (n8n's queue held)",
                                                project=st.compose_project, command_module=hostprograms.STOP_WORKERS,
                                                # a stop that fails leaves the apply below to re-create them, unheld
                                                _ignore_errors=True)
    applied = server.shell(name="apply configuration (compose up -d)",
                           commands=[compose(st, dk, f"up -d --remove-orphans -t {st.stop_seconds}")], _if=changed)
    server.shell(name="n8n's file volumes owned by n8n's user", commands=[volume_owners(st, st.compose_project)],
                 _if=applied.did_change)
    operations.compose_running(name="services running", stack_dir=st.dir, project=st.compose_project,
                               services=stack_services(s, st), compose=compose_command(dk))
    # --force: a changed ACME root with the same Caddyfile is a reload too. Whether or not the stack
    # was applied: `compose up` leaves a Caddy whose service did not change running on the old one
    reload_caddy = compose(st, dk, "exec -T caddy caddy reload --force --config /etc/caddy/Caddyfile --adapter caddyfile")
    server.shell(name="reload Caddy (Caddyfile changed)", commands=[reload_caddy],
                 _if=any_changed(caddyfile, acme_root))

    if len(s.main_services) > 1:
        operations.compose_healthy(name="workers / webhook processors healthy", stack_dir=st.dir,
                                   project=st.compose_project, services=s.main_services[1:], timeout=st.ready_timeout,
                                   compose=compose_command(dk))
    operations.n8n_ready(name="n8n ready (/healthz/readiness through Caddy)",
                         url=local_url("healthz/readiness", st), resolve=local_resolve(st),
                         timeout=st.ready_timeout, logs_command=compose(st, dk, "logs --no-color --tail 40 n8n"))
    if runner_services(st, s):
        operations.compose_healthy(name="task runners healthy (connected to their broker)", stack_dir=st.dir,
                                   project=st.compose_project, services=runner_services(st, s),
                                   timeout=st.ready_timeout, compose=compose_command(dk))
    owner = json.dumps({
        "email": secret("N8N_OWNER_EMAIL").unmask(), "password": secret("N8N_OWNER_PASSWORD").unmask(),
        "firstName": st.owner_first_name, "lastName": st.owner_last_name,
    })
    operations.n8n_owner(name="n8n owner account claimed", compose=compose(st, dk, "").rstrip(),
                         payload=HiddenValue(owner))
    people = settings.Base.from_data(host.data).people
    if any(p.get("n8n") for p in people):
        present, absent = access.refuse_owner_removal(people, secret("N8N_OWNER_EMAIL").unmask())
        login = json.dumps({"emailOrLdapLoginId": secret("N8N_OWNER_EMAIL").unmask(),
                            "password": secret("N8N_OWNER_PASSWORD").unmask()})
        operations.n8n_users(name=f"n8n users: people's accounts ({len(present)} present, {len(absent)} absent)",
                             compose=compose(st, dk, "").rstrip(), login=HiddenValue(login), present=present,
                             absent=absent, postgres_user=st.postgres_user, postgres_db=st.postgres_db)
    if not owner_claimed:
        files.file(name="owner claimed: n8n opens to the public", path=claimed_marker, mode="600")
        opened = files.template(name="Caddyfile (open)", src="templates/Caddyfile.j2",
                                dest=f"{st.dir}/caddy/Caddyfile", mode="644", base=b, owner_claimed=True, **ctx)
        server.shell(name="reload Caddy (open)", commands=[reload_caddy], _if=opened.did_change)
