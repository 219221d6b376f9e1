"""Emergency deploy of another n8n version, forward or back, with automatic rollback:

    pyinfra inventory.py runbooks/emergency_deploy.py --data n8n_version=2.41.0 [--data smoke_webhook=PATH]

Records the running version, takes a backup snapshot, deploys the version, checks readiness and
a smoke test (workflow count unchanged; the smoke webhook, if given, answers 200). On failure it
rolls back by itself, restoring the pre-deploy snapshot when the failed version had migrated the
database. An unknown version (image not found) stops it before anything is stopped. Afterwards
set n8n_version in group_data to keep the version. Worker servers (queue mode) follow the main
server's version. The monitor's n8n check is silenced while it runs. Without --data n8n_version
it deploys the version group_data declares (e.g. to go back to it after an emergency).
See docs/runbooks/emergency_deploy.md."""

from pyinfra import host

from runbooks._args import options
from tasks import workers
from tasks.facts import ComposeServices
from tasks.monitoring import maintenance
from tasks.n8n import n8n_image
from tasks.operations import image, run_and_report

RUNS_ON = ["n8n_servers", "n8n_workers", "monitors"]  # its groups (the console runs it on these only)
OPTIONS = {
    "n8n_version": ("", r"(\d+\.\d+\.\d+)?", "the n8n version to deploy, like 2.41.1 (default: group_data "
                                             "n8n_version, e.g. to go back to it after an emergency)"),
    "smoke_webhook": ("", r"[A-Za-z0-9/_-]{0,100}", "a webhook path like health-ping, called after the switch"),
    "timeout": ("", r"([1-9][0-9]{0,3})?", "seconds to wait for readiness, 1-9999 (default: group_data n8n_ready_timeout)"),
}
opts = options(OPTIONS)
version, smoke = opts["n8n_version"] or str(host.data.n8n_version), opts["smoke_webhook"]
timeout = opts["timeout"] or str(host.data.n8n_ready_timeout)

command = f"n8n-deploy-version {version} --timeout {timeout}" + (f" --smoke-webhook {smoke}" if smoke else "")
if "monitors" in host.groups:  # pyinfra keeps file order across hosts
    maintenance("start", ["n8n"], minutes=3 * int(timeout) // 60 + 15, reason=f"runbook emergency_deploy {version}")
# worker servers running workers (what is deployed there decides) follow the main server: the
# image first (a server that cannot load it stops the run before anything is stopped), drained
# during the switch, then started on the version the main server ended on (pyinfra keeps file
# order across hosts)
workers_active = "n8n_workers" in host.groups and bool(host.get_fact(ComposeServices, project=workers.PROJECT))
if workers_active:
    image(name=f"workers: image {version} (before anything is stopped)", ref=n8n_image(version),
          archive_dir=host.data.image_archive_dir)
if "n8n_servers" in host.groups:
    workers.worker_servers_ready(name="worker servers can take this version")
if workers_active:
    workers.drain(name="workers: drain and stop during the switch")
if "n8n_servers" in host.groups:
    run_and_report(name=f"emergency deploy of n8n {version}", command=command, what="emergency deploy")
if workers_active:
    workers.follow_main_version(name="workers: the version the main server ended on", version=version)
    workers.start_workers()
if "monitors" in host.groups:
    maintenance("end", ["n8n"])
