"""Emergency deploy of another n8n version (forward or back), with automatic rollback.

n8n-deploy-version VERSION [--digest SHA256] [--runners-digest SHA256] [--smoke-webhook PATH] [--timeout SECONDS]

1. the image must be here before anything stops: pulled by the digest images.lock holds for it
   (--digest; Docker checks the bits) and tagged with its version, which the compose file runs;
   without --digest, only an image already on this server; the same for the task runners' image
   of that version (--runners-digest), where the stack has runners (external mode);
2. records the running version (N8N_VERSION in the stack's env file), the workflow count and
   n8n's migrations;
3. takes a backup snapshot (tag pre-deploy);
4. switches n8n to VERSION (N8N_VERSION in the env file, `compose up -d`), waits for
   /healthz/readiness, smoke test: the workflow count is unchanged and the smoke webhook (if
   given) answers 200;
5. on failure rolls back to the previous version and, when the failed version had migrated the
   database (migrations only go forward), restores the pre-deploy snapshot.
From step 4 on, Ctrl-C / a lost SSH session does not stop it: it always ends on a running n8n.
Every step is logged to the deploy log (settings deploy_log).
"""

from __future__ import annotations

import argparse
import os
import re

from . import common, envfile, queue_hold, redisconn
from .common import Fail, Log
from .run import CommandFailed, Result, Runner
from .settings import Settings
from .stack import Stack

VERSION_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
PROG = "n8n-deploy-version"
LOG_LINES = 15
WORKFLOWS_SQL = "select count(*) from workflow_entity"
MIGRATIONS_SQL = "select count(*) from migrations"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("version", nargs="?", default="", metavar="VERSION", help="the n8n version to run, like 2.41.1")
    p.add_argument("--smoke-webhook", default="", metavar="PATH",
                   help="a production webhook (/webhook/PATH) that must answer 200 on the new version")
    p.add_argument("--timeout", type=int, default=None, metavar="SECONDS",
                   help="how long n8n gets to be ready (default: the settings' ready_timeout)")
    p.add_argument("--digest", default="", metavar="SHA256",
                   help="the image's digest from images.lock (the emergency deploy runbook passes it): the "
                        "image is pulled by it; without it, only an image already on this server is used")
    p.add_argument("--runners-digest", default="", metavar="SHA256",
                   help="the same for the task runners' image of that version (a stack with external runners)")


def valid_version(version: str) -> bool:
    return bool(VERSION_RE.fullmatch(version))


def version_key(version: str) -> tuple[int, ...]:
    """2.41.10 > 2.41.9: a release's numbers compared as numbers (valid_version first)."""
    return tuple(int(x) for x in version.split("."))


def env_path(s: Settings) -> str:
    return os.path.join(s.stack_dir, s.env_file)


def main(ns, s: Settings, runner: Runner) -> int:
    log = Log(s.deploy_log)
    try:
        return _Deploy(ns, s, runner, log).run()
    except Fail as e:
        log.log(f"FAILED {e.message}")
        raise
    except CommandFailed as e:  # a step that must not fail did (the bash version's ERR trap)
        err = (e.result.stderr.strip().splitlines() or [""])[-1]
        message = f"{e}" + (f": {err}" if err else "")
        log.log(f"FAILED {message}")
        raise Fail(message, 1) from None
    finally:
        log.file.close()


class _Deploy:
    def __init__(self, ns, s: Settings, runner: Runner, log: Log):
        self.ns, self.s, self.r, self.log = ns, s, runner, log
        self.st = Stack(s, runner)
        self.timeout = s.ready_timeout if ns.timeout is None else ns.timeout
        self.new = ns.version
        self.smoke = ns.smoke_webhook

    # --- helpers ---------------------------------------------------------------------------
    def say(self, message: str) -> None:
        self.log.say(message)

    def count(self, sql: str) -> str:
        """A count from n8n's database, "" when it cannot be read (n8n's database mid-migration...)."""
        r = self.st.psql(sql, check=False)
        return r.stdout.strip() if r.ok else ""

    def to_log(self, argv: list[str], **kw) -> Result:
        """A command whose output (stdout and stderr) goes to the deploy log."""
        self.log.file.flush()
        return self.r.run(argv, stdout=self.log.file, log=self.log.file, check=False, **kw)

    def switch(self, version: str) -> Result:
        """N8N_VERSION in the env file, then `compose up -d` of n8n's services (it recreates them).
        In queue mode the workers are stopped first, on their own: each finishes its running
        executions while its task runner still serves it, and n8n's queue is held still for the
        moment they are told to stop (queue_hold.py: an execution one had just taken would be
        lost); `compose up -d` then starts them on the version."""
        envfile.update(env_path(self.s), {"N8N_VERSION": version})
        services = [*self.s.services, *self.s.runners]
        workers, r = list(self.s.workers), None
        if workers:
            with redisconn.connected(self.s) as redis:
                if redis is not None:  # queue mode
                    stop = [*self.s.compose, "stop", "-t", str(self.s.stop_seconds), *workers]
                    self.log.log(f"{' '.join(stop[len(self.s.compose):])} (n8n's queue held for the signal)")
                    r = queue_hold.held_stop(self.st, self.r, workers, redis, PROG,
                                             lambda: self.to_log(stop, cwd=self.s.stack_dir), say=self.say,
                                             warn=self.say)
        if r is not None and not r.ok:  # `compose up -d` stops them all the same, unheld
            self.say(f"WARNING stopping {', '.join(workers)} first failed (exit {r.returncode}, see "
                     f"{self.s.deploy_log}): `compose up -d` re-creates them")
        self.log.log(f"N8N_VERSION={version} in {env_path(self.s)}; compose up -d {' '.join(services)}")
        return self.to_log([*self.s.compose, "up", "-d", *services], cwd=self.s.stack_dir)

    def image_present(self, ref: str) -> bool:
        return self.r.run(["docker", "image", "inspect", ref], check=False).ok

    def has_digest(self, ref: str, digest: str) -> bool:
        """Is `ref` (repo:tag) on this server, and is it the image `digest` names?"""
        r = self.r.run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref], check=False)
        return r.ok and f"{ref.rpartition(':')[0]}@{digest}" in r.stdout

    def ensure_image(self, ref: str, digest: str, old: str, flag: str = "--digest") -> None:
        """`ref` on this server as the image `digest` names (pulled by it, then tagged `ref`, which the
        compose file runs); without a digest (`flag`), only an image already here."""
        if not digest:
            if self.image_present(ref):
                return
            raise Fail(f"image {ref} is not on this server and no {flag} was given: nothing was changed, n8n stays "
                       f"on {old} (the emergency deploy runbook passes images.lock's digest)", 3)
        if self.has_digest(ref, digest):
            return
        self.log.log(f"pulling {ref}@{digest}")
        repo = ref.rpartition(":")[0]
        if not (self.to_log(["docker", "pull", "-q", f"{ref}@{digest}"]).ok
                and self.to_log(["docker", "tag", f"{repo}@{digest}", ref]).ok and self.has_digest(ref, digest)):
            raise Fail(f"image {ref}@{digest} not pulled (see {self.s.deploy_log}): nothing was changed, n8n stays "
                       f"on {old}", 3)

    def pre_deploy_snapshot(self) -> str:
        r = self.r.run(["n8n-backup", "--tag", "pre-deploy", "--no-offsite"], check=False)
        out = (r.stdout + r.stderr).strip()
        if not r.ok:
            raise Fail(f"the pre-deploy backup failed, nothing was changed: {out}")
        ids = re.findall(r"snapshot ([0-9a-f]{8})", out)
        if not ids:
            raise Fail(f"the pre-deploy backup failed, nothing was changed: it named no snapshot: {out}")
        return ids[-1]

    # --- the deploy ------------------------------------------------------------------------
    def run(self) -> int:
        s, new = self.s, self.new
        if not valid_version(new):
            raise Fail(f"the version must look like 2.41.1, not '{new}'", 2)
        for flag, value in (("--digest", self.ns.digest), ("--runners-digest", self.ns.runners_digest)):
            if value and not DIGEST_RE.fullmatch(value):
                raise Fail(f"{flag} must look like sha256:<64 hex digits>, not '{value}'", 2)
        if not self.st.container_id("n8n"):
            raise Fail("no n8n stack on this host: provision it with deploy.py first", 4)
        path = env_path(s)
        try:
            old = envfile.read(path).get("N8N_VERSION", "").strip()
        except OSError:
            old = ""
        if not old:
            raise Fail(f"cannot tell the running version from {path}", 4)
        if old == new:
            self.say(f"n8n is already on {new}: nothing to do")
            return 0
        t0 = self.r.now()
        self.log.log(f"deploy {new} (running {old})")

        # 1. the image, before anything is stopped
        self.ensure_image(f"{s.n8n_image_repo}:{new}", self.ns.digest, old)
        if s.runners:
            self.ensure_image(f"{s.runners_image_repo}:{new}", self.ns.runners_digest, old, "--runners-digest")

        # 2.-3. what is there now, and a snapshot of it
        wf_before = self.st.scalar(WORKFLOWS_SQL)
        mig_before = self.st.scalar(MIGRATIONS_SQL)
        snap = self.pre_deploy_snapshot()
        self.say(f"running {old} with {wf_before} workflows; pre-deploy snapshot {snap}")

        # 4. switch (from here on, interruptions are ignored: it ends on a running version)
        common.ignore_interrupts()
        reason = ""
        up = self.switch(new)
        if not up.ok:
            reason = f"`compose up -d` of n8n {new} failed (exit {up.returncode}, see {s.deploy_log})"
        elif not self.st.wait_ready(self.timeout, interval=1):
            reason = f"n8n {new} was not ready within {self.timeout}s"
        elif self.count(WORKFLOWS_SQL) != wf_before:
            reason = f"the workflow count changed ({wf_before} before)"
        elif self.smoke and self.st.http_status(f"webhook/{self.smoke}") != "200":
            reason = f"the smoke webhook /webhook/{self.smoke} did not answer 200"
        if not reason:
            smoke = ", smoke webhook ok" if self.smoke else ""
            self.say(f"deployed {new} (was {old}): ready, {wf_before} workflows{smoke} in {int(self.r.now() - t0)}s")
            self.say(f'keep it: set n8n_version = "{new}" in group_data, '
                     "or the next deploy.py goes back to its version")
            return 0

        # 5. roll back
        self.say(f"rolling back to {old}: {reason}")
        for line in self.st.logs("n8n", LOG_LINES):
            self.say(f"  {line}")
        mig_after = self.count(MIGRATIONS_SQL) or mig_before
        self.switch(old)  # a failure shows below: not ready, or the restore fails
        if mig_after != mig_before:
            self.say(f"{new} had migrated the database ({mig_before} -> {mig_after} migrations): "
                     f"restoring snapshot {snap}")
            r = self.to_log(["n8n-restore", "--snapshot", snap, "--from", "local", "--no-safety-snapshot"])
            if not r.ok:
                raise Fail(f"ROLLBACK INCOMPLETE: restoring snapshot {snap} failed; n8n-restore --snapshot {snap} "
                           f"(see {s.deploy_log})")
            restored = f", database restored from snapshot {snap}"
        else:
            if not self.st.wait_ready(self.timeout, interval=1):
                raise Fail(f"ROLLBACK INCOMPLETE: n8n {old} is not ready either; "
                           f"see `{' '.join(s.compose)} logs n8n`")
            restored = ""
        workflows = self.count(WORKFLOWS_SQL) or "?"
        raise Fail(f"{reason}; rolled back to {old} (ready, {workflows} workflows{restored}) "
                   f"in {int(self.r.now() - t0)}s", 1)
