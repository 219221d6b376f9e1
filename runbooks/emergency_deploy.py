"""Emergency deploy of another n8n version, forward or back, with automatic rollback:

    pyinfra inventory.py runbooks/emergency_deploy.py --data n8n_version=2.41.0 [--data smoke_webhook=PATH]

Records the running version, takes a backup snapshot, deploys the version, checks readiness and
a smoke test (workflow count unchanged; the smoke webhook, if given, answers 200). On failure it
rolls back by itself, restoring the pre-deploy snapshot when the failed version had migrated the
database. An unknown version (image not found) stops it before anything is stopped. Afterwards
set n8n_version in group_data to keep the version. The monitor's n8n check is silenced while it
runs. Without --data n8n_version it deploys the
version group_data declares (e.g. to go back to it after an emergency). See docs/runbooks/emergency_deploy.md."""

from pyinfra import host

from runbooks._args import arg
from tasks.monitoring import maintenance
from tasks.operations import run_and_report

version = arg("n8n_version", "", r"\d+\.\d+\.\d+", "a version like 2.41.1")
smoke = arg("smoke_webhook", "", r"[A-Za-z0-9/_-]{0,100}", "a webhook path like health-ping")
timeout = arg("timeout", str(host.data.n8n_ready_timeout), r"[1-9][0-9]{0,3}", "seconds")

command = f"n8n-deploy-version {version} --timeout {timeout}" + (f" --smoke-webhook {smoke}" if smoke else "")
if "monitors" in host.groups:  # pyinfra keeps file order across hosts
    maintenance("start", ["n8n"], minutes=3 * int(timeout) // 60 + 15, reason=f"runbook emergency_deploy {version}")
if "n8n_servers" in host.groups:
    run_and_report(name=f"emergency deploy of n8n {version}", command=command, what="emergency deploy")
if "monitors" in host.groups:
    maintenance("end", ["n8n"])
