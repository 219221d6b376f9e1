"""Every check of the monitor, now, in one table (SOP 05's daily `health-check.sh`):

    pyinfra inventory.py runbooks/health_check.py

Runs the monitor's checks on the monitor host (the same checks, with the same secrets, that
page people) without recording or notifying, prints one table (service, UP/DOWN/WARNING, time,
reason) and fails (non-zero exit) if any service is down (a warning alone does not fail it). See docs/runbooks/health_check.md."""

from pyinfra import host, inventory

from runbooks._args import refuse
from tasks.monitoring import COMMAND
from tasks.operations import run_and_report

RUNS_ON = ["monitors"]  # its groups (the console runs it on these only)
OPTIONS: dict = {}  # none (inventory.py refuses any --data key that is not a group_data one)

if not list(inventory.get_group("monitors", default=[])):
    refuse("no monitor host in the inventory: set MONITOR_SERVERS in .env and run deploy.py first "
           "(sandbox: python -m sandbox up --group monitors)")

if "monitors" in host.groups:
    run_and_report(name="every check, now", command=f"{COMMAND} check", what="health check")
