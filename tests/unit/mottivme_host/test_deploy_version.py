"""n8n-deploy-version (mottivme_host/deploy_version.py) and `mottivme-host set-version`
(mottivme_host/set_version.py) driven by the recording fake: the version lives in the stack's env
file (N8N_VERSION), the image comes first, a snapshot before the switch, the rollback decisions."""

from __future__ import annotations

import os
import re
import threading

import pytest

from mottivme_host import cli, common, envfile, queue_hold, redisconn, settings
from tests.helpers import Call, FakeRunner, Queue

OLD, NEW = "2.41.1", "2.41.0"
REPO = "docker.n8n.io/n8nio/n8n"
SNAP = "1a2b3c4d"
ENV = (f"# the stack's secrets\nN8N_VERSION={OLD}\nN8N_ENCRYPTION_KEY=k3y\nPOSTGRES_PASSWORD=pg-pass\n"
       "DB_POSTGRESDB_PASSWORD=pg-pass\n")




@pytest.fixture
def env_file(tmp_path):
    stack = tmp_path / "stack"
    stack.mkdir()
    f = stack / ".env"
    f.write_text(ENV)
    f.chmod(0o600)
    return f


def make_settings(tmp_path, **kw):
    data = {"stack_dir": str(tmp_path / "stack"), "services": ["n8n", "n8n-worker-1"], "n8n_host": "n8n.test",
            "ready_timeout": 30, "deploy_log": str(tmp_path / "log" / "n8n-deploy.log")}
    data.update(kw)
    return settings.from_dict(data)


def version_in(env_file) -> str:
    return envfile.read(str(env_file))["N8N_VERSION"]


class Stack:
    """n8n as the fake answers for it: readiness, the workflow and migration counts, per the version
    in the env file at the moment of the call (what `compose up -d` would be running)."""

    def __init__(self, fake: FakeRunner, env_file, ready=(OLD, NEW), workflows=None, migrations=None):
        self.env_file = env_file
        self.workflows = {OLD: "5", NEW: "5"} | (workflows or {})
        self.migrations = {OLD: "100", NEW: "100"} | (migrations or {})
        self.ready = ready
        self.env_at: dict[str, list[str]] = {}  # command -> the version in the env file when it ran
        fake.on("ps -q n8n", stdout="cid-n8n\n")
        fake.on("n8n-backup --tag pre-deploy --no-offsite",
                call=self.at("backup", (0, f"backup ok: snapshot {SNAP} (5 workflows) off-host: none in 3s\n", "")))
        fake.on("up -d", call=self.at("up"))
        fake.on("select count(*) from workflow_entity", call=lambda a, k: (0, self.workflows[self.v()] + "\n", ""))
        fake.on("select count(*) from migrations", call=lambda a, k: (0, self.migrations[self.v()] + "\n", ""))
        fake.on("healthz/readiness", call=lambda a, k: (0, "200" if self.v() in self.ready else "502", ""))
        fake.on("logs --no-color --tail 15 n8n", stdout="n8n | Error: migration failed\n")

    def v(self) -> str:
        return version_in(self.env_file)

    def at(self, name, result=None):
        def call(argv, kw):
            self.env_at.setdefault(name, []).append(self.v())
            return result
        return call


@pytest.fixture
def fake(monkeypatch):
    f = FakeRunner()
    # the real one would make this very pytest process deaf to Ctrl-C; recorded in the command order
    monkeypatch.setattr(common, "ignore_interrupts", lambda: f.calls.append(Call(["<ignore interrupts>"])))
    return f


def deploy(fake, s, *args):
    return cli.main(["n8n-deploy-version", *args], runner=fake, settings=s)


def deploy_log(s) -> str:
    with open(s.deploy_log) as f:
        return f.read()


# --- nothing to do, nothing possible -----------------------------------------------------------
@pytest.mark.parametrize("version", ["2.41", "latest", "2.41.1-beta", "", "2.41.1; rm -rf /"])
def test_a_bad_version_exits_2_and_runs_nothing(tmp_path, env_file, fake, capsys, version):
    assert deploy(fake, make_settings(tmp_path), version) == 2
    assert capsys.readouterr().err == f"n8n-deploy-version: FAILED the version must look like 2.41.1, not '{version}'\n"
    assert fake.calls == [] and env_file.read_text() == ENV


def test_the_running_version_again_does_nothing(tmp_path, env_file, fake, capsys):
    Stack(fake, env_file)
    s = make_settings(tmp_path)
    assert deploy(fake, s, OLD) == 0
    assert capsys.readouterr().out == f"n8n is already on {OLD}: nothing to do\n"
    assert fake.commands() == ["docker compose -p n8n ps -q n8n"]
    assert env_file.read_text() == ENV
    assert f"n8n is already on {OLD}: nothing to do" in deploy_log(s)


def test_no_n8n_container_exits_4(tmp_path, env_file, fake, capsys):
    assert deploy(fake, make_settings(tmp_path), NEW) == 4
    assert "FAILED no n8n stack on this host: provision it with deploy.py first" in capsys.readouterr().err


def test_no_version_in_the_env_file_exits_4(tmp_path, env_file, fake, capsys):
    Stack(fake, env_file)
    env_file.write_text("POSTGRES_PASSWORD=x\n")
    s = make_settings(tmp_path)
    assert deploy(fake, s, NEW) == 4
    err = capsys.readouterr().err
    assert f"FAILED cannot tell the running version from {env_file}" in err
    assert f"FAILED cannot tell the running version from {env_file}" in deploy_log(s)
    assert not fake.ran("up -d")


DIGEST = "sha256:" + "d" * 64


def test_an_image_its_registry_does_not_serve_exits_3_and_changes_nothing(tmp_path, env_file, fake, capsys):
    st = Stack(fake, env_file)
    fake.on(f"docker image inspect --format {{{{json .RepoDigests}}}} {REPO}:{NEW}", rc=1, stderr="No such image\n")
    fake.on("docker pull", rc=1, stderr="manifest unknown\n")
    s = make_settings(tmp_path)
    assert deploy(fake, s, NEW, "--digest", DIGEST) == 3
    assert capsys.readouterr().err == (f"n8n-deploy-version: FAILED image {REPO}:{NEW}@{DIGEST} not pulled (see "
                                       f"{s.deploy_log}): nothing was changed, n8n stays on {OLD}\n")
    assert fake.ran(f"docker pull -q {REPO}:{NEW}@{DIGEST}")
    assert env_file.read_text() == ENV
    assert "backup" not in st.env_at and not fake.ran("up -d") and not fake.ran("<ignore interrupts>")


def test_the_image_is_pulled_by_its_digest_and_tagged_with_its_version(tmp_path, env_file, fake):
    Stack(fake, env_file)
    inspect = f"docker image inspect --format {{{{json .RepoDigests}}}} {REPO}:{NEW}"
    fake.on(inspect, stdout=f'["{REPO}@{DIGEST}"]\n')  # (the rule added last is asked first)
    fake.on(inspect, rc=1, stderr="No such image\n", times=1)
    assert deploy(fake, make_settings(tmp_path), NEW, "--digest", DIGEST) == 0
    pull = fake.ran(f"docker pull -q {REPO}:{NEW}@{DIGEST}")
    assert pull and fake.ran(f"docker tag {REPO}@{DIGEST} {REPO}:{NEW}")
    assert version_in(env_file) == NEW


RUNNERS = "n8nio/runners"
RUNNERS_DIGEST = "sha256:" + "f" * 64


def test_with_external_runners_their_image_of_the_version_comes_too_and_they_switch_with_n8n(tmp_path, env_file, fake,
                                                                                            capsys):
    st = Stack(fake, env_file)
    for repo, digest in ((REPO, DIGEST), (RUNNERS, RUNNERS_DIGEST)):
        inspect = f"docker image inspect --format {{{{json .RepoDigests}}}} {repo}:{NEW}"
        fake.on(inspect, stdout=f'["{repo}@{digest}"]\n')
        fake.on(inspect, rc=1, stderr="No such image\n", times=1)
    s = make_settings(tmp_path, runners=["n8n-worker-1-runners"], runners_image_repo=RUNNERS)
    assert deploy(fake, s, NEW, "--digest", DIGEST, "--runners-digest", RUNNERS_DIGEST) == 0
    assert fake.ran(f"docker pull -q {RUNNERS}:{NEW}@{RUNNERS_DIGEST}")
    assert fake.ran(f"docker tag {RUNNERS}@{RUNNERS_DIGEST} {RUNNERS}:{NEW}")
    # both images before anything stops; the runners re-created on the new version with n8n
    assert fake.index(f"docker pull -q {RUNNERS}") < fake.index("n8n-backup") < fake.index("up -d")
    assert fake.calls[fake.index("up -d")].argv[-3:] == ["n8n", "n8n-worker-1", "n8n-worker-1-runners"]
    assert st.env_at["up"] == [NEW]


def test_a_runners_image_that_cannot_be_pulled_changes_nothing(tmp_path, env_file, fake, capsys):
    st = Stack(fake, env_file)
    fake.on(f"docker image inspect --format {{{{json .RepoDigests}}}} {REPO}:{NEW}", stdout=f'["{REPO}@{DIGEST}"]\n')
    fake.on(f"docker image inspect --format {{{{json .RepoDigests}}}} {RUNNERS}:{NEW}", rc=1, stderr="No such image\n")
    fake.on(f"docker pull -q {RUNNERS}", rc=1, stderr="manifest unknown\n")
    s = make_settings(tmp_path, runners=["n8n-worker-1-runners"], runners_image_repo=RUNNERS)
    assert deploy(fake, s, NEW, "--digest", DIGEST, "--runners-digest", RUNNERS_DIGEST) == 3
    assert f"FAILED image {RUNNERS}:{NEW}@{RUNNERS_DIGEST} not pulled" in capsys.readouterr().err
    assert env_file.read_text() == ENV and "backup" not in st.env_at and not fake.ran("up -d")


def test_an_image_here_under_its_version_but_not_the_locked_one_is_pulled_again(tmp_path, env_file, fake):
    """The tag on this server names other bits (pulled by hand, say): the locked ones replace it."""
    Stack(fake, env_file)
    inspect = f"docker image inspect --format {{{{json .RepoDigests}}}} {REPO}:{NEW}"
    fake.on(inspect, stdout=f'["{REPO}@{DIGEST}"]\n')
    fake.on(inspect, stdout=f'["{REPO}@sha256:{"e" * 64}"]\n', times=1)
    assert deploy(fake, make_settings(tmp_path), NEW, "--digest", DIGEST) == 0
    assert fake.ran(f"docker pull -q {REPO}:{NEW}@{DIGEST}")


def test_without_a_digest_only_an_image_already_here_is_used(tmp_path, env_file, fake, capsys):
    Stack(fake, env_file)
    fake.on(f"docker image inspect {REPO}:{NEW}", rc=1, stderr="No such image\n")
    assert deploy(fake, make_settings(tmp_path), NEW) == 3
    assert (f"FAILED image {REPO}:{NEW} is not on this server and no --digest was given: nothing was changed, "
            f"n8n stays on {OLD} (the emergency deploy runbook passes images.lock's digest)") in capsys.readouterr().err
    assert not fake.ran("docker pull") and env_file.read_text() == ENV


@pytest.mark.parametrize("digest", ["sha256:abc", "md5:" + "a" * 64, f"{DIGEST} x"])
def test_a_malformed_digest_exits_2(tmp_path, env_file, fake, capsys, digest):
    Stack(fake, env_file)
    assert deploy(fake, make_settings(tmp_path), NEW, "--digest", digest) == 2
    assert "--digest must look like sha256:<64 hex digits>" in capsys.readouterr().err
    assert not fake.ran("docker")


def test_a_failed_pre_deploy_backup_changes_nothing(tmp_path, env_file, fake, capsys):
    Stack(fake, env_file)
    fake.on("n8n-backup", rc=1, stderr="n8n-backup: FAILED restic: the disk is full\n")
    assert deploy(fake, make_settings(tmp_path), NEW) == 1
    assert ("FAILED the pre-deploy backup failed, nothing was changed: n8n-backup: FAILED restic: the disk is full"
            in capsys.readouterr().err)
    assert env_file.read_text() == ENV and not fake.ran("up -d")


# --- the switch ----------------------------------------------------------------------------------
def test_a_good_deploy_snapshots_then_switches_the_env_file_and_checks(tmp_path, env_file, fake, capsys):
    st = Stack(fake, env_file)
    fake.on("webhook/smoke-ping", stdout="200")
    s = make_settings(tmp_path)
    assert deploy(fake, s, NEW, "--smoke-webhook", "smoke-ping", "--timeout", "60") == 0
    out = capsys.readouterr().out
    assert f"running {OLD} with 5 workflows; pre-deploy snapshot {SNAP}" in out
    assert re.search(rf"deployed {NEW} \(was {OLD}\): ready, 5 workflows, smoke webhook ok in \d+s", out)
    assert f'keep it: set n8n_version = "{NEW}" in group_data' in out
    # the env file has the new version, and only that changed
    assert version_in(env_file) == NEW
    assert env_file.read_text() == ENV.replace(f"N8N_VERSION={OLD}", f"N8N_VERSION={NEW}")
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    # order: the image, the counts, the snapshot (old version), interrupts ignored, the switch (new version)
    assert st.env_at == {"backup": [OLD], "up": [NEW]}
    assert (fake.index(f"docker image inspect {REPO}:{NEW}") < fake.index("from migrations")
            < fake.index("n8n-backup") < fake.index("<ignore interrupts>") < fake.index("up -d")
            < fake.index("webhook/smoke-ping"))
    up = fake.calls[fake.index("up -d")]
    assert up.argv == ["docker", "compose", "-p", "n8n", "up", "-d", "n8n", "n8n-worker-1"] and up.kw["cwd"] == s.stack_dir
    assert not fake.ran("n8n-restore")
    log = deploy_log(s)
    assert f"pre-deploy snapshot {SNAP}" in log and f"deployed {NEW} (was {OLD})" in log
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d .*running 2\.41\.1 with 5 workflows", log, re.M)


def test_not_ready_rolls_back_to_the_old_version(tmp_path, env_file, fake, capsys):
    st = Stack(fake, env_file, ready=(OLD,))
    s = make_settings(tmp_path)
    assert deploy(fake, s, NEW) == 1
    cap = capsys.readouterr()
    assert f"rolling back to {OLD}: n8n {NEW} was not ready within 30s" in cap.out
    assert "  n8n | Error: migration failed" in cap.out  # n8n's last log lines, said
    assert re.search(rf"n8n-deploy-version: FAILED n8n {NEW} was not ready within 30s; rolled back to {OLD} "
                     r"\(ready, 5 workflows\) in \d+s$", cap.err.strip())
    assert env_file.read_text() == ENV  # the old version again, the rest untouched
    assert st.env_at["up"] == [NEW, OLD]
    assert not fake.ran("n8n-restore")
    assert "FAILED n8n 2.41.0 was not ready" in deploy_log(s)
    # readiness polled every second for the timeout (the fake clock), not longer
    assert 30 <= sum(fake.sleeps) <= 32 and set(fake.sleeps) == {1}


def test_in_queue_mode_the_workers_stop_first_with_the_queue_held_until_they_got_the_signal(
        tmp_path, env_file, fake, monkeypatch, capsys):
    """Each switch (the deploy, then its rollback) stops the running worker on its own before
    `compose up -d`, n8n's queue held from SETTLE s before its signal until it said it got it;
    the webhook processor is not stopped that way (it takes no executions)."""
    st = Stack(fake, env_file, ready=(OLD,))
    queue = Queue(fake)
    monkeypatch.setattr(redisconn, "connect", lambda s: queue)
    stops, holder = [], "n8n-worker-1"
    queue.released[holder] = threading.Event()

    def compose_stop(argv, kw):
        stops.append(fake.clock)
        queue.released[holder].wait(5)  # the worker drains
        queue.released[holder].clear()

    fake.on("stop -t 150 n8n-worker-1", call=compose_stop)
    fake.on("ps -q n8n-worker-1", stdout="cid-w1\n")
    fake.on("{{.State.Running}}", stdout="true\n")
    fake.on("docker logs --since", call=lambda a, k: (0, "Received SIGTERM. Shutting down...\n" if stops else "", ""))
    s = make_settings(tmp_path, services=["n8n", "n8n-webhook-1", "n8n-worker-1"], pooled=["n8n-webhook-1"],
                      queue_redis="container", drain_seconds=120)
    assert deploy(fake, s, NEW) == 1
    assert st.env_at["up"] == [NEW, OLD]
    assert [(kind, who) for _, kind, who in queue.evals] == [("pause", holder), ("release", holder)] * 2
    pauses = [t for t, kind, _ in queue.evals if kind == "pause"]
    assert all(0 < u - p == pytest.approx(queue_hold.SETTLE) for p, u in zip(pauses, stops, strict=True))
    c = fake.commands()
    ups = [i for i, x in enumerate(c) if x.endswith("up -d n8n n8n-webhook-1 n8n-worker-1")]
    assert [i for i, x in enumerate(c) if "stop -t 150 n8n-worker-1" in x][0] < ups[0]
    assert fake.calls[fake.index("stop -t 150")].argv == ["docker", "compose", "-p", "n8n", "stop", "-t", "150",
                                                           "n8n-worker-1"]
    assert not fake.ran("ps -q n8n-webhook-1") and queue.closed
    out = capsys.readouterr().out
    assert out.count("n8n-worker-1: n8n's queue held 1.5s while it was told to stop") == 2
    assert "n8n-worker-1: n8n's queue held" in deploy_log(s)


def test_a_version_that_migrated_rolls_back_and_restores_the_snapshot(tmp_path, env_file, fake, capsys):
    Stack(fake, env_file, ready=(OLD,), migrations={NEW: "101"})
    restored = []
    fake.on("n8n-restore", call=lambda argv, kw: restored.append(argv))
    assert deploy(fake, make_settings(tmp_path), NEW) == 1
    cap = capsys.readouterr()
    assert f"{NEW} had migrated the database (100 -> 101 migrations): restoring snapshot {SNAP}" in cap.out
    assert restored == [["n8n-restore", "--snapshot", SNAP, "--from", "local", "--no-safety-snapshot"]]
    assert f"rolled back to {OLD} (ready, 5 workflows, database restored from snapshot {SNAP})" in cap.err
    assert version_in(env_file) == OLD
    assert fake.index("up -d", ) < fake.index("n8n-restore")


def test_a_failed_restore_says_the_rollback_is_incomplete(tmp_path, env_file, fake, capsys):
    Stack(fake, env_file, ready=(OLD,), migrations={NEW: "101"})
    fake.on("n8n-restore", rc=1)
    s = make_settings(tmp_path)
    assert deploy(fake, s, NEW) == 1
    assert (f"FAILED ROLLBACK INCOMPLETE: restoring snapshot {SNAP} failed; n8n-restore --snapshot {SNAP} "
            f"(see {s.deploy_log})") in capsys.readouterr().err


def test_a_changed_workflow_count_rolls_back(tmp_path, env_file, fake, capsys):
    Stack(fake, env_file, workflows={NEW: "4"})
    assert deploy(fake, make_settings(tmp_path), NEW) == 1
    cap = capsys.readouterr()
    assert f"rolling back to {OLD}: the workflow count changed (5 before)" in cap.out
    assert f"FAILED the workflow count changed (5 before); rolled back to {OLD} (ready, 5 workflows)" in cap.err
    assert version_in(env_file) == OLD and not fake.ran("n8n-restore")


def test_a_failing_smoke_webhook_rolls_back(tmp_path, env_file, fake, capsys):
    Stack(fake, env_file)
    fake.on("webhook/smoke-ping", stdout="404")
    assert deploy(fake, make_settings(tmp_path), NEW, "--smoke-webhook", "smoke-ping") == 1
    assert "the smoke webhook /webhook/smoke-ping did not answer 200; rolled back" in capsys.readouterr().err
    assert version_in(env_file) == OLD


def test_the_old_version_not_ready_either_says_the_rollback_is_incomplete(tmp_path, env_file, fake, capsys):
    Stack(fake, env_file, ready=())
    assert deploy(fake, make_settings(tmp_path), NEW) == 1
    assert (f"FAILED ROLLBACK INCOMPLETE: n8n {OLD} is not ready either; see `docker compose -p n8n logs n8n`"
            in capsys.readouterr().err)
    assert version_in(env_file) == OLD


# --- set-version (worker servers follow the main server) ------------------------------------------
def set_version(fake, s, *args):
    return cli.main(["mottivme-host", "set-version", *args], runner=fake, settings=s)


def test_set_version_changes_only_n8n_version(tmp_path, env_file, fake, capsys):
    s = make_settings(tmp_path, services=["n8n-worker-1", "n8n-worker-2"])
    assert set_version(fake, s, NEW) == 0
    assert env_file.read_text() == ENV.replace(f"N8N_VERSION={OLD}", f"N8N_VERSION={NEW}")
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert capsys.readouterr().out == (f"n8n version set to {NEW} in {env_file} (was {OLD}); "
                                       "`compose up -d` applies it\n")
    assert fake.calls == []  # no container touched
    assert sorted(os.listdir(env_file.parent)) == [".env"]  # no temporary file left


def test_set_version_to_the_same_version_says_so(tmp_path, env_file, fake, capsys):
    assert set_version(fake, make_settings(tmp_path), OLD) == 0
    assert capsys.readouterr().out == f"n8n version already {OLD} in {env_file}\n"
    assert env_file.read_text() == ENV


@pytest.mark.parametrize("version", ["2.41", "9.9.9\nPOSTGRES_PASSWORD=x", "x.y.z"])
def test_set_version_refuses_a_bad_version(tmp_path, env_file, fake, capsys, version):
    assert set_version(fake, make_settings(tmp_path), version) == 2
    assert "FAILED the version must look like 2.41.1" in capsys.readouterr().err
    assert env_file.read_text() == ENV


def test_set_version_without_a_stack_exits_4(tmp_path, fake, capsys):
    assert set_version(fake, make_settings(tmp_path), NEW) == 4
    assert "no n8n stack here" in capsys.readouterr().err
