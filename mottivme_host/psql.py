"""A psql shell (or one statement) on a database of this server, its password never on a command line.

mottivme-host psql n8n [-c SQL]          n8n's own database, in the stack's postgres container
mottivme-host psql supabase [-c SQL]     a database backup source (group_data backup_sources)

A source's URL (it holds the password) is split into libpq's environment variables (PGHOST,
PGUSER, ...), which reach psql through `docker run -e NAME`, and a pgpass file for the password
(mottivme_host/pgaccess.py): no command line and no container's environment holds it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from .common import Fail
from .pgaccess import Access
from .run import Runner
from .settings import Settings, Source


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("database", metavar="DATABASE", help="n8n, or the name of a database backup source (supabase)")
    p.add_argument("-c", dest="sql", metavar="SQL", help="run this statement and exit")
    p.add_argument("--drill", action="store_true",
                   help="the source's DR drill database (DR_DRILL_SUPABASE_URL for supabase) instead of its own")
    p.add_argument("--rows", action="store_true",
                   help="unaligned rows without headers or notices (psql -Atq), for scripts: -c, or statements on stdin")


def source(s: Settings, name: str) -> Source | None:
    """The postgres backup source `name`; None for n8n's own database."""
    if name == "n8n":
        return None
    sources = [x for x in (s.backup.sources if s.backup else ()) if x.kind == "postgres"]
    src = next((x for x in sources if x.name == name), None)
    if src is None:
        known = ", ".join(["n8n", *(x.name for x in sources)])
        raise Fail(f"no database '{name}' on this server: choose one of {known}", 2)
    return src


def n8n_command(s: Settings, sql: str | None, tty: bool, rows: bool = False) -> list[str]:
    """psql in the stack's own postgres container (its local socket: no password)."""
    one = ["-c", sql] if sql else []
    return [*s.compose, "exec", *([] if tty and not sql else ["-T"]), "postgres", "psql", "-U", s.postgres_user,
            "-d", s.postgres_db, *(["-Atq"] if rows else []), *one]


def access(s: Settings, src: Source, drill: bool = False) -> Access:
    if drill and not src.drill_url:
        raise Fail(f"{src.name} has no drill database on this server: set its drill URL in .env "
                   "(DR_DRILL_SUPABASE_URL for supabase) and run deploy.py", 2)
    try:
        return Access(src.drill_url if drill else src.url, s.run_dir, src.name)
    except ValueError as e:
        raise Fail(str(e), 2) from None


def command(s: Settings, sql: str | None, tty: bool, db: Access, rows: bool = False) -> list[str]:
    """psql in a throwaway container on the database `db` opens (entered: its pgpass file exists);
    a failed statement stops it with a non-zero exit."""
    one = ["-c", sql] if sql else []
    flags = ["-i", "-t"] if tty and not sql else ["-i"]
    return ["docker", "run", "--rm", *flags, "--network", "host", *db.docker_args(), s.postgres_image, "psql", "-X",
            "-v", "ON_ERROR_STOP=1", *(["-Atq"] if rows else []), *one]


def main(ns, s: Settings, runner: Runner) -> int:
    tty = sys.stdin.isatty()
    src = source(s, ns.database)
    os.chdir(s.stack_dir)
    if src is None:
        if ns.drill:
            raise Fail("n8n has no drill database: --drill is for a database source (supabase)", 2)
        argv = n8n_command(s, ns.sql, tty, ns.rows)
        os.execvp(argv[0], argv)
    with access(s, src, ns.drill) as db:  # its pgpass file lives as long as psql does, then it is removed
        # Ctrl-C belongs to psql (it cancels a query): this process only waits
        old = signal.signal(signal.SIGINT, lambda *_: None)
        try:
            return subprocess.call(command(s, ns.sql, tty, db, ns.rows), env={**os.environ, **db.env})
        finally:
            signal.signal(signal.SIGINT, old)
