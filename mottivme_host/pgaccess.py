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
from urllib.parse import unquote, urlsplit

MOUNT = "/run/pgpass"  # where the container sees the file
# URL query parameters passed on as libpq environment variables; any other is refused (libpq would
# honour it, these programs would not: the URL must mean here what it means to libpq)
QUERY_ENV = {"sslmode": "PGSSLMODE", "application_name": "PGAPPNAME", "connect_timeout": "PGCONNECT_TIMEOUT",
             "options": "PGOPTIONS", "channel_binding": "PGCHANNELBINDING", "gssencmode": "PGGSSENCMODE",
             "target_session_attrs": "PGTARGETSESSIONATTRS", "sslnegotiation": "PGSSLNEGOTIATION"}


def pg_env(url: str) -> dict[str, str]:
    """libpq's environment for a postgresql:// URL: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, ...
    ValueError (its message never holds a part of the URL) for one these programs cannot pass on
    exactly: no host or database, a parameter they do not know, a control character."""
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError:
        raise ValueError("not a URL these programs can read (a special character of the user or password not percent-encoded?)") from None
    if u.scheme not in ("postgres", "postgresql") or not u.hostname:
        raise ValueError("not a postgresql:// URL with a host")
    env = {"PGHOST": u.hostname, "PGPORT": str(port or 5432)}
    if u.username:
        env["PGUSER"] = unquote(u.username)
    if u.password is not None:
        env["PGPASSWORD"] = unquote(u.password)
    if not u.path.strip("/"):
        raise ValueError("no database name after the host (.../postgres)")
    env["PGDATABASE"] = unquote(u.path.lstrip("/"))
    for pair in filter(None, u.query.split("&")):
        key, _, value = pair.partition("=")
        key = unquote(key)
        if key not in QUERY_ENV:
            raise ValueError(f"the parameter {key[:40]!r} is not one these programs pass on "
                             f"({', '.join(sorted(QUERY_ENV))})")
        env[QUERY_ENV[key]] = unquote(value)  # libpq's own decoding: %XX only, a + stays a +
    if any(ord(c) < 32 or ord(c) == 127 for v in env.values() for c in v):
        raise ValueError("a control character (a percent-encoded newline?) in it")
    return env


def pgpass_line(password: str) -> str:
    """Any host, port, database and user: the one database of this URL (libpq's escaping: \\ and :)."""
    return "*:*:*:*:" + password.replace("\\", "\\\\").replace(":", "\\:") + "\n"


class Access:
    def __init__(self, url: str, run_dir: str, what: str = "the database"):
        """ValueError, saying `what` and the fix (never a part of the URL), for a URL pg_env refuses."""
        try:
            env = pg_env(url)
        except ValueError as e:
            raise ValueError(f"the URL of {what} in the settings is unusable ({e}): check its variable in .env "
                             "and run deploy.py") from None
        self.password = env.pop("PGPASSWORD", None)
        self.env = env  # the variables docker passes by name (the values come from this environment)
        self.run_dir = run_dir
        self.path = ""

    def __enter__(self) -> Access:
        if self.password is not None:
            os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
            fd, self.path = tempfile.mkstemp(dir=self.run_dir, prefix="pgpass.")  # 0600 from its first byte
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(pgpass_line(self.password))
            except BaseException:  # a full /run: no half-written password left behind
                self.__exit__()
                raise
        return self

    def __exit__(self, *exc) -> None:
        if self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = ""

    def docker_run(self, stdin: bool = False) -> list[str]:
        """`docker run` on the host's network with docker_args (`-i`: a script on stdin); the image
        and its command follow."""
        return ["docker", "run", "--rm", *(["-i"] if stdin else []), "--network", "host", *self.docker_args()]

    def docker_args(self) -> list[str]:
        """`docker run` options: the variables by name, the password file mounted read-only."""
        out = [x for k in sorted(self.env) for x in ("-e", k)]
        if self.path:
            out += ["-v", f"{self.path}:{MOUNT}:ro", "-e", f"PGPASSFILE={MOUNT}"]
        return out
