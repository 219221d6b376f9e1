"""group_data as typed, frozen settings: one class per concern, each field naming the group_data
key it holds (`key("backup_hour")`). `Backup.from_data(host.data)` reads every key of the class
once, from pyinfra host data or any mapping with attribute access (tasks.groupdata.Data); a
missing key stops it with `SettingsError` naming the key.

The deploy functions in tasks/ build the objects they need once and hand them to operations and
templates (`files.template(..., backup=b)`, `{{ backup.hour }}`); no template reads `host.data`.
So a setting traces statically: its key in group_data/all.py -> the field here -> `<object>.<field>`.

Every key of group_data/all.py is held by exactly one class here, or is listed in READ_ELSEWHERE
(tests/unit/test_templates.py checks both ways). Fields are frozen (not reassignable); their
values are group_data's own (lists and dicts stay lists and dicts: what the operations and
templates got before). A field's comment is there only where group_data's does not say it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, fields
from typing import Any, Self


class SettingsError(Exception):
    pass


def key(name: str, *, optional: bool = False) -> Any:
    """A field holding group_data key `name`. `optional`: host data an inventory source may set
    (not group_data; None when absent)."""
    return field(metadata={"key": name, "optional": optional})


_ABSENT = object()


def _read(data, name: str):
    """data.<name> from pyinfra host data (AttributeError when absent) or a Data (KeyError)."""
    try:
        return getattr(data, name)
    except (AttributeError, KeyError):
        return _ABSENT


class _Settings:
    @classmethod
    def from_data(cls, data) -> Self:
        values = {}
        for f in fields(cls):
            name, optional = f.metadata["key"], f.metadata["optional"]
            value = _read(data, name)
            if value is _ABSENT:
                if not optional:
                    raise SettingsError(f"group_data key {name!r} is missing (tasks/settings.py {cls.__name__}."
                                        f"{f.name}): set it in group_data/all.py")
                value = None
            values[f.name] = value
        return cls(**values)

    @classmethod
    def keys(cls) -> dict[str, str]:
        """{field: its group_data key}."""
        return {f.name: f.metadata["key"] for f in fields(cls)}


@dataclass(frozen=True)
class Base(_Settings):
    """Every host: packages, timezone, SSH, firewall (tasks/base.py)."""

    timezone: str = key("timezone")  # also n8n's (GENERIC_TIMEZONE, TZ) and cron's
    packages: list[str] = key("base_packages")
    people: list[dict] = key("people")  # who may log in (tasks/access.py)
    firewall_open_tcp_ports: list[int] = key("firewall_open_tcp_ports")
    caddy_tls: str = key("caddy_tls")  # every host's Caddy: the n8n servers' and the monitor's
    caddy_hsts: str = key("caddy_hsts")
    caddy_acme_ca: str = key("caddy_acme_ca")
    caddy_acme_ca_root: str = key("caddy_acme_ca_root")
    caddy_extra_names: list[str] = key("caddy_extra_names")
    ssh_user: str | None = key("ssh_user", optional=True)  # the inventory's deploy user (people's keys go to it)

    @property
    def acme_root_file(self) -> str:
        """Where Caddy reads caddy_acme_ca_root, on the monitor and in the n8n servers' Caddy
        container (their /etc/caddy): written beside the Caddyfile."""
        return "/etc/caddy/acme-ca-root.pem"


@dataclass(frozen=True)
class Docker(_Settings):
    """Docker engine and compose (tasks/docker.py)."""

    source: str = key("docker_source")
    log_max_size: str = key("docker_log_max_size")
    log_max_files: int = key("docker_log_max_files")


@dataclass(frozen=True)
class Stack(_Settings):
    """The n8n stack on the main server (tasks/n8n.py), and what its processes share with the
    worker servers' (image, database, environment, drain)."""

    n8n_version: str = key("n8n_version")
    n8n_image_repo: str = key("n8n_image_repo")
    postgres_image: str = key("postgres_image")
    redis_image: str = key("redis_image")  # queue mode (tier prata and up)
    caddy_image: str = key("caddy_image")
    # {image: digest} from the inventory source's images.lock (tasks/images.py), checked before any
    # host is contacted: what compose and `docker pull` get is `image@digest` (the *_ref properties)
    images_lock: dict | None = key("images_lock", optional=True)
    dir: str = key("stack_dir")
    compose_project: str = key("compose_project")
    postgres_db: str = key("postgres_db")
    postgres_user: str = key("postgres_user")
    executions_prune: bool = key("executions_prune")
    executions_max_age_hours: int = key("executions_max_age_hours")
    executions_prune_max_count: int = key("executions_prune_max_count")
    runners_mode: str = key("n8n_runners_mode")  # "external": a runners container per n8n process that runs code
    runners_image_repo: str = key("n8n_runners_image_repo")  # at n8n's version (external mode)
    runners_bridge: str = key("n8n_runners_bridge")  # the runners' network: its bridge's name
    runners_subnet: str = key("n8n_runners_subnet")  # and its subnet (the gateway: its first address)
    extra_env: dict[str, str] = key("n8n_extra_env")
    volumes: dict[str, str] = key("n8n_volumes")  # n8n's files: volume -> where n8n mounts it
    files_volume: str = key("n8n_files_volume")  # the one of them workflows read and write files in
    owner_first_name: str = key("n8n_owner_first_name")
    owner_last_name: str = key("n8n_owner_last_name")
    metrics: bool = key("n8n_metrics")  # N8N_METRICS
    ready_timeout: int = key("n8n_ready_timeout")
    drain_seconds: int = key("n8n_worker_drain_seconds")
    queue_guard_seconds: float = key("n8n_queue_guard_seconds")
    queue_guard_grace_seconds: float = key("n8n_queue_guard_grace_seconds")
    queue_keep_finished: int = key("n8n_queue_keep_finished")
    deploy_log: str = key("deploy_log")
    secret_max_age_days: int = key("secret_max_age_days")
    secret_warn_days: int = key("secret_warn_days")
    host_override: str | None = key("n8n_host_override", optional=True)  # instead of N8N_HOST from .env
    public_url: str | None = key("n8n_public_url", optional=True)  # instead of https://<N8N_HOST>/ (the sandbox)

    def pinned(self, image: str) -> str:
        """`image@digest` from the lock (the inventory checked it holds every image in use)."""
        if not self.images_lock or image not in self.images_lock:
            raise SettingsError(f"{image} has no digest in images.lock: `make images-add` records it")
        return f"{image}@{self.images_lock[image]}"

    @property
    def stop_seconds(self) -> int:
        """How long a worker is given to stop: its drain, and 30 s for n8n's own shutdown (compose's
        stop_grace_period and every `-t` that stops or re-creates it)."""
        return self.drain_seconds + 30

    @property
    def external_runners(self) -> bool:
        return self.runners_mode == "external"

    @property
    def runners_gateway(self) -> str:
        """The host's address on the runners' bridge (a worker server's brokers listen there)."""
        return str(next(ipaddress.ip_network(self.runners_subnet).hosts()))

    @property
    def postgres_ref(self) -> str:
        return self.pinned(self.postgres_image)

    @property
    def redis_ref(self) -> str:
        return self.pinned(self.redis_image)

    @property
    def caddy_ref(self) -> str:
        return self.pinned(self.caddy_image)


@dataclass(frozen=True)
class Workers(_Settings):
    """The worker servers (tasks/workers.py) and the SSH tunnel to the main server's Redis and
    PostgreSQL (its account there, the loopback ports both ends use)."""

    stack_dir: str = key("worker_stack_dir")
    tunnel_user: str = key("tunnel_user")
    redis_port: int = key("tunnel_redis_port")
    postgres_port: int = key("tunnel_postgres_port")


def _whole_number(value, key: str, digits: int, meaning: str) -> int:
    """group_data `key` as a whole number of at most `digits` digits (pyinfra's --data gives text)."""
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(rf"[0-9]{{1,{digits}}}", text):
        raise SettingsError(f"group_data {key}: {meaning}, not {value!r}")
    return int(text)


def dump_compression(value) -> int:
    """group_data backup_dump_compression as pg_dump's -Z level (0-9)."""
    return _whole_number(value, "backup_dump_compression", 1,
                         "pg_dump's -Z level, a whole number from 0 (none: restic compresses) to 9")


def keep_finished(value) -> int:
    """group_data n8n_queue_keep_finished: finished executions Redis keeps."""
    return _whole_number(value, "n8n_queue_keep_finished", 7, "how many finished executions Redis keeps, a whole "
                         "number from 0 (n8n's default: none; docs/scaling.md) to 9999999")


@dataclass(frozen=True)
class Backup(_Settings):
    """Backups on the n8n servers and the backup vault (tasks/backup.py)."""

    sources: list[dict] = key("backup_sources")
    dir: str = key("backup_dir")
    local_repository: str = key("backup_local_repository")
    log: str = key("backup_log")
    hour: int = key("backup_hour")
    minute: int = key("backup_minute")
    keep_last: int = key("backup_keep_last")
    keep_daily: int = key("backup_keep_daily")
    keep_weekly: int = key("backup_keep_weekly")
    keep_monthly: int = key("backup_keep_monthly")
    check_weekday: int = key("backup_check_weekday")
    check_subset: str = key("backup_check_subset")
    dump_compression: int = key("backup_dump_compression")
    vault_port: int = key("backup_vault_port")
    vault_path: str = key("backup_vault_path")
    success_hook: str = key("backup_success_hook")
    failure_hook: str = key("backup_failure_hook")
    supabase_majors: list[int] = key("supabase_majors")
    supabase_postgres_images: dict[int, str] = key("supabase_postgres_images")
    supabase_scratch_images: dict[int, str] = key("supabase_scratch_images")
    drill_monthly: bool = key("restore_drill_monthly")


@dataclass(frozen=True)
class Cleanup(_Settings):
    """The weekly cleanup of Supabase tables (mottivme_host/cleanup.py; its cron line)."""

    source: str = key("cleanup_source")
    retention_days: dict[str, int] = key("cleanup_retention_days")
    batch_size: int = key("cleanup_batch_size")
    weekday: int = key("cleanup_weekday")
    hour: int = key("cleanup_hour")
    minute: int = key("cleanup_minute")
    log: str = key("cleanup_log")


@dataclass(frozen=True)
class Monitor(_Settings):
    """The monitor host, and what the n8n servers report to it (tasks/monitoring.py)."""

    dir: str = key("monitor_dir")
    state_dir: str = key("monitor_state_dir")
    user: str = key("monitor_user")
    interval_seconds: int = key("monitor_interval_seconds")
    raw_history_days: int = key("monitor_raw_history_days")
    status_host: str = key("monitor_status_host")
    title: str = key("monitor_title")
    ops_user: str = key("monitor_ops_user")  # the operators' page's login (password: MONITOR_OPS_PASSWORD)
    language: str = key("monitor_language")  # the page's, the alerts' and the clients' (mottivme_monitor/texts.py)
    ping_listen: str = key("monitor_ping_listen")
    ladder: dict = key("monitor_ladder")
    warning_ladder: dict = key("monitor_warning_ladder")
    channels: dict = key("monitor_channels")
    http_defaults: dict = key("monitor_http_defaults")
    checks: list[dict] = key("monitor_checks")
    backup_max_age_hours: int = key("monitor_backup_max_age_hours")
    disk_max_percent: int = key("monitor_disk_max_percent")
    disk_path: str = key("monitor_disk_path")
    disk_report_minutes: int = key("monitor_disk_report_minutes")
    memory_max_percent: int = key("monitor_memory_max_percent")
    capacity_checks: list[dict] = key("monitor_capacity_checks")
    leads_query: str = key("monitor_leads_query")  # "": no leads-per-day check
    cpu_max_percent: int = key("monitor_cpu_max_percent")
    queue_max_waiting: int = key("monitor_queue_max_waiting")
    resolve_private: bool = key("monitor_resolve_private")
    incidents: dict = key("monitor_incidents")  # the team's posted incidents (mottivme_monitor/reports.py)
    watch: dict | None = key("monitor_watch")  # the n8n servers watch the monitor (tasks/monitoring.watching)
    pip_extra_args: str = key("pip_extra_args")


CLASSES = (Base, Docker, Stack, Workers, Backup, Cleanup, Monitor)

# Keys of group_data/all.py that no class here holds, and who reads them instead.
READ_ELSEWHERE = {
    # the tier and its overrides: tasks/scaling.py `settings(data)` turns them into its own frozen
    # `Scaling` (tier -> queue mode, worker and webhook-processor counts)
    "n8n_tier": "tasks/scaling.py",
    "n8n_tiers": "tasks/scaling.py",
    "n8n_queue_mode": "tasks/scaling.py",
    "n8n_main_workers": "tasks/scaling.py",
    "n8n_server_workers": "tasks/scaling.py",
    "n8n_webhook_processors": "tasks/scaling.py",
    "n8n_worker_concurrency": "tasks/scaling.py",
    # only build postgres_image inside group_data/all.py (the sandbox's image builder reads the major too)
    "postgres_major": "group_data/all.py",
    "postgres_version": "group_data/all.py",
    # the n8n versions images.lock pins besides n8n_version (tasks/images.py locked_refs)
    "n8n_other_versions": "tasks/images.py",
    # the console's `mottivme doctor` (outside pyinfra, through tasks/groupdata.py)
    "doctor_check_dns": "mottivme_console/remote.py",
    # the console's `mottivme update --reboot` (outside pyinfra, through tasks/groupdata.py)
    "reboot_timeout": "mottivme_console/remote.py",
}
