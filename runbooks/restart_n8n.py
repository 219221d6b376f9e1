"""Restart n8n (SOP 05: `docker-compose restart n8n`), safely:

    pyinfra inventory.py runbooks/restart_n8n.py [--data timeout=120]

Restarts n8n's services — in queue mode the workers (and webhook processors) one at a time,
each healthy again before the next, the worker servers one after the other, then the main
process — waits for /healthz/readiness through Caddy, prints how many seconds n8n did not answer. Not ready within the timeout (group_data n8n_ready_timeout): prints the last
log lines of the failing container and fails. The monitor's n8n check is silenced while it runs
(a maintenance window that expires by itself if the runbook is interrupted). See docs/runbooks/restart_n8n.md."""

from pyinfra import host

from runbooks._args import options
from tasks.facts import ComposeServices
from tasks.monitoring import maintenance
from tasks.operations import run_and_report
from tasks.workers import PROJECT

RUNS_ON = ["n8n_servers", "n8n_workers", "monitors"]  # its groups (the console runs it on these only)
OPTIONS = {
    "timeout": ("", r"([1-9][0-9]{0,3})?", "seconds to wait for readiness, 1-9999 (default: group_data n8n_ready_timeout)"),
}
timeout = options(OPTIONS)["timeout"] or str(host.data.n8n_ready_timeout)

# pyinfra runs these in file order across hosts: silence, restart, then un-silence
if "monitors" in host.groups:
    maintenance("start", ["n8n"], minutes=int(timeout) // 60 + 5, reason="runbook restart_n8n")
# worker servers: what is deployed there (not the tier asked for now) decides
if "n8n_workers" in host.groups and host.get_fact(ComposeServices, project=PROJECT):
    run_and_report(name="restart the workers one at a time", command=f"n8n-restart --timeout {timeout}",
                   what="worker restart", _serial=True)
if "n8n_servers" in host.groups:
    run_and_report(name="restart n8n and wait for readiness", command=f"n8n-restart --timeout {timeout}",
                   what="restart")
if "monitors" in host.groups:
    maintenance("end", ["n8n"])
