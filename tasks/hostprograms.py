"""The host programs (mottivme_host/, this project's stdlib-only package) on the n8n servers and
the worker servers (and, for the reports to the monitor, on the vault and the monitor), and their
one settings file /etc/mottivme/host.json (0600), built here from group_data. Cron, the runbooks and a person over SSH all run the same code:
`mottivme-host <command>`, or its old names (n8n-backup, n8n-restore, ...), which link to it."""

from __future__ import annotations

import json
from pathlib import Path

from pyinfra import host
from pyinfra.api import HiddenValue, deploy
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server

from mottivme_host.cli import ALIASES
from mottivme_host.settings import Settings as HostSettings
from tasks import operations, settings

PACKAGE = Path(__file__).resolve().parent.parent / "mottivme_host"
LIB = "/usr/local/lib/mottivme"
STOP_WORKERS = f"{LIB}/mottivme_host/stop_workers.py"  # mottivme-host stop-workers (the operations look for it)
ENTRY = "/usr/local/sbin/mottivme-host"
SETTINGS = "/etc/mottivme/host.json"


def stack_settings(st: settings.Stack, *, compose: str, project: str, stack_dir: str, services: list[str],
                   n8n_host: str, pooled: list[str] = (), runners: list[str] = (), queue_redis: str = "") -> dict:
    """What every host program needs to know of the stack it runs on (the main server's or a
    worker server's: `project`, `stack_dir`; `pooled`: the services behind Caddy's pool;
    `queue_redis`: how n8n's queue is reached, mottivme_host.settings.Settings.queue_redis)."""
    return {
        "stack_dir": stack_dir,
        "compose": [*compose.split(), "-p", project],
        "compose_project": project,
        "services": list(services),
        "pooled": list(pooled),
        "queue_redis": queue_redis,
        "runners": list(runners),
        "runners_image_repo": st.runners_image_repo if runners else "",
        "n8n_host": n8n_host,
        "n8n_image_repo": st.n8n_image_repo,
        "ready_timeout": st.ready_timeout,
        "drain_seconds": st.drain_seconds,
        "postgres_user": st.postgres_user,
        "postgres_db": st.postgres_db,
        "postgres_image": st.postgres_ref,
        "deploy_log": st.deploy_log,
        "secret_max_age_days": st.secret_max_age_days,
        "secret_warn_days": st.secret_warn_days,
    }


def cleanup_settings(cl: settings.Cleanup) -> dict:
    return {"source": cl.source, "retention_days": dict(cl.retention_days), "batch_size": cl.batch_size,
            "log": cl.log}


@deploy("Host programs")
def host_programs(settings: dict):
    """Install mottivme_host and write its settings (`settings`: the dict of mottivme_host.settings).
    Returns the operations that install the package and write the settings: a service that runs
    the code restarts on their change."""
    apt.packages(name="host programs: python3", packages=["python3"], no_recommends=True)
    files.directory(name=f"host programs: {LIB}", path=LIB, mode="755")
    package = operations.tree(name="host programs: the package (mottivme_host/)", src=str(PACKAGE),
                              dest=f"{LIB}/mottivme_host")
    files.put(name=f"host programs: {ENTRY}", src=str(PACKAGE / "bin" / "mottivme-host"), dest=ENTRY, mode="755")
    for alias in ALIASES:
        files.link(name=f"host programs: /usr/local/sbin/{alias}", path=f"/usr/local/sbin/{alias}", target=ENTRY,
                   force=True, force_backup=False)
    files.directory(name="host programs: /etc/mottivme", path="/etc/mottivme", mode="700")
    written = operations.secret_file(name=f"host programs: settings {SETTINGS} (0600)", dest=SETTINGS,
                                     content=HiddenValue(json.dumps(settings, indent=2, sort_keys=True) + "\n"))
    # an n8n server (it keeps the backups): the secrets' days count from its first deploy; cron
    # and the rotation keep the record up to date from then on
    if settings.get("backup") and not host.get_fact(File, path=HostSettings().secret_ages):
        server.shell(name="host programs: start counting the secrets' age (mottivme-host secret-age)",
                     commands=[f"{ENTRY} secret-age >/dev/null"])
    return package, written


