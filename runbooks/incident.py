"""Post an incident for the people who use the services, update it, resolve it (SOP 05,
Comunicação de Incidentes): the status page shows it at once, the team's channels get every post,
the clients' channel too with notify_clients=yes; the team is reminded when 15 minutes pass
without an update; resolving it writes the post-mortem's skeleton on the monitor.

    pyinfra inventory.py runbooks/incident.py --data services=n8n --data title="Automations delayed" \\
        --data impact="New leads wait up to 30 min" --data clients=12 --data eta=45m --data notify_clients=yes
    pyinfra inventory.py runbooks/incident.py --data action=update --data id=3 --data message="Cause found" \\
        --data status=identified --data eta=20m
    pyinfra inventory.py runbooks/incident.py --data action=resolve --data id=3 --data message="Back to normal"
    pyinfra inventory.py runbooks/incident.py --data action=list

See docs/runbooks/incident.md."""

import shlex

from pyinfra import host, inventory

from runbooks._args import given, options, refuse
from tasks.monitoring import COMMAND
from tasks.operations import run_and_report

RUNS_ON = ["monitors"]  # its groups (the console runs it on these only)
TEXT = (r"[^'\"\\$`]{1,300}", "a short text without quotes")
OPTIONS = {
    "action": ("open", r"open|update|resolve|list", "open, update, resolve or list"),
    "id": ("", r"[0-9]{0,6}", "the incident's number (update, resolve)"),
    "services": ("", r"([A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*)?", "check names separated by commas (open)"),
    "title": ("", r"[^'\"\\$`]{0,120}", "one line without quotes (open)"),
    "impact": ("", r"[^'\"\\$`]{0,300}", "what the clients notice, without quotes (open)"),
    "clients": ("", r"[0-9]{0,6}", "how many clients are affected (open)"),
    "message": ("", r"[^'\"\\$`]{0,300}", "the update, without quotes"),
    "status": ("", r"(investigating|identified|monitoring)?", "investigating, identified or monitoring"),
    "eta": ("", r"([0-9]{1,3}h)?([0-9]{1,4}m)?|([01]?[0-9]|2[0-3]):[0-5][0-9]", "45m, 2h, 1h30m or 14:30"),
    "notify_clients": ("no", r"yes|no", "yes: the clients' channel is told too"),
}
# what each action needs, and what else it takes (anything more is refused, not dropped unseen)
NEEDS = {"open": ("services", "title", "impact"), "update": ("id", "message"), "resolve": ("id", "message"),
         "list": ()}
TAKES = {"open": ("clients", "message", "status", "eta", "notify_clients"),
         "update": ("status", "eta", "notify_clients"), "resolve": ("notify_clients",), "list": ()}
opts = options(OPTIONS)
action = opts["action"]
missing = [k for k in NEEDS[action] if not opts[k]]
if missing:
    refuse(f"action={action} needs {', '.join(f'--data {k}=...' for k in missing)}")
unused = sorted(k for k in given() if k in OPTIONS and k not in ("action", *NEEDS[action], *TAKES[action]))
if unused:
    refuse(f"action={action} takes no {', '.join(unused)} (see docs/runbooks/incident.md)")
monitors = list(inventory.get_group("monitors", default=[]))
if not monitors:
    refuse("no monitor host in the inventory: set MONITOR_SERVERS in .env and run deploy.py first "
           "(sandbox: python -m sandbox up --group monitors)")


def command() -> str:
    q = shlex.quote
    if action == "list":
        return f"{COMMAND} incident list"
    args = [f"{COMMAND} incident {action}"]
    if action == "open":
        args += [f"--service {q(s)}" for s in opts["services"].split(",")]
        args += [f"--title {q(opts['title'])}", f"--impact {q(opts['impact'])}"]
        args += [f"--clients {opts['clients']}"] if opts["clients"] else []
        args += [f"--message {q(opts['message'])}"] if opts["message"] else []
    else:
        args += [opts["id"], f"--message {q(opts['message'])}"]
    args += [f"--status {opts['status']}"] if opts["status"] else []
    args += [f"--eta {opts['eta']}"] if opts["eta"] else []
    args += ["--notify-clients"] if opts["notify_clients"] == "yes" else []
    return " ".join(args)


# the first monitor host's page and channels (a second monitor would tell everyone twice)
if host.name == monitors[0].name:
    run_and_report(name=f"incident {action}", command=command(), what=f"incident {action}")
