"""The compose stack of this server: compose commands, PostgreSQL queries, readiness."""

from __future__ import annotations

import re

from .common import Fail
from .run import Result, Runner
from .settings import Settings

# "table count" per base table of a schema, exact (query_to_xml: one statement, no function)
COUNTS_SQL = ("select table_name, (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', "
              "table_schema, table_name), false, true, '')))[1]::text from information_schema.tables "
              "where table_schema = 'public' and table_type = 'BASE TABLE' order by 1")
# a backup source's name: its directory and dump file in the snapshot, a container name's tail
SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
# a schema a postgres source dumps: a plain (unquoted, lower-case) PostgreSQL identifier
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# a table a postgres source leaves out of its dump: schema.table, both plain
TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}")
# names a source cannot take: directories of the snapshot that are not sources
RESERVED_SOURCE_NAMES = frozenset({"config"})
# n8n's Bull queue "jobs" under prefix "bull" (n8n's defaults, which the deploy keeps): its keys
BULL_QUEUE = "bull:jobs:"
# compose arguments: redis-cli in the stack's redis container, then its own arguments; the
# password stays in that container's environment (redis-cli reads REDISCLI_AUTH)
REDIS_CLI = ("exec", "-T", "redis", "sh", "-c", 'REDISCLI_AUTH="$REDIS_PASSWORD" exec redis-cli "$@"', "redis-cli")


def counts_sql(schemas=("public",), exclude_tables=(), exclude_schemas=None) -> str:
    """COUNTS_SQL over `schemas`: tables named `schema.table`, except for the one schema public
    (plain `table`, the counts' keys of every earlier manifest); `exclude_tables` (`schema.table`)
    left out. schemas "all": every schema but PostgreSQL's own and `exclude_schemas`."""
    every = schemas == "all"
    schemas = () if every else tuple(schemas)
    if schemas == ("public",) and not exclude_tables:
        return COUNTS_SQL
    for name in (*schemas, *(exclude_schemas or ())):
        if not SCHEMA_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a plain schema name")
    for name in exclude_tables:
        if not TABLE_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a plain schema.table name")
    if every:
        where = "table_schema !~ '^pg_' and table_schema <> 'information_schema'" + "".join(
            f" and table_schema <> '{name}'" for name in exclude_schemas or ())
    else:
        where = f"table_schema in ({', '.join(repr(name) for name in schemas)})"
    left = "".join(f" and table_schema || '.' || table_name <> '{name}'" for name in exclude_tables)
    return ("select table_schema || '.' || table_name, (xpath('/row/c/text()', query_to_xml(format("
            "'select count(*) as c from %I.%I', table_schema, table_name), false, true, '')))[1]::text "
            f"from information_schema.tables where {where} and table_type = 'BASE TABLE'{left} "
            "order by 1")


def parse_counts(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = int(parts[1])
    return out


class Stack:
    def __init__(self, s: Settings, runner: Runner):
        self.s, self.r = s, runner

    def compose(self, *args: str, check: bool = True, **kw) -> Result:
        return self.r.run([*self.s.compose, *args], cwd=self.s.stack_dir, check=check, **kw)

    def compose_checked(self, *args: str) -> Result:
        """compose ARGS, or Fail naming the command, its exit and its last line of errors."""
        r = self.compose(*args, check=False)
        if not r.ok:
            err = (r.stderr.strip().splitlines() or [""])[-1]
            raise Fail(f"`{' '.join([*self.s.compose, *args])}` exited {r.returncode}" + (f": {err}" if err else ""))
        return r

    def container_id(self, service: str) -> str:
        r = self.compose("ps", "-q", service, check=False)
        return r.stdout.strip() if r.ok else ""

    def psql(self, sql: str, db: str | None = None, *, fields: str = "", check: bool = True, **kw) -> Result:
        """psql in the stack's postgres container, tuples only (`fields`: -F separator)."""
        args = ["exec", "-T", "postgres", "psql", "-U", self.s.postgres_user, "-d", db or self.s.postgres_db,
                "-v", "ON_ERROR_STOP=1", "-AtqX"]
        if fields:
            args += ["-F", fields]
        return self.compose(*args, "-c", sql, check=check, **kw)

    def counts(self, db: str | None = None) -> dict[str, int]:
        return parse_counts(self.psql(COUNTS_SQL, db, fields=" ").stdout)

    def scalar(self, sql: str, db: str | None = None) -> str:
        return self.psql(sql, db).stdout.strip()

    def http_status(self, path: str = "healthz/readiness", timeout: int = 5) -> str:
        """HTTP status of https://<n8n_host>/<path> through the host's own Caddy ("000": none)."""
        r = self.r.run(["curl", "-sk", "-m", str(timeout), "-o", "/dev/null", "-w", "%{http_code}",
                        "--resolve", self.s.resolve, f"https://{self.s.n8n_host}/{path}"], check=False)
        return (r.stdout or "").strip() or "000"

    def wait_ready(self, timeout: float | None = None, interval: float = 2, path: str = "healthz/readiness") -> bool:
        """Until readiness answers 200, at most `timeout` seconds (default: the settings')."""
        deadline = self.r.now() + (self.s.ready_timeout if timeout is None else timeout)
        while True:
            if self.http_status(path) == "200":
                return True
            if self.r.now() >= deadline:
                return False
            self.r.sleep(interval)

    def logs(self, service: str, tail: int = 25) -> list[str]:
        r = self.compose("logs", "--no-color", "--tail", str(tail), service, check=False)
        return (r.stdout + r.stderr).splitlines()
