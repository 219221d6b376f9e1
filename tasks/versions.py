"""What a running n8n server has is changed only on purpose.

- Its n8n version goes forward through `n8n-deploy-version` (pre-change snapshot, readiness,
  rollback), whether `deploy.py` (group_data n8n_version moved up) or the emergency deploy runbook
  asks; the stack's settings file is rendered with the version the server runs, so a plain deploy
  never switches versions by itself. Back to an older version (the database may be migrated) only
  through the emergency deploy runbook: `deploy.py` refuses.
- A secret in use (the encryption key, n8n's database password, the backups' password) differing
  from `.env`'s stops the deploy before any change: writing it would lose every credential, stop
  n8n or make every backup unreadable. The comparison is by salted fingerprint
  (mottivme_host/stack_state.py).
"""

from __future__ import annotations

import os
import secrets
import sys

from pyinfra import host, inventory
from pyinfra import state as pyinfra_state

from mottivme_host.deploy_version import valid_version, version_key
from mottivme_host.stack_state import IN_USE, fingerprint
from tasks import groups, operations, settings, workers
from tasks.backup import PASSWORD_FILE
from tasks.facts import ComposeServices, StackState
from tasks.monitoring import maintenance
from tasks.n8n import n8n_image, runners_image

SALT = secrets.token_hex(16)  # one per run: the fingerprints shown (-vvv) are never worth keeping

WHY = {
    "N8N_ENCRYPTION_KEY": "n8n encrypts every credential with the server's key: with .env's every credential "
                          "would be unreadable. Put the server's key in .env (N8N_ENCRYPTION_KEY in {dir}/.env there)",
    "POSTGRES_PASSWORD": "n8n's database has the server's password: with .env's n8n would not start. Finish the "
                         "rotation (pyinfra inventory.py runbooks/rotate_secrets.py --data secrets=postgres) or put "
                         "the server's value in .env",
    "REDIS_PASSWORD": "Redis and every n8n process of the queue have the server's password: with .env's the workers "
                      "would lose the queue. Put the server's value in .env (REDIS_PASSWORD in {dir}/.env there)",
    "RESTIC_PASSWORD": "the backup repositories open with the server's password: with .env's no backup could be read "
                       "or made. Finish the rotation (pyinfra inventory.py runbooks/rotate_secrets.py --data "
                       "secrets=restic) or put the server's value in .env",
}


def _stack_env(h) -> str:
    """The stack's settings file on `h`: the main stack's on an n8n server, the workers' on a worker server."""
    if groups.N8N_WORKERS.name in h.groups and groups.N8N_SERVERS.name not in h.groups:
        return f"{settings.Workers.from_data(h.data).stack_dir}/.env"
    return f"{settings.Stack.from_data(h.data).dir}/.env"


def state(h=None) -> dict:
    """The stack as server `h` (default: this host) runs it (StackState); stops the run (exit 2)
    when it cannot be read: nothing may then be decided about its version or secrets."""
    h = host if h is None else h
    now = h.get_fact(StackState, env_file=_stack_env(h), password_file=PASSWORD_FILE, salt=SALT)
    if now.get("STATE") not in ("ok", "none"):
        print(f"mottivme-infra: {h.name}: cannot read what its n8n stack runs ({_stack_env(h)}: version, secrets in "
              f"use; see the error above: python3 missing? `apt install python3` there). Nothing was changed.",
              file=sys.stderr)
        sys.exit(2)
    return now


def problems(now: dict, wanted_version: str | None, env, stack_dir: str) -> list[str]:
    """Why a deploy must not touch this server: secrets in use that differ from `env`'s, a version
    older than the one it runs (`wanted_version` None: not this server's to decide). Never a value."""
    out = [f"{name} in .env is not the one this server uses: {WHY[name].format(dir=stack_dir)}"
           for name in IN_USE if now.get(name) and env.get(name) and now[name] != fingerprint(env[name], SALT)]
    running = now.get("N8N_VERSION")
    if wanted_version is not None and not valid_version(wanted_version):
        out.append(f"n8n_version {wanted_version!r} is not a release number X.Y.Z (e.g. 2.41.1)")
    elif wanted_version and running and valid_version(running) \
            and version_key(wanted_version) < version_key(running):
        out.append(f"n8n here runs {running} (its database migrated to it) and n8n_version says {wanted_version}: "
                   f"deploy.py never goes back. Keep {running} (set n8n_version = \"{running}\" in group_data), or go "
                   f"back on purpose, with a snapshot and rollback: pyinfra inventory.py runbooks/emergency_deploy.py "
                   f"--data n8n_version={wanted_version}")
    return out


def refuse_swaps_and_downgrades() -> None:
    """deploy.py, before any operation, on an n8n server or a worker server: stop (exit 2) with
    every reason (a worker server's version follows the main server's: only its secrets count)."""
    main = groups.N8N_SERVERS.name in host.groups
    stack_dir = _stack_env(host).rsplit("/", 1)[0]
    wanted = str(settings.Stack.from_data(host.data).n8n_version) if main else None
    found = problems(state(), wanted, os.environ, stack_dir)
    for p in found:
        print(f"mottivme-infra: {host.name}: {p}. Nothing was changed.", file=sys.stderr)
    if found:
        sys.exit(2)


def main_server():
    """The n8n server the worker servers work for (the inventory's first), when this run reaches it."""
    mains = inventory.get_group(groups.N8N_SERVERS.name, default=[])
    return mains[0] if mains and pyinfra_state.is_host_in_limit(mains[0]) else None


def _governing():
    """The server whose version this host's stack follows: itself (an n8n server), else the main
    server (worker servers, the monitor); None when the run does not reach it."""
    return host if groups.N8N_SERVERS.name in host.groups else main_server()


def running_version() -> str:
    """The version this host's stack follows runs now ("" when it has no stack yet, or this run does
    not reach it): what this run renders into the stack's settings, so only change_version() moves it."""
    h = _governing()
    return state(h).get("N8N_VERSION", "") if h is not None else ""


def stack_version() -> str:
    """The version the stack's settings name in this run: the running one, or group_data's on a
    server that has none yet."""
    return running_version() or str(settings.Stack.from_data(host.data).n8n_version)


def upgrade_due() -> str:
    """group_data's n8n_version when the server this host follows runs an older one (deploy.py then
    moves it up with change_version()); "" otherwise, and when this run does not reach that server
    (`--limit` a worker server: the workers never move without their main server)."""
    running = running_version()
    wanted = str(settings.Stack.from_data(host.data).n8n_version)
    if not (running and valid_version(running) and valid_version(wanted)):
        return ""
    return wanted if version_key(running) < version_key(wanted) else ""


def change_version(version: str, smoke: str = "", timeout: str = "", reason: str = "") -> None:
    """Every host of the run, in file order (pyinfra keeps it across hosts): the monitor silences
    n8n; worker servers load the image first (a server that cannot stops the run before anything
    stops), drain during the switch and then start on the version the main server ended on; the
    main server switches with n8n-deploy-version (snapshot, readiness, smoke test, rollback)."""
    timeout = timeout or str(host.data.n8n_ready_timeout)
    digest = n8n_image(version).partition("@")[2]  # images.lock's (a version it lacks stops the run here)
    runners = "".join(f" --runners-digest {r.partition('@')[2]}" for r in runners_image(version))
    command = (f"n8n-deploy-version {version} --digest {digest}{runners} --timeout {timeout}"
               + (f" --smoke-webhook {smoke}" if smoke else ""))
    # every host takes part in the barriers: pyinfra orders hosts' operations as one graph and
    # would otherwise interleave hosts whose earlier operations differ (deploy.py) by position
    operations.barrier(name=f"n8n {version}: every host ready for the change")
    if "monitors" in host.groups:
        maintenance("start", ["n8n"], minutes=3 * int(timeout) // 60 + 15, reason=reason or f"n8n {version}")
    workers_active = ("n8n_workers" in host.groups
                      and bool(host.get_fact(ComposeServices, project=workers.PROJECT)))
    if workers_active:
        for ref in (n8n_image(version), *runners_image(version)):
            operations.image(name=f"workers: image {ref.partition('@')[0]} (before anything is stopped)", ref=ref)
    operations.barrier(name=f"n8n {version}: the worker servers have the image")
    if "n8n_servers" in host.groups:
        workers.worker_servers_ready(name="worker servers can take this version")
    if workers_active:
        workers.drain(name="workers: drain and stop during the switch")
    operations.barrier(name=f"n8n {version}: the workers are stopped")
    if "n8n_servers" in host.groups:
        operations.run_and_report(name=f"n8n {version} (snapshot first, rollback on failure)", command=command,
                                  what="version change")
    operations.barrier(name=f"n8n {version}: the main server switched (or rolled back)")
    if workers_active:
        workers.follow_main_version(name="workers: the version the main server ended on", version=version)
        workers.start_workers()
    if "monitors" in host.groups:
        maintenance("end", ["n8n"])
