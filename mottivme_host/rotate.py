"""Rotate the secrets named in a file (PostgreSQL's and restic's passwords): applied, verified, then kept.

n8n-rotate-secrets NEW_VALUES_FILE

NEW_VALUES_FILE is a 0600 file of NAME=value lines: POSTGRES_PASSWORD, RESTIC_PASSWORD. Each new
value is applied, verified, and only then kept; on any failure the old value is put back and
stays in force. N8N_ENCRYPTION_KEY is never rotated (n8n could no longer decrypt its
credentials). The file is removed on every exit, and no secret is printed or put in a command
line (psql gets the new password on stdin, the connection test in its environment).
Ctrl-C or a lost SSH session does not stop it halfway: each rotation ends verified or rolled back.

restic: every repository (local and off-host) must open with the current password first; one
that cannot be opened for any reason other than "there is no repository there yet" stops the
rotation before anything changes (a repository left on the old password would be orphaned).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from urllib.parse import quote

from . import common, envfile, restic, secret_age
from .common import Fail, out_line
from .pgaccess import Access
from .run import Runner
from .settings import Settings
from .stack import Stack

BEFORE = ".env.before-rotation"  # in stack_dir: the env file as it was, until the rotation is verified


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("values_file", metavar="NEW_VALUES_FILE",
                   help="a 0600 file of NAME=value lines (POSTGRES_PASSWORD, RESTIC_PASSWORD); removed on exit")


def main(ns, s: Settings, runner: Runner) -> int:
    common.ignore_interrupts()
    try:
        try:
            values = envfile.read(ns.values_file)
        except OSError as e:
            raise Fail(f"cannot read {ns.values_file}: {e.strerror}") from None
        if "N8N_ENCRYPTION_KEY" in values:
            raise Fail("N8N_ENCRYPTION_KEY is never rotated: n8n encrypts every credential with it")
        try:
            if "POSTGRES_PASSWORD" in values:
                _Postgres(s, runner).rotate(values["POSTGRES_PASSWORD"])
            if "RESTIC_PASSWORD" in values:
                _Restic(s, runner).rotate(values["RESTIC_PASSWORD"])
        finally:  # what did rotate (postgres, when restic then failed) starts its days; what rolled back did not
            _record_ages(s, runner)
        return 0
    finally:
        try:  # the new values do not stay on the host, even when the caller is gone
            os.unlink(ns.values_file)
        except FileNotFoundError:
            pass



def _record_ages(s: Settings, runner: Runner) -> None:
    """The new values start their 90 days today, and the monitor hears it now (its secret-age
    warning clears). Not a reason to fail a rotation that is done: cron records them daily."""
    try:
        old = secret_age.oldest(secret_age.refresh(s))
        if old is not None:
            secret_age.report(s, runner, old[1])
    except Exception as e:  # noqa: BLE001 - never turns a rotation that is done into a failure
        out_line(f"secret ages not recorded now ({e}); cron records them within a day")


def _copy_private(src: str, dst: str) -> None:
    """`cp` of a secrets file into a file created 0600 (never readable by others, even briefly)."""
    with open(src) as f:
        text = f.read()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # it may have existed with another mode
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


class _Postgres:
    def __init__(self, s: Settings, runner: Runner):
        self.s, self.r, self.st = s, runner, Stack(s, runner)
        self.env = os.path.join(s.stack_dir, s.env_file)
        self.before = os.path.join(s.stack_dir, BEFORE)

    def set_role(self, password: str) -> bool:
        """The role's password, through the container's local socket; the statement on stdin."""
        user = self.s.postgres_user.replace('"', '""')
        sql = f"alter role \"{user}\" password '{password.replace(chr(39), chr(39) * 2)}';\n"
        r = self.st.compose("exec", "-T", "postgres", "psql", "-U", self.s.postgres_user, "-d", "postgres", "-qX",
                            "-v", "ON_ERROR_STOP=1", input=sql, check=False)
        return r.ok  # its output is never shown: an error message may quote the statement

    def password_works(self, password: str) -> bool:
        """A connection from the stack's network, as n8n connects (inside the postgres container
        loopback is trusted, so that would prove nothing). The password in a pgpass file only."""
        s = self.s
        url = f"postgresql://{quote(s.postgres_user, safe='')}:{quote(password, safe='')}@postgres/postgres"
        with Access(url, s.run_dir) as db:
            r = self.r.run(["docker", "run", "--rm", "--network", s.backend_network, *db.docker_args(),
                            s.postgres_image, "psql", "-Atc", "select 1"], env=db.env, check=False)
        return r.ok

    def up(self) -> bool:
        return self.st.compose("up", "-d", check=False).ok

    def ready(self) -> bool:
        return self.st.wait_ready(self.s.ready_timeout, interval=1)

    def rollback(self, why: str, old: str):
        role_back = self.set_role(old)
        os.replace(self.before, self.env)
        if self.up():
            self.ready()
        if not role_back:
            return Fail(f"postgres: {why}; ROLLBACK INCOMPLETE: the old password could not be set back on the role "
                        f"(.env has the old one again)")
        return Fail(f"postgres: {why}; the old password is back in force")

    def rotate(self, new: str) -> None:
        try:
            old = envfile.read(self.env).get("POSTGRES_PASSWORD", "")
        except OSError as e:
            raise Fail(f"postgres: cannot read {self.env}: {e.strerror}") from None
        if not old:
            raise Fail(f"postgres: no POSTGRES_PASSWORD in {self.env}: nothing was rotated")
        if old == new:
            out_line("postgres: already rotated")
            return
        _copy_private(self.env, self.before)
        if not self.set_role(new):
            os.unlink(self.before)
            raise Fail("postgres: the new password could not be set on the role: nothing was changed")
        envfile.update(self.env, {"POSTGRES_PASSWORD": new, "DB_POSTGRESDB_PASSWORD": new})
        if not self.up():
            raise self.rollback("compose up failed", old)
        if not self.ready():
            raise self.rollback("n8n not ready with the new password", old)
        if self.password_works(old):
            raise self.rollback("the old password still works", old)
        if not self.password_works(new):
            raise self.rollback("the new password does not work", old)
        os.unlink(self.before)
        out_line("postgres: password rotated, n8n ready, the old password is refused")


class _Restic:
    def __init__(self, s: Settings, runner: Runner):
        if s.backup is None:
            raise Fail("restic: this host keeps no backups (no backup settings): nothing to rotate")
        self.s, self.b, self.r = s, s.backup, runner

    def repo(self, url: str, password_file: str | None = None) -> restic.Repo:
        return restic.Repo(url, self.b, self.r, password_file=password_file)

    def current_password(self) -> str | None:
        try:
            with open(self.b.password_file) as f:
                return f.read().rstrip("\n")
        except FileNotFoundError:
            return None

    def rotate(self, new: str) -> None:
        if not new or "\n" in new:
            raise Fail("restic: the new password must be one non-empty line: nothing was rotated")
        if self.current_password() == new:
            out_line("restic: already rotated")
            return
        urls = [u for u in (self.b.local_repository, *self.b.offsite_repositories) if u]
        # 1. every repository must open with the current password; none is changed before that
        present = []
        for url in urls:
            r = self.repo(url).opens()
            if r.ok:
                present.append(url)
            elif not restic.no_repository(r.stderr):
                raise Fail(f"restic: cannot open {url} ({restic.first_error(r.stderr)}): nothing was rotated, "
                           "the old password stays in force")
            # no repository there yet: the next backup creates it, with the new password
        # 2. add the new key to each and check it opens it (both keys open it until step 4)
        fd, newfile = tempfile.mkstemp(dir=os.path.dirname(self.b.password_file) or ".", prefix=".restic-new-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(new + "\n")
            for url in present:
                if self.repo(url, newfile).opens().ok:
                    continue  # an earlier, interrupted run added it already
                r = self.repo(url).run("key", "add", "--new-password-file", newfile, check=False)
                if not r.ok:
                    raise Fail(f"restic: could not add the new key to {url} ({restic.first_error(r.stderr)}); "
                               "the old password stays in force")
                if not self.repo(url, newfile).opens().ok:
                    raise Fail(f"restic: the new key does not open {url}; the old password stays in force")
        finally:
            os.unlink(newfile)
        # 3. the new password from now on
        common.write_private(self.b.password_file, new + "\n")
        # 4. then the old keys go
        left, kept = [], []
        for url in present:
            repo = self.repo(url)
            if repo.append_only:  # nothing can be removed there from here: the vault's prune does it
                kept.append(url)
                continue
            r = repo.run("key", "list", "--json", check=False)
            try:
                keys = json.loads(r.stdout) if r.ok else None
            except ValueError:
                keys = None
            if not isinstance(keys, list):
                left.append(url)
                continue
            for key in keys:
                if not key.get("current") and not repo.run("key", "remove", str(key.get("id")), check=False).ok:
                    left.append(url)
        if left:
            raise Fail(f"restic: the new password is in force, but an old key could not be removed from "
                       f"{', '.join(dict.fromkeys(left))}: remove it by hand (restic key list, restic key remove ID)")
        if kept:
            out_line(f"restic: password rotated in {len(present)} repositories; the old key removed, except from "
                     f"{', '.join(kept)} (append-only: `mottivme vault-prune --old-keys remove` removes it there)")
            return
        out_line(f"restic: password rotated in {len(present)} repositories, the old key removed")
