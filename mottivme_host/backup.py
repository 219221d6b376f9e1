"""Back up this n8n host into restic.

n8n-backup [--tag TAG] [--no-offsite] [--check]

One run, of the backup sources of the settings: the source n8n is a pg_dump -Fc of n8n's
PostgreSQL, its workflows and credentials (encrypted form) exported with its CLI, the stack's
configuration and n8n's files (a tar archive of each of the stack's volumes that hold them);
each postgres source (Supabase, ...) is a pg_dump -Fc of its schemas, with the pg_dump of that
server's major version, made while the n8n part runs. manifest.json holds sizes,
sha256, row counts, versions and times. All of it becomes ONE restic snapshot in the local
repository (a snapshot exists only once complete), which is then copied to the off-host
repositories. Retention and (weekly, or with --check) `restic check` follow.
Never runs twice at once (exit 75). Exit 0 = good; otherwise one line on stderr says why, and
the failure hook (if set) gets it. A good run calls the success hook (heartbeat).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import subprocess
import threading
import traceback

from . import common, files, pglist
from .common import Fail, Lock, Log
from .pgaccess import Access
from .restic import LAST_SNAPSHOT, Repo, first_error, no_repository
from .run import CommandFailed, Runner
from .settings import Settings, Source
from .stack import (
    COUNTS_SQL,
    RESERVED_SOURCE_NAMES,
    SCHEMA_NAME,
    SOURCE_NAME,
    TABLE_NAME,
    Stack,
    counts_sql,
    parse_counts,
)
from .status import hours_since

PROG = "n8n-backup"
CHECK_MAX_AGE_D = 8  # the repository check runs weekly: older than this, the next backup checks
# n8n's CLI runs beside the live n8n: it gets its own task-broker port. The counts come as $1 and
# $2 (values are never part of the script): no export call for an empty table.
EXPORT_SH = ("set -e; rm -rf /tmp/n8n-backup; mkdir -p /tmp/n8n-backup/workflows /tmp/n8n-backup/credentials\n"
             'if [ "$1" != 0 ]; then n8n export:workflow --backup --output=/tmp/n8n-backup/workflows/; fi\n'
             'if [ "$2" != 0 ]; then n8n export:credentials --backup --output=/tmp/n8n-backup/credentials/; fi\n'
             "n8n --version > /tmp/n8n-backup/n8n-version.txt")
BROKER_PORT = 5691
# a postgres source's URL holds its password: its containers get libpq's variables and a pgpass
# file (pgaccess.Access), never the URL or the password in an argv or an environment
DB_VERSION = ["psql", "-Atc", "show server_version_num"]
DB_DUMP = ["pg_dump", "-Fc"]  # + -Z<n> (dump_compression), --schema=<s> each, or --exclude-schema=<s> each
# One session (session_sql) exports its snapshot, reads the database's shape, runs pg_dump on that
# snapshot into DB_OUT (a bind mount of the source's staging directory) and counts the rows: the
# manifest's counts are the dump's, however busy the database (Supabase's auth sessions).
DB_OUT = "/out"
DB_SESSION = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-AtF", " "]
# schemas "all": what the database holds besides tables (pglist.py): its schemas (less PostgreSQL's
# own), roles (less PostgreSQL's own) and extensions with their schemas, a line each
DB_SHAPE = ("select 'schema ' || nspname from pg_namespace where nspname !~ '^pg_' and nspname <> 'information_schema' "
            "union all select 'role ' || rolname from pg_roles where rolname !~ '^pg_' "
            "union all select 'extension ' || e.extname || ' ' || n.nspname from pg_extension e "
            "join pg_namespace n on n.oid = e.extnamespace where e.extname <> 'plpgsql' order by 1")
KINDS = ("n8n", "postgres")
# the -Z level the last backup's dumps were made with (none written: pg_dump's own default, 6);
# a plain dump after compressed ones needs about PLAIN_DUMP_ROOM times their size
LAST_LEVEL = "last-dump-compression"
# the longest the pull of the restore's image (beside a dump) may take; the dump's part waits for it
PULL_TIMEOUT = 300
PLAIN_DUMP_ROOM = 5
CONFIG_FILES = ("docker-compose.yml", ".env", "caddy")
DISK_FULL = ("the disk is full (see df -h {dir} {repo}): free space, or lower the retention (group_data "
             "backup_keep_*) and run restic forget --prune; earlier snapshots are untouched")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tag", action="append", default=[], metavar="TAG",
                   help="a tag of the snapshot (repeatable; n8n is always one; none given: scheduled)")
    p.add_argument("--no-offsite", dest="offsite", action="store_false", help="no off-host copy this time")
    p.add_argument("--check", action="store_true", help="`restic check` this time, whatever the weekday")


def main(ns, s: Settings, runner: Runner) -> int:
    if s.backup is None:
        raise Fail("start: this host keeps no backups (no backup settings): it is not an n8n server")
    old_umask = os.umask(0o077)  # the staging copy holds the stack's secrets (.env, dumps)
    try:
        return _Backup(ns, s, runner).main()
    finally:
        os.umask(old_umask)


class _Cancelled(Exception):
    """A part of the backup stops before its next command: another part failed, or Ctrl-C."""


class _Cancellable:
    """The runner as the concurrent parts use it: once `cancel` is set, no further command starts
    (the one running ends on its own; the program waits for it)."""

    def __init__(self, runner: Runner, cancel: threading.Event):
        self.r, self.cancel = runner, cancel

    def run(self, argv, **kw):
        if self.cancel.is_set():
            raise _Cancelled
        return self.r.run(argv, **kw)

    def __getattr__(self, name):
        return getattr(self.r, name)


class _Part:
    """A postgres source's dump, in a thread of its own beside the n8n part."""

    def __init__(self, source: Source):
        self.source, self.step = source, f"{source.name} dump"
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None


class _Step(threading.local):
    name = "start"  # each thread (the n8n part, each postgres source's part) has its own step


def _size(path: str) -> int:
    """Bytes of a file, or of every file under a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


class _Backup:
    def __init__(self, ns, s: Settings, runner: Runner):
        self.s, self.b, self.r = s, s.backup, runner
        self._step = _Step()
        self.cancel = threading.Event()
        self.tags = ["n8n", *ns.tag]
        if len(self.tags) == 1:
            self.tags.append("scheduled")
        self.offsite = ns.offsite
        # the weekly check; again on the next day when the last one is overdue (a failed check day)
        self.check = ns.check or common.weekday() == self.b.check_weekday or self.check_overdue()
        self.check_reported = False
        self.check_failures: list[str] = []  # off-host repositories whose check failed
        self.host = self.b.host or common.hostname()
        self.stage = os.path.join(self.b.dir, "staging")
        self.log: Log | None = None

    @property
    def step(self) -> str:
        return self._step.name

    @step.setter
    def step(self, name: str) -> None:
        self._step.name = name

    # --- the run, its one failure line and its clean-up ------------------------------------------
    def main(self) -> int:
        os.makedirs(self.b.dir, exist_ok=True)
        self.log = Log(self.b.log)
        lock, locked = None, False
        try:
            try:
                lock = Lock(self.b.lock)
                if not lock.try_acquire():
                    self.step = "lock"
                    self.fail(f"another n8n-backup is running (lock {self.b.lock})", 75)
                locked = True
                return self.backup()
            except Fail:
                raise
            except KeyboardInterrupt:
                raise Fail(f"{self.step}: interrupted", 130) from None
            except CommandFailed as e:
                self.log_text(e.result.stderr)
                raise Fail(f"{self.step}: {e} (details in {self.b.log})") from None
            except Exception as e:  # a bug or an OSError of our own: still one line, and the hook
                self.log_text(traceback.format_exc())
                what = str(e) if isinstance(e, OSError) else f"{type(e).__name__}: {e}"
                raise Fail(f"{self.step}: {what} (details in {self.b.log})") from None
        except Fail as e:
            raise self.failed(e) from None
        finally:
            if locked:  # never another run's staging
                shutil.rmtree(self.stage, ignore_errors=True)
            if lock is not None:
                os.close(lock.fd)
            self.log.file.close()

    def fail(self, message: str, code: int = 1):
        raise Fail(f"{self.step}: {message}", code)

    def failed(self, e: Fail) -> Fail:
        """Log the failure, name a full disk, tell the failure hook; the CLI prints the one line."""
        msg = e.message
        if "no space left on device" in (self.log.this_run() + msg).lower():
            msg += "; " + DISK_FULL.format(dir=self.b.dir, repo=self.b.local_repository)
        self.log.log(f"FAILED {msg}")
        try:
            self.hook(self.b.failure_hook, f"{PROG} on {self.host} failed: {msg}")
            if self.check and not self.check_reported:  # the repository check did not complete either
                common.report_job(self.s, self.r, "check", f"{PROG} --check failed: {msg}")
        except KeyboardInterrupt:
            pass
        return Fail(msg, e.code)

    def hook(self, url: str, body: str | None = None) -> None:
        """GET (heartbeat) or POST `body`. The URL may hold a token: it is never logged or printed."""
        if not url:
            return
        try:
            ok = common.send(self.r, url, self.b.hook_curl_args, body).ok
        except OSError:
            ok = False
        if not ok:
            self.log.log("failure hook did not answer" if body is not None
                         else "success hook (heartbeat) did not answer")

    def progress(self, what: str, t0: float, path: str | None = None) -> None:
        """One line as a phase ends: what, its size, how long it took - to the log, and to stderr
        when that is a terminal (a runbook, by hand; cron and the programs that call this one read
        only the result line on stdout)."""
        size = f"{_size(path) / 1e6:.1f} MB, " if path else ""
        msg = f"{what} ({size}{self.r.now() - t0:.1f} s)"
        self.log.log(msg)
        if common.on_terminal():
            common.stderr_line(f"{PROG}: {msg}")

    def log_text(self, text: str) -> None:
        """A command's own words (stderr), as they are, into the log."""
        if text:
            self.log.file.write(text if text.endswith("\n") else text + "\n")
            self.log.file.flush()

    # --- the backup ----------------------------------------------------------------------------
    def backup(self) -> int:
        b, r, lf = self.b, self.r, self.log.file
        t0 = r.now()
        started = common.now_iso()
        self.log.log(f"start tags={' '.join(self.tags)}")
        self.step = "settings"
        databases = self.databases()
        self.step = "start"
        self.check_room()
        if os.path.lexists(self.stage):
            shutil.rmtree(self.stage)
        for d in ("n8n", *(x.name for x in databases), "config"):
            os.makedirs(os.path.join(self.stage, d))

        self.dumps(databases)
        self.step = "configuration"
        for name in CONFIG_FILES:
            _copy_as_is(os.path.join(self.s.stack_dir, name), os.path.join(self.stage, "config", name))
        self.step = "manifest"
        manifest = write_manifest(self.stage, self.host, started, common.now_iso(), " ".join(self.tags), databases)

        self.step = "local repository"
        t1 = r.now()
        local = Repo(b.local_repository, b, r)
        snap = self.snapshot(local)
        self.progress("stored in the local repository", t1, self.stage)
        short = snap[:8]
        self.log.log(f"snapshot {short} in {b.local_repository}")
        shutil.copyfile(os.path.join(self.stage, "manifest.json"), os.path.join(b.dir, "last-manifest.json"))
        _write(os.path.join(b.dir, LAST_LEVEL), f"{b.dump_compression}\n")  # what the manifest's dump sizes were made with
        if "pre-restore" not in self.tags:  # a restore's "latest" is never a safety snapshot
            _write(os.path.join(b.dir, LAST_SNAPSHOT), f"{snap} {self.host}\n")
        self.step = "retention (local)"
        local.run(*local.forget_args(), stdout=lf, log=lf)
        if self.check:
            self.step = "check (local)"
            local.run("check", f"--read-data-subset={b.check_subset}", stdout=lf, log=lf)
            with open(os.path.join(b.dir, "last-check"), "w") as f:  # `mottivme doctor` reads its age
                f.write(common.now_iso() + "\n")

        done, errors = [], []
        if self.offsite:
            for url in b.offsite_repositories:
                self.step = f"off-host copy to {url}"
                t1 = r.now()
                why = self.offsite_copy(url, local, snap)
                if not why:
                    self.progress(f"copied off-host to {url}", t1)
                if why:
                    self.log.log(f"off-host copy to {url} failed: {why}")
                    errors.append(url)
                else:
                    done.append(url)
            if not b.offsite_repositories:
                self.log.log("no off-host repository configured (BACKUP_VAULT / BACKUP_S3_REPOSITORY)")
        if self.check:  # every check has run: the monitor hears it whatever comes after
            unchecked = [u for u in errors if u in self.check_failures]
            common.report_job(self.s, self.r, "check", f"restic check failed for {' '.join(unchecked)}"
                              if unchecked else None)
            self.check_reported = True

        self.step = "done"
        shutil.rmtree(self.stage)
        secs = int(r.now() - t0)
        summary = _summary(manifest)
        if errors:
            self.fail(f"snapshot {short} kept locally, but the off-host copy failed for {' '.join(errors)} "
                      f"(details in {b.log})")
        with open(os.path.join(b.dir, "last-success"), "w") as f:
            f.write(common.now_iso() + "\n")
        offhost = " ".join(done) or "none"
        self.log.log(f"ok snapshot {short} in {secs}s; {summary}; off-host: {offhost}")
        common.out_line(f"backup ok: snapshot {short} ({summary}) off-host: {offhost} in {secs}s")
        self.hook(b.success_hook)
        return 0

    def check_overdue(self) -> bool:
        """The last repository check is older than CHECK_MAX_AGE_D days (none yet: not overdue)."""
        try:
            with open(os.path.join(self.b.dir, "last-check")) as f:
                last = f.read()
            return hours_since(last, _dt.datetime.now(_dt.UTC)) > 24 * CHECK_MAX_AGE_D
        except (OSError, ValueError):
            return False

    def databases(self) -> list[Source]:
        """The postgres sources to dump (those with a URL), after checking every source."""
        sources, out = self.b.sources, []
        names = [x.name for x in sources]
        for x in sources:
            if not SOURCE_NAME.fullmatch(x.name) or x.name in RESERVED_SOURCE_NAMES:
                self.fail(f"backup source {x.name!r}: a name is lower-case letters, digits, - and _ (not config)")
            if names.count(x.name) > 1:
                self.fail(f"two backup sources are named {x.name}")
            if x.kind not in KINDS:
                self.fail(f"backup source {x.name}: kind {x.kind!r} is not one of {', '.join(KINDS)}")
            if x.kind == "n8n" and x.name != "n8n":
                self.fail(f"backup source {x.name}: the source of kind n8n is named n8n")
            if x.kind == "postgres":
                if x.name == "n8n":
                    self.fail("backup source n8n: the name n8n is the n8n source's")
                listed = () if x.schemas == "all" else x.schemas
                bad = [sc for sc in (*listed, *x.exclude_schemas, *x.managed_schemas) if not SCHEMA_NAME.fullmatch(sc)]
                bad += [t for t in x.exclude_tables if not TABLE_NAME.fullmatch(t)]
                if bad or not (x.schemas == "all" or (x.schemas and not isinstance(x.schemas, str))):
                    shown = x.schemas if isinstance(x.schemas, str) else list(x.schemas)
                    self.fail(f"backup source {x.name}: schemas {shown!r}: \"all\" or plain lower-case schema "
                              f"names (also in exclude_schemas and managed_schemas; exclude_tables: schema.table){': ' + ', '.join(bad) if bad else ''}")
                if x.url:
                    out.append(x)
                else:
                    self.log.log(f"{x.name}: no URL: not backed up")
        if "n8n" not in names:
            self.fail("the backup sources have no n8n source")
        return out

    def dumps(self, databases: list[Source]) -> None:
        """The n8n part here, each postgres source's dump in a thread of its own meanwhile. A part that
        fails (or Ctrl-C) stops the others before their next command; every thread has ended before
        this returns or raises. The failure named is the n8n part's, else the first source's."""
        run = _Cancellable(self.r, self.cancel)
        parts = [_Part(x) for x in databases]
        try:
            for part in parts:
                part.thread = threading.Thread(target=self.part, args=(part, run), name=part.step, daemon=True)
                part.thread.start()
            self.n8n_database(run)
            self.n8n_export(run)
            self.n8n_files(run)
        except _Cancelled:  # a postgres source failed: its failure is the one reported
            pass
        except BaseException:
            self.cancel.set()
            self.wait(parts, quiet=True)
            raise
        self.wait(parts)
        for part in parts:
            if part.error is not None:
                self.step = part.step
                raise part.error

    def wait(self, parts: list[_Part], quiet: bool = False) -> None:
        """Until every part's thread has ended. Ctrl-C meanwhile: no further command, then (unless
        `quiet`: another failure is being reported) "<the part waited for>: interrupted"."""
        interrupted = False
        for part in parts:
            while part.thread is not None and part.thread.is_alive():
                if not quiet and not interrupted:
                    self.step = part.step
                try:
                    part.thread.join()
                except KeyboardInterrupt:
                    interrupted = True
                    self.cancel.set()
        if interrupted and not quiet:
            raise KeyboardInterrupt

    def part(self, part: _Part, run) -> None:
        self.step = part.step
        try:
            self.postgres(part.source, run)
        except _Cancelled:
            pass
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            part.error = e
            self.cancel.set()

    def check_room(self) -> None:
        """The staging directory needs about the room the last backup's files took (its dumps 5 times
        over when they were compressed and now are not): fail now, with the numbers, rather than with
        a full disk in the middle of a dump."""
        level = _text(os.path.join(self.b.dir, LAST_LEVEL))
        grow = PLAIN_DUMP_ROOM if self.b.dump_compression == 0 and (level or "6") != "0" else 1
        try:
            with open(os.path.join(self.b.dir, "last-manifest.json")) as f:
                need = sum(int(x.get("size", 0)) * (grow if name.endswith(".dump") else 1)
                           for name, x in json.load(f).get("files", {}).items())
        except (OSError, ValueError, AttributeError, TypeError):
            return  # a first backup, or no readable manifest: nothing to go by
        st = os.statvfs(self.b.dir)
        free = st.f_bavail * st.f_frsize
        if free < need:
            self.fail(f"not enough free space for the backup: the last one was {need // 1_000_000} MB, "
                      f"{free // 1_000_000} MB free on {self.b.dir} (df -h {self.b.dir}): free space, or lower "
                      "the retention (group_data backup_keep_*); nothing was changed")

    def n8n_database(self, run) -> None:
        self.step = "n8n database dump"
        t0 = self.r.now()
        s, lf, st = self.s, self.log.file, Stack(self.s, run)
        d = os.path.join(self.stage, "n8n")
        with open(os.path.join(d, "n8n-db.dump"), "wb") as f:
            st.compose("exec", "-T", "postgres", "pg_dump", "-U", s.postgres_user, "-Fc",
                       f"-Z{self.b.dump_compression}", s.postgres_db,
                       stdout=f, log=lf)
        _write(os.path.join(d, "row-counts.txt"), st.psql(COUNTS_SQL, fields=" ", log=lf).stdout)
        _write(os.path.join(d, "postgres-version.txt"), st.psql("show server_version", log=lf).stdout)
        self.progress("n8n database dumped", t0, os.path.join(d, "n8n-db.dump"))

    def n8n_export(self, run) -> None:
        """Workflows and credentials with n8n's CLI (credentials stay encrypted with N8N_ENCRYPTION_KEY)."""
        self.step = "n8n export"
        t0 = self.r.now()
        lf, st = self.log.file, Stack(self.s, run)
        with open(os.path.join(self.stage, "n8n", "row-counts.txt")) as f:
            counts = parse_counts(f.read())
        cid = st.container_id("n8n")
        if not cid:
            self.fail("the n8n container does not exist")
        st.compose("exec", "-T", "-e", f"N8N_RUNNERS_BROKER_PORT={BROKER_PORT}", "n8n", "sh", "-c", EXPORT_SH, "sh",
                   str(counts.get("workflow_entity", 0)), str(counts.get("credentials_entity", 0)),
                   stdout=lf, log=lf)
        run.run(["docker", "cp", f"{cid}:/tmp/n8n-backup/.", os.path.join(self.stage, "n8n", "export")],
                stdout=lf, log=lf)
        st.compose("exec", "-T", "n8n", "rm", "-rf", "/tmp/n8n-backup", stdout=lf, log=lf)
        self.progress("n8n workflows and credentials exported", t0, os.path.join(self.stage, "n8n", "export"))

    def n8n_files(self, run) -> None:
        """n8n's files: each of the stack's volumes of the n8n source, one tar archive (files.py)."""
        self.step = "n8n files"
        t0 = self.r.now()
        n8n = self.b.n8n
        if n8n is None or not n8n.volumes:
            return
        try:
            files.pack(self.s, run, self.stage, n8n.volumes, n8n.exclude, log=self.log.file)
        except LookupError as e:
            self.fail(str(e))
        self.progress(f"n8n files archived ({', '.join(n8n.volumes)})", t0, os.path.join(self.stage, files.ARCHIVE_DIR))

    def postgres(self, source: Source, r) -> None:
        """pg_dump of a postgres source's schemas, with the pg_dump of the server's major version."""
        lf, name = self.log.file, source.name
        t0 = self.r.now()
        try:
            access = Access(source.url, self.s.run_dir, name)
        except ValueError as e:
            self.fail(str(e))
        with access as db:
            num = r.run([*db.docker_run(), self.s.postgres_image, *DB_VERSION], env=db.env, log=lf).stdout.strip()
            if not num.isdigit():
                self.fail(f"the server's version number is not a number: {num[:40]!r}")
            major = int(num) // 10000
            try:
                image = self.b.image("postgres_images", major)
            except ValueError as e:
                self.fail(f"no pg_dump for PostgreSQL {major}: {e}")
            if not _image_on_host(r, image, lf):
                self.fail(f"no pg_dump for PostgreSQL {major}: image {image} not available")
            # the image a restore checks this dump in, on the host before it is needed: a restore
            # (perhaps with the registry out of reach) then starts it at once; pulled while the dump runs
            ready = threading.Thread(target=self.restore_image, args=(r, name, major), name=f"{name} restore image",
                                     daemon=True)
            ready.start()
            d = os.path.join(self.stage, name)
            every = source.schemas == "all"
            if every:
                which = [f"--exclude-schema={x}" for x in source.exclude_schemas]
                which += [f"--exclude-table={x}" for x in source.exclude_tables]
                counting = counts_sql("all", source.exclude_tables, source.exclude_schemas)
            else:
                which, counting = [f"--schema={x}" for x in source.schemas], counts_sql(source.schemas)
            # the shape, the dump and the counts see one moment of the database (one snapshot)
            res = r.run([*db.docker_run(stdin=True), "-v", f"{d}:{DB_OUT}", image, *DB_SESSION],
                        input=session_sql(name, [f"-Z{self.b.dump_compression}", *which], DB_SHAPE if every else "",
                                          counting), env=db.env, log=lf)
            rc = _text(os.path.join(d, "pg_dump.rc"))
            if rc is not None:
                os.remove(os.path.join(d, "pg_dump.rc"))
            if rc != "0":
                self.fail(f"pg_dump of {name} exited {rc or 'without a status'} (details in {self.b.log})")
            shown, counts = _sections(res.stdout)
            if every:
                shape = self.shape(source, shown)
                _write(os.path.join(d, "shape.json"), json.dumps(shape, indent=1) + "\n")
                schemas = shape["schemas"]
            else:
                schemas = list(source.schemas)
            # a good dump waits for the pull (PULL_TIMEOUT at most); a failed one is reported at once, the
            # pull left to end on its own (it changes nothing but the host's images)
            ready.join()
        _write(os.path.join(d, "row-counts.txt"), counts)
        _write(os.path.join(d, "server-version-num.txt"), num + "\n")
        self.progress(f"{name} dumped ({', '.join(schemas)})", t0, os.path.join(d, f"{name}.dump"))

    def restore_image(self, r, name: str, major: int) -> None:
        """The restore's scratch image for PostgreSQL `major` (scratch_images) pulled when the host
        lacks it, in PULL_TIMEOUT at most. Not having it fails nothing here (the dump is what counts):
        the log says so, and a restore pulls it then. Nothing escapes this thread."""
        lf = self.log.file
        try:
            image, t0 = self.b.image("scratch_images", major), r.now()
            got = _image_on_host(r, image, lf, PULL_TIMEOUT)
            if got == "pulled":
                self.progress(f"{name}: the restore's image for PostgreSQL {major} pulled", t0)
            if got:
                return
            why = f"{image} could not be pulled"
        except _Cancelled:
            return
        except subprocess.TimeoutExpired:
            why = f"not pulled within {PULL_TIMEOUT} s"
        except Exception as e:  # the backup goes on whatever this thread meets
            why = str(e) or type(e).__name__
        try:
            self.log.log(f"note: {name}: no restore image for PostgreSQL {major} on this host ({why}): a restore "
                         "will pull it")
        except Exception:  # the log itself failing (a full disk): the backup reports that on its own
            pass

    def shape(self, source: Source, text: str) -> dict:
        """DB_SHAPE's lines -> the schemas dumped (less exclude_schemas), roles and extensions. A schema
        whose name is not plain lower-case stops the backup naming it (restore and counts take plain
        names only); a role's or an extension's odd name is logged and left out (its grants stay in
        the dump, a target must have it)."""
        out = {"schemas": [], "roles": [], "extensions": {}}
        for line in text.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "schema" and rest not in source.exclude_schemas:
                if not SCHEMA_NAME.fullmatch(rest):
                    self.fail(f"{source.name} has the schema {rest[:63]!r}, not a plain lower-case name: add it to "
                              "its exclude_schemas (group_data backup_sources) or rename it")
                out["schemas"].append(rest)
            elif kind == "role" and pglist.ROLE_NAME.fullmatch(rest):
                out["roles"].append(rest)
            elif kind == "extension" and len(words := rest.split()) == 2 and pglist.EXTENSION_NAME.fullmatch(words[0]) \
                    and SCHEMA_NAME.fullmatch(words[1]):
                out["extensions"][words[0]] = words[1]
            elif kind in ("role", "extension"):
                self.log.log(f"{source.name}: {kind} {rest[:80]!r} left out of the manifest (not a plain name)")
        if not out["schemas"]:
            self.fail(f"{source.name}: no schema to back up (all of them are in its exclude_schemas)")
        return out

    def snapshot(self, local: Repo) -> str:
        """The one restic snapshot of the complete staging directory (the repository made when absent)."""
        b, lf = self.b, self.log.file
        got = local.opens()
        if not got.ok:
            self.log_text(got.stderr)
            if not no_repository(got.stderr):
                self.fail(f"cannot open the repository {b.local_repository}: {first_error(got.stderr)}")
            local.run("init", stdout=lf, log=lf)
        tag_args = [a for t in self.tags for a in ("--tag", t)]
        res = local.run("backup", "--json", "--host", self.host, *tag_args, self.stage, log=lf, check=False)
        if not res.ok:
            self.fail(f"restic backup failed (details in {b.log})")
        snap = _snapshot_id(res.stdout)
        if not snap:
            self.fail("restic made no snapshot")
        return snap

    def offsite_copy(self, url: str, local: Repo, snap: str) -> str | None:
        """Copy the new snapshot to `url` (made when absent), then retention (and check) there.
        None when done, else what failed (its details are in the log)."""
        lf = self.log.file
        off = Repo(url, self.b, self.r)
        env = {"RESTIC_FROM_REPOSITORY": local.url, "RESTIC_FROM_PASSWORD_FILE": local.password_file}
        got = off.run("cat", "config", "--no-lock", env=env, check=False)
        if not got.ok:
            if not no_repository(got.stderr):
                self.log_text(got.stderr)
                return f"cannot open the repository: {first_error(got.stderr)}"
            if not off.run("init", "--copy-chunker-params", env=env, stdout=lf, log=lf, check=False).ok:
                return "`restic init --copy-chunker-params` failed"
        # the vault is append-only: its retention is the vault's prune (runbooks/vault_prune.py)
        steps = [["copy", snap]] + ([] if off.append_only else [off.forget_args()])
        if self.check:
            steps.append(["check", f"--read-data-subset={self.b.check_subset}"])
        for args in steps:
            res = off.run(*args, env=env, stdout=lf, log=lf, check=False)
            if not res.ok and args[0] == "check":
                self.check_failures.append(url)
            if not res.ok:
                return f"`restic {' '.join(args)}` exited {res.returncode}"
        return None


# --- the manifest: format 2 (restore.py reads format 1 as well) ------------------------------------
def write_manifest(stage: str, host: str, started: str, finished: str, tags: str,
                   databases: list[Source] = ()) -> dict:
    """`<stage>/manifest.json`: sizes and sha256 of every staged file; per source its row counts,
    versions and dump; times. `databases`: the postgres sources dumped, in the settings' order."""

    def counts(path):
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return {t: int(c) for t, c in (line.split() for line in f if line.strip())}

    staged = {}
    for root, _, names in os.walk(stage):
        for n in sorted(names):
            p = os.path.join(root, n)
            staged[os.path.relpath(p, stage)] = {"size": os.path.getsize(p), "sha256": common.sha256(p)}
    n8n_counts = counts(f"{stage}/n8n/row-counts.txt") or {}
    sources = {
        "n8n": {"kind": "n8n", "version": _text(f"{stage}/n8n/export/n8n-version.txt"),
                "postgres_version": _text(f"{stage}/n8n/postgres-version.txt"),
                "workflows": n8n_counts.get("workflow_entity", 0),
                "credentials": n8n_counts.get("credentials_entity", 0),
                "row_counts": n8n_counts, "dump": "n8n/n8n-db.dump"},
    }
    archives = os.path.join(stage, files.ARCHIVE_DIR)
    if os.path.isdir(archives):  # n8n's files: volume -> its archive, entries and bytes
        sources["n8n"]["files"] = {
            n.removesuffix(".tar"): {"archive": files.archive_path(n.removesuffix(".tar")),
                                     **files.contents(os.path.join(archives, n))}
            for n in sorted(os.listdir(archives)) if n.endswith(".tar")}
    for x in databases:
        shape = {"schemas": list(x.schemas)}
        if os.path.isfile(f"{stage}/{x.name}/shape.json"):  # schemas "all": also its roles and extensions
            with open(f"{stage}/{x.name}/shape.json") as f:
                shape = json.load(f)
            shape["managed_schemas"] = [s for s in x.managed_schemas if s in shape["schemas"]]
            shape["exclude_tables"] = list(x.exclude_tables)
        sources[x.name] = {"kind": "postgres",
                           "server_version_num": int(_text(f"{stage}/{x.name}/server-version-num.txt")),
                           **shape,
                           "row_counts": counts(f"{stage}/{x.name}/row-counts.txt") or {},
                           "dump": f"{x.name}/{x.name}.dump"}
    manifest = {"format": 2, "host": host, "tags": tags.split(), "started": started, "finished": finished,
                "sources": sources, "files": staged}
    with open(f"{stage}/manifest.json", "w") as f:
        json.dump(manifest, f, indent=2)
    return manifest



def session_sql(name: str, dump_args: list[str], shape: str, counts: str) -> str:
    """The script of DB_SESSION: `==shape` then the shape's lines, `==counts` then the counts'; the
    pg_dump's exit status in DB_OUT/pg_dump.rc. Its arguments are plain names (checked), as the
    shell of psql's \\! takes them."""
    return ("begin transaction isolation level repeatable read, read only;\n"
            "select pg_export_snapshot() as snapshot \\gset\n"
            "\\setenv MOTTIVME_SNAPSHOT :snapshot\n"
            "\\echo ==shape\n" + (shape + ";\n" if shape else "") +
            f"\\! {' '.join(DB_DUMP)} --snapshot=\"$MOTTIVME_SNAPSHOT\" {' '.join(dump_args)} -f {DB_OUT}/{name}.dump; "
            f"echo \"$?\" > {DB_OUT}/pg_dump.rc\n"
            "\\echo ==counts\n" + counts + ";\ncommit;\n")


def _sections(text: str) -> tuple[str, str]:
    """session_sql's output: (the shape's lines, the counts' lines)."""
    shape, _, counts = text.partition("==counts\n")
    return shape.partition("==shape\n")[2], counts


def _image_on_host(r, image: str, log, timeout: float | None = None) -> str:
    """"here" (the host has `image`), "pulled" (it has now), or "" (it could not be pulled; the
    registry's answer in `log`)."""
    if r.run(["docker", "image", "inspect", image], check=False).ok:
        return "here"
    return "pulled" if r.run(["docker", "pull", "-q", image], stdout=log, log=log, check=False, timeout=timeout).ok else ""


def _text(path: str) -> str | None:
    """A staged file's text, stripped; None when there is none."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read().strip()


def _summary(m: dict) -> str:
    """`n8n: N workflows, M credentials; supabase: T tables, R rows; ...` (the manifest's order)."""
    parts = []
    for name, x in m["sources"].items():
        if x["kind"] == "n8n":
            kept = x.get("files") or {}
            held = (f", {sum(v['files'] for v in kept.values())} files "
                    f"({_human(sum(v['bytes'] for v in kept.values()))})") if kept else ""
            parts.append(f"{name}: {x['workflows']} workflows, {x['credentials']} credentials{held}")
        else:
            counts = x["row_counts"] or {}
            parts.append(f"{name}: {len(counts)} tables, {sum(counts.values())} rows in {', '.join(x['schemas'])}")
    if not any(x["kind"] == "postgres" for x in m["sources"].values()):
        parts.append("no database sources")
    return "; ".join(parts)


def _human(n: int) -> str:
    """3.0 kB, 12.4 MB, 1.2 GB (powers of 1000, as the progress lines)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _snapshot_id(out: str) -> str:
    """The snapshot id of `restic backup --json`'s summary line ("" when it made none)."""
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict) and msg.get("message_type") == "summary":
            return msg.get("snapshot_id") or ""
    return ""


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _copy_as_is(src: str, dst: str) -> None:
    """`cp -a`: contents, permissions, times and owners; symbolic links stay links."""
    if os.path.isdir(src) and not os.path.islink(src):
        shutil.copytree(src, dst, symlinks=True)
        for root, dirs, names in os.walk(src):
            for n in dirs + names:
                p = os.path.join(root, n)
                _same_owner(p, os.path.join(dst, os.path.relpath(p, src)))
    else:
        shutil.copy2(src, dst, follow_symlinks=False)
    _same_owner(src, dst)


def _same_owner(src: str, dst: str) -> None:
    st = os.lstat(src)
    try:
        os.lchown(dst, st.st_uid, st.st_gid)
    except OSError:  # not root: the files are the runner's own
        pass

