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
from tasks.versions import change_version

RUNS_ON = ["n8n_servers", "n8n_workers", "monitors"]  # its groups (the console runs it on these only)
OPTIONS = {
    "n8n_version": ("", r"(\d+\.\d+\.\d+)?", "the n8n version to deploy, like 2.41.1 (default: group_data "
                                             "n8n_version, e.g. to go back to it after an emergency)"),
    "smoke_webhook": ("", r"[A-Za-z0-9/_-]{0,100}", "a webhook path like health-ping, called after the switch"),
    "timeout": ("", r"([1-9][0-9]{0,3})?", "seconds to wait for readiness, 1-9999 (default: group_data n8n_ready_timeout)"),
}
opts = options(OPTIONS)
version = opts["n8n_version"] or str(host.data.n8n_version)
# the same path deploy.py takes to move n8n up (tasks/versions.py): the monitor silenced, worker
# servers drained and taken along, the main server switched with a snapshot first and rollback
change_version(version, smoke=opts["smoke_webhook"], timeout=opts["timeout"],
               reason=f"runbook emergency_deploy {version}")
