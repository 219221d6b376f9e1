"""n8n worker servers (group n8n_workers, queue mode from tier ouro up) and the SSH tunnel they
reach the main server's Redis and PostgreSQL through.

Redis and PostgreSQL never listen on a public interface: on the main server they are published
on 127.0.0.1 only, and each worker server holds an SSH tunnel (systemd unit `n8n-tunnel`) to a
restricted account there that may open nothing but those two ports. See docs/scaling.md.
"""

from __future__ import annotations

import os
from io import StringIO
from pathlib import Path
from shlex import quote

import paramiko
from pyinfra import host, inventory, logger
from pyinfra.api import FunctionCommand, HiddenValue, deploy, operation
from pyinfra.facts.files import FileContents
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from tasks import hostprograms, operations, scaling, settings
from tasks.config import peer
from tasks.docker import compose_command
from tasks.n8n import (
    n8n_environment,
    n8n_host,
    n8n_image,
    public_url,
    runner_services,
    runners_image,
    stack_secrets,
    volume_owners,
    with_runners,
    workers_recreated,
)

KEY_ON_HOST = "/etc/mottivme/tunnel_ed25519"
PROJECT = "n8n-worker"


def main_server():
    servers = list(inventory.get_group("n8n_servers", default=[]))
    return servers[0] if servers else None


def _private_key() -> str:
    return Path(os.environ["WORKER_TUNNEL_KEY_FILE"]).expanduser().read_text()


def tunnel_public_key() -> str:
    key = paramiko.Ed25519Key.from_private_key(StringIO(_private_key()))
    return f"{key.get_name()} {key.get_base64()} mottivme-worker-tunnel"


@deploy("Tunnel endpoint for the worker servers")
def tunnel_endpoint():
    """On the main server: an account that can forward to Redis and PostgreSQL on loopback, and
    nothing else (no shell, no other port, no agent or X11 forwarding)."""
    w = settings.Workers.from_data(host.data)
    home = f"/var/lib/{w.tunnel_user}"
    server.user(name=f"tunnel: user {w.tunnel_user} (no shell)", user=w.tunnel_user, system=True, home=home,
                shell="/usr/sbin/nologin", create_home=True)
    files.directory(name="tunnel: .ssh", path=f"{home}/.ssh", user=w.tunnel_user, group=w.tunnel_user, mode="700")
    allowed = ",".join(f'permitopen="127.0.0.1:{p}"' for p in (w.redis_port, w.postgres_port))
    files.put(name="tunnel: the worker servers' key (port forwarding to Redis/PostgreSQL only)",
              src=StringIO(f"restrict,port-forwarding,{allowed} {tunnel_public_key()}\n"),
              dest=f"{home}/.ssh/authorized_keys", user=w.tunnel_user, group=w.tunnel_user, mode="600")
    # the key's options allow local forwards to those ports; sshd itself refuses remote forwards
    conf = files.template(name="tunnel: sshd allows the account local forwards only",
                          src="templates/sshd-worker-tunnel.conf.j2",
                          dest="/etc/ssh/sshd_config.d/60-mottivme-worker-tunnel.conf", mode="644", workers=w)
    server.shell(name="tunnel: check and reload sshd", commands=["sshd -t", "systemctl reload ssh"],
                 _if=conf.did_change)


def drain(name: str = "workers: drain and stop (running executions finish, queued ones stay in Redis)"):
    w, st = settings.Workers.from_data(host.data), settings.Stack.from_data(host.data)
    operations.workers_stopped(name=name, stack_dir=w.stack_dir, project=PROJECT, timeout=st.stop_seconds,
                               compose=compose_command(),
                               command_module=hostprograms.STOP_WORKERS)


def start_workers(name: str = "workers: start"):
    """Start this worker server's workers (after a drain), always as an action (a runbook step)."""
    w = settings.Workers.from_data(host.data)
    server.shell(name=name, commands=[f"cd {w.stack_dir} && {compose_command()} -p {PROJECT} up -d"])


def _worker_servers_ready(state, host):
    failed = sorted(h.name for h in state.failed_hosts if "n8n_workers" in h.groups)
    if failed:
        return operations._fail(host, f"worker server(s) {', '.join(failed)} cannot take this version (see above): "
                                      "nothing was changed")
    return True


@operation(is_idempotent=False)
def worker_servers_ready():
    """On the main server, before it switches versions: fail when a worker server failed its own
    preparation (an image it cannot load), so main and workers never run different versions.

    .. code:: python

        workers.worker_servers_ready(name="worker servers have the image")
    """
    yield FunctionCommand(_worker_servers_ready, (), {})


def _follow_main(state, host, version: str):
    mains = {h.name for h in inventory.get_group("n8n_servers", default=[])}
    failed = sorted(h.name for h in state.failed_hosts if h.name in mains)
    if failed:
        host.log_styled(f"workers stay on their version: the version change failed on {', '.join(failed)}, "
                        "which rolled back to it", fg="yellow", log_func=logger.warning)
        return True
    ok, _ = host.run_shell_command(f"mottivme-host set-version {quote(version)}")
    return ok


@operation(is_idempotent=False)
def follow_main_version(version: str):
    """On a worker server, after the main server's emergency deploy: point the workers at
    ``version`` when every main server ended on it, or leave them on theirs when it rolled back.
    The next ``start_workers()`` applies it.

    .. code:: python

        workers.follow_main_version(name="workers: the main server's version", version="2.41.0")
    """
    yield FunctionCommand(_follow_main, (version,), {})


def host_settings() -> dict:
    """The host programs' settings of a worker server (restart, set-version; no backups here)."""
    w, st = settings.Workers.from_data(host.data), settings.Stack.from_data(host.data)
    s = scaling.settings(host.data)
    services = s.server_services if s.queue_mode else []
    return hostprograms.stack_settings(st, compose=compose_command(), project=PROJECT, stack_dir=w.stack_dir,
                                      services=services, n8n_host=n8n_host(st),
                                      runners=runner_services(st, s, worker_server=True) if services else [],
                                      queue_redis=f"127.0.0.1:{w.redis_port}" if services else "")


WORKER_COMPOSE = "templates/docker-compose-worker.yml.j2"


@deploy("n8n workers")
def workers(version: str):
    """A worker server up to its workers' start; returns what start_configured_workers() needs
    (None: no workers in this tier)."""
    b = settings.Base.from_data(host.data)
    st, w = settings.Stack.from_data(host.data), settings.Workers.from_data(host.data)
    s = scaling.settings(host.data)
    address, port = peer(main_server())
    files.directory(name="workers: /etc/mottivme", path="/etc/mottivme", mode="700")
    key = operations.secret_file(name="workers: tunnel key (0600)", content=HiddenValue(_private_key()),
                                 dest=KEY_ON_HOST)
    unit = files.template(name="workers: tunnel unit", src="templates/n8n-tunnel.service.j2",
                          dest="/etc/systemd/system/n8n-tunnel.service", mode="644", workers=w, key=KEY_ON_HOST,
                          address=address, port=port)
    systemd.daemon_reload(name="workers: systemd reload (unit changed)", _if=unit.did_change)

    if not (s.queue_mode and s.server_workers):
        drain()  # reads its own settings (the runbooks call it)
        systemd.service(name="workers: tunnel stopped (no workers in this tier)", service="n8n-tunnel.service",
                        running=False, enabled=False)
        return None

    systemd.service(name="workers: tunnel running", service="n8n-tunnel.service", running=True, enabled=True)
    systemd.service(name="workers: tunnel restart (changed)", service="n8n-tunnel.service", restarted=True,
                    _if=any_changed(unit, key))
    files.directory(name="workers: stack directory", path=w.stack_dir, mode="750")
    # the images first: one that cannot be pulled changes nothing
    images = [operations.image(name=f"workers: image {ref.partition('@')[0]} (pinned by digest)", ref=ref)
              for ref in (n8n_image(version, st), *runners_image(version, st))]
    compose_path = f"{w.stack_dir}/docker-compose.yml"
    compose_ctx = dict(stack=st, scaling=s, timezone=b.timezone, with_runners=with_runners(st, s, worker_server=True),
                       n8n_env=n8n_environment(b, st, w, s, n8n_host(st), public_url(st), remote=True))
    compose_now = host.get_fact(FileContents, path=compose_path)  # before this deploy (read while it plans)
    compose_file = files.template(name="workers: compose file", src=WORKER_COMPOSE, dest=compose_path, mode="644",
                                  **compose_ctx)
    env_file = operations.secret_file(
        name="workers: secrets env file (0600)", dest=f"{w.stack_dir}/.env",
        content=operations.render_secret("n8n.env.j2", queue_mode=True, secrets=stack_secrets(s, st),
                                         n8n_version=version))
    recreated = workers_recreated(compose_now, operations.render(WORKER_COMPOSE, compose_ctx), env_file, images)
    return compose_file, env_file, images, recreated


@deploy("n8n workers: start")
def start_configured_workers(compose_file, env_file, images, recreated: bool):
    """The second half of workers(), once the main server's stack is up (deploy.py puts a barrier
    between them: the workers can only become healthy through it)."""
    dk, st, w = settings.Docker.from_data(host.data), settings.Stack.from_data(host.data), settings.Workers.from_data(host.data)
    s = scaling.settings(host.data)
    compose = f"cd {w.stack_dir} && {compose_command(dk)} -p {PROJECT}"
    # the version's tag moved to the lock's new digest: re-created on it too
    changed = any_changed(compose_file, env_file, *images)
    if recreated:  # workers that `compose up -d` re-creates: stopped first, n8n's queue held
        operations.workers_stopped_before_apply(name="workers: stopped before the new configuration (n8n's queue held)",
                                                project=PROJECT, command_module=hostprograms.STOP_WORKERS,
                                                _ignore_errors=True)  # the apply below goes on, unheld
    applied = server.shell(name="workers: apply configuration (compose up -d)",
                           commands=[f"{compose} up -d --remove-orphans -t {st.stop_seconds}"], _if=changed)
    server.shell(name="workers: n8n's file volumes owned by n8n's user", commands=[volume_owners(st, PROJECT)],
                 _if=applied.did_change)
    operations.compose_running(name="workers: running", stack_dir=w.stack_dir, project=PROJECT,
                               services=s.server_services + runner_services(st, s, worker_server=True),
                               compose=compose_command(dk))
    operations.compose_healthy(name="workers: healthy (taking executions; their runners connected)",
                               stack_dir=w.stack_dir, project=PROJECT,
                               services=s.server_services + runner_services(st, s, worker_server=True),
                               timeout=st.ready_timeout,
                               compose=compose_command(dk))
