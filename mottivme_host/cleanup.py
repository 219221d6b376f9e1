"""Delete Supabase rows older than each table's retention (SOP 05 weekly cleanup).

n8n-supabase-cleanup [--dry-run]

For each table of the retention settings (group_data cleanup_retention_days: table -> days kept),
rows whose created_at is older than that many days are deleted in batches (cleanup_batch_size
rows a statement: short transactions, no long table locks) until a batch comes back short.
--dry-run only counts. The database is the backup source named by the cleanup settings
(Supabase); nothing to do when it is not configured (exit 0); never runs twice
at once (exit 75); a failed command or a bad setting: a FAILED line, exit 1.
Every line goes to stdout and to the cleanup log, with the time.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re

from .common import Fail, Lock, out_line, report_job
from .pgaccess import Access
from .run import Runner, shown
from .settings import Settings

# the URL holds Supabase's password: psql gets libpq's variables and a pgpass file (pgaccess.Access)
PSQL = ["psql", "-v", "ON_ERROR_STOP=1", "-Atq"]
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="only count the rows that would be deleted")


def main(ns, s: Settings, runner: Runner) -> int:
    c = s.cleanup
    if c is None:
        raise Fail("start: this host has no cleanup settings: it is not an n8n server")
    out = _Out(c.log)
    rc = 1
    try:
        rc = _Cleanup(ns, s, runner, out).main()
        return rc
    except KeyboardInterrupt:
        out.say("FAILED: interrupted")
        rc = 130
        return rc
    except Exception as e:  # a bug: said (and reported) as what it is, then the traceback
        out.say(f"FAILED: {type(e).__name__}")
        raise
    finally:
        out.close()
        if not ns.dry_run and rc != 75:  # 75: another cleanup is running, and it reports
            report_job(s, runner, "cleanup", None if rc == 0 else out.last.split(" ", 2)[-1])


class _Out:
    """`YYYY-MM-DD HH:MM:SS message` to stdout and appended to the log (the shell's `tee -a`)."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.file = open(path, "a", buffering=1)
        self.last = "  no output"

    def say(self, message: str) -> None:
        line = f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M:%S')} {message}"
        self.last = line
        self.file.write(line + "\n")
        out_line(line)

    def close(self) -> None:
        self.file.close()


class _Cleanup:
    def __init__(self, ns, s: Settings, runner: Runner, out: _Out):
        self.ns, self.s, self.c, self.r, self.out = ns, s, s.cleanup, runner, out
        sources = s.backup.sources if s.backup is not None else ()
        self.url = next((x.url for x in sources if x.name == self.c.source and x.kind == "postgres"), "")

    def main(self) -> int:
        if not self.url:
            self.out.say(f"the database {self.c.source} is not configured (its URL is not set): nothing to clean")
            return 0
        try:
            plan = [(quote_table(t), t, _positive(d, f"cleanup_retention_days: {t}: days kept"))
                    for t, d in self.c.retention_days.items()]
            batch = _positive(self.c.batch_size, "cleanup_batch_size")
        except ValueError as e:
            self.out.say(f"FAILED: {e}")
            return 1
        lock = Lock(self.c.lock)
        try:
            if not lock.try_acquire():
                self.out.say("another cleanup is running")
                return 75
            try:
                access = Access(self.url, self.s.run_dir, self.c.source)
            except ValueError as e:
                self.out.say(f"FAILED: {e}")
                return 1
            with access as self.db:
                for table, name, days in plan:
                    if not self.clean(table, name, days, batch):
                        return 1
            return 0
        finally:
            os.close(lock.fd)

    def clean(self, table: str, name: str, days: int, batch: int) -> bool:
        older = f"created_at < now() - interval '{days} days'"
        if self.ns.dry_run:
            n = self.psql(f"select count(*) from {table} where {older};\n", name)
            if n is None:
                return False
            self.out.say(f"dry-run: {name}: {n} rows older than {days} days would be deleted")
            return True
        total = 0
        while True:
            n = self.psql(f"with d as (delete from {table} where ctid in (select ctid from {table} where {older} "
                          f"limit {batch}) returning 1) select count(*) from d;\n", name)
            if n is None:
                return False
            total += n
            if n < batch:
                break
        self.out.say(f"{name}: deleted {total} rows older than {days} days")
        return True

    def psql(self, sql: str, name: str) -> int | None:
        """The one number `sql` answers (psql on Supabase, in a throwaway container); None: failed (said)."""
        argv = [*self.db.docker_run(stdin=True), self.s.postgres_image, *PSQL]
        try:
            res = self.r.run(argv, input=sql, env=self.db.env, check=False)
        except OSError as e:
            self.out.say(f"FAILED: {name}: {argv[0]}: {e}")
            return None
        if not res.ok:
            self.out.say(f"FAILED: {name}: `{shown(argv)}` exited {res.returncode}{_why(res.stderr)}")
            return None
        try:
            return int(res.stdout.strip())
        except ValueError:
            self.out.say(f"FAILED: {name}: psql answered {res.stdout.strip()[:80]!r}, not a number")
            return None


def quote_table(name) -> str:
    """`table` or `schema.table` (plain SQL identifiers) -> quoted as PostgreSQL reads it unquoted
    (lower case); anything else is refused: the name goes into SQL text."""
    parts = name.split(".") if isinstance(name, str) else []
    if not 1 <= len(parts) <= 2 or not all(IDENT.fullmatch(p) for p in parts):
        raise ValueError(f"cleanup_retention_days: {name!r} is not a table name (table or schema.table)")
    return ".".join(f'"{p.lower()}"' for p in parts)


def _positive(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not re.fullmatch(r"[0-9]+", str(value)) \
            or int(value) < 1:
        raise ValueError(f"{what}: {value!r} is not a whole number of at least 1")
    return int(value)


def _why(stderr: str) -> str:
    lines = [x.strip() for x in (stderr or "").splitlines() if x.strip()]
    if not lines:
        return ""
    return ": " + next((x for x in lines if "error" in x.lower() or "fatal" in x.lower()), lines[0])
