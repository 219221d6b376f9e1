"""Restore drill (SOP 05 monthly "Testar restore de backup"):

    pyinfra inventory.py runbooks/restore_drill.py [--data snapshot=latest] [--data from=offsite]

Restores the snapshot into throwaway containers on the host (PostgreSQL + n8n, and a scratch
database for the Supabase dump), checks n8n becomes ready on it, counts match the manifest and
every credential decrypts, prints the time of each step, and removes what it created. The live
stack is not touched. See docs/runbooks/restore_drill.md."""

from pyinfra import host

from runbooks._args import options
from tasks.operations import run_and_report

RUNS_ON = ["n8n_servers"]  # its groups (the console runs it on these only)
OPTIONS = {
    "snapshot": ("latest", r"latest|[0-9a-f]{8,64}|\d{4}-\d{2}-\d{2}", "latest, a snapshot id or YYYY-MM-DD"),
    "from": ("auto", r"auto|local|offsite", "auto (local, then off-host), local or offsite"),
}
opts = options(OPTIONS)
snapshot, source = opts["snapshot"], opts["from"]

if "n8n_servers" in host.groups:
    run_and_report(name=f"restore drill of snapshot {snapshot}",
                   command=f"n8n-restore --drill --snapshot {snapshot} --from {source}", what="restore drill")
