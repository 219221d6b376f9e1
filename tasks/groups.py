"""The one registry of inventory groups: which servers the project manages, and the `.env`
variable that lists each group's hosts. inventory.py, deploy.py, the configuration checks and the
variables registry all read it; a group is added here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Group:
    name: str  # pyinfra group (and group_data/<name>.py)
    variable: str  # .env variable listing its hosts (host or host:port, comma-separated)
    what: str


N8N_SERVERS = Group("n8n_servers", "N8N_SERVERS", "the n8n servers (the stack, backups, runbooks)")
N8N_WORKERS = Group("n8n_workers", "N8N_WORKER_SERVERS", "servers that run only n8n workers (queue mode, tier ouro up)")
BACKUP_VAULT = Group("backup_vault", "BACKUP_VAULT", "the off-host backup repositories (restic's REST server, append-only)")
MONITORS = Group("monitors", "MONITOR_SERVERS", "the off-host monitor and status page")

GROUPS: tuple[Group, ...] = (N8N_SERVERS, N8N_WORKERS, BACKUP_VAULT, MONITORS)
NAMES: tuple[str, ...] = tuple(g.name for g in GROUPS)
