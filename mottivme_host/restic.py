"""restic, as the backup, restore and rotation call it: one repository at a time, by URL."""

from __future__ import annotations

import json

from .run import Result, Runner
from .settings import Backup


class Repo:
    def __init__(self, url: str, b: Backup, runner: Runner, password_file: str | None = None):
        self.url, self.b, self.r = url, b, runner
        self.password_file = password_file or b.password_file

    @property
    def options(self) -> list[str]:
        return ["-o", f"sftp.command={self.b.sftp_command}"] if self.url.startswith("sftp:") and self.b.sftp_command else []

    def env(self, **extra) -> dict:
        env = {"RESTIC_REPOSITORY": self.url, "RESTIC_PASSWORD_FILE": self.password_file}
        env.update({k: str(v) for k, v in self.b.env.items()})
        env.update(extra)
        return env

    def run(self, *args: str, check: bool = True, env: dict | None = None, **kw) -> Result:
        return self.r.run(["restic", *self.options, *args], env=self.env(**(env or {})), check=check, **kw)

    def opens(self) -> Result:
        """`restic cat config --no-lock` (no lock: it works on a full disk and beside a backup)."""
        return self.run("cat", "config", "--no-lock", check=False)

    def snapshots(self, *tags: str) -> list[dict]:
        args = ["snapshots", "--json"] + [a for t in tags for a in ("--tag", t)]
        return json.loads(self.run(*args).stdout or "[]") or []

    def forget_args(self, host: str) -> list[str]:
        return ["forget", "--host", host, "--tag", "n8n", "--group-by", "host,tags", *self.b.keep.args(), "--prune"]


def no_repository(stderr: str) -> bool:
    """restic's words for "there is no repository at that URL" (as opposed to any other error)."""
    return "unable to open config file" in stderr or "Is there a repository" in stderr


def wrong_password(stderr: str) -> bool:
    return "wrong password" in stderr or "no key found" in stderr


def first_error(stderr: str) -> str:
    for line in stderr.splitlines():
        if "fatal" in line.lower() or "error" in line.lower():
            return line.strip()
    return (stderr.strip().splitlines() or [""])[0]
