"""A PostgreSQL database, reached from a throwaway container, its password in no command line and
in no container's environment.

A database URL holds its password. Expanded into `pg_dump "$URL"` it is in pg_dump's argv, which
every user of the server sees in `ps` (a container's processes are the host's); given with
`docker run -e` it is in `docker inspect`. Here the URL is split into libpq's own variables
(PGHOST, PGPORT, PGUSER, PGDATABASE, sslmode ...: none secret), passed by name, and the password
goes into a pgpass file: created 0600 in a root-only directory on /run (tmpfs: never on disk),
mounted read-only into the container (PGPASSFILE), removed when the container is done.

    with Access(url, s.run_dir) as db:
        runner.run(["docker", "run", "--rm", *db.docker_args(), image, "pg_dump", ...], env=db.env)
"""

from __future__ import annotations

import os
import tempfile
from urllib.parse import parse_qs, unquote, urlsplit

MOUNT = "/run/pgpass"  # where the container sees the file
# URL query parameters passed on as libpq environment variables
QUERY_ENV = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "application_name": "PGAPPNAME",
             "connect_timeout": "PGCONNECT_TIMEOUT", "options": "PGOPTIONS"}


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


def pgpass_line(password: str) -> str:
    """Any host, port, database and user: the one database of this URL (libpq's escaping: \\ and :)."""
    return "*:*:*:*:" + password.replace("\\", "\\\\").replace(":", "\\:") + "\n"


class Access:
    def __init__(self, url: str, run_dir: str):
        env = pg_env(url)  # ValueError: not a usable URL (its message never holds the URL)
        self.password = env.pop("PGPASSWORD", None)
        self.env = env  # the variables docker passes by name (the values come from this environment)
        self.run_dir = run_dir
        self.path = ""

    def __enter__(self) -> Access:
        if self.password is not None:
            os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
            fd, self.path = tempfile.mkstemp(dir=self.run_dir, prefix="pgpass.")  # 0600 from its first byte
            with os.fdopen(fd, "w") as f:
                f.write(pgpass_line(self.password))
        return self

    def __exit__(self, *exc) -> None:
        if self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = ""

    def docker_args(self) -> list[str]:
        """`docker run` options: the variables by name, the password file mounted read-only."""
        out = [x for k in sorted(self.env) for x in ("-e", k)]
        if self.path:
            out += ["-v", f"{self.path}:{MOUNT}:ro", "-e", f"PGPASSFILE={MOUNT}"]
        return out
