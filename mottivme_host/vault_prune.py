"""Prune the backup vault's repositories: the retention the n8n servers cannot apply there.

mottivme-host vault-prune PASSWORD_FILE [--old-keys keep|remove]

The vault's REST server is append-only: an n8n server can add snapshots to its repository but
never delete one, so its backup skips `restic forget` there. This runs on the vault itself (the
runbook runbooks/vault_prune.py brings the restic password for the run, in a 0600 file it removes
after) and applies the same retention as the n8n servers' (settings `vault.keep`), repository by
repository, as the REST server's own user so the files keep their owner. It touches the files
directly (no REST server involved), prints each repository's snapshots before and after, and
exits 1 when any repository could not be pruned (the others are still done). PASSWORD_FILE is
removed as soon as it is read.

A repository holding a snapshot whose own time is more than a day from its arrival at the vault
is not pruned (named, exit 1): an account can add snapshots dated as it likes, and a retention
that keeps the newest of each period would keep such fakes and forget the real ones.

--old-keys remove: also remove every key of a repository but the one PASSWORD_FILE opens - what a
password rotation leaves there (it cannot remove the old key through the append-only server).
Default keep: they are counted and named.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re

from .common import Fail, out_line
from .restic import first_error, wrong_password
from .run import Runner
from .settings import Settings

MAX_SKEW_SECONDS = 24 * 3600  # a snapshot's own time vs its arrival at the vault


def parse_time(text: str) -> float | None:
    """restic's snapshot time (RFC 3339, nanoseconds) as a Unix time; None when unreadable."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.strip()).replace("Z", "+00:00")
    try:
        t = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return t.timestamp() if t.tzinfo else None


def add_arguments(p) -> None:
    p.add_argument("password_file", metavar="PASSWORD_FILE", help="the restic password, one line (0600)")
    p.add_argument("--old-keys", dest="old_keys", choices=("keep", "remove"), default="keep",
                   help="keep (default) or remove the keys other than PASSWORD_FILE's (left by a rotation)")


def repositories(path: str) -> list[str]:
    """The repositories under the vault's directory: each account's directory holding a `config`."""
    try:
        names = sorted(os.listdir(path))
    except FileNotFoundError:
        return []
    return [n for n in names if os.path.isfile(os.path.join(path, n, "config"))]


class _Prune:
    def __init__(self, ns, s: Settings, runner: Runner):
        if s.vault is None:
            raise Fail("this server is not the backup vault (no vault settings)")
        self.ns, self.v, self.r = ns, s.vault, runner

    def restic(self, repo: str, *args: str):
        """restic as the REST server's user (the files keep their owner), the password on its stdin
        (PASSWORD_FILE is root's: never in that user's reach, argv or environment)."""
        env = {"RESTIC_REPOSITORY": os.path.join(self.v.path, repo)}
        return self.r.run(["runuser", "-u", self.v.user, "--", "restic", "--no-cache", *args], env=env,
                          input=self.password + "\n", check=False)

    def snapshots(self, repo: str) -> list[dict] | None:
        res = self.restic(repo, "snapshots", "--json", "--no-lock")
        try:
            return json.loads(res.stdout or "[]") or [] if res.ok else None
        except ValueError:
            return None

    def forged(self, repo: str, snaps: list[dict]) -> str | None:
        """A snapshot whose own time is not when it reached the vault (its file's modification
        time, which the REST server sets and no client can): an account can add snapshots dated
        as it likes, and the retention keeps the newest of each period - so dated fakes would
        make this prune forget the real ones. The servers copy each snapshot right after making
        it, so the two agree within minutes."""
        for snap in snaps:
            try:
                arrived = os.stat(os.path.join(self.v.path, repo, "snapshots", snap.get("id", ""))).st_mtime
            except OSError:
                continue  # listed by restic, so it is there; a race with a backup at worst
            made = parse_time(snap.get("time", ""))
            if made is None or abs(arrived - made) > MAX_SKEW_SECONDS:
                return (f"snapshot {snap.get('short_id') or snap.get('id', '')[:8]} says it was made "
                        f"{snap.get('time', '?')[:19]} but reached the vault {_dt.datetime.fromtimestamp(arrived).astimezone().isoformat()[:19]}: refusing to "
                        "prune (forged dates could make the retention keep fakes and forget the real snapshots); "
                        "look at it with restic snapshots before anything else")
        return None

    def prune(self, repo: str) -> str | None:
        """None when done, else why not."""
        snaps = self.snapshots(repo)
        if snaps is None:
            res = self.restic(repo, "cat", "config", "--no-lock")
            return ("the restic password does not open it" if wrong_password(res.stderr)
                    else first_error(res.stderr) or "restic cannot list its snapshots")
        why = self.forged(repo, snaps)
        if why:
            return why
        before = len(snaps)
        res = self.restic(repo, "forget", "--tag", "n8n", "--group-by", "host,tags", *self.v.keep.args(), "--prune")
        if not res.ok:
            return f"restic forget --prune failed: {first_error(res.stderr)}"
        after = len(self.snapshots(repo) or [])
        keys, failed = self.keys(repo)
        out_line(f"{repo}: {before} snapshots, {after} kept ({self.v.keep.describe()}){keys}")
        return failed

    def keys(self, repo: str) -> tuple[str, str | None]:
        """(what the repository's line says of its keys, why a removal asked for failed or None)."""
        res = self.restic(repo, "key", "list", "--json", "--no-lock")
        try:
            keys = json.loads(res.stdout) if res.ok else None
        except ValueError:
            keys = None
        if not isinstance(keys, list):
            return "; its keys could not be listed", ("its keys could not be listed" if self.ns.old_keys == "remove"
                                                      else None)
        others = [str(k.get("id", ""))[:8] for k in keys if not k.get("current")]
        if not others:
            return "", None
        if self.ns.old_keys == "keep":
            return f"; {len(others)} other key(s) kept ({', '.join(others)}: --old-keys remove removes them)", None
        failed = [k for k in others if not self.restic(repo, "key", "remove", k).ok]
        if failed:
            return "", f"pruned, but the other key(s) {', '.join(failed)} could not be removed"
        return f"; {len(others)} other key(s) removed ({', '.join(others)})", None

    def main(self) -> int:
        try:
            with open(self.ns.password_file) as f:
                self.password = f.read().strip()
            os.unlink(self.ns.password_file)  # read once: the vault keeps no copy, whatever happens next
        except OSError as e:
            raise Fail(f"cannot read the password file {self.ns.password_file} ({e.strerror})") from None
        if not self.password:
            raise Fail(f"the password file {self.ns.password_file} is empty")
        repos = repositories(self.v.path)
        if not repos:
            out_line(f"vault-prune: no repository under {self.v.path} yet: nothing to prune")
            return 0
        failed = []
        for repo in repos:
            why = self.prune(repo)
            if why:
                out_line(f"{repo}: NOT pruned: {why}")
                failed.append(repo)
        if failed:
            done = len(repos) - len(failed)
            raise Fail(f"{len(failed)} of {len(repos)} repositories not pruned ({', '.join(failed)})"
                       + (f"; {done} pruned" if done else ""))
        out_line(f"vault-prune: {len(repos)} repositories pruned")
        return 0


def main(ns, s: Settings, runner: Runner) -> int:
    return _Prune(ns, s, runner).main()
