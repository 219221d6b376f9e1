"""A psql shell (or one statement) on a database of this server, its password never on a command line.

mottivme-host psql n8n [-c SQL]          n8n's own database, in the stack's postgres container
mottivme-host psql supabase [-c SQL]     a database backup source (group_data backup_sources)

A source's URL (it holds the password) is split into libpq's environment variables (PGHOST,
PGPASSWORD, ...), which reach psql through `docker run -e NAME` (name only: the value comes
from this program's environment): neither docker's nor psql's command line holds it.
"""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import parse_qs, unquote, urlsplit

from .common import Fail
from .run import Runner
from .settings import Settings

# URL query parameters passed on as libpq environment variables
QUERY_ENV = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "application_name": "PGAPPNAME",
             "connect_timeout": "PGCONNECT_TIMEOUT", "options": "PGOPTIONS"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("database", metavar="DATABASE", help="n8n, or the name of a database backup source (supabase)")
    p.add_argument("-c", dest="sql", metavar="SQL", help="run this statement and exit")


def pg_env(url: str) -> dict[str, str]:
    """libpq's environment for a postgresql:// URL: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, ..."""
    u = urlsplit(url)
    if u.scheme not in ("postgres", "postgresql") or not u.hostname:
        raise ValueError("not a postgresql:// URL with a host")
    env = {"PGHOST": u.hostname, "PGPORT": str(u.port or 5432)}
    if u.username:
        env["PGUSER"] = unquote(u.username)
    if u.password is not None:
        env["PGPASSWORD"] = unquote(u.password)
    if u.path.strip("/"):
        env["PGDATABASE"] = unquote(u.path.lstrip("/"))
    for key, values in parse_qs(u.query).items():
        if key in QUERY_ENV:
            env[QUERY_ENV[key]] = values[-1]
    return env


def command(s: Settings, name: str, sql: str | None, tty: bool) -> tuple[list[str], dict[str, str]]:
    """The command line and the extra environment of a psql on database `name`."""
    one = ["-c", sql] if sql else []
    if name == "n8n":
        return [*s.compose, "exec", *([] if tty and not sql else ["-T"]), "postgres", "psql", "-U", s.postgres_user,
                "-d", s.postgres_db, *one], {}
    sources = [x for x in (s.backup.sources if s.backup else ()) if x.kind == "postgres"]
    src = next((x for x in sources if x.name == name), None)
    if src is None:
        known = ", ".join(["n8n", *(x.name for x in sources)])
        raise Fail(f"no database '{name}' on this server: choose one of {known}", 2)
    try:
        env = pg_env(src.url)
    except ValueError as e:
        raise Fail(f"the URL of {name} in the settings is unusable ({e}): check its variable in .env "
                   "and run deploy.py", 2) from None
    flags = ["-i", "-t"] if tty and not sql else ["-i"]
    names = [x for k in sorted(env) for x in ("-e", k)]
    return ["docker", "run", "--rm", *flags, "--network", "host", *names, s.postgres_image, "psql", *one], env


def main(ns, s: Settings, runner: Runner) -> int:
    argv, env = command(s, ns.database, ns.sql, sys.stdin.isatty())
    os.chdir(s.stack_dir)
    os.execvpe(argv[0], argv, {**os.environ, **env})
    return 127  # not reached
