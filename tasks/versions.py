"""What a running n8n server has is changed only on purpose.

- Its n8n version goes forward through `n8n-deploy-version` (pre-change snapshot, readiness,
  rollback), whether `deploy.py` (group_data n8n_version moved up) or the emergency deploy runbook
  asks; the stack's settings file is rendered with the version the server runs, so a plain deploy
  never switches versions by itself. Back to an older version (the database may be migrated) only
  through the emergency deploy runbook: `deploy.py` refuses.
- A secret in use (the encryption key, n8n's database password, the backups' password) differing
  from `.env`'s stops the deploy before any change: writing it would lose every credential, stop
  n8n or make every backup unreadable. The comparison is by salted fingerprint (tasks/facts.py).
"""

from __future__ import annotations

import os
import re
import secrets
import sys

from pyinfra import host, inventory

from tasks import groups, operations, settings, workers
from tasks.backup import PASSWORD_FILE
from tasks.facts import IN_USE, ComposeServices, StackState, fingerprint
from tasks.monitoring import maintenance
from tasks.n8n import n8n_image

SALT = secrets.token_hex(16)  # one per run: the fingerprints shown (-vvv) are never worth keeping

WHY = {
    "N8N_ENCRYPTION_KEY": "n8n encrypts every credential with the server's key: with .env's every credential "
                          "would be unreadable. Put the server's key in .env (N8N_ENCRYPTION_KEY in {dir}/.env there)",
    "POSTGRES_PASSWORD": "n8n's database has the server's password: with .env's n8n would not start. Finish the "
                         "rotation (pyinfra inventory.py runbooks/rotate_secrets.py --data secrets=postgres) or put "
                         "the server's value in .env",
    "RESTIC_PASSWORD": "the backup repositories open with the server's password: with .env's no backup could be read "
                       "or made. Finish the rotation (pyinfra inventory.py runbooks/rotate_secrets.py --data "
                       "secrets=restic) or put the server's value in .env",
}


def version_key(v: str) -> tuple:
    """2.41.10 > 2.41.9: numbers compared as numbers."""
    return tuple(int(x) for x in re.findall(r"\d+", v))


def state(h=None) -> dict:
    """The stack as server `h` (default: this host) runs it (StackState)."""
    h = h or host
    st = settings.Stack.from_data(h.data)
    return h.get_fact(StackState, env_file=f"{st.dir}/.env", password_file=PASSWORD_FILE, salt=SALT)


def problems(now: dict, wanted_version: str, env, stack_dir: str) -> list[str]:
    """Why a deploy must not touch this server: secrets in use that differ from `env`'s, a version
    older than the one it runs. Never a value."""
    out = [f"{name} in .env is not the one this server uses: {WHY[name].format(dir=stack_dir)}"
           for name in IN_USE if now.get(name) and env.get(name) and now[name] != fingerprint(env[name], SALT)]
    running = now.get("N8N_VERSION")
    if running and version_key(wanted_version) < version_key(running):
        out.append(f"n8n here runs {running} (its database migrated to it) and n8n_version says {wanted_version}: "
                   f"deploy.py never goes back. Keep {running} (set n8n_version = \"{running}\" in group_data), or go "
                   f"back on purpose, with a snapshot and rollback: pyinfra inventory.py runbooks/emergency_deploy.py "
                   f"--data n8n_version={wanted_version}")
    return out


def refuse_swaps_and_downgrades() -> None:
    """deploy.py, on an n8n server, before any operation: stop (exit 2) with every reason."""
    st = settings.Stack.from_data(host.data)
    found = problems(state(), st.n8n_version, os.environ, st.dir)
    for p in found:
        print(f"mottivme-infra: {host.name}: {p}. Nothing was changed.", file=sys.stderr)
    if found:
        sys.exit(2)


def _main_server():
    mains = inventory.get_group(groups.N8N_SERVERS.name, default=[])
    return mains[0] if mains else None


def running_version() -> str:
    """The version the main n8n server runs now ("" when it has no stack yet): what this run renders
    into the stacks' settings, so only change_version() moves it."""
    main = _main_server()
    return state(main).get("N8N_VERSION", "") if main is not None else ""


def stack_version() -> str:
    """The version the stacks' settings name in this run: the running one, or group_data's on a
    server that has none yet."""
    return running_version() or str(settings.Stack.from_data(host.data).n8n_version)


def upgrade_due() -> str:
    """group_data's n8n_version when the running main server is older (deploy.py then moves it up
    with change_version()); "" otherwise."""
    running = running_version()
    wanted = str(settings.Stack.from_data(host.data).n8n_version)
    return wanted if running and version_key(running) < version_key(wanted) else ""


def change_version(version: str, smoke: str = "", timeout: str = "", reason: str = "") -> None:
    """Every host of the run, in file order (pyinfra keeps it across hosts): the monitor silences
    n8n; worker servers load the image first (a server that cannot stops the run before anything
    stops), drain during the switch and then start on the version the main server ended on; the
    main server switches with n8n-deploy-version (snapshot, readiness, smoke test, rollback)."""
    timeout = timeout or str(host.data.n8n_ready_timeout)
    command = f"n8n-deploy-version {version} --timeout {timeout}" + (f" --smoke-webhook {smoke}" if smoke else "")
    if "monitors" in host.groups:
        maintenance("start", ["n8n"], minutes=3 * int(timeout) // 60 + 15, reason=reason or f"n8n {version}")
    workers_active = ("n8n_workers" in host.groups
                      and bool(host.get_fact(ComposeServices, project=workers.PROJECT)))
    if workers_active:
        operations.image(name=f"workers: image {version} (before anything is stopped)", ref=n8n_image(version),
              archive_dir=host.data.image_archive_dir)
    if "n8n_servers" in host.groups:
        workers.worker_servers_ready(name="worker servers can take this version")
    if workers_active:
        workers.drain(name="workers: drain and stop during the switch")
    if "n8n_servers" in host.groups:
        operations.run_and_report(name=f"n8n {version} (snapshot first, rollback on failure)", command=command,
                       what="version change")
    if workers_active:
        workers.follow_main_version(name="workers: the version the main server ended on", version=version)
        workers.start_workers()
    if "monitors" in host.groups:
        maintenance("end", ["n8n"])
