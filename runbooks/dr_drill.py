"""Disaster-recovery drill (SOP 05: quarterly), for the sandbox or a staging inventory:

    python -m runbooks.dr_drill [--report-dir reports] [--parts a,b,c] [--rebuild replace|wipe]
                                [--i-know-this-is-production]

(a) outage: stops n8n, measures the time until readiness fails (detection) and until the restart
    runbook has it ready again (recovery);
(b) data loss: a marker workflow and a marker Supabase table are backed up, deleted, restored
    with the restore runbook and checked;
(c) server loss: the n8n server is destroyed and rebuilt with deploy.py plus a restore from the
    off-host repository. --rebuild replace (the sandbox's default): the server itself is removed
    and a bare Debian server takes its place. --rebuild wipe (staging, where the drill cannot
    order a new machine): everything the deploy put there is wiped - the stack, its volumes,
    /opt/n8n, /etc/mottivme, the local backups, scripts and cron entries - and Docker and the
    Debian packages stay.
It writes a dated markdown report with the timings (detection, recovery, RTO, data age = RPO)
and what failed. Unlike the other runbooks it is a program, not a pyinfra deploy file: it
destroys and recreates servers and runs several pyinfra deploys one after the other.

It refuses production: it runs only against the sandbox or when DR_DRILL_ENVIRONMENT=staging is
set in .env/the environment, unless --i-know-this-is-production is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mottivme_host.common import without_urls, write_private  # noqa: E402
from tasks import config  # noqa: E402

# its options, as data (read by the `mottivme` console too): name -> (default, pattern, explanation);
# a default of False is a flag
OPTIONS = {
    "report_dir": ("reports", r".+", "the directory of the dated report (relative: to the repository)"),
    "parts": ("a,b,c", r"[abc](,[abc])*", "the parts to run, e.g. c (server loss only); default all three"),
    "rebuild": ("", r"(replace|wipe)?", "part (c): replace the server (the sandbox's default) or wipe it "
                                        "(staging's default, where no new server can be ordered)"),
    "i_know_this_is_production": (False, None, "run although the inventory is not the sandbox nor "
                                               "DR_DRILL_ENVIRONMENT=staging (the drill wipes a server)"),
}
OPERATION_STARTS = re.compile(r"--> Starting (?:serial |nested )?operation: (.*)")  # pyinfra's progress lines
PYINFRA = [sys.executable, "-m", "pyinfra"]  # the pyinfra of this interpreter, whatever the virtualenv
MARKER_TABLE = "dr_drill_marker"
# --rebuild wipe: what deploy.py and the backups put on an n8n server, removed
WIPE = ("{ ! command -v mottivme-host >/dev/null || mottivme-host compose down -v --remove-orphans; } >/dev/null 2>&1; "
        "rm -rf /opt/n8n /etc/mottivme /var/backups/n8n /etc/cron.d/mottivme-* /usr/local/sbin/n8n-* "
        "/usr/local/sbin/mottivme-* /usr/local/lib/mottivme /var/log/n8n-*.log /etc/logrotate.d/mottivme-*")


class N8nServer:
    """The inventory's first n8n server, as pyinfra reaches it (read afresh: (c) may replace it)."""

    def __init__(self):
        self.name, d = config.active_source().groups()["n8n_servers"][0]
        self.ssh_args = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
                         "-p", str(d.get("ssh_port", 22))]
        if d.get("ssh_known_hosts_file"):
            self.ssh_args += ["-o", f"UserKnownHostsFile={d['ssh_known_hosts_file']}"]
        # as pyinfra: a new host is accepted on first contact and checked afterwards
        self.ssh_args += ["-o", "StrictHostKeyChecking=" + ("no" if d.get("ssh_strict_host_key_checking") == "off"
                                                            else "accept-new")]
        if d.get("ssh_key"):
            self.ssh_args += ["-i", d["ssh_key"], "-o", "IdentitiesOnly=yes"]
        self.ssh_args.append(f"{d.get('ssh_user', 'root')}@{d.get('ssh_hostname', self.name)}")
        base = d.get("n8n_public_url") or f"https://{os.environ.get('N8N_HOST', self.name)}/"
        self.ready_url = os.environ.get("DR_DRILL_READY_URL") or base + "healthz/readiness"


class Drill:
    def __init__(self, source: config.InventorySource, env: dict, rebuild: str, parts: set[str]):
        self.source, self.env, self.rebuild, self.parts = source, env, rebuild, parts
        self.steps: list[tuple[str, str, float | None, str]] = []  # (part, step, seconds, result)
        self.failures: list[str] = []

    # -- helpers ---------------------------------------------------------------------------------
    def pyinfra(self, *args: str) -> str:
        """Run a pyinfra deploy or runbook, showing each operation as it starts (a rebuild is
        minutes of work: the engineer sees where it is); its whole output is returned."""
        p = subprocess.Popen([*PYINFRA, "-y", "inventory.py", *args], cwd=ROOT, env=self.env, text=True,
                             errors="replace", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        watchdog = threading.Timer(1800, p.kill)
        watchdog.start()
        lines = []
        try:
            for line in p.stdout:
                lines.append(line)
                started = OPERATION_STARTS.match(line)
                if started:
                    print(f"    {without_urls(started.group(1).strip())}", flush=True)
            returncode = p.wait()
        except BaseException:  # never leave the deploy running behind a failed (or interrupted) read
            p.kill()
            p.wait()
            raise
        finally:
            watchdog.cancel()
        out = "".join(lines)
        if returncode != 0:
            reason = [line.strip() for line in out.splitlines() if "FAILED" in line or "failed" in line]
            raise RuntimeError(f"pyinfra {' '.join(args)}: {(reason or out.splitlines() or ['?'])[-1]}")
        return out

    def sh(self, command: str, stdin: str | None = None) -> str:
        s = N8nServer()
        r = subprocess.run(s.ssh_args + [command], input=stdin, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"{s.name}: {command[:60]}: {r.stderr.strip()[-300:]}")
        return r.stdout

    def ready(self, url: str | None = None) -> bool:
        try:
            with urllib.request.urlopen(url or N8nServer().ready_url, context=ssl._create_unverified_context(),
                                        timeout=3) as r:
                return r.status == 200
        except Exception:  # noqa: BLE001 - any failure is "not ready"
            return False

    def step(self, part: str, name: str, fn):
        print(f"[dr-drill] {part} {name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            result = fn() or "ok"
            self.steps.append((part, name, time.perf_counter() - t0, result))
            print(f"[dr-drill] {part} {name}: {result} ({time.perf_counter() - t0:.1f}s)", flush=True)
            return result
        except Exception as e:  # noqa: BLE001 - a failed step is reported, the drill goes on
            why = without_urls(str(e))  # a command's error may quote a connection string
            self.steps.append((part, name, time.perf_counter() - t0, f"FAILED: {why}"))
            self.failures.append(f"{part} {name}: {why}")
            print(f"[dr-drill] {part} {name}: FAILED: {why}", flush=True)
            return None

    def psql_n8n(self, sql: str) -> str:
        return self.sh(f"mottivme-host compose exec -T postgres psql -U n8n -d n8n -AtqX -c \"{sql}\"").strip()

    def psql_supabase(self, sql: str, drill: bool = False) -> str:
        """SQL (on stdin) on Supabase's database, or the drill's (DR_DRILL_SUPABASE_URL), with the n8n
        server's own settings: no URL in any command line, here or there (mottivme-host psql: a
        pgpass file)."""
        return self.sh("mottivme-host psql supabase --rows" + " --drill" * drill, stdin=sql + "\n").strip()

    # -- (a) outage ------------------------------------------------------------------------------
    def outage(self):
        times = {}

        def detect():
            server = N8nServer()
            t0 = time.perf_counter()
            stop = subprocess.Popen(server.ssh_args + ["mottivme-host compose stop n8n"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while self.ready(server.ready_url):
                if time.perf_counter() - t0 > 60:
                    raise RuntimeError("readiness still 200 a minute after n8n was stopped")
                time.sleep(0.2)
            times["detect"] = time.perf_counter() - t0
            stop.wait(60)
            return f"readiness failing {times['detect']:.1f}s after the stop began"

        def recover():
            t0 = time.perf_counter()
            out = self.pyinfra("runbooks/restart_n8n.py")
            if not self.ready():
                raise RuntimeError("not ready after the restart runbook")
            times["recover"] = time.perf_counter() - t0
            m = re.search(r"unavailable for [0-9.]+s", out)
            return f"ready again after {times['recover']:.1f}s ({m.group(0) if m else 'restart runbook'})"

        self.step("(a) outage", "stop n8n, detect", detect)
        self.step("(a) outage", "recover with runbooks/restart_n8n.py", recover)
        return times

    def marker_workflow(self, marker: str) -> None:
        """A workflow named `marker` (id drDrillMarker001), imported with n8n's CLI."""
        wf = json.dumps([{"id": "drDrillMarker001", "name": marker, "active": False, "nodes": [], "connections": {},
                          "settings": {}}])
        self.sh("mottivme-host compose exec -T -e N8N_RUNNERS_BROKER_PORT=5691 n8n sh -c "
                "'cat > /home/node/dr.json && n8n import:workflow --input=/home/node/dr.json >/dev/null; rm -f /home/node/dr.json'",
                stdin=wf)

    # -- (b) data loss ---------------------------------------------------------------------------
    def data_loss(self):
        """A marker in n8n and in Supabase, a backup, n8n's marker lost; the restore brings n8n back
        and puts Supabase into the drill's own database (DR_DRILL_SUPABASE_URL: one transaction,
        counts checked), never over the database the backup came from."""
        marker = f"dr-drill-{int(time.time())}"

        def prepare():
            self.psql_supabase(f"create table if not exists {MARKER_TABLE} (name text primary key, at timestamptz default now());"
                               f"insert into {MARKER_TABLE} (name) values ('{marker}');")
            self.marker_workflow(marker)
            try:
                out = self.pyinfra("runbooks/backup_now.py", "--data", "tag=dr-drill")
            finally:  # the backup holds it: Supabase keeps no drill table
                self.psql_supabase(f"drop table if exists {MARKER_TABLE};")
            return re.search(r"backup ok: snapshot [0-9a-f]{8}", out).group(0)

        def destroy():
            self.psql_n8n("delete from workflow_entity where id = 'drDrillMarker001'")
            return "marker workflow deleted (the marker table left Supabase with the backup)"

        def restore():
            self.pyinfra("runbooks/restore.py", "--data", "snapshot=latest", "--data", "supabase_target=drill",
                         "--data", "confirm_supabase_overwrite=yes")
            if self.psql_n8n("select name from workflow_entity where id = 'drDrillMarker001'") != marker:
                raise RuntimeError("the marker workflow is not back")
            if self.psql_supabase(f"select name from {MARKER_TABLE} where name = '{marker}';", drill=True) != marker:
                raise RuntimeError("the marker table is not in the drill database")
            if self.psql_supabase(f"select to_regclass('{MARKER_TABLE}') is null;") != "t":
                raise RuntimeError("the marker table is in Supabase: the restore went over it")
            return "marker workflow back; Supabase restored into the drill database with the marker table"

        self.step("(b) data loss", "marker data + backup", prepare)
        self.step("(b) data loss", "delete the marker workflow", destroy)
        self.step("(b) data loss", "restore (runbooks/restore.py, Supabase into the drill database)", restore)
        return marker

    # -- (c) server loss -------------------------------------------------------------------------
    def server_loss(self, marker: str | None):
        times = {}
        if marker is None:  # part (b) did not run: (c) puts its own marker workflow in the backup
            marker = f"dr-drill-{int(time.time())}"
            self.step("(c) server loss", "marker workflow", lambda: self.marker_workflow(marker) or marker)

        def backup():
            out = self.pyinfra("runbooks/backup_now.py", "--data", "tag=dr-drill")
            times["snapshot_at"] = time.time()
            times["snapshot"] = re.search(r"backup ok: snapshot ([0-9a-f]{8})", out).group(1)
            return f"fresh snapshot {times['snapshot']} copied off-host"

        def destroy():
            times["t0"] = time.perf_counter()
            times["lost_at"] = time.time()
            old = N8nServer().name
            if self.rebuild == "wipe":
                self.sh(WIPE)
                return f"{old} wiped: stack, volumes, /opt/n8n, /etc/mottivme, local backups, host programs, cron"
            self.source.replace_server(old, "n8n_servers")
            return f"{old} destroyed, replaced by a bare {N8nServer().name}"

        def rebuild():
            self.pyinfra("deploy.py")
            return "deploy.py converged the new server"

        def restore():
            # by the id the backup printed: its copy in the off-host repository answers to it too
            out = self.pyinfra("runbooks/restore.py", "--data", f"snapshot={times['snapshot']}", "--data", "from=offsite",
                               "--data", "safety_snapshot=no")
            if not self.ready():
                raise RuntimeError("n8n not ready after the restore")
            if self.psql_n8n("select name from workflow_entity where id = 'drDrillMarker001'") != marker:
                raise RuntimeError("the marker workflow is not on the rebuilt server")
            times["rto"] = time.perf_counter() - times["t0"]
            m = re.search(r"snapshot ([0-9a-f]{8}) \(stored as ([0-9a-f]{8}) in (\S+)\)", out)
            if not m:
                raise RuntimeError(f"the restore did not say it read snapshot {times['snapshot']}'s off-host copy")
            return f"restored snapshot {m.group(1)} (its copy {m.group(2)} in {m.group(3)}); marker workflow back"

        self.step("(c) server loss", "backup", backup)
        self.step("(c) server loss", f"destroy the n8n server ({self.rebuild})", destroy)
        self.step("(c) server loss", "rebuild with deploy.py", rebuild)
        self.step("(c) server loss", "restore from the off-host repository", restore)
        if "snapshot_at" in times and "lost_at" in times:
            times["rpo"] = times["lost_at"] - times["snapshot_at"]
        return times

    def report(self, directory: Path, a: dict, c: dict) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now()
        path = directory / f"dr-drill-{now:%Y-%m-%d-%H%M}.md"
        fmt = lambda v: f"{v:.1f} s" if isinstance(v, float) else "—"  # noqa: E731
        lines = [f"# DR drill {now:%Y-%m-%d %H:%M}", "",
                 f"Result: **{'PASSED' if not self.failures else 'FAILED'}**", "",
                 f"Parts run: {', '.join(sorted(self.parts))} (a outage, b data loss, c server loss; — : not run)", "",
                 "| measure | value |", "|---|---:|",
                 f"| time to detect an n8n outage (readiness failing) | {fmt(a.get('detect'))} |",
                 f"| time to recover with the restart runbook | {fmt(a.get('recover'))} |",
                 f"| RTO: server destroyed -> rebuilt, restored, ready | {fmt(c.get('rto'))} |",
                 f"| RPO: age of the restored data when the server was lost | {fmt(c.get('rpo'))} |", "",
                 "| part | step | time | result |", "|---|---|---:|---|"]
        lines += [f"| {p} | {s} | {fmt(t)} | {r} |" for p, s, t, r in self.steps]
        lines += ["", "## Failures", ""] + ([f"- {f}" for f in self.failures] or ["none"])
        write_private(str(path), "\n".join(lines) + "\n")  # 0600: it names hosts and what failed on them
        return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m runbooks.dr_drill", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, (default, _pattern, explain) in OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        if default is False:
            p.add_argument(flag, action="store_true", help=explain)
        else:
            p.add_argument(flag, default=default, help=explain)
    a = p.parse_args(argv)
    for name, (_default, pattern, explain) in OPTIONS.items():
        if pattern and not re.fullmatch(pattern, getattr(a, name)):
            p.error(f"--{name.replace('_', '-')} {getattr(a, name)!r} is not valid: {explain}")
    from inventory_sources import choose  # the inventory's own choice of hosts (it reads .env when it may)

    source = choose()
    if not source.can_replace_servers():  # real servers: only a staging inventory, which is wiped
        if os.environ.get("DR_DRILL_ENVIRONMENT") != "staging" and not a.i_know_this_is_production:
            print("dr-drill: refusing: .env targets real servers. The drill wipes a server: run it against the "
                  "sandbox, or a staging inventory with DR_DRILL_ENVIRONMENT=staging", file=sys.stderr)
            return 2
        if a.rebuild == "replace":
            print("dr-drill: --rebuild replace needs an inventory that can order a new server (the sandbox); "
                  "staging uses --rebuild wipe", file=sys.stderr)
            return 2
    rebuild = a.rebuild or ("replace" if source.can_replace_servers() else "wipe")
    try:
        groups = config.load_inventory(source)  # the configuration every pyinfra run below needs, checked first
    except SystemExit as e:
        return int(e.code or 2)
    if not groups.get("n8n_servers") or not os.environ.get("SUPABASE_DB_URL"):
        print("dr-drill: the drill needs an n8n server and a Supabase database (SUPABASE_DB_URL; the sandbox: "
              "python -m sandbox up --group supabase && pyinfra -y inventory.py sandbox/supabase.py)", file=sys.stderr)
        return 2
    parts = set(a.parts.split(","))
    if "b" in parts and not os.environ.get("DR_DRILL_SUPABASE_URL"):
        print("dr-drill: part (b) restores Supabase into a database of its own and DR_DRILL_SUPABASE_URL is not set: "
              "point it at an empty database (never the one SUPABASE_DB_URL names), run deploy.py, or leave (b) out "
              "with --parts a,c", file=sys.stderr)
        return 2
    if not groups.get("backup_vault") and not os.environ.get("BACKUP_S3_REPOSITORY"):
        print("dr-drill: part (c) rebuilds from the off-host repository and none is configured: set BACKUP_VAULT "
              "or BACKUP_S3_REPOSITORY", file=sys.stderr)
        return 2
    drill = Drill(source, dict(os.environ), rebuild, parts)
    monitored = bool(groups.get("monitors"))
    if monitored:  # the drill's outages are planned: page nobody (the window expires by itself)
        drill.step("-", "silence the monitor (maintenance window)", lambda: drill.pyinfra(
            "runbooks/maintenance.py", "--data", "checks=*", "--data", "minutes=120", "--data", "reason=DR drill") and None)
    try:
        t_outage = drill.outage() if "a" in parts else {}
        marker = drill.data_loss() if "b" in parts else None
        t_rebuild = drill.server_loss(marker) if "c" in parts else {}
    finally:
        if monitored:
            drill.step("-", "end the maintenance window", lambda: drill.pyinfra(
                "runbooks/maintenance.py", "--data", "action=end", "--data", "checks=*") and None)
    report_dir = Path(a.report_dir)
    path = drill.report(report_dir if report_dir.is_absolute() else ROOT / report_dir, t_outage, t_rebuild)
    print(f"dr-drill: {'PASSED' if not drill.failures else 'FAILED'}; report {path}")
    return 0 if not drill.failures else 1


if __name__ == "__main__":
    sys.exit(main())
