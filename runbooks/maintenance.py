"""Open or close a maintenance window on the monitor, so planned work pages nobody:

    pyinfra inventory.py runbooks/maintenance.py --data checks=n8n --data minutes=30 --data reason="disk resize"
    pyinfra inventory.py runbooks/maintenance.py --data action=end --data checks=n8n

`checks` is a comma-separated list of check names (`*`: every check). The window closes by
itself after `minutes`, so a forgotten one never silences the monitor for good. The restart,
emergency-deploy and DR-drill runbooks open and close their own. See docs/runbooks/maintenance.md."""

from pyinfra import host

from runbooks._args import options
from tasks.monitoring import maintenance

RUNS_ON = ["monitors"]  # its groups (the console runs it on these only)
OPTIONS = {
    "action": ("start", r"start|end", "start or end"),
    "checks": ("*", r"(\*|[A-Za-z0-9_.-]+)(,[A-Za-z0-9_.-]+)*", "check names separated by commas, or *"),
    "minutes": ("30", r"[1-9][0-9]{0,3}", "minutes, 1-9999"),
    "reason": ("planned maintenance", r"[^'\"\\$`]{1,200}", "a short text without quotes"),
}
opts = options(OPTIONS)
action, checks, minutes, reason = opts["action"], opts["checks"], opts["minutes"], opts["reason"]

if "monitors" in host.groups:
    maintenance(action, checks.split(","), minutes=int(minutes), reason=reason)
