"""Restore n8n from a backup:

    pyinfra inventory.py runbooks/restore.py --data snapshot=latest      # or an id, or YYYY-MM-DD
        [--data from=auto|local|offsite] [--data safety_snapshot=no]
        [--data sources=n8n,supabase]       # the backup sources to restore (default: all in the snapshot)
        [--data target=supabase --data confirm_overwrite=yes]   # the one database source named in
                                            # sources= (needed), over its configured database (the URL
                                            # of .env; or target=postgresql://... for another one)
        (--data supabase_target=... --data confirm_supabase_overwrite=yes: the same for the source supabase)
        [--data sources=supabase --data table=public.leads [--data over=yes --data confirm_overwrite=yes]]
                                            # one table (or schema=NAME: each of its tables) beside the live
                                            # one as leads_restored_<snapshot>, or over its rows

Takes a safety snapshot, stops n8n, restores its database, starts it, waits for readiness and
checks the counts against the snapshot's manifest. Each database source (Supabase, ...) goes
into a scratch database and is checked there unless a target is named and confirmed (then a
safety snapshot is taken first too); with `sources=supabase` (or any database source alone) n8n
is not touched. `target=` needs `sources=` naming the database that goes over it. Works on a
freshly provisioned host from the off-host repository (run deploy.py first). In queue mode the
worker servers are drained and stopped first (they use the database being restored) and started
again afterwards. See docs/runbooks/restore.md."""

import shlex

from pyinfra import host

from runbooks._args import options, refuse
from tasks.facts import ComposeServices
from tasks.operations import run_and_report
from tasks.workers import PROJECT, drain, start_workers

RUNS_ON = ["n8n_servers", "n8n_workers"]  # its groups (the console runs it on these only)
OPTIONS = {
    "snapshot": ("latest", r"latest|[0-9a-f]{8,64}|\d{4}-\d{2}-\d{2}",
                 "latest, a snapshot id (8+ hex digits) or a date YYYY-MM-DD (the last snapshot of that day or before)"),
    "from": ("auto", r"auto|local|offsite", "auto (local, then off-host), local or offsite"),
    "from_host": ("", r"([A-Za-z0-9._-]{1,253})?",
                  "the server name another server's snapshots carry (default: only this server's own); e.g. "
                  "snapshots made before an upgrade carry the machine's hostname"),
    "safety_snapshot": ("yes", r"yes|no", "yes or no: a snapshot of what the restore replaces, first"),
    "sources": ("", r"([a-z][a-z0-9_-]*(,[a-z][a-z0-9_-]*)*)?",
                "comma-separated backup source names (group_data backup_sources), e.g. n8n,supabase"),
    "target": ("scratch", r"scratch|[a-z0-9][a-z0-9_-]{0,39}|postgres(ql)?://\S+",
               "scratch, drill (the source's drill database), a database source by name (its database from "
               ".env: target=supabase, no password typed) or a postgresql:// URL; with sources= and "
               "confirm_overwrite=yes"),
    "confirm_overwrite": ("no", r"yes|no", "yes to restore over the named database"),
    "supabase_target": ("scratch", r"scratch|drill|supabase|postgres(ql)?://\S+",
                        "scratch, drill (DR_DRILL_SUPABASE_URL's database: one transaction, counts checked), "
                        "supabase (its database from .env) or a postgresql:// URL"),
    "confirm_supabase_overwrite": ("no", r"yes|no", "yes to restore over the named Supabase database"),
    "table": ("", r"([a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?(,[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?)*)?",
              "comma-separated SCHEMA.NAME of the one database source in sources= (NAME alone: public.NAME): "
              "only those tables, restored beside the live ones (NAME_restored_<snapshot>)"),
    "schema": ("", r"([a-z_][a-z0-9_]*(,[a-z_][a-z0-9_]*)*)?",
               "comma-separated schema names: every table of each, as table="),
    "over": ("no", r"yes|no", "yes, with table= or schema= and confirm_overwrite=yes: replace the live tables' rows "
             "(the rows they had kept as NAME_before_restore_<snapshot>)"),
}
opts = options(OPTIONS)
snapshot, source, safety, sources = opts["snapshot"], opts["from"], opts["safety_snapshot"], opts["sources"]
target, confirm = opts["target"], opts["confirm_overwrite"]
supabase_target, confirm_supabase = opts["supabase_target"], opts["confirm_supabase_overwrite"]
if target != "scratch" and not [s for s in sources.split(",") if s and s != "n8n"]:
    # never a guess of which database goes over the URL (nor n8n over the live stack with it)
    refuse("--data target=URL needs --data sources=NAME (the database source to restore over it, e.g. sources=supabase)")

tables, schemas, over = opts["table"], opts["schema"], opts["over"]
if (tables or schemas) and len([s for s in sources.split(",") if s and s != "n8n"]) != 1:
    refuse("--data table=/schema= need --data sources=NAME, the one database source the tables are in (e.g. "
           "sources=supabase)")

command = f"n8n-restore --snapshot {snapshot} --from {source}"
command += f" --from-host {opts['from_host']}" if opts["from_host"] else ""
command += "".join(f" --source {s}" for s in filter(None, sources.split(",")))
if target != "scratch":
    command += f" --target {shlex.quote(target)}" + (" --confirm-overwrite" if confirm == "yes" else "")
if supabase_target != "scratch":
    command += f" --supabase-target {shlex.quote(supabase_target)}"
    command += " --confirm-supabase-overwrite" if confirm_supabase == "yes" else ""
command += "".join(f" --table {t}" for t in filter(None, tables.split(",")))
command += "".join(f" --schema {x}" for x in filter(None, schemas.split(",")))
if over == "yes":
    command += " --over" + (" --confirm-overwrite" if confirm == "yes" else "")
if safety == "no":
    command += " --no-safety-snapshot"

# worker servers running workers (what is deployed there decides, not the tier asked for now)
# (a restore of database sources alone leaves n8n, and so the workers, alone)
touches_n8n = not sources or "n8n" in sources.split(",")
workers_active = (touches_n8n and "n8n_workers" in host.groups
                  and bool(host.get_fact(ComposeServices, project=PROJECT)))
if workers_active:  # pyinfra keeps file order across hosts: drain, restore, start
    drain(name="workers: drain and stop during the restore")
if "n8n_servers" in host.groups:
    # on a terminal: Ctrl-C before the database swap stops it at once and n8n never stops
    run_and_report(name=f"restore snapshot {snapshot}", command=command, what="restore", pty=True)
if workers_active:
    start_workers()
