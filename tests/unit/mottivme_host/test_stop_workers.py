"""`mottivme-host stop-workers` (mottivme_host/stop_workers.py) and the held stop it shares with
n8n-restart and n8n-deploy-version (queue_hold.held_stop), driven by the recording fake: one hold
for all the workers a `compose down` signals, released once each said it got the signal."""

from __future__ import annotations

import re
import subprocess
import threading

import pytest

from mottivme_host import cli, queue_hold, redisconn, settings
from tests.helpers import FakeRunner, Queue

WORKERS = ("n8n-worker-1", "n8n-worker-2")
HOLDER = "+".join(WORKERS)
STOP = "stop -t 150 n8n-worker-1 n8n-worker-2"
DOWN = "down -t 150"


def worker_stack(tmp_path, monkeypatch, fake, queue, said_at=None, gone=(), fails="", lasts=True):
    """A worker server's stack in queue mode. The workers' `compose stop` lasts until the hold is
    let go (`lasts`: workers that drain), or fails at once with `fails`; worker N's log says it got
    the signal from the `said_at[N]`-th read after the stop began (None: never); a worker in `gone`
    is removed already when its log is read."""
    said_at = said_at or {svc: 2 for svc in WORKERS}
    monkeypatch.setattr(redisconn, "connect", lambda s: queue)
    started = threading.Event()
    released = queue.released.setdefault(HOLDER, threading.Event())
    fake.on("ps -q n8n-worker", call=lambda argv, kw: (0, f"cid-{argv[-1]}\n", ""))
    fake.on(lambda cmd: cmd.endswith(" ps -a -q"), stdout="cid-n8n-worker-1\ncid-n8n-worker-2\n")
    fake.on("{{.State.Running}}", stdout="true\n")

    def stop(argv, kw):
        started.set()
        if fails:
            return 1, "", fails
        if lasts:
            released.wait(5)

    fake.on(STOP, call=stop)
    for svc in WORKERS:
        reads = []

        def logs(argv, kw, svc=svc, reads=reads):
            assert started.wait(5)  # the stop has begun: the reads are counted from it
            if svc in gone:
                return 1, "", f"Error response from daemon: No such container: cid-{svc}\n"
            reads.append(1)
            said = said_at[svc] is not None and len(reads) >= said_at[svc]
            return 0, "n8n worker is now ready\n" + ("Received SIGTERM. Shutting down...\n" if said else ""), ""

        fake.on(lambda cmd, svc=svc: cmd.startswith("docker logs --since") and cmd.endswith(f"cid-{svc}"), call=logs)
    return settings.from_dict({"stack_dir": str(tmp_path / "stack"), "services": list(WORKERS),
                               "compose": ["docker", "compose", "-p", "n8n-worker"], "n8n_host": "n8n.test",
                               "drain_seconds": 120, "queue_redis": "127.0.0.1:6380"})


def stop(fake, s):
    return cli.main(["mottivme-host", "stop-workers"], runner=fake, settings=s)


def test_the_workers_are_told_to_stop_with_the_queue_held_once_for_all_until_each_got_the_signal(
        tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    queue = Queue(fake)
    s = worker_stack(tmp_path, monkeypatch, fake, queue, said_at={"n8n-worker-1": 1, "n8n-worker-2": 3})
    assert stop(fake, s) == 0
    out = capsys.readouterr().out
    assert [(kind, holder) for _, kind, holder in queue.evals] == [("pause", HOLDER), ("release", HOLDER)]
    (paused, _, _), (released, _, _) = queue.evals
    # SETTLE, then worker-2's log read twice more 0.2 s apart (worker-1 said it at the first), the margin
    assert released - paused == pytest.approx(queue_hold.SETTLE + 0.4 + queue_hold.SIGNAL_MARGIN)
    # the workers alone first (their runners still serve them), then the stack down
    stop_call = fake.calls[fake.index(STOP)]
    assert stop_call.argv == ["docker", "compose", "-p", "n8n-worker", "stop", "-t", "150", *WORKERS]
    assert stop_call.kw["cwd"] == s.stack_dir
    assert fake.sleeps[0] == queue_hold.SETTLE and fake.index(STOP) < fake.index("docker logs --since")
    down = fake.calls[fake.index(DOWN)]
    assert down.argv == ["docker", "compose", "-p", "n8n-worker", "down", "-t", "150"]
    assert fake.index(DOWN) > max(i for i, c in enumerate(fake.commands()) if c.startswith("docker logs"))
    # worker-1 said it: its log is not read again
    assert sum(c.endswith("cid-n8n-worker-1") for c in fake.commands() if c.startswith("docker logs")) == 1
    assert "n8n-worker-1, n8n-worker-2: n8n's queue held 1.9s while they were told to stop" in out
    assert re.search(r"workers stopped and removed in \d+s \(each given 150s to finish its running executions; "
                     r"queued ones wait in Redis\)", out)
    assert queue.closed


def test_a_worker_already_removed_has_stopped_and_counts_as_signalled(tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    queue = Queue(fake)
    s = worker_stack(tmp_path, monkeypatch, fake, queue, said_at={"n8n-worker-1": 1, "n8n-worker-2": None},
                     gone=("n8n-worker-2",))
    assert stop(fake, s) == 0
    (paused, _, _), (released, _, _) = queue.evals
    assert released - paused == pytest.approx(queue_hold.SETTLE + queue_hold.SIGNAL_MARGIN)
    assert "did not log" not in capsys.readouterr().err


def test_a_worker_that_never_says_it_is_named_and_the_queue_resumes_after_the_wait(tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    queue = Queue(fake)
    s = worker_stack(tmp_path, monkeypatch, fake, queue, said_at={"n8n-worker-1": 1, "n8n-worker-2": None})
    assert stop(fake, s) == 0
    (paused, _, _), (released, _, _) = queue.evals
    assert released - paused == pytest.approx(queue_hold.SETTLE + queue_hold.SIGNAL_WAIT, abs=0.3)
    out, err = capsys.readouterr()
    assert ('stop-workers: WARNING n8n-worker-2 did not log "Received SIGTERM" in 10s: '
            "n8n's queue resumed all the same") in err
    # never the reassuring line beside the warning
    assert re.search(r"n8n-worker-1, n8n-worker-2: n8n's queue held 1\d\.\ds; not confirmed that n8n-worker-2 got the "
                     "signal before it resumed", out), out
    assert "not lost" not in out


def test_docker_logs_that_hang_never_keep_the_queue_held_past_the_wait(tmp_path, monkeypatch, capsys):
    """Each `docker logs` cut at its timeout (a Docker slow to answer while it stops containers):
    the hold still ends SIGNAL_WAIT s after it began, far before the holders' deadline."""
    fake = FakeRunner()
    queue = Queue(fake)
    workers = tuple(f"n8n-worker-{i}" for i in range(1, 5))
    s = worker_stack(tmp_path, monkeypatch, fake, queue)
    s = settings.from_dict({**s.__dict__, "services": list(workers), "backup": None, "cleanup": None,
                            "reports": None, "vault": None})
    queue.released["+".join(workers)] = queue.released[HOLDER]
    fake.on(lambda cmd: cmd.endswith(" ps -a -q"), stdout="cid\n")

    def hangs(argv, kw):
        fake.clock += kw["timeout"]
        raise subprocess.TimeoutExpired(argv, kw["timeout"])

    fake.on("docker logs --since", call=hangs)
    assert stop(fake, s) == 0
    (paused, _, _), (released, _, _) = queue.evals
    assert released - paused <= queue_hold.SETTLE + queue_hold.SIGNAL_WAIT + 0.5
    assert released - paused < queue_hold.HOLD_SECONDS / 2
    assert "did not log" in capsys.readouterr().err


def test_a_stop_that_ends_leaving_the_workers_running_ends_the_hold_at_once_without_a_warning(
        tmp_path, monkeypatch, capsys):
    """A compose command that had nothing to change for the workers (an `up -d` of the same
    configuration) signals none: the hold ends with the command, nothing to warn about."""
    fake = FakeRunner()
    queue = Queue(fake)
    s = worker_stack(tmp_path, monkeypatch, fake, queue, said_at={svc: None for svc in WORKERS}, lasts=False)
    assert stop(fake, s) == 0
    (paused, _, _), (released, _, _) = queue.evals
    assert released - paused < queue_hold.SETTLE + 1
    assert "did not log" not in capsys.readouterr().err


def test_a_failed_stop_resumes_the_queue_at_once_and_says_why(tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    queue = Queue(fake)
    s = worker_stack(tmp_path, monkeypatch, fake, queue, fails="Error response from daemon: cannot stop\n")
    assert stop(fake, s) == 1
    assert [kind for _, kind, _ in queue.evals] == ["pause", "release"]
    out, err = capsys.readouterr()
    assert ("stop-workers: FAILED `docker compose -p n8n-worker stop -t 150 n8n-worker-1 n8n-worker-2` exited 1: "
            "Error response from daemon: cannot stop") in err
    assert not fake.ran(DOWN)
    assert "did not log" not in err and "queue held" not in out  # nothing claims the stop went well


def test_nothing_running_is_nothing_to_do(tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    queue = Queue(fake)
    s = worker_stack(tmp_path, monkeypatch, fake, queue)
    fake.on(lambda cmd: cmd.endswith(" ps -a -q"), stdout="")
    assert stop(fake, s) == 0
    assert "no worker is here: nothing to stop" in capsys.readouterr().out
    assert not fake.ran(STOP) and not fake.ran(DOWN) and queue.evals == []


def test_without_a_queue_the_workers_are_stopped_unheld(tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    s = worker_stack(tmp_path, monkeypatch, fake, Queue(fake))
    monkeypatch.setattr(redisconn, "connect", lambda s: None)
    fake.on(STOP, rc=0)
    assert stop(fake, s) == 0
    out = capsys.readouterr().out
    assert fake.index(STOP) < fake.index(DOWN) and "queue held" not in out and not fake.ran("docker logs")


def test_the_main_servers_stack_is_refused(tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    s = settings.from_dict({"stack_dir": str(tmp_path / "stack"), "services": ["n8n", "n8n-worker-1"],
                            "n8n_host": "n8n.test"})
    assert stop(fake, s) == 2
    assert "this is an n8n server's main stack, not a worker server's: nothing was stopped" in capsys.readouterr().err
    assert fake.calls == []


# --keep-stack: a deploy about to apply a new configuration (`compose up -d` re-creates the workers)
def keep(fake, s):
    return cli.main(["mottivme-host", "stop-workers", "--keep-stack"], runner=fake, settings=s)


def test_before_a_new_configuration_only_the_running_workers_stop_held_and_the_rest_stays(
        tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    queue = Queue(fake)
    s = worker_stack(tmp_path, monkeypatch, fake, queue)
    assert keep(fake, s) == 0
    out = capsys.readouterr().out
    assert [kind for _, kind, _ in queue.evals] == ["pause", "release"]
    assert fake.calls[fake.index(STOP)].argv == ["docker", "compose", "-p", "n8n-worker", "stop", "-t", "150", *WORKERS]
    assert not fake.ran(DOWN) and not fake.ran(" rm ")  # the runners and every container stay
    assert "n8n-worker-1, n8n-worker-2: n8n's queue held" in out
    assert re.search(r"n8n-worker-1, n8n-worker-2 stopped in \d+s before the new configuration is applied \(each "
                     r"given 150s to finish its running executions; queued ones wait in Redis\)", out), out


def test_on_the_main_server_its_workers_stop_held_and_n8n_keeps_running(tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    queue = Queue(fake)
    s = worker_stack(tmp_path, monkeypatch, fake, queue)
    s = settings.from_dict({**s.__dict__, "services": ["n8n", *WORKERS], "compose": ["docker", "compose", "-p", "n8n"],
                            "backup": None, "cleanup": None, "reports": None, "vault": None})
    assert keep(fake, s) == 0
    stop_call = fake.calls[fake.index(STOP)]
    assert stop_call.argv == ["docker", "compose", "-p", "n8n", "stop", "-t", "150", *WORKERS]
    assert [c for c in fake.commands() if " stop " in c] == [" ".join(stop_call.argv)]  # n8n itself untouched


def test_only_the_workers_that_run_are_stopped_and_none_running_is_silent(tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    queue = Queue(fake)
    s = worker_stack(tmp_path, monkeypatch, fake, queue)
    fake.on("ps -q n8n-worker-2", stdout="")  # gone from the compose file, or not created yet
    fake.on("docker logs --since", stdout="Received SIGTERM. Shutting down...\n")
    assert keep(fake, s) == 0
    assert fake.calls[fake.index("stop -t 150")].argv[-2:] == ["150", "n8n-worker-1"]
    assert [holder for _, _, holder in queue.evals] == ["n8n-worker-1", "n8n-worker-1"]
    assert "n8n-worker-1 stopped in" in capsys.readouterr().out

    fake, queue = FakeRunner(), Queue(FakeRunner())
    s = worker_stack(tmp_path, monkeypatch, fake, queue)
    fake.on("ps -q n8n-worker", stdout="")
    assert keep(fake, s) == 0
    assert capsys.readouterr().out == "" and not fake.ran(" stop ") and queue.evals == []


def test_a_stack_without_workers_has_nothing_to_stop(tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    s = settings.from_dict({"stack_dir": str(tmp_path / "stack"), "services": ["n8n"], "n8n_host": "n8n.test"})
    assert keep(fake, s) == 0
    assert fake.calls == [] and capsys.readouterr().out == ""
