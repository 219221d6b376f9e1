"""Back up now: `pyinfra inventory.py runbooks/backup_now.py [--data tag=manual]`.

Runs n8n-backup on each n8n server (the same job as the daily cron) and prints the snapshot id
and the manifest summary. See docs/runbooks/backup_now.md."""

from pyinfra import host

from runbooks._args import options
from tasks.operations import run_and_report

RUNS_ON = ["n8n_servers"]  # its groups (the console runs it on these only)
OPTIONS = {
    "tag": ("manual", r"[a-z0-9][a-z0-9-]{0,30}", "a short lowercase tag, e.g. manual or before-upgrade"),
}
tag = options(OPTIONS)["tag"]

if "n8n_servers" in host.groups:
    run_and_report(name=f"backup now (tag {tag})", command=f"n8n-backup --tag {tag}", what="backup",
                   pty=True)  # a terminal: the backup prints each phase as it ends
