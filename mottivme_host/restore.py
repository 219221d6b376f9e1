"""Restore n8n from a restic snapshot over the live stack, or check one in throwaway containers (--drill).

n8n-restore [--snapshot latest|ID|YYYY-MM-DD] [--from auto|local|offsite] [--from-host NAME] [--drill]
            [--source NAME ...] [--target scratch|URL --confirm-overwrite] [--no-safety-snapshot]
            [--supabase-target scratch|URL --confirm-supabase-overwrite]

Restore: find the snapshot (local repository first, then the off-host ones), verify every file
against its manifest, then restore the backup sources chosen with --source (default: every
source in the snapshot). Before anything is overwritten (n8n, or a named target) a safety
snapshot is taken (`n8n-backup --tag pre-restore`). The source n8n: check the snapshot's
N8N_ENCRYPTION_KEY is the one in use, restore n8n's database into a new database beside the live
one and n8n's files beside their volumes (n8n keeps running), compare them with the manifest,
then stop n8n, swap the files' directories and the databases (one transaction), start it and
wait for readiness (both swapped back when it does not get ready; exit 6 when even that fails).
Each postgres source (Supabase, ...) is restored into a throwaway scratch database and checked,
never over a database unless a target is named AND confirmed (--target URL: the one postgres
source named with --source; --supabase-target: the source supabase). Without n8n among the sources, n8n is not touched.
--drill: restore into throwaway containers (PostgreSQL + n8n, a scratch database per postgres
source) beside the live stack, check them, remove them; the live stack is not touched.
--table SCHEMA.NAME / --schema NAME (one database --source): restore only those tables, into new
tables beside the live ones in the source's own database (NAME_restored_<snapshot>, its row
count checked against the manifest), or with --over --confirm-overwrite over the live table's
rows in one transaction (the rows it had kept as NAME_before_restore_<snapshot>); row counts
before and after are printed. Nothing else in that database, and nothing of n8n, is touched.
Prints the time of each step. Snapshots of either manifest format (1: n8n + Supabase; 2: sources)
restore. Bad input (unknown snapshot or source, wrong password, no repository, host not
provisioned) changes nothing.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import re
import shutil
import tempfile
import threading

from . import common, envfile, files, pglist
from .common import Fail, Laps, Lock, Log
from .deploy_version import valid_version, version_key
from .pgaccess import Access
from .restic import LAST_SNAPSHOT, Repo, vault_down, wrong_password
from .run import CommandFailed, Runner
from .settings import Settings
from .stack import COUNTS_SQL, SCHEMA_NAME, SOURCE_NAME, TABLE_NAME, Stack, counts_sql, parse_counts

# n8n's tables whose counts must match the manifest exactly (executions etc. may differ)
EXACT = ("workflow_entity", "credentials_entity", "user", "project", "shared_workflow", "shared_credentials")
ALL = None  # compare every table (a postgres source's dump)
LOCK_WAIT = 600
VOLUME_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")  # a volume of n8n's files, as the manifest names it
SWAP_TRIES = 5

DRILL_READY_JS = ("fetch('http://127.0.0.1:5678/healthz/readiness')"
                  ".then(r=>console.log(r.status),()=>console.log(0))")
# count of the credentials that decrypt with the key the throwaway n8n got
DECRYPT_SH = (r'n8n export:credentials --all --decrypted --output=/tmp/c.json >/dev/null 2>&1 && '
              r'node -e "console.log(require(\"/tmp/c.json\").filter(c => typeof c.data === \"object\").length)"; '
              r'rm -f /tmp/c.json')
# a database source's dump is read from a read-only bind mount, so pg_restore can run parallel jobs
JOBS = str(max(1, min(4, os.cpu_count() or 1)))
SCRATCH_DIR = "/tmp/restore"  # the scratch box's directory (its dump, the lists) inside it, read-only
# over a target (named, or the drill's database): the dump's list as one SQL script (no connection),
# then run in one transaction by psql with libpq's variables and a pgpass file (pgaccess.Access),
# /tmp/pre.sql first (pglist.pre_sql)
TARGET_SCRIPT = ["pg_restore", "--clean", "--if-exists", "--no-owner", "-L", "/tmp/restore.list", "-f", "-",
                 "/tmp/restore.dump"]
TARGET_RUN = ["psql", "-1", "-v", "ON_ERROR_STOP=1", "-qX", "-f", "/tmp/pre.sql", "-f", "/tmp/restore.sql"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--snapshot", default="latest", metavar="latest|ID|YYYY-MM-DD",
                   help="latest (default; never a pre-restore safety snapshot), a snapshot id (prefix) "
                        "or a date: the last snapshot of that day or before")
    p.add_argument("--from", dest="origin", default="auto", choices=("auto", "local", "offsite"),
                   help="auto (default: the local repository, then the off-host ones), local or offsite")
    p.add_argument("--from-host", dest="from_host", default="", metavar="NAME",
                   help="restore a snapshot another server made (default: only this server's own, by the name its "
                        "backups carry: a restore never picks another server's snapshot by accident)")
    p.add_argument("--drill", action="store_true",
                   help="restore into throwaway containers and check them; the live stack is not touched")
    p.add_argument("--source", dest="sources", action="append", default=[], metavar="NAME",
                   help="a backup source to restore, e.g. n8n or supabase (repeatable; default: every source "
                        "in the snapshot); without n8n, n8n is not touched")
    p.add_argument("--target", default="scratch", metavar="scratch|drill|NAME|URL",
                   help="scratch (default: each postgres source into a throwaway database, checked), drill (the "
                        "source's drill database, e.g. DR_DRILL_SUPABASE_URL: one transaction, counts checked), the "
                        "name of a database source (its configured database: `--source supabase --target supabase`) "
                        "or a postgresql:// URL, to restore the one postgres source named with --source over")
    p.add_argument("--confirm-overwrite", dest="confirm", action="store_true",
                   help="needed with a --target other than scratch")
    p.add_argument("--no-safety-snapshot", dest="safety", action="store_false",
                   help="no `n8n-backup --tag pre-restore` before n8n or a named target is overwritten")
    p.add_argument("--table", dest="tables", action="append", default=[], metavar="SCHEMA.NAME",
                   help="only this table of the one database --source (repeatable; NAME alone: public.NAME): the "
                        "snapshot's rows go into a new table beside the live one, NAME_restored_<snapshot>; with "
                        "--over and --confirm-overwrite, they replace the live table's rows")
    p.add_argument("--schema", dest="schemas", action="append", default=[], metavar="NAME",
                   help="every table of this schema in the snapshot, as --table (repeatable)")
    p.add_argument("--over", action="store_true",
                   help="with --table/--schema and --confirm-overwrite: replace the live table's rows, in one "
                        "transaction (its rows before are kept as NAME_before_restore_<snapshot>)")
    p.add_argument("--supabase-target", default="scratch", metavar="scratch|drill|supabase|URL",
                   help="--target for the source supabase (scratch, the default; drill; supabase; or a postgresql:// URL)")
    p.add_argument("--confirm-supabase-overwrite", dest="confirm", action="store_true",
                   help="the same as --confirm-overwrite")


class ManifestError(ValueError):
    """A manifest.json this program cannot read."""


def manifest_v2(m: dict) -> dict:
    """The manifest in format 2 (`sources`: name -> kind, row counts, dump, ...), whichever format
    the snapshot has: format 1 (top-level n8n and supabase, the Supabase dump at
    supabase/supabase.dump, its public schema) is converted. Checked: kinds, names, dumps listed."""
    if not isinstance(m, dict):
        raise ManifestError("not a JSON object")
    fmt = m.get("format")
    if fmt == 1:
        n8n = m.get("n8n")
        if not isinstance(n8n, dict):
            raise ManifestError("format 1 without n8n")
        sources = {"n8n": {"kind": "n8n", **n8n, "dump": "n8n/n8n-db.dump"}}
        sb = m.get("supabase")
        if sb:
            sources["supabase"] = {"kind": "postgres", "server_version_num": sb.get("server_version_num"),
                                   "schemas": ["public"], "row_counts": sb.get("row_counts") or {},
                                   "dump": "supabase/supabase.dump"}
        m = {"format": 2, **{k: m.get(k) for k in ("host", "tags", "started", "finished")},
             "sources": sources, "files": m.get("files")}
    elif fmt != 2:
        raise ManifestError(f"manifest format {fmt!r} is not one this program reads (1 or 2): "
                            "a newer mottivme-host made it; deploy first")
    sources, staged = m.get("sources"), m.get("files")
    if not isinstance(sources, dict) or not isinstance(staged, dict):
        raise ManifestError("no sources or files")
    for name, x in sources.items():
        kind = x.get("kind") if isinstance(x, dict) else None
        if not SOURCE_NAME.fullmatch(name) or kind not in ("n8n", "postgres") or (kind == "n8n") != (name == "n8n"):
            raise ManifestError(f"source {name!r} of kind {kind!r} is not one this program restores")
        if x.get("dump") not in staged:
            raise ManifestError(f"source {name}: its dump {x.get('dump')!r} is not among the files")
        schemas = x.get("schemas", ["public"])
        if kind == "postgres" and not (isinstance(schemas, list) and schemas and all(
                isinstance(sc, str) and SCHEMA_NAME.fullmatch(sc) for sc in schemas)):
            raise ManifestError(f"source {name}: schemas {schemas!r}")
        if kind == "postgres" and not _shape_ok(x, schemas):
            raise ManifestError(f"source {name}: roles, extensions or managed_schemas not plain names")
        held = x.get("files", {}) if kind == "n8n" else {}
        if not isinstance(held, dict) or not all(
                VOLUME_NAME.fullmatch(v) and isinstance(a, dict) and a.get("archive") == files.archive_path(v)
                and a["archive"] in staged and isinstance(a.get("entries"), int) and isinstance(a.get("files", 0), int)
                for v, a in held.items()):
            raise ManifestError(f"source {name}: its files {held!r} are not archives among the files")
        if kind == "postgres" and not (isinstance(x.get("server_version_num"), int)
                                       and isinstance(x.get("row_counts"), dict)):
            raise ManifestError(f"source {name}: no server_version_num or row_counts")
    if "n8n" not in sources:
        raise ManifestError("no source n8n")
    return m


def _shape_ok(x: dict, schemas: list) -> bool:
    """A postgres source's roles, extensions (name -> schema) and managed schemas (of its schemas),
    as a backup of schemas "all" writes them (absent in others)."""
    roles, ext, managed = x.get("roles", []), x.get("extensions", {}), x.get("managed_schemas", [])
    left = x.get("exclude_tables", [])
    return (isinstance(left, list) and all(isinstance(t, str) and TABLE_NAME.fullmatch(t) for t in left)
            and isinstance(roles, list) and all(isinstance(r, str) and pglist.ROLE_NAME.fullmatch(r) for r in roles)
            and isinstance(ext, dict) and all(isinstance(e, str) and pglist.EXTENSION_NAME.fullmatch(e)
                                              and isinstance(v, str) and SCHEMA_NAME.fullmatch(v) for e, v in ext.items())
            and isinstance(managed, list) and all(m in schemas for m in managed))


def main(ns, s: Settings, runner: Runner) -> int:
    if s.backup is None:
        raise Fail("check host: this host keeps no backups (no backup settings): it is not an n8n server", 4)
    old_umask = os.umask(0o077)  # the work dir and the restored config hold the stack's secrets
    try:
        return _Restore(ns, s, runner).main()
    finally:
        os.umask(old_umask)



def _env_value(path: str, key: str) -> str | None:
    try:
        return envfile.read(path).get(key, "")
    except OSError:
        return None


def backup_id(snap: dict) -> str:
    """The id the backup printed: a copy (`restic copy`, the off-host repositories) has an id of
    its own and keeps the backup's as `original`."""
    return snap.get("original") or snap.get("id", "")


def _pick(snaps: list[dict], want: str) -> dict | None:
    """The snapshot `want` names: latest (never a safety snapshot: those only by id), the last of
    a day or before (YYYY-MM-DD), or the newest whose id - or the backup's id it is a copy of -
    starts with `want`."""
    snaps = sorted(snaps, key=lambda x: x.get("time", ""))
    if want == "latest":
        hits = [x for x in snaps if "pre-restore" not in (x.get("tags") or [])]
    elif len(want) == 10 and want[4] == "-" and want[7] == "-":
        hits = [x for x in snaps if x.get("time", "")[:10] <= want]
    else:  # a snapshot's own id first, else the backup's id its copy keeps; one backup, or none
        hits = ([x for x in snaps if x.get("id", "").startswith(want)]
                or [x for x in snaps if backup_id(x).startswith(want)])
        names = sorted({backup_id(x)[:12] for x in hits})
        if len(names) > 1:
            raise Ambiguous(f"'{want}' names several snapshots ({', '.join(names)}): give more of its digits")
    return hits[-1] if hits else None


class Ambiguous(ValueError):
    """A snapshot id prefix that names more than one backup."""


def newest_snapshot(repository: str) -> str | None:
    """The id of the newest snapshot in a local restic repository, read from its directory of
    snapshots (restic's local layout: one file per snapshot, named by its id, written once) without
    restic: no key derivation. None when the repository is not a local directory, is empty, or two
    snapshots are as new (restic's list decides then)."""
    try:
        found = [(e.stat().st_mtime_ns, e.name) for e in os.scandir(os.path.join(repository, "snapshots"))
                 if e.is_file() and re.fullmatch(r"[0-9a-f]{64}", e.name)]
    except OSError:
        return None
    if not found:
        return None
    newest = max(found)
    return newest[1] if sum(t == newest[0] for t, _ in found) == 1 else None


class _EarlyFetch:
    """`restic restore` of one snapshot (by id) into a directory of its own, in a thread; stopped
    (SIGTERM, then SIGKILL) when it is not wanted."""

    STOP_SECONDS = 10  # restic's own clean-up after SIGTERM (its lock), before SIGKILL

    def __init__(self, repo: Repo, snapshot: str, target: str, leave: list[str], log, runner: Runner):
        self.repo, self.snapshot, self.target, self.leave, self.log, self.r = repo, snapshot, target, leave, log, runner
        self.outcome: list = []  # restic's Result, or what the call raised
        self.process = None  # the running restic, once started
        self.newest = False  # the newest snapshot in its repository: restic's list is not read
        self.thread = threading.Thread(target=self._fetch, name="restic restore (early)", daemon=True)

    def start(self) -> None:
        self.log.flush()
        self.thread.start()

    def _started(self, process) -> None:
        self.process = process

    def _fetch(self) -> None:
        try:
            self.outcome.append(self.repo.run("restore", self.snapshot, "--target", self.target, *self.leave,
                                              stdout=self.log, log=self.log, check=False, started=self._started))
        except BaseException as e:  # handed to the restore's thread by take()
            self.outcome.append(e)

    def take(self) -> str:
        """Its directory, once restic is done; what a failed fetch raises (as the restore's own would)."""
        self.thread.join()
        got = self.outcome[0]
        if isinstance(got, BaseException):
            raise got
        if not got.ok:
            raise CommandFailed(got)
        return self.target

    def drop(self) -> None:
        """Stop restic if it still runs, wait for it, and remove what it fetched (also when
        interrupted meanwhile: restic is killed first, nothing of the snapshot stays behind)."""
        try:
            if self.thread.ident is None:  # never started
                return
            t, signalled = self.r.now(), ""
            while self.thread.is_alive():
                p = self.process
                if p is not None and not signalled:
                    p.terminate()
                    signalled = "TERM"
                elif p is not None and signalled == "TERM" and self.r.now() - t >= self.STOP_SECONDS:
                    p.kill()
                    signalled = "KILL"
                self.thread.join(0.2)
        finally:
            p = self.process
            if p is not None and self.thread.is_alive():
                p.kill()
            shutil.rmtree(self.target, ignore_errors=True)


class _Restore:
    def __init__(self, ns, s: Settings, runner: Runner):
        self.ns, self.s, self.r, self.b = ns, s, runner, s.backup
        self.files_left = False  # n8n's files left in the repository (a restore of database sources alone)
        self.stack = Stack(s, runner)
        self.step = "start"
        self.cleanups: list = []
        self.drill_urls: set[str] = set()  # targets named `drill`: one transaction, counts checked after
        self.laps = Laps(runner.now, on_lap=self.progress)
        self.pid = os.getpid()
        self.log: Log | None = None
        self.lock: Lock | None = None  # released after the clean-ups
        self.lists: dict[str, list[str]] = {}  # source -> its dump's list (pg_restore -l)
        self.early: dict[str, tuple[str, str]] = {}  # source -> (scratch box, its image) started before its dump came
        # what is done ("n8n restored and running", "supabase checked") and the source under way:
        # a failure's line names both
        self.finished: list[str] = []
        self.current = ""

    # --- the frame: log, failure, clean-up -------------------------------------------------------
    def main(self) -> int:
        """The run; a drill (the monthly one from cron) tells the monitor how it went."""
        try:
            rc = self._main()
        except Fail as e:
            if self.ns.drill:
                common.report_job(self.s, self.r, "drill", f"restore drill failed: {e.message}")
            raise
        except Exception as e:  # a bug: the monitor hears of it too, then the traceback
            if self.ns.drill:
                common.report_job(self.s, self.r, "drill", f"restore drill failed: {type(e).__name__}")
            raise
        if self.ns.drill:
            common.report_job(self.s, self.r, "drill")
        return rc

    def _main(self) -> int:
        self.log = Log(self.b.log, prefix="restore: ")
        try:
            self.run()
        except Fail:
            raise
        except CommandFailed as e:
            self.fail(f"{e} (details in {self.b.log})")
        except KeyboardInterrupt:
            self.fail("interrupted", 130)
        except OSError as e:
            self.fail(f"{e} (details in {self.b.log})")
        finally:
            self.clean_up()
            if self.lock is not None:
                os.close(self.lock.fd)
            self.log.file.close()
        for line in self.laps.lines():
            common.out_line(line)
        return 0

    def progress(self, message: str) -> None:
        """A phase done: to the log, and to stderr when a person watches (a terminal)."""
        if self.log is not None:
            self.log.log(message)
        if common.on_terminal():
            common.stderr_line(f"n8n-restore: {message}")

    def fail(self, message: str, code: int = 1):
        if self.finished and self.current:  # the last line says what was restored before, and what was not
            message = f"{'; '.join(self.finished)}; {self.current} NOT restored: {message}"
        self.log.log(f"FAILED {self.step}: {message}")
        raise Fail(f"{self.step}: {message}", code) from None

    def say(self, message: str) -> None:
        self.log.say(message)

    def clean_up(self) -> None:
        for fn in self.cleanups:
            try:
                fn()
            except BaseException:  # noqa: BLE001 - a clean-up never stops the others
                pass

    def run_(self, argv: list[str], **kw):
        """A command whose output (stdout and stderr) goes to the log unless told otherwise."""
        kw.setdefault("stdout", self.log.file)
        kw.setdefault("log", self.log.file)
        self.log.file.flush()
        return self.r.run(argv, **kw)

    # --- the run -----------------------------------------------------------------------------
    def run(self) -> None:
        s, ns = self.s, self.ns
        # --- validate: provisioned host, repository, snapshot (nothing of production changes here)
        self.step = "check host"
        if not (os.path.isfile(os.path.join(s.stack_dir, "docker-compose.yml")) and self._postgres_running()):
            self.fail(f"this host is not provisioned (no n8n stack in {s.stack_dir}): "
                      "run `pyinfra inventory.py deploy.py` first", 4)
        self.check_options()
        # this run's directories (0700): another restore or drill of the same snapshot keeps its files
        parent = os.path.join(self.b.dir, "restore")
        os.makedirs(parent, mode=0o700, exist_ok=True)
        # what a scratch box sees of this run (only its dump and the lists: not the snapshot's
        # config/.env, nor the other sources' dumps); a box may start before the snapshot is found
        self.box_dir = tempfile.mkdtemp(prefix="box-", dir=parent)
        self.cleanups.append(lambda: shutil.rmtree(self.box_dir, ignore_errors=True))
        self.start_scratch_early()
        # a restore of database sources alone leaves n8n's files (the snapshot's largest part, maybe) in the repository
        self.files_left = bool(ns.sources) and "n8n" not in ns.sources
        leave = ["--exclude", f"staging/{files.ARCHIVE_DIR}"] if self.files_left else []
        early = self.fetch_early(parent, leave)

        self.step = "find snapshot"
        if early is not None and early.newest:  # this server's last backup is the newest in its repository
            repo, snap = early.repo, {"id": early.snapshot}
            self.log.log(f"{early.snapshot[:8]}: this server's last backup, the newest snapshot in {repo.url}")
        else:
            repo, snap = self.find_snapshot()
        self.name_snapshot(repo, snap)
        self.laps.lap("find snapshot")

        self.step = "restore files"
        self.work = ""
        if early is not None and repo.url == self.b.local_repository and snap["id"] == early.snapshot:
            try:
                self.work = early.take()  # the snapshot the list chose (or the newest) is the one fetched early
                self.log.log(f"{early.snapshot[:8]}: fetched early (this server's last backup)")
            except CommandFailed:
                if not early.newest:
                    raise
                # chosen without restic's list: the list says why (a password, the repository), or
                # chooses (another snapshot, maybe), and the restore goes on as without the early fetch
                self.log.log(f"{early.snapshot[:8]}: the early fetch failed; reading restic's snapshot list")
                early.drop()
                self.step = "find snapshot"
                repo, snap = self.find_snapshot()
                self.name_snapshot(repo, snap)
                self.step = "restore files"
        elif early is not None:  # another one (a newer backup, a copy, retention): fetched again
            early.drop()
            self.log.log(f"fetched {early.snapshot[:8]} early, but the list chose {snap['id'][:8]}")
        if not self.work:
            self.work = tempfile.mkdtemp(prefix=f"{self.short}-", dir=parent)
            self.cleanups.append(lambda: shutil.rmtree(self.work, ignore_errors=True))
            self.log.file.flush()
            repo.run("restore", snap["id"], "--target", self.work, *leave, stdout=self.log.file, log=self.log.file)
        self.src = self.find_manifest()
        if self.src is None:
            self.fail(f"snapshot {self.short} has no manifest.json: not a complete n8n-backup snapshot")
        self.laps.lap("restore files from restic")

        self.step = "verify files"
        self.verify_files()
        self.step = "select sources"
        self.select_sources()
        self.step = "verify files"
        if self.n8n:
            env_path = os.path.join(s.stack_dir, s.env_file)
            key_now = _env_value(env_path, "N8N_ENCRYPTION_KEY")
            key_then = _env_value(os.path.join(self.src, "config", ".env"), "N8N_ENCRYPTION_KEY")
            if key_now is None or key_then is None or key_now != key_then:
                self.fail(f"snapshot {self.short} was made with another N8N_ENCRYPTION_KEY than the one in "
                          f"{env_path}: its credentials could not be decrypted. Put the snapshot's key in your .env "
                          "(see config/.env in the snapshot) and deploy first", 5)
            self.laps.lap("verify sha256 and encryption key")
        else:
            self.laps.lap("verify sha256")

        if self.tables:
            self.tables_restore()
        elif ns.drill:
            self.drill()
        else:
            self.live()

    def check_options(self) -> None:
        """The choice of sources and targets, before anything is read (exit 2; a URL is never shown)."""
        ns = self.ns
        databases = [x for x in dict.fromkeys(ns.sources) if x != "n8n"]
        for attr, own in (("target", databases[0] if len(databases) == 1 else None), ("supabase_target", "supabase")):
            opt, value = "--" + attr.replace("_", "-"), getattr(ns, attr)
            url = self.by_name(opt, value, own)
            if url != value and value not in (own, "drill"):  # a database named by its source takes only its dump
                self.fail(f"{opt} {value}: that database takes only the dump of its own source (--source {value})", 2)
            setattr(ns, attr, url)
        for opt, value, confirm in (("--target", ns.target, "--confirm-overwrite"),
                                    ("--supabase-target", ns.supabase_target, "--confirm-supabase-overwrite")):
            if value == "scratch":
                continue
            if ns.drill:
                self.fail(f"{opt}: a drill restores into throwaway containers only", 2)
            if not ns.confirm:
                self.fail(f"{opt} other than scratch overwrites that database: add {confirm}", 2)
        chosen = list(dict.fromkeys(ns.sources))
        databases = [x for x in chosen if x != "n8n"]  # the one source n8n is the only one not a database
        if ns.target != "scratch" and not databases:
            # never a guess of which database goes over the URL (nor n8n over the live stack with it)
            self.fail("--target URL needs --source NAME (the database to restore over it)", 2)
        if ns.target != "scratch" and len(databases) != 1:
            self.fail("--target URL needs exactly one --source (a database source)", 2)
        if ns.supabase_target != "scratch" and chosen and "supabase" not in chosen:
            self.fail("--supabase-target is the target of the source supabase, which no --source chose", 2)
        self.tables = [_table_name(x) for x in ns.tables] + [(x, None) for x in ns.schemas]
        if None in (t[0] for t in self.tables) or not all(SCHEMA_NAME.fullmatch(x) for t in self.tables for x in t if x):
            self.fail("--table SCHEMA.NAME / --schema NAME: plain lower-case names (letters, digits, _), e.g. "
                      "--table public.conversation_history", 2)
        if ns.over and not self.tables:
            self.fail("--over replaces a table's rows: name it with --table or --schema", 2)
        if self.tables:
            if ns.drill or "n8n" in chosen or len(databases) != 1:
                self.fail("--table / --schema need exactly one database --source, the one the tables are in "
                          "(e.g. --source supabase); no --drill, no n8n", 2)
            if ns.target != "scratch" or ns.supabase_target != "scratch":
                self.fail("--table / --schema restore into the source's own database: leave out --target", 2)
            if ns.over and not ns.confirm:
                self.fail("--over replaces the live table's rows: add --confirm-overwrite", 2)

    def by_name(self, opt: str, value: str, own: str | None) -> str:
        """A target named by its backup source (`--target supabase`: the database that source backs up,
        its URL from this server's settings, so no password is typed or shown) -> its URL. `drill`:
        the drill database of the source `own` (never the one it backs up)."""
        if value == "scratch" or "://" in value:
            return value
        if value == "drill":
            src = next((x for x in self.b.sources if x.kind == "postgres" and x.name == own), None)
            if own is None:
                self.fail(f"{opt} drill needs exactly one --source (the database source to restore there)", 2)
            if src is None or not src.drill_url:
                self.fail(f"{opt} drill: {own} has no drill database on this server: set its drill URL in .env "
                          f"(DR_DRILL_SUPABASE_URL for supabase: an empty database, never production's) and run "
                          f"deploy.py", 2)
            self.drill_urls.add(src.drill_url)
            return src.drill_url
        databases = [x for x in self.b.sources if x.kind == "postgres" and x.url]
        src = next((x for x in databases if x.name == value), None)
        if src is None:
            names = ", ".join(x.name for x in databases) or "none configured"
            self.fail(f"{opt} {value}: not a database source of this server (scratch, or one of: {names})", 2)
        return src.url

    def select_sources(self) -> None:
        """The snapshot's sources to restore (--source; default: all), and each database's target."""
        ns, have = self.ns, self.manifest["sources"]
        unknown = [x for x in dict.fromkeys(ns.sources) if x not in have]
        if unknown:
            self.fail(f"no source {', '.join(unknown)} in snapshot {self.short}: it has {', '.join(have)}", 2)
        chosen = [x for x in have if not ns.sources or x in ns.sources]
        self.n8n = "n8n" in chosen
        self.targets = {x: "scratch" for x in chosen if have[x]["kind"] == "postgres"}
        # asked for (a database source of this host, or --supabase-target) but not in this snapshot
        self.missing = [] if ns.sources else [x.name for x in self.b.sources
                                              if x.kind == "postgres" and x.url and x.name not in have]
        if ns.target != "scratch":
            if len(self.targets) != 1:
                self.fail(f"--target URL needs exactly one --source (a database source; this snapshot has "
                          f"{', '.join(self.targets) or 'none'})", 2)
            self.targets = {x: ns.target for x in self.targets}
        if ns.supabase_target != "scratch":
            if "supabase" not in have:
                self.missing += [] if "supabase" in self.missing else ["supabase"]
            elif self.targets.get("supabase") not in ("scratch", ns.supabase_target):
                self.fail("--target and --supabase-target name two databases for the source supabase", 2)
            else:
                self.targets["supabase"] = ns.supabase_target

    def _postgres_running(self) -> bool:
        try:
            return bool(self.stack.container_id("postgres"))
        except OSError:  # no compose at all
            return False

    def find_snapshot(self) -> tuple[Repo, dict]:
        ns, b = self.ns, self.b
        local = [b.local_repository]
        offsite = list(b.offsite_repositories)
        urls = {"auto": local + offsite, "local": local, "offsite": offsite}[ns.origin]
        if not urls:
            self.fail("no off-host repository is configured", 2)
        host = ns.from_host or b.host or common.hostname()  # only this server's snapshots, unless told
        problems = []
        for url in urls:
            repo = Repo(url, b, self.r)
            # stdout is the JSON; ssh/restic notices (a vault's host key seen first) come on stderr
            # no lock: a list read once (restic's lock costs a write and a 200 ms wait); a snapshot
            # forgotten meanwhile makes the restore below fail, which takes its lock
            res = repo.run("snapshots", "--json", "--no-lock", "--tag", "n8n", check=False)
            if not res.ok:
                err = res.stderr or ""
                self.log.log(f"{url}: {err.strip()}")
                if wrong_password(err):
                    problems.append(f"{url}: RESTIC_PASSWORD does not open it (wrong password?)")
                elif vault_down(err):
                    problems.append(f"{url}: {err.strip().removeprefix('Fatal: ')[:160]}")
                else:
                    last = (err.strip().splitlines() or [""])[-1]
                    problems.append(f"{url}: no repository there ({last[:120]})")
                continue
            try:
                snaps = json.loads(res.stdout or "[]") or []
            except ValueError:
                problems.append(f"{url}: restic's snapshot list is not JSON")
                continue
            theirs = [x for x in snaps if x.get("hostname") != host]
            snaps = [x for x in snaps if x.get("hostname") == host]
            others = sorted({x.get("hostname", "") for x in theirs})
            if not snaps and others:
                problems.append(f"{url}: no snapshot of {host}, only of {', '.join(others)} "
                                f"(restore one of theirs with --from-host NAME)")
                continue
            try:
                snap = _pick(snaps, ns.snapshot)
            except Ambiguous as e:
                self.fail(str(e), 2)
            if snap is not None:
                return repo, snap
            try:  # the one asked for may carry another name (made before an upgrade, or by another server)
                other = _pick(theirs, ns.snapshot) if ns.snapshot != "latest" else None
            except Ambiguous:
                other = None
            hint = (f" of {host}; {backup_id(other)[:8]} is {other.get('hostname')}'s "
                    f"(--from-host {other.get('hostname')})") if other else ""
            problems.append(f"{url}: no snapshot '{ns.snapshot}'{hint}")
        self.fail(f"no snapshot '{ns.snapshot}' found: {';'.join(problems)}", 3)

    def find_manifest(self) -> str | None:
        """The directory of the snapshot's manifest.json (the backup's staging directory)."""
        found = []
        for root, dirs, names in os.walk(self.work):
            dirs.sort()
            if "manifest.json" in names and "staging" in os.path.relpath(os.path.join(root, "manifest.json"),
                                                                         self.work):
                found.append(root)
        return found[0] if found else None

    def verify_files(self) -> None:
        bad = None
        try:
            with open(os.path.join(self.src, "manifest.json")) as f:
                raw = json.load(f)
            try:
                self.manifest = manifest_v2(raw)
            except ManifestError as e:
                self.fail(f"snapshot {self.short}: manifest.json: {e}")
            staged = {rel: meta for rel, meta in self.manifest["files"].items()
                      if not (self.files_left and rel.startswith(files.ARCHIVE_DIR + "/"))}
            for rel, meta in staged.items():
                path = os.path.join(self.src, rel)
                if not os.path.isfile(path):
                    bad = f"{rel}: missing"
                elif common.sha256(path) != meta["sha256"]:
                    bad = f"{rel}: sha256 mismatch"
                if bad:
                    break
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            bad = f"manifest.json unreadable: {e}"
        if bad:
            self.log.log(bad)
            self.fail(f"files of snapshot {self.short} do not match its manifest")
        self.log.log(f"all {len(staged)} files match")

    # --- helpers -----------------------------------------------------------------------------
    def mf(self, *path, default=None):
        """A value of the manifest's sources: mf("n8n", "workflows")."""
        v = self.manifest["sources"]
        for k in path:
            if not isinstance(v, dict):
                return default
            v = v.get(k)
        return default if v is None else v

    def compare_counts(self, label: str, expected: dict | None, actual: dict[str, int], exact) -> bool:
        """Every table of the restored database or the manifest against the other; only `exact`
        tables count (ALL: every table). A table the restore lacks has 0 rows."""
        expected = expected or {}
        good = True
        for table in [*actual, *(x for x in expected if x not in actual)]:
            want = expected.get(table, "missing")
            n = actual.get(table, 0)
            if want != n and (exact is ALL or table in exact):
                gone = "" if table in actual else " (not in the restored database)"
                self.say(f"  {label} {table}: {n} rows{gone}, manifest {want}")
                good = False
        return good

    def postgres_ready(self, box: str, user: str, what: str, so: str) -> None:
        """Until the throwaway PostgreSQL `box` accepts connections: a minute, asked every 0.25 s (one
        that stopped is not waited for). Else its last lines to the log, and the restore fails naming
        `what` (and `so`: what that means)."""
        for _ in range(240):
            res = self.r.run(["docker", "exec", box, "pg_isready", "-U", user, "-h", "127.0.0.1"], check=False)
            if res.ok:
                return
            if "is not running" in res.stderr:
                break
            self.r.sleep(0.25)
        logs = self.r.run(["docker", "logs", "--tail", "30", box], check=False)
        self.log.log(f"{what}: its last lines:\n{logs.stdout}{logs.stderr}")
        self.fail(f"{what} did not start: its last lines are in {self.b.log}; {so}")

    def dump_path(self, source: str) -> str:
        """The source's dump file (its path as the manifest names it: a verified file)."""
        return os.path.join(self.src, self.mf(source, "dump"))

    def dump(self, source: str):
        return open(self.dump_path(source), "rb")

    # --- drill: throwaway PostgreSQL + n8n on their own network; the live stack is untouched ----
    def drill(self) -> None:
        if not self.n8n:
            self.databases()
            self.say(f"drill ok: snapshot {self.short}; {self.done()}")
            return
        s = self.s
        user, db = s.postgres_user, s.postgres_db
        self.step = "drill"
        version = _env_value(os.path.join(s.stack_dir, s.env_file), "N8N_VERSION")
        if not version:
            self.fail(f"no N8N_VERSION in {os.path.join(s.stack_dir, s.env_file)}: deploy first")
        image = f"{s.n8n_image_repo}:{version}"
        net, pg, app = f"n8n-drill-{self.pid}", f"n8n-drill-pg-{self.pid}", f"n8n-drill-n8n-{self.pid}"
        self.cleanups.append(lambda: self.r.run(["docker", "rm", "-f", "-v", app, pg], check=False))
        self.cleanups.append(lambda: self.r.run(["docker", "network", "rm", net], check=False))
        self.run_(["docker", "network", "create", "--internal", net])
        self.run_(["docker", "run", "-d", "--name", pg, "--network", net, "--network-alias", "db",
                   "-e", "POSTGRES_PASSWORD=drill", "-e", f"POSTGRES_USER={user}", "-e", f"POSTGRES_DB={db}",
                   s.postgres_image])
        self.postgres_ready(pg, user, f"the drill's PostgreSQL ({s.postgres_image})", "production untouched")
        self.laps.lap("drill: start throwaway PostgreSQL")
        with self.dump("n8n") as f:
            self.run_(["docker", "exec", "-i", pg, "pg_restore", "-U", user, "-d", db, "--no-owner",
                       "--exit-on-error"], stdin=f)
        self.laps.lap("drill: pg_restore n8n database")

        # n8n's files: each archive unpacked and counted; n8n's home mounted in the throwaway n8n, so
        # its readiness covers its settings file and the custom and community nodes it loads
        mounts = []
        for volume in self.mf("n8n", "files", default={}):
            into = os.path.join(self.work, "files", volume)
            os.makedirs(os.path.dirname(into), exist_ok=True)
            self.unpack_volume(volume, into, "the live stack is not touched")
            target = self.our_volumes().get(volume)
            if target:
                mounts += ["-v", f"{into}:{target}"]
        if mounts:
            self.laps.lap("drill: unpack n8n files")
        # the snapshot's key reaches n8n by a file only root reads (never on a command line)
        key_file = os.path.join(self.work, "drill.env")
        key = _env_value(os.path.join(self.src, "config", ".env"), "N8N_ENCRYPTION_KEY") or ""
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"N8N_ENCRYPTION_KEY={key}\n")
        self.run_(["docker", "run", "-d", "--name", app, "--network", net, "-e", "DB_TYPE=postgresdb",
                   "-e", "DB_POSTGRESDB_HOST=db", "-e", f"DB_POSTGRESDB_DATABASE={db}",
                   "-e", f"DB_POSTGRESDB_USER={user}", "-e", "DB_POSTGRESDB_PASSWORD=drill",
                   "--env-file", key_file, "-e", "N8N_DIAGNOSTICS_ENABLED=false",
                   "-e", "N8N_VERSION_NOTIFICATIONS_ENABLED=false", "-e", "N8N_TEMPLATES_ENABLED=false",
                   "-e", "N8N_DISABLED_MODULES=mcp-registry", *mounts, image])
        if not self.drill_ready(app):
            self.fail("the throwaway n8n did not become ready on the restored database")
        self.laps.lap("drill: throwaway n8n ready")

        res = self.r.run(["docker", "exec", pg, "psql", "-U", user, "-d", db, "-AtF", " ", "-c", COUNTS_SQL],
                         log=self.log.file)
        if not self.compare_counts("n8n", self.mf("n8n", "row_counts"), parse_counts(res.stdout), EXACT):
            self.fail("restored n8n database differs from the manifest")
        creds = self.mf("n8n", "credentials", default=0)
        n_dec = 0
        if creds != 0:
            res = self.r.run(["docker", "exec", "-e", "N8N_RUNNERS_BROKER_PORT=5691", app, "sh", "-c", DECRYPT_SH],
                             log=self.log.file, check=False)
            out = res.stdout.strip() if res.ok else ""
            n_dec = int(out) if out.isdigit() else 0
            if n_dec != creds:
                self.fail(f"only {n_dec} of {creds} credentials decrypt with the snapshot's key")
        self.laps.lap("drill: counts + credentials decrypt")
        self.finished.append("n8n checked")
        self.databases()
        self.say(f"drill ok: snapshot {self.short} restores; n8n ready on it; "
                 f"{self.mf('n8n', 'workflows', default=0)} workflows, {creds} credentials ({n_dec} decrypt)")

    def drill_ready(self, app: str) -> bool:
        """Until the throwaway n8n's readiness (asked from inside its container) answers 200."""
        deadline = self.r.now() + self.s.ready_timeout
        while self.r.now() < deadline:
            res = self.r.run(["docker", "exec", app, "node", "-e", DRILL_READY_JS], check=False)
            if res.ok and res.stdout.strip() == "200":
                return True
            self.r.sleep(2)
        return False

    # --- restore over the live stack -------------------------------------------------------------
    def pg(self, *sqls: str, check: bool = True, **kw):
        """psql on the maintenance database `postgres` of the stack's PostgreSQL."""
        args = []
        for sql in sqls:
            args += ["-c", sql]
        self.log.file.flush()
        return self.stack.compose("exec", "-T", "postgres", "psql", "-U", self.s.postgres_user, "-d", "postgres",
                                  "-v", "ON_ERROR_STOP=1", "-qX", *args,
                                  stdout=self.log.file, log=self.log.file, check=check, **kw)

    def services(self, action: str, check: bool = False):
        self.log.file.flush()
        args = ["up", "-d"] if action == "up" else [action]
        return self.stack.compose(*args, *self.s.services, stdout=self.log.file, log=self.log.file, check=check)

    def swap(self, old: str, new: str) -> bool:
        """live -> `old`, `new` -> live, in one transaction (all or nothing)."""
        live = self.s.postgres_db
        for _ in range(SWAP_TRIES):  # a terminated session takes a moment to leave
            res = self.pg(f"select pg_terminate_backend(pid) from pg_stat_activity where datname in "
                          f"('{live}', '{old}', '{new}') and pid <> pg_backend_pid()",
                          f'alter database "{live}" rename to "{old}"; alter database "{new}" rename to "{live}"',
                          check=False)
            if res.ok:
                return True
            self.r.sleep(1)
        return False

    def live(self) -> None:
        if self.n8n:
            self.refuse_a_newer_n8n()
        if self.n8n or any(t != "scratch" for t in self.targets.values()):
            # something is overwritten: a copy of it first (the backup takes the lock itself), then
            # the lock: no backup dumps a database while it is being restored over
            if self.ns.safety:
                self.safety_snapshot()
            self.take_lock()
        if self.n8n:
            self.live_n8n()
        self.databases()
        if self.n8n:
            held = self.mf("n8n", "files", default={})
            n_files = f", {sum(x.get('files', 0) for x in held.values())} files" if held else ""
            self.say(f"restore ok: snapshot {self.short}; n8n ready; {self.mf('n8n', 'workflows', default=0)} "
                     f"workflows, {self.mf('n8n', 'credentials', default=0)} credentials{n_files} as in the manifest")
        else:
            self.say(f"restore ok: snapshot {self.short}; {self.done()}")

    def refuse_a_newer_n8n(self) -> None:
        """n8n's migrations only go forward: a database a newer n8n wrote is never restored under an
        older one (a rebuilt server gets group_data's version, which may lag behind an emergency
        deploy). Stops before anything is changed."""
        taken = str(self.mf("n8n", "version", default=""))
        env = os.path.join(self.s.stack_dir, self.s.env_file)
        here = _env_value(env, "N8N_VERSION") or ""
        if valid_version(taken) and valid_version(here) and version_key(taken) > version_key(here):
            self.fail(f"snapshot {self.short} was taken on n8n {taken}, newer than this server's {here}: its database "
                      f"is migrated past {here}. Move this server to {taken} first (pyinfra inventory.py "
                      f"runbooks/emergency_deploy.py --data n8n_version={taken}), then restore; nothing was changed", 2)

    def take_lock(self) -> None:
        self.step = "lock"
        lock = self.lock = Lock(self.b.lock)
        if not lock.acquire(LOCK_WAIT, self.r.sleep, self.r.now):
            self.fail("a backup has held the lock for 10 minutes")

    def safety_snapshot(self) -> None:
        """`n8n-backup --tag pre-restore` (every source of this host), before anything is overwritten."""
        self.step = "safety snapshot"
        res = self.r.run(["n8n-backup", "--tag", "pre-restore", "--no-offsite"], check=False)
        out = "\n".join(x for x in (res.stdout.strip(), (res.stderr or "").strip()) if x)
        if not res.ok:
            self.fail(f"the safety snapshot failed, nothing was changed ({out}); --no-safety-snapshot skips it")
        line = next((x for x in out.splitlines() if x.startswith("backup ok: ")), out)
        self.say(f"safety snapshot: {line.removeprefix('backup ok: ')}")
        self.laps.lap("safety snapshot")

    def live_n8n(self) -> None:
        """n8n's database and files: restored beside the live ones, checked, swapped in (the lock is held)."""
        s, b = self.s, self.b
        # the snapshot goes into a new database beside the live one and is checked there while n8n
        # keeps running; n8n stops only for the swap. A failure or Ctrl-C before the swap leaves n8n
        # as it was; from the swap on, interruptions are ignored and it always ends with n8n running.
        db = s.postgres_db
        new_db, old_db, failed_db = f"{db}_restoring", f"{db}_before_restore", f"{db}_restore_failed"
        volumes = self.volume_dirs()
        self.step = "restore n8n database"
        self.cleanups.append(lambda: self.pg(f'drop database if exists "{new_db}" with (force)', check=False))
        self.say(f"restoring n8n's database into {new_db} (n8n keeps running)")
        # whole: an interrupt cutting it would leave `create database` going on in the container
        # after the clean-up's drop, and the copy behind
        with common.interrupts_deferred():
            self.pg(f'drop database if exists "{new_db}" with (force)',
                    f'create database "{new_db}" owner "{s.postgres_user}"', new_session=True)
        with self.dump("n8n") as f:
            self.log.file.flush()
            self.stack.compose("exec", "-T", "postgres", "pg_restore", "-U", s.postgres_user, "-d", new_db,
                               "--no-owner", "--exit-on-error", stdin=f, stdout=self.log.file, log=self.log.file)
        if not self.compare_counts("n8n", self.mf("n8n", "row_counts"), self.stack.counts(new_db), EXACT):
            self.fail("the restored n8n database differs from the manifest; the live one is untouched")
        self.laps.lap(f"pg_restore into {new_db}, verify counts")
        if volumes:
            self.step = "restore n8n files"
            self.unpack_files(volumes)

        common.ignore_interrupts()
        self.step = "swap databases"
        self.pg(f'drop database if exists "{old_db}" with (force)')
        try:
            self.services("stop", check=True)
        except CommandFailed:
            self.services("up")  # never left stopped
            raise
        swapped = self.swap_files(volumes)
        if swapped is not None:
            self.services("up")
            self.fail(f"could not swap in the restored files of {swapped}: n8n is started again on its own "
                      f"database and files (details in {b.log})")
        if not self.swap(old_db, new_db):
            self.swap_files_back(volumes)
            self.services("up")
            self.fail(f"could not swap in the restored database: n8n is started again on its own database"
                      f"{' and files' if volumes else ''} (details in {b.log})")
        self.step = "start n8n"
        self.services("up")
        if not self.stack.wait_ready():
            # undo: the previous database (and files) back in service, the restored ones kept for a
            # look; n8n is started again whatever happens
            undone = False
            try:
                stopped = self.services("stop").ok
                self.pg(f'drop database if exists "{failed_db}" with (force)', check=False)
                undone = self.swap(failed_db, old_db)
                if undone and stopped:  # a running container keeps the directory it has: never under it
                    self.swap_files_back(volumes)
            finally:
                self.services("up")
            if not undone:
                self.rollback_incomplete(failed_db, old_db)
            kept = f" (its files as <volume>{files.FAILED})" if volumes else ""
            self.fail(f"n8n was not ready after {s.ready_timeout}s on the restored database, so its previous "
                      f"database is back in service; the restored one is kept as {failed_db}{kept} and "
                      f"`{' '.join(s.compose)} logs n8n` says why")
        self.laps.lap("swap databases, start n8n, wait for readiness")
        self.finished.append("n8n restored and running")
        self.say(f"previous database kept as {old_db} until the next restore (undo: docs/runbooks/restore.md)")
        for volume, path in volumes.items():
            n = self.mf("n8n", "files", volume, "files", default=0)
            self.say(f"n8n files: {volume} restored ({n} files); the previous ones kept as {path}{files.BEFORE} "
                     "until the next restore")
        kept = os.path.join(b.dir, "restored-config", self.short)
        os.makedirs(os.path.dirname(kept), exist_ok=True)
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(os.path.join(self.src, "config"), kept, symlinks=True)
        if not _same_file(os.path.join(self.src, "config", "docker-compose.yml"),
                          os.path.join(s.stack_dir, "docker-compose.yml")):
            self.say(f"note: the snapshot's compose file differs from the deployed one (kept in {kept})")

    # --- one table or one schema of a database source, beside the live one or over it ------------------
    def chosen_tables(self, name: str) -> list[tuple[str, str]]:
        """(schema, table) of each --table and of every table of each --schema, as the snapshot has them."""
        counts = self.mf(name, "row_counts", default={})
        have = [_table_name(k) for k in counts]  # keys: `table` (schema public alone) or `schema.table`
        out = []
        for schema, table in self.tables:
            hits = [x for x in have if x[0] == schema and (table is None or x[1] == table)]
            if not hits:
                shown = ", ".join(f"{a}.{b}" for a, b in have[:12]) or "none"
                what = f"table {schema}.{table}" if table else f"table in schema {schema}"
                self.fail(f"snapshot {self.short} has no {what} in {name} (it has: {shown})", 2)
            out += [x for x in hits if x not in out]
        return out

    def manifest_count(self, name: str, schema: str, table: str) -> int:
        counts = self.mf(name, "row_counts", default={})
        return counts.get(f"{schema}.{table}", counts.get(table) if schema == "public" else None)

    def tables_restore(self) -> None:
        """The chosen tables from a scratch copy of the dump into the source's own database: beside the
        live ones (new tables), or with --over in place of their rows (one transaction each)."""
        ns, s = self.ns, self.s
        (name,) = self.targets
        src = next((x for x in self.b.sources if x.kind == "postgres" and x.name == name and x.url), None)
        if src is None:
            self.fail(f"--table: {name} has no database on this server (its URL in .env, then deploy.py)", 2)
        tables = self.chosen_tables(name)
        if ns.over:
            if ns.safety:
                self.safety_snapshot()
            self.take_lock()
        self.step = f"{name} tables"
        box = self.scratch(name)
        image = self.image_for("postgres_images", name)
        try:
            access = Access(src.url, s.run_dir, name)
        except ValueError as e:
            self.fail(str(e))
        with access as db:
            live = [*db.docker_run(stdin=True), image, "psql", "-v", "ON_ERROR_STOP=1", "-qAtX"]
            for schema, table in tables:
                self.step = f"{name} table {schema}.{table}"
                self.table(box, live, db.env, name, schema, table)
        self.run_(["docker", "rm", "-f", "-v", box])
        how = "over the live ones" if ns.over else "beside the live ones"
        self.say(f"restore ok: snapshot {self.short}; {len(tables)} table(s) of {name} restored {how}")

    def table(self, box: str, live: list[str], env: dict, name: str, schema: str, table: str) -> None:
        over = self.ns.over
        q = _quoted(schema, table)
        copy_name, kept_name = f"{table}_restored_{self.short}", f"{table}_before_restore_{self.short}"
        if len(kept_name) > 63:
            self.fail(f"{schema}.{table}: its name is too long for the restored copy's ({kept_name}: PostgreSQL takes 63 "
                      "characters)", 2)
        copy, kept = _quoted(schema, copy_name), _quoted(schema, kept_name)

        def on_live(sql: str, **kw) -> str:
            return self.r.run([*live, "-c", sql], env=env, log=self.log.file, **kw).stdout.strip()

        res = self.r.run([*live, "-c", f"select count(*) from {q}"], env=env, log=self.log.file, check=False)
        if not res.ok:
            self.fail(f"{name} has no table {schema}.{table} now: restore the source whole into a scratch or named "
                      "database (--target) to get it back; nothing was changed", 2)
        before = int(res.stdout.strip() or 0)
        want = self.manifest_count(name, schema, table)
        # the columns, as the snapshot has them (generated ones are computed again)
        cols = self.r.run(["docker", "exec", box, "psql", "-U", "postgres", "-qAtX", "-c",
                           "select string_agg(quote_ident(attname), ',' order by attnum) from pg_attribute where "
                           f"attrelid = '{q}'::regclass and attnum > 0 and not attisdropped and attgenerated = ''"],
                          log=self.log.file).stdout.strip()
        rows = os.path.join(self.work, f"{name}.{schema}.{table}.copy")
        with open(rows, "w") as f:
            self.run_(["docker", "exec", box, "psql", "-U", "postgres", "-qAtX", "-c",
                       f"copy (select {cols} from {q}) to stdout"], stdout=f)
        on_live(f"drop table if exists {copy}; create table {copy} (like {q} including defaults including constraints)")
        with open(rows) as f:
            self.run_([*live, "-c", f"copy {copy} ({cols}) from stdin"], env=env, stdin=f)
        os.unlink(rows)
        got = int(on_live(f"select count(*) from {copy}") or 0)
        if want is not None and got != want:
            self.fail(f"{schema}.{table}: {got} rows restored, the manifest says {want}; the live table is untouched "
                      f"(the restored rows are in {schema}.{copy_name})")
        if not over:
            self.say(f"{name} {schema}.{table}: {before} rows live; snapshot {self.short}'s {got} rows restored beside "
                     f"it as {schema}.{copy_name}; the live table untouched")
            self.laps.lap(f"{schema}.{table} restored beside")
            return
        res = self.r.run([*live, "-1", "-c",
                          f"drop table if exists {kept}; create table {kept} as table {q}; delete from {q}; "
                          f"insert into {q} ({cols}) overriding system value select {cols} from {copy}; drop table {copy}"],
                         env=env, log=self.log.file, check=False)
        if not res.ok:
            self.fail(f"{schema}.{table}: its rows could not be replaced (details in {self.b.log}: a foreign key "
                      f"or a trigger?); the live table is untouched, the restored rows are in {schema}.{copy_name}")
        after = int(on_live(f"select count(*) from {q}") or 0)
        self.say(f"{name} {schema}.{table}: {before} rows before, {after} after (snapshot {self.short}'s {got}); the rows "
                 f"it had are kept as {schema}.{kept_name}")
        self.laps.lap(f"{schema}.{table} restored over the live one")

    # --- n8n's files (files.py): unpacked beside each volume while n8n runs, swapped in with the database
    def volume_dirs(self) -> dict[str, str]:
        """volume -> its directory on this host, for each volume of the snapshot's n8n files. A
        snapshot made before files were backed up has none: the volumes are left as they are."""
        self.step = "n8n files"
        held = self.mf("n8n", "files", default={})
        if not held:
            self.say(f"n8n files: none in snapshot {self.short} (made before n8n's files were backed up); "
                     "the volumes are left as they are")
            return {}
        ours = self.our_volumes()
        out = {}
        for volume in held:
            if volume not in ours:  # never another volume of the stack (PostgreSQL's, Caddy's) by a manifest's say
                self.fail(f"snapshot {self.short} holds files of the volume {volume}, which is not one of this server's "
                          f"volumes of n8n's files ({', '.join(ours) or 'none'}: group_data n8n_volumes); nothing was "
                          "changed", 4)
            path = files.mountpoint(self.s, self.r, volume)
            if not path:
                self.fail(f"this stack has no volume {volume} ({self.s.compose_project}_{volume}), which snapshot "
                          f"{self.short} holds files of: run `pyinfra inventory.py deploy.py` first; nothing was "
                          "changed", 4)
            if os.path.ismount(path):  # a volume on a device of its own: its directory cannot be swapped
                self.fail(f"the volume {volume}'s directory {path} is a mount point: its files cannot be swapped in; "
                          "nothing was changed", 4)
            out[volume] = path
        return out

    def our_volumes(self) -> dict[str, str]:
        """This server's volumes of n8n's files (settings: the n8n source's) -> where n8n mounts them."""
        return dict(self.b.n8n.volumes) if self.b.n8n else {}

    def unpack_files(self, volumes: dict[str, str]) -> None:
        """Each volume's archive into a directory beside it (n8n keeps running), checked against the manifest."""
        for volume, path in volumes.items():
            self.cleanups.append(lambda p=path: shutil.rmtree(p + files.RESTORING, ignore_errors=True))
            self.unpack_volume(volume, path + files.RESTORING, "nothing was changed")
        self.laps.lap(f"unpack n8n files ({', '.join(volumes)})")

    def unpack_volume(self, volume: str, into: str, unchanged: str) -> None:
        """The snapshot's archive of `volume` into the new directory `into`, checked against the manifest."""
        try:
            files.unpack(self.r, os.path.join(self.src, self.mf("n8n", "files", volume, "archive")), into,
                         log=self.log.file)
        except ValueError as e:
            self.fail(f"snapshot {self.short}: {e}; {unchanged}")
        got = sum(len(d) + len(n) for _, d, n in os.walk(into))
        want = self.mf("n8n", "files", volume, "entries")
        if got != want:
            self.fail(f"the restored files of {volume} are {got} entries, the manifest says {want}; {unchanged}")

    def swap_files(self, volumes: dict[str, str]) -> str | None:
        """The unpacked files become the volumes' (n8n is stopped). None when done; else the volume
        that failed, every volume swapped before it being back as it was."""
        done = []
        for volume, path in volumes.items():
            try:
                files.swap_in(path)
            except OSError as e:
                self.log.log(f"swap in {path}: {e}")
                self.swap_files_back({v: volumes[v] for v in done})
                return volume
            done.append(volume)
        return None

    def swap_files_back(self, volumes: dict[str, str]) -> None:
        for path in volumes.values():
            try:
                files.swap_back(path)
            except OSError as e:  # logged; the message names where the previous files are
                self.log.log(f"swap back {path}: {e}")

    def rollback_incomplete(self, failed_db: str, old_db: str) -> None:
        """The swap back failed (it is one transaction: nothing of it happened): n8n runs on the
        restored database, the previous data waits in `old_db`. Exit 6, with the manual undo."""
        s = self.s
        db, compose = s.postgres_db, " ".join(s.compose)
        sql = f'alter database "{db}" rename to "{failed_db}"; alter database "{old_db}" rename to "{db}"'
        self.step = "ROLLBACK INCOMPLETE"
        self.fail(f"n8n was not ready after {s.ready_timeout}s on the restored database and the previous one "
                  f"could not be swapped back: n8n is started on the restored database ({db}), which it was not "
                  f"ready on; the previous data is in {old_db}. To put it back: cd {s.stack_dir} && {compose} stop {' '.join(s.services)} && "
                  f"{compose} exec -T postgres psql -U {s.postgres_user} -d postgres -c '{sql}' && "
                  f"{compose} up -d (details in {self.b.log}); n8n's files stay the restored ones, the previous "
                  f"beside each volume's directory as {files.BEFORE.lstrip('.')}", 6)

    # --- postgres sources: each in a scratch database (checked), or over a named and confirmed target
    def databases(self) -> None:
        """Every chosen postgres source, in the snapshot's order; then those asked for but absent."""
        for name, target in self.targets.items():
            self.current = name
            self.database(name, target)
        self.current = ""
        for name in self.missing:
            self.say(f"{name}: not in this snapshot")

    def done(self) -> str:
        """`supabase restored; analytics checked`: what a restore of database sources alone did."""
        restored = [x for x, t in self.targets.items() if t != "scratch"]
        checked = [x for x, t in self.targets.items() if t == "scratch"]
        return "; ".join(f"{', '.join(names)} {what}" for names, what in ((restored, "restored"), (checked, "checked"))
                         if names) or "nothing restored"

    def counts_sql(self, name: str) -> str:
        """The row counts of database source `name`'s schemas (as its backup counted them)."""
        return counts_sql(self.mf(name, "schemas", default=["public"]), self.mf(name, "exclude_tables", default=[]))

    def counts_match(self, name: str, psql_out: str, where: str) -> str:
        """The counts a restored copy of `name` gave (counts_sql's output) against the manifest's;
        fails naming `where` when they differ, else "N tables, M rows"."""
        expected = self.mf(name, "row_counts", default={})
        managed = set(self.mf(name, "managed_schemas", default=[]))
        # a managed schema's tables the snapshot does not hold (a platform newer there) are the target's
        actual = {k: v for k, v in parse_counts(psql_out).items() if k in expected or k.split(".")[0] not in managed}
        if not self.compare_counts(name, expected, actual, ALL):
            self.fail(f"the {name} dump restored into {where} but its row counts differ from the manifest")
        rows = sum(v for v in expected.values() if isinstance(v, int))
        return f"{len(expected)} tables, {rows} rows"

    def image_for(self, kind: str, name: str) -> str:
        """The image (settings' postgres_images or scratch_images) for the major version of the
        server database source `name` was dumped from."""
        major = int(self.mf(name, "server_version_num", default=0)) // 10000
        try:
            return self.b.image(kind, major)
        except ValueError as e:
            self.fail(f"{name}: {e}")

    def listing(self, name: str, box: str | None = None) -> list[str]:
        """The lines of the dump's list (`pg_restore -l`, its table of contents alone), read once per
        source: in `box` (a scratch PostgreSQL that has the dump) or a container of its own."""
        if name not in self.lists:
            where = ["docker", "exec", box, "pg_restore", "-l", self.box_path(self.box_dump(name))] if box else [
                "docker", "run", "--rm", "--network", "none", "-v", f"{self.dump_path(name)}:/tmp/restore.dump:ro",
                self.s.postgres_image, "pg_restore", "-l", "/tmp/restore.dump"]
            res = self.r.run(where, log=self.log.file)
            self.lists[name] = res.stdout.splitlines()
        return self.lists[name]

    def prepare(self, name: str, psql: list[str], env: dict | None = None) -> tuple[set[str], list[str], set[str]]:
        """The target (psql: a command reaching it, reading SQL on stdin) gets the roles and the
        extensions source `name`'s dump needs (pglist.prepare_sql); returns the target's schemas
        then, the roles made and its publications. A snapshot whose manifest names no extensions (its
        dump holds the public schema alone) gets pgvector, as its tables need."""
        roles, ext = self.mf(name, "roles", default=[]), self.mf(name, "extensions", default=None)
        sql = pglist.prepare_sql(roles, {"vector": "public"} if ext is None else ext)
        sql += "select 'schema ' || nspname from pg_namespace union all select 'publication ' || pubname from pg_publication;\n"
        self.log.file.flush()
        res = self.r.run([*psql, "-qAtX", "-v", "ON_ERROR_STOP=1"], input=sql, env=env, check=False)
        self.log.log(f"{name}: prepare the target: {res.stderr.strip()}")
        if not res.ok:
            error = next((x for x in res.stderr.splitlines() if "ERROR" in x), res.stderr.strip()[:200])
            self.fail(f"the target lacks roles {name}'s dump names and could not be given them: {error}; nothing of "
                      f"{name} was restored")
        made = [m.group(1) for m in re.finditer(r"NOTICE:\s+role (\S+) created", res.stderr)]
        have = {x.split(" ", 1)[1] for x in res.stdout.splitlines() if x.startswith("schema ")}
        publications = {x.split(" ", 1)[1] for x in res.stdout.splitlines() if x.startswith("publication ")}
        return have, made, publications

    def restore_list(self, name: str, have: set[str], user: str | None, where: str,
                     publications: set[str] = frozenset(), box: str | None = None) -> tuple[str, list, list]:
        """The dump's list as the target takes it (pglist.restore_list), written to a file; the
        managed tables whose rows are restored; what the project had added to them, left out."""
        kept, rows, left = pglist.restore_list(self.listing(name, box), have,
                                               set(self.mf(name, "managed_schemas", default=[])), user, publications)
        path = os.path.join(self.box_dir, f"{name}.{where}.list")
        with open(path, "w") as f:
            f.writelines(line + "\n" for line in kept)
        return path, rows, left

    def box_path(self, path: str) -> str:
        """A file of the box directory as a scratch box sees it (mounted read-only on SCRATCH_DIR)."""
        return f"{SCRATCH_DIR}/{os.path.relpath(path, self.box_dir)}"

    def box_dump(self, name: str) -> str:
        """Source `name`'s verified dump in the box directory, its path there: a hard link (the box
        directory and the run's are siblings, on one file system), no copy."""
        path = os.path.join(self.box_dir, f"{name}.dump")
        if not os.path.exists(path):
            os.link(self.dump_path(name), path)
        return path

    def run_scratch(self, name: str, image: str, check: bool = True) -> str:
        """`docker run -d` of source `name`'s scratch box: PostgreSQL initialises itself in the
        background; the box directory read-only inside. "" when it did not start (`check` False)."""
        box = f"n8n-restore-scratch-{self.pid}-{name}"
        self.cleanups.append(lambda: self.r.run(["docker", "rm", "-f", "-v", box], check=False))
        res = self.run_(["docker", "run", "-d", "--name", box, "--network", "none", "-e", "POSTGRES_PASSWORD=scratch",
                         "-v", f"{self.box_dir}:{SCRATCH_DIR}:ro", image], check=check)
        return box if res.ok else ""

    def name_snapshot(self, repo: Repo, snap: dict) -> None:
        self.short = backup_id(snap)[:8]  # one name for the snapshot in every repository
        stored = f" (stored as {snap['id'][:8]} in {repo.url})" if backup_id(snap) != snap["id"] else f" from {repo.url}"
        self.say(f"snapshot {self.short}{stored}")

    def fetch_early(self, parent: str, leave: list[str]) -> _EarlyFetch | None:
        """A restore of database sources alone into scratch, of the latest snapshot: `restic restore`
        of this server's last backup (its id in the backup directory's last-snapshot, written by
        n8n-backup) starts now, beside the snapshot list, so that restic's key derivation and
        index reading (about half a second each time restic opens a repository) are not waited
        for twice. When that backup is the newest snapshot in the local repository (`newest`),
        restic's list is not read at all; otherwise the list decides: the fetch is used only when
        the list chooses that very snapshot in the local repository, else it is thrown away and
        the chosen one fetched. Nothing when the server has no last-snapshot (a rebuilt server, a
        backup before it existed)."""
        ns, b = self.ns, self.b
        me = b.host or common.hostname()
        # into scratch only: a restore over a named database (--supabase-target) has restic's list choose
        if (not self.files_left or ns.target != "scratch" or ns.supabase_target != "scratch" or ns.over
                or ns.snapshot != "latest" or ns.origin == "offsite" or (ns.from_host or me) != me):
            return None
        try:
            with open(os.path.join(b.dir, LAST_SNAPSHOT)) as f:
                snapshot, _, made_as = f.read().strip().partition(" ")
        except OSError:
            return None
        if not re.fullmatch(r"[0-9a-f]{64}", snapshot):
            return None
        target = tempfile.mkdtemp(prefix=f"{snapshot[:8]}-", dir=parent)
        self.cleanups.append(lambda: shutil.rmtree(target, ignore_errors=True))
        early = _EarlyFetch(Repo(b.local_repository, b, self.r), snapshot, target, leave, self.log.file, self.r)
        self.cleanups.append(early.drop)
        early.newest = made_as == me and newest_snapshot(b.local_repository) == snapshot
        early.start()
        return early

    def start_scratch_early(self) -> None:
        """A restore of database sources alone into scratch: the first one's box is started before
        the snapshot is looked for, for the major version this server's last backup dumped
        (last-manifest.json), so that PostgreSQL initialises while the dump comes. `scratch()`
        checks it against the snapshot's own and starts another when they differ. Best effort:
        nothing when there is no last backup here (a rebuilt server), when its image is not on the
        server or does not start (the scratch's own turn says why), or when a safety snapshot and
        the lock come first (--over)."""
        ns = self.ns
        if not ns.sources or "n8n" in ns.sources or ns.target != "scratch" or ns.over:
            return
        wanted = {x for x in ns.sources if x != "supabase" or ns.supabase_target == "scratch"}
        try:
            with open(os.path.join(self.b.dir, "last-manifest.json")) as f:
                last = manifest_v2(json.load(f))["sources"]
            # the first the restore comes to: databases() goes in the snapshot's order
            name = next(x for x, v in last.items() if x in wanted and v.get("kind") == "postgres")
            image = self.b.image("scratch_images", int(last[name]["server_version_num"]) // 10000)
        except (OSError, ValueError, KeyError, TypeError, StopIteration, ManifestError):
            return
        if not self.r.run(["docker", "image", "inspect", image], check=False).ok:
            return
        box = self.run_scratch(name, image, check=False)
        if box:
            self.early[name] = (box, image)

    def scratch(self, name: str) -> str:
        """A throwaway PostgreSQL of the source's major (pgvector, no network) holding its whole dump,
        with the roles and extensions the dump names, its grants and policies."""
        image = self.image_for("scratch_images", name)
        box, early = self.early.pop(name, ("", ""))
        if box and early != image:  # the snapshot's major is not the last backup's
            self.log.log(f"{name}: the scratch box started early ({early}) is not the snapshot's ({image})")
            self.r.run(["docker", "rm", "-f", "-v", box], check=False, log=self.log.file)
            box = ""
        box = box or self.run_scratch(name, image)
        dump = self.box_path(self.box_dump(name))
        self.postgres_ready(box, "postgres", f"{name}: the scratch PostgreSQL ({image})",
                            f"nothing of {name} was restored")
        self.laps.lap(f"{name}: start a scratch PostgreSQL")
        have, _, _ = self.prepare(name, ["docker", "exec", "-i", box, "psql", "-U", "postgres"])
        listing, _, _ = self.restore_list(name, have, None, "scratch", box=box)
        self.laps.lap(f"{name}: roles, extensions, the dump's list")
        self.run_(["docker", "exec", box, "pg_restore", "-U", "postgres", "-d", "postgres", "--no-owner",
                   "--exit-on-error", "-j", JOBS, "-L", self.box_path(listing), dump])
        self.laps.lap(f"{name}: pg_restore -j {JOBS}")
        return box

    def emptied(self, name: str, rows: list, psql: list[str], env: dict) -> list:
        """The tables emptied before the managed tables' rows come back: those and every table that
        refers to them by foreign key, each of which must be one the dump restores (else it would be
        left empty: the restore stops here, before anything is changed)."""
        if not rows:
            return []
        res = self.r.run([*psql, "-v", "ON_ERROR_STOP=1", "-qAtX", "-F", " "], input=pglist.referrers_sql(rows) + ";\n",
                         env=env, log=self.log.file)
        tables = [tuple(x.split(" ", 1)) for x in res.stdout.splitlines() if " " in x]
        restored = {(e[1], e[2]) for e in map(pglist.entry, self.listing(name)) if e and e[0] == "TABLE DATA"}
        outside = [f"{a}.{b}" for a, b in tables if (a, b) not in restored]
        if outside:
            self.fail(f"{', '.join(outside)} refer(s) to {name}'s tables whose rows are restored ("
                      f"{', '.join(f'{a}.{b}' for a, b in rows)}) but are not in snapshot {self.short}: they would be "
                      f"emptied; nothing of {name} was restored")
        return tables

    def target_restore(self, name: str, image: str, docker_run: list[str], env: dict, pre: str, listing: str) -> None:
        """The dump (its list) over a target in ONE transaction, `pre` first: the whole script is
        written out, then run by psql -1; any error rolls all of it back, the target as it was."""
        script, first = os.path.join(self.work, f"{name}.restore.sql"), os.path.join(self.work, f"{name}.pre.sql")
        with open(first, "w") as f:
            f.write(pre)
        with open(script, "w") as f:
            self.run_(["docker", "run", "--rm", "--network", "none", "-v", f"{listing}:/tmp/restore.list:ro",
                       "-v", f"{self.dump_path(name)}:/tmp/restore.dump:ro", image, *TARGET_SCRIPT], stdout=f)
        self.log.file.flush()
        res = self.r.run([*docker_run, "-v", f"{first}:/tmp/pre.sql:ro", "-v", f"{script}:/tmp/restore.sql:ro", image,
                          *TARGET_RUN], env=env, stdout=self.log.file, check=False)
        self.log.log(f"{name}: psql: {res.stderr.strip()[-4000:]}")
        if not res.ok:
            error = next((x for x in res.stderr.splitlines() if "ERROR" in x), f"psql exited {res.returncode}")
            self.fail(f"{error.strip()[:300]} (details in {self.b.log}); the restore ran in one transaction: the "
                      "target is as it was")

    def database(self, name: str, target: str) -> None:
        s = self.s
        scratch = target == "scratch"
        self.step = f"{name} scratch restore" if scratch else f"{name} restore into the named target"
        if scratch:
            box = self.scratch(name)
            res = self.r.run(["docker", "exec", box, "psql", "-U", "postgres", "-AtF", " ", "-c", self.counts_sql(name)],
                             log=self.log.file)
            tally = self.counts_match(name, res.stdout, "a scratch database")
            self.laps.lap(f"{name}: row counts")
            self.run_(["docker", "rm", "-f", "-v", box])
            self.say(f"{name}: dump restored into a scratch database, row counts match the manifest ({tally}); "
                     "production untouched")
        else:
            image = self.image_for("postgres_images", name)
            # the URL holds a password: in no command line and no container's environment
            try:
                access = Access(target, s.run_dir, f"{name}'s target")
            except ValueError as e:
                self.fail(str(e))
            drill = target in self.drill_urls
            with access as db:
                docker_run, psql = db.docker_run(), [*db.docker_run(stdin=True), image, "psql"]
                have, made, publications = self.prepare(name, psql, db.env)
                if made:
                    self.say(f"{name}: the target lacked the roles {', '.join(made)}: made NOLOGIN, without password "
                             "(log-in roles get theirs from whoever runs the database)")
                listing, rows, left = self.restore_list(name, have, db.env.get("PGUSER", ""), "target", publications)
                tables = self.emptied(name, rows, psql, db.env)
                self.target_restore(name, image, docker_run, db.env, pglist.pre_sql(tables), listing)
                if drill:
                    res = self.r.run([*docker_run, image, "psql", "-AtF", " ", "-c", self.counts_sql(name)],
                                     env=db.env, log=self.log.file)
            if rows:
                self.say(f"{name}: rows of {', '.join(f'{a}.{b}' for a, b in rows)} replaced; those tables kept as "
                         "the target has them")
            if left:
                self.say(f"{name}: the target's own definitions kept, the snapshot's left out: {', '.join(left)}")
            if drill:
                tally = self.counts_match(name, res.stdout, "the drill database")
                self.say(f"{name}: restored into the drill database in one transaction, row counts match the "
                         f"manifest ({tally}); production untouched")
            else:
                self.say(f"{name}: restored over the named target database in one transaction")
        self.finished.append(f"{name} {'checked' if scratch else 'restored'}")
        self.current = ""
        self.laps.lap(f"{name} restored" if not scratch else f"{name}: scratch removed")


def _table_name(text: str) -> tuple[str | None, str | None]:
    """"schema.name" -> (schema, name); "name" -> ("public", name); anything else -> (None, None)."""
    parts = text.split(".")
    if len(parts) == 1:
        parts = ["public", *parts]
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else (None, None)


def _quoted(schema: str, table: str) -> str:
    return f'"{schema}"."{table}"'


def _same_file(a: str, b: str) -> bool:
    try:
        return filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False
