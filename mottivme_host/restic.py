"""restic, as the backup, restore and rotation call it: one repository at a time, by URL."""

from __future__ import annotations

import json

from .run import CommandFailed, Result, Runner
from .settings import Backup

PROBE_SECONDS = 10
# in the backup directory: the id of this server's last snapshot in its local repository and the
# host name it was made under (n8n-backup writes it; n8n-restore fetches that snapshot early)
LAST_SNAPSHOT = "last-snapshot"
VAULT_DOWN = "Fatal: the vault does not answer"


class Repo:
    """`url` is what logs and reports show: for the vault (rest:), without this server's password."""

    def __init__(self, url: str, b: Backup, runner: Runner, password_file: str | None = None):
        self.url, self.b, self.r = url, b, runner
        self.password_file = password_file or b.password_file
        self._down: str | None = None  # the vault's answer to one quick probe, asked once

    def vault_down(self) -> str | None:
        """Why the vault does not answer (one quick probe, at most PROBE_SECONDS), or None.
        restic retries a REST server it cannot connect to for 15 minutes before it gives up; a
        vault that is down should fail the copy, the restore's lookup or the rotation at once."""
        if not self.is_vault:
            return None
        if self._down is None:
            server = self.url.split("@", 1)[1].split("/", 1)[0]
            res = self.r.run(["curl", "-sS", "-o", "/dev/null", "--max-time", str(PROBE_SECONDS),
                              "--cacert", self.b.vault_cert_file, f"https://{server}/"], check=False)
            # any answer over TLS with the trusted certificate (an HTTP status: curl exits 0) is up;
            # everything else (no such name, refused, no answer in time, a certificate that is not
            # the one this server trusts) restic would retry for 15 minutes
            why = (res.stderr.strip().splitlines() or [f"curl exited {res.returncode}"])[-1]
            if res.returncode in (35, 51, 58, 60):
                why += (" - the vault's certificate is not the one this server trusts: deploy again "
                        "(BACKUP_VAULT_SECRET or the vault's address changed?)")
            self._down = why if not res.ok else ""
        return self._down or None

    @property
    def is_vault(self) -> bool:
        return self.url.startswith("rest:") and bool(self.b.vault_password_file)

    @property
    def append_only(self) -> bool:
        """Nothing can be deleted there from this server: retention and old keys are the vault's prune."""
        return self.url in self.b.append_only_repositories

    @property
    def options(self) -> list[str]:
        return ["--cacert", self.b.vault_cert_file] if self.is_vault and self.b.vault_cert_file else []

    def restic_url(self) -> str:
        """The URL restic gets (in its environment, never argv): the vault's with the password."""
        if not self.is_vault:
            return self.url
        with open(self.b.vault_password_file) as f:
            password = f.read().strip()
        scheme, rest = self.url.split("://", 1)
        account, at_host = rest.split("@", 1)
        return f"{scheme}://{account}:{password}@{at_host}"

    def env(self, **extra) -> dict:
        env = {"RESTIC_REPOSITORY": self.restic_url(), "RESTIC_PASSWORD_FILE": self.password_file}
        env.update({k: str(v) for k, v in self.b.env.items()})
        env.update(extra)
        return env

    def run(self, *args: str, check: bool = True, env: dict | None = None, **kw) -> Result:
        argv = ["restic", *self.options, *args]
        down = self.vault_down()
        if down:
            res = Result(argv, 1, "", f"{VAULT_DOWN}: {down}\n")
            if kw.get("log"):
                kw["log"].write(res.stderr)
            if check:
                raise CommandFailed(res)
            return res
        return self.r.run(argv, env=self.env(**(env or {})), check=check, **kw)

    def opens(self) -> Result:
        """`restic cat config --no-lock` (no lock: it works on a full disk and beside a backup)."""
        return self.run("cat", "config", "--no-lock", check=False)

    def snapshots(self, *tags: str) -> list[dict]:
        args = ["snapshots", "--json"] + [a for t in tags for a in ("--tag", t)]
        return json.loads(self.run(*args).stdout or "[]") or []

    def forget_args(self) -> list[str]:
        """Retention. Every repository a server forgets in is its own (the local one, its S3 path),
        so no --host: snapshots an earlier name made (the machine's hostname, before the
        inventory name) age out too, grouped apart."""
        return ["forget", "--tag", "n8n", "--group-by", "host,tags", *self.b.keep.args(), "--prune"]


def no_repository(stderr: str) -> bool:
    """restic's words for "there is no repository at that URL" (as opposed to any other error)."""
    return "unable to open config file" in stderr or "Is there a repository" in stderr


def vault_down(stderr: str) -> bool:
    return VAULT_DOWN in stderr


def wrong_password(stderr: str) -> bool:
    return "wrong password" in stderr or "no key found" in stderr


def first_error(stderr: str) -> str:
    for line in stderr.splitlines():
        if "fatal" in line.lower() or "error" in line.lower():
            return line.strip()
    return (stderr.strip().splitlines() or [""])[0]
