"""The one settings file of the host programs, rendered by the deploy (tasks/hostprograms.py)
from group_data: /etc/mottivme/host.json, root-only (0600: it may hold the Supabase URL and the
S3 keys). The programs never read group_data, templates or each other's files for settings."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields

PATH = os.environ.get("MOTTIVME_HOST_SETTINGS", "/etc/mottivme/host.json")


@dataclass(frozen=True)
class Retention:
    last: int = 3
    daily: int = 7
    weekly: int = 4
    monthly: int = 12

    def args(self) -> list[str]:
        return ["--keep-last", str(self.last), "--keep-daily", str(self.daily),
                "--keep-weekly", str(self.weekly), "--keep-monthly", str(self.monthly)]

    def describe(self) -> str:
        return f"last {self.last}, daily {self.daily}, weekly {self.weekly}, monthly {self.monthly}"


@dataclass(frozen=True)
class Source:
    """One thing the backup holds (group_data `backup_sources`; borgmatic's model).

    kind "n8n": n8n's own database, its workflows and credentials (n8n's CLI) and the stack's
    configuration and n8n's files (its `volumes`, less `exclude`) - exactly one, named "n8n". kind "postgres": a PostgreSQL database at `url`
    (from .env; it holds the password), dumped with pg_dump of the server's own major version."""
    name: str
    kind: str
    url: str = ""
    # postgres: the schemas dumped, or "all": every schema but PostgreSQL's own and exclude_schemas
    # (the dump then holds the database's extensions, grants and policies whole: pglist.py)
    schemas: tuple[str, ...] | str = ("public",)
    exclude_schemas: tuple[str, ...] = ()
    # postgres, schemas "all": tables (schema.table) left out (Supabase's record of its own
    # migrations, which its `postgres` role may not read)
    exclude_tables: tuple[str, ...] = ()
    # postgres: schemas the platform makes in every database it serves (Supabase's auth and
    # storage): on a target that has one, its tables keep their definitions, only rows come back
    managed_schemas: tuple[str, ...] = ()
    # postgres: the database the DR drill restores this source into (`n8n-restore --target drill`:
    # one transaction, counts checked); never `url`. From .env (DR_DRILL_SUPABASE_URL for supabase)
    drill_url: str = ""
    # n8n: the stack's volumes holding n8n's files (name in its compose file -> where n8n mounts
    # it), and tar patterns of what is left out of them
    volumes: dict = field(default_factory=dict)
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Backup:
    # the name this server's snapshots carry (restic --host) and the one a restore looks for: its
    # inventory name, as its vault account and S3 path (empty: the machine's hostname)
    host: str = ""
    dir: str = "/var/backups/n8n"
    local_repository: str = "/var/backups/n8n/restic"
    password_file: str = "/etc/mottivme/restic-password"
    log: str = "/var/log/n8n-backup.log"
    keep: Retention = field(default_factory=Retention)
    check_weekday: int = 7  # 1 = Monday ... 7 = Sunday
    check_subset: str = "10%"
    dump_compression: int = 0  # pg_dump -Z of the database dumps (restic compresses: 0)
    offsite_repositories: tuple[str, ...] = ()
    # those of them whose retention is done elsewhere: the vault's (rest-server --append-only,
    # pruned by runbooks/vault_prune.py); the backup never runs forget there
    append_only_repositories: tuple[str, ...] = ()
    # the vault (rest: URLs): this server's account password (added to the URL for restic only,
    # in its environment) and the one certificate restic trusts for it
    vault_password_file: str = ""
    vault_cert_file: str = ""
    success_hook: str = ""  # GET after a good backup (heartbeat); may hold a token: never logged
    failure_hook: str = ""  # POST with the one-line reason after a failed one
    hook_curl_args: tuple[str, ...] = ()
    # pg_dump/pg_restore of another server must have its major version: {major: image} (the deploy
    # writes group data's supabase_postgres_images, pinned by digest), and the throwaway database
    # (with pgvector) a dump is checked in (supabase_scratch_images)
    postgres_images: dict = field(default_factory=lambda: {m: f"postgres:{m}" for m in ("15", "16", "17")})
    scratch_images: dict = field(default_factory=lambda: {m: f"pgvector/pgvector:pg{m}" for m in ("15", "16", "17")})

    def image(self, kind: str, major: int) -> str:
        """`postgres_images` or `scratch_images`' image for PostgreSQL `major`; ValueError (one
        line) when there is none."""
        image = getattr(self, kind).get(str(major))
        if not image:
            raise ValueError(f"no image for PostgreSQL {major} (group data's supabase_majors: add it and its images, "
                             "`make images-add`, deploy)")
        return image
    sources: tuple[Source, ...] = (Source("n8n", "n8n"),)
    env: dict = field(default_factory=dict)  # extra environment of restic (S3 keys)
    lock: str = "/run/lock/n8n-backup.lock"

    @property
    def n8n(self) -> Source | None:
        """The source of kind n8n (there is one; the backup checks it)."""
        return next((x for x in self.sources if x.kind == "n8n"), None)


@dataclass(frozen=True)
class Vault:
    """The backup vault (tasks/backup.py `vault`): its repositories, the REST server's user that
    owns them, and the retention vault-prune applies (the n8n servers' own)."""
    path: str = "/srv/restic"
    user: str = "restic-rest-server"
    keep: Retention = field(default_factory=Retention)


@dataclass(frozen=True)
class Cleanup:
    source: str = "supabase"  # the backup source (a postgres one) whose old rows are deleted
    retention_days: dict = field(default_factory=dict)  # table -> days kept
    batch_size: int = 5000
    log: str = "/var/log/n8n-cleanup.log"
    lock: str = "/run/lock/n8n-supabase-cleanup.lock"


@dataclass(frozen=True)
class Reports:
    """What this server reports to the monitor host (tasks/monitoring.py `reporting()`): every
    managed server its disk, memory and CPU; an n8n server also its secrets' age and scheduled
    jobs, and in queue mode the executions waiting for a worker."""
    disk_url: str = ""  # POST the percent used of disk_path here (holds a token: never in argv or logs)
    disk_path: str = "/"
    memory_url: str = ""  # POST the percent of memory in use here
    cpu_url: str = ""  # POST the percent of CPU time busy since the last report here
    cpu_sample: str = "/var/lib/mottivme/cpu-sample"  # the last report's /proc/stat totals
    queue_url: str = ""  # queue mode: POST the executions waiting in Redis here
    secrets_url: str = ""  # POST the oldest rotatable secret's age (days) here (secret-age --report)
    # scheduled job -> heartbeat URL (common.report_job): "check" (the backup's weekly repository
    # check), "cleanup" (the weekly Supabase cleanup), "drill" (the monthly restore drill)
    jobs: dict = field(default_factory=dict)
    curl_args: tuple[str, ...] = ()  # the sandbox: -k --resolve (no DNS, Caddy's local CA)


@dataclass(frozen=True)
class Settings:
    stack_dir: str = "/opt/n8n"
    compose: tuple[str, ...] = ("docker", "compose", "-p", "n8n")  # argv prefix, run in stack_dir (the deploy
    # writes the host's own: Compose v1 `docker-compose` on Debian 12 with Debian's packages)
    compose_project: str = "n8n"
    services: tuple[str, ...] = ("n8n",)  # n8n's processes in this stack (main, workers, webhook)
    # the services Caddy spreads requests over (the webhook processors): n8n-restart drains each
    # (no new connection reaches it, the requests in flight finish) before restarting it
    pooled: tuple[str, ...] = ()
    # n8n's queue (Redis) as the host programs reach it: "" (no queue: regular mode), "container"
    # (the stack's redis container: the main server) or host:port (a worker server: the tunnel's
    # local end; password QUEUE_BULL_REDIS_PASSWORD of the stack's .env). n8n-restart holds the
    # queue still while a worker is told to stop (mottivme_host/queue_hold.py)
    queue_redis: str = ""
    n8n_host: str = ""  # the public name; readiness is asked of the host's own Caddy with it
    n8n_image_repo: str = "docker.n8n.io/n8nio/n8n"
    # the task runners' compose services (external mode: one beside each n8n process that runs
    # code) and their image, at n8n's version; none in internal mode
    runners: tuple[str, ...] = ()
    runners_image_repo: str = ""
    ready_timeout: int = 300
    drain_seconds: int = 120  # a worker's graceful shutdown (its stop timeout: stop_seconds)
    postgres_user: str = "n8n"
    postgres_db: str = "n8n"
    postgres_image: str = "postgres:17"  # the stack's PostgreSQL image (psql, pg_restore -l)
    deploy_log: str = "/var/log/n8n-deploy.log"
    env_file: str = ".env"  # in stack_dir: the stack's secrets and N8N_VERSION (the running version)
    # SOP 05: the rotatable secrets are rotated every secret_max_age_days; secret-age warns
    # secret_warn_days before. The record of their ages (fingerprints and days, root only):
    secret_max_age_days: int = 90
    secret_warn_days: int = 7
    secret_ages: str = "/var/lib/mottivme/secret-ages.json"
    # root-only files of running commands (a database password's pgpass file while its container
    # runs: mottivme_host/pgaccess.py); /run is a tmpfs, so they never reach a disk
    run_dir: str = "/run/mottivme"
    backup: Backup | None = None  # None on a worker server: no backups there
    cleanup: Cleanup | None = None
    reports: Reports | None = None
    vault: Vault | None = None  # the backup vault only

    @property
    def stop_seconds(self) -> int:
        """How long a worker is given to stop: its drain, and 30 s for n8n's own shutdown (as the
        deploy's tasks/settings.Stack.stop_seconds, which the compose files' stop_grace_period is)."""
        return self.drain_seconds + 30

    @property
    def workers(self) -> tuple[str, ...]:
        """The queue-mode workers among `services`: neither the main process nor a webhook processor."""
        return tuple(x for x in self.services if x != "n8n" and x not in self.pooled)

    @property
    def backend_network(self) -> str:
        return f"{self.compose_project}_backend"

    @property
    def ready_url(self) -> str:
        return f"https://{self.n8n_host}/healthz/readiness"

    @property
    def resolve(self) -> str:
        """curl --resolve pin: the host's own Caddy, whatever DNS says."""
        return f"{self.n8n_host}:443:127.0.0.1"


def _build(cls, data: dict):
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown settings {', '.join(unknown)} for {cls.__name__}")
    kw = {}
    for name, value in data.items():
        if name == "keep":
            value = Retention(**value)
        elif name == "sources":
            value = tuple(_build(Source, s) for s in value)
        elif name == "backup" and value is not None:
            value = _build(Backup, value)
        elif name == "cleanup" and value is not None:
            value = _build(Cleanup, value)
        elif name == "reports" and value is not None:
            value = _build(Reports, value)
        elif name == "vault" and value is not None:
            value = _build(Vault, value)
        elif isinstance(value, list):
            value = tuple(value)
        kw[name] = value
    return cls(**kw)


def from_dict(data: dict) -> Settings:
    return _build(Settings, data)


def load(path: str | None = None) -> Settings:
    path = path or PATH
    try:
        with open(path) as f:
            return from_dict(json.load(f))
    except FileNotFoundError:
        raise SystemExit(f"mottivme-host: no settings at {path}: this server is not provisioned; "
                         "run `pyinfra inventory.py deploy.py` first") from None
    except PermissionError:
        raise SystemExit(f"mottivme-host: cannot read the settings {path} (root only, 0600): run it as root, "
                         "e.g. with sudo") from None
    except (OSError, ValueError, TypeError) as e:  # broken JSON, an unknown key, a wrong value
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SystemExit(f"mottivme-host: cannot read the settings {path} ({reason}): the deploy writes it; "
                         "run `pyinfra inventory.py deploy.py` again") from None
