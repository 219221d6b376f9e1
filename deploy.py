"""`pyinfra inventory.py deploy.py`: bare Debian 13 (or 12) -> production n8n host (and the backup vault, the monitor).
Safe to re-run: a second run reports zero changes. Each concern is one @deploy in tasks/."""

from pyinfra import host

from tasks import operations, platform, scaling, settings, versions
from tasks import workers as worker_servers
from tasks.backup import backup, backup_settings, vault, vault_settings
from tasks.base import base
from tasks.docker import docker
from tasks.hostprograms import cleanup_settings, host_programs
from tasks.monitoring import monitor_hosts, monitoring, report_settings, reporting, unwatching, watching
from tasks.n8n import host_settings, n8n_stack, worker_hosts
from tasks.queueguard import queue_guard
from tasks.rotation import refuse_deploy_if_pending
from tasks.workers import tunnel_endpoint, workers

refuse_deploy_if_pending()
platform.refuse_unsupported_os()
if {"n8n_servers", "n8n_workers"} & set(host.groups):
    versions.refuse_swaps_and_downgrades()  # a secret in use differing from .env's, an older n8n_version
version = versions.stack_version()  # the version n8n runs now (group_data's on a new server)
if {"n8n_servers", "backup_vault", "monitors", "n8n_workers"} & set(host.groups):
    base()
if "n8n_servers" in host.groups:
    docker()
    tier = scaling.settings(host.data)
    if worker_hosts() and tier.queue_mode:
        tunnel_endpoint()
    n8n_stack(version)
    backup()
    # (after the stack: pyinfra merges the hosts' operation lists, and this order keeps the worker
    # servers' health wait after the main server's `compose up`; an earlier place broke tier ouro)
    installed = host_programs({**host_settings(tier), "backup": backup_settings(),
                               "cleanup": cleanup_settings(settings.Cleanup.from_data(host.data)),
                               "reports": report_settings()})
    queue_guard(tier.queue_mode, installed)
    if monitor_hosts():
        reporting()
configured_workers = None
if "n8n_workers" in host.groups:
    docker()
    configured_workers = workers(version)
# one line, every host: the main server's stack above is up before a worker server starts its
# workers below (pyinfra interleaves hosts whose operation lists differ by position otherwise)
operations.barrier(name="the main server's stack is up before the worker servers start")
if "n8n_workers" in host.groups:
    if configured_workers:
        worker_servers.start_configured_workers(*configured_workers)
    host_programs({**worker_servers.host_settings(), "reports": report_settings()})
    if monitor_hosts():
        reporting()
# n8n_version moved up in group_data: the same path as the emergency deploy (snapshot, rollback,
# worker servers taken along), never a plain re-render
upgrade = versions.upgrade_due()
if upgrade:
    versions.change_version(upgrade, reason=f"deploy.py: n8n {upgrade}")
if "backup_vault" in host.groups:
    vault()
if "monitors" in host.groups:
    monitoring()
if "n8n_servers" in host.groups and "monitors" not in host.groups:
    # the n8n server watches the monitor in return (a first round that runs before the monitor's
    # page exists records "down" for a minute: no page before silent_minutes)
    if monitor_hosts() and settings.Monitor.from_data(host.data).watch:
        watching()
    else:
        unwatching()
if {"backup_vault", "monitors"} & set(host.groups) and not {"n8n_servers", "n8n_workers"} & set(host.groups):
    # the vault: vault-prune (runbooks/vault_prune.py); with a monitor, report-disk: disk and memory
    programs = {"vault": vault_settings()} if "backup_vault" in host.groups else {}
    if monitor_hosts():
        programs["reports"] = report_settings()
    if programs:
        host_programs(programs)
    if monitor_hosts():
        reporting()
