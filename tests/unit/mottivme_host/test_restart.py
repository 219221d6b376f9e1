"""n8n-restart (mottivme_host/restart.py) driven by the recording fake: workers one at a time, the
main process's outage measured from readiness probes made on the fake clock, the failures."""

from __future__ import annotations

import re
import threading
import time

import pytest

from mottivme_host import cli, queue_hold, redisconn, settings
from tests.helpers import FakeRunner, Queue


def make_settings(tmp_path, services=("n8n",), timeout=30):
    return settings.from_dict({"stack_dir": str(tmp_path / "stack"), "services": list(services), "n8n_host": "n8n.test",
                               "ready_timeout": timeout, "drain_seconds": 120,
                               "deploy_log": str(tmp_path / "log" / "n8n-deploy.log")})


def run(fake, s, *args):
    return cli.main(["n8n-restart", *args], runner=fake, settings=s)


def is_main_restart(cmd: str) -> bool:
    return cmd.endswith(" restart n8n")


class Outage:
    """Readiness as n8n answers it: 200, except from 0.1 s to `seconds` + 0.1 s after `compose
    restart n8n` began (on the fake clock) — `forever`: from then on. Each probe from the prober
    thread takes a little real time, as curl does, so the main thread is never starved."""

    def __init__(self, fake: FakeRunner, seconds: float = 3.0, code: str = "502", forever: bool = False):
        self.fake, self.seconds, self.code, self.forever = fake, seconds, code, forever
        self.at: float | None = None
        fake.on(is_main_restart, call=self.restart)
        fake.on("healthz/readiness", call=self.status)

    def restart(self, argv, kw):
        self.at = self.fake.clock

    def status(self, argv, kw):
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.0005)
        t = self.fake.clock
        if self.at is not None and t >= self.at + 0.1 and (self.forever or t < self.at + self.seconds + 0.1):
            return 0, self.code, ""
        return 0, "200", ""


def test_the_outage_is_measured_from_the_probes_made_during_the_restart(tmp_path, capsys):
    fake = FakeRunner()
    outage = Outage(fake, seconds=3.0)
    assert run(fake, make_settings(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "restarting: n8n (readiness before: 200)" in out
    m = re.search(r"n8n ready again: unavailable for ([0-9.]+)s \(restart \+ readiness took ([0-9.]+)s\)", out)
    assert m, out
    # 15 failed probes 0.2 s apart, from 0.2 s to 3.0 s after the restart began
    assert m.group(1) == "3.0"
    took = float(m.group(2))
    assert 0 < float(m.group(1)) <= took
    assert took >= outage.at - 1000.0 + 3.2 - 0.05  # ready: the first 200 after the outage
    assert out.index("restarting: n8n") < out.index("n8n ready again")
    # probing every 0.2 s on the runner's clock, never a real wait
    assert fake.sleeps and set(fake.sleeps) == {0.2}
    # readiness through the host's own Caddy, with a 2 s probe timeout
    probe = next(c.argv for c in fake.calls if "healthz/readiness" in c.cmd)
    assert probe[:4] == ["curl", "-sk", "-m", "2"] and "n8n.test:443:127.0.0.1" in probe


def test_no_failed_probe_means_no_outage(tmp_path, capsys):
    fake = FakeRunner()
    Outage(fake, seconds=0.0)  # never fails (the window is empty)
    assert run(fake, make_settings(tmp_path)) == 0
    assert "unavailable for 0.0s" in capsys.readouterr().out


def test_not_ready_in_time_fails_with_the_last_log_lines(tmp_path, capsys):
    fake = FakeRunner()
    Outage(fake, code="502", forever=True)
    fake.on("logs --no-color --tail 25 n8n", stdout="n8n  | Error: config is not valid JSON\nn8n  | exiting\n")
    assert run(fake, make_settings(tmp_path), "--timeout", "25") == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "n8n-restart: FAILED n8n is not ready 25s after the restart (readiness 502). Last log lines:"
    assert err[1:3] == ["  n8n  | Error: config is not valid JSON", "  n8n  | exiting"]
    assert err[-1] == "n8n-restart: FAILED n8n is not ready 25s after the restart (readiness 502)"
    # the prober stopped at the deadline: 25 s of probes every 0.2 s, not one more
    assert 1024.8 <= fake.clock <= 1025.3


def test_workers_one_at_a_time_each_healthy_before_the_next_then_the_main_process(tmp_path, capsys):
    fake = FakeRunner()
    Outage(fake, seconds=1.0)
    fake.on("ps -q n8n-worker-1", stdout="cid-w1\n")
    fake.on("ps -q n8n-webhook-1", stdout="cid-h1\n")
    fake.on("docker inspect", stdout="healthy\n")
    fake.on("docker inspect", stdout="starting\n", times=2)  # the first worker takes 2 s
    s = make_settings(tmp_path, services=("n8n", "n8n-worker-1", "n8n-webhook-1"))
    assert run(fake, s) == 0
    out = capsys.readouterr().out
    assert "n8n-worker-1 restarted and healthy in 2s" in out
    assert "n8n-webhook-1 restarted and healthy in 0s" in out
    cmds = fake.commands()
    w1 = fake.index("restart -t 150 n8n-worker-1")  # drain (120) + 30 s to stop
    h1 = fake.index("restart -t 150 n8n-webhook-1")
    main = next(i for i, c in enumerate(cmds) if is_main_restart(c))
    healthy_w1 = max(i for i, c in enumerate(cmds) if c.startswith("docker inspect") and "cid-w1" in c)
    assert w1 < healthy_w1 < h1 < main
    assert cmds[w1].startswith("docker compose -p n8n restart") and fake.calls[w1].kw["cwd"] == s.stack_dir
    assert fake.calls[healthy_w1].argv == ["docker", "inspect", "--format", "{{.State.Health.Status}}", "cid-w1"]
    assert out.index("n8n-webhook-1 restarted") < out.index("restarting: n8n") < out.index("n8n ready again")


def test_an_unhealthy_worker_fails_with_its_logs_and_n8n_is_not_restarted(tmp_path, capsys):
    fake = FakeRunner()
    Outage(fake)
    fake.on("ps -q n8n-worker-1", stdout="cid-w1\n")
    fake.on("docker inspect", stdout="unhealthy\n")
    fake.on("logs --no-color --tail 25 n8n-worker-1", stdout="worker | Redis connection refused\n")
    s = make_settings(tmp_path, services=("n8n", "n8n-worker-1", "n8n-worker-2"))
    assert run(fake, s, "--timeout", "10") == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "n8n-restart: FAILED n8n-worker-1 is not healthy 10s after its restart (unhealthy). Last log lines:",
        "  worker | Redis connection refused",
        "n8n-restart: FAILED n8n-worker-1 is not healthy 10s after its restart",
    ]
    assert not fake.ran("restart -t 150 n8n-worker-2")
    assert not any(is_main_restart(c) for c in fake.commands())
    assert not fake.ran("healthz/readiness")
    assert set(fake.sleeps) == {1} and 10 <= sum(fake.sleeps) <= 11


def test_a_worker_server_restarts_its_workers_only(tmp_path, capsys):
    fake = FakeRunner()
    fake.on("docker inspect", stdout="healthy\n")
    fake.on("ps -q", stdout="cid\n")
    s = make_settings(tmp_path, services=("n8n-worker-1", "n8n-worker-2"))
    assert run(fake, s) == 0
    out = capsys.readouterr().out
    assert "n8n-worker-1 restarted and healthy" in out and "n8n-worker-2 restarted and healthy" in out
    assert fake.index("restart -t 150 n8n-worker-1") < fake.index("restart -t 150 n8n-worker-2")
    assert not fake.ran("curl") and "restarting: n8n" not in out


def test_a_failed_restart_command_fails_at_once(tmp_path, capsys):
    fake = FakeRunner()
    Outage(fake)
    fake.on(is_main_restart, rc=1, stderr="ERROR: No such service: n8n\n")
    assert run(fake, make_settings(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "n8n-restart: FAILED `docker compose -p n8n restart n8n` exited 1: ERROR: No such service: n8n" in err



PROC_HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
LISTEN = "   0: 00000000000000000000000000000000:162E 00000000000000000000000000000000:0000 0A 0 0 0 0 1000 0 1\n"
OTHER = "   1: 0B0014AC:C350 020014AC:1538 01 0 0 0 0 1000 0 2\n"  # n8n's own connection to PostgreSQL


def established(n: int) -> str:
    """/proc/PID/net/tcp + tcp6 with `n` connections from Caddy to n8n's port (5678 = 0x162E)."""
    return PROC_HEADER + OTHER + PROC_HEADER + LISTEN + "".join(
        f"   {i + 2}: 0000000000000000FFFF00000B0014AC:162E 0000000000000000FFFF0000010014AC:{40000 + i:04X} 01 "
        "0 0 0 0 1000 0 3\n" for i in range(n))


def pooled_settings(tmp_path, drain_seconds=120):
    """A platina stack: a worker, and the processor n8n-webhook-1 behind Caddy."""
    return settings.from_dict({"stack_dir": str(tmp_path / "stack"), "services": ["n8n", "n8n-worker-1", "n8n-webhook-1"],
                               "pooled": ["n8n-webhook-1"], "n8n_host": "n8n.test", "ready_timeout": 30,
                               "drain_seconds": drain_seconds})


NETNS = "/var/run/docker/netns/8c1f0b2a"


class Processor:
    """Every container's namespace is NETNS; `in_flight`: the requests open at each count. The
    drain table is there from `nft -f` until a processor's restart (a new namespace state) or
    `nft delete table`; `left_over`: an earlier run left it."""

    def __init__(self, fake: FakeRunner, in_flight=(2, 1, 0), left_over=False, restart_rc=0):
        self.table, self.counts = left_over, list(in_flight)
        Outage(fake, seconds=0.0)
        fake.on("ps -q", stdout="cid\n")
        fake.on("docker inspect", stdout="healthy\n")
        fake.on("{{.NetworkSettings.SandboxKey}}", stdout=NETNS + "\n")
        fake.on(f"nsenter --net={NETNS} cat /proc/net/tcp /proc/net/tcp6",
                call=lambda argv, kw: (0, established(self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]), ""))
        fake.on("nft -f -", call=lambda argv, kw: self.set(True))
        fake.on("nft list tables",
                call=lambda argv, kw: (0, "table ip nat\n" + ("table inet mottivme_drain\n" if self.table else ""), ""))
        fake.on("nft delete table inet mottivme_drain", call=lambda argv, kw: self.set(False))
        fake.on("restart -t 150 n8n-webhook-1", call=lambda argv, kw: self.set(False) if restart_rc == 0 else
                (restart_rc, "", "Error response from daemon: timeout\n"))

    def set(self, value: bool):
        self.table = value
        return 0, "", ""


def test_a_webhook_processor_is_drained_before_its_restart(tmp_path, capsys):
    """A stopping n8n goes on taking requests and closes its database under them: new connections
    are refused inside the processor's own network namespace (Caddy retries a refused connection
    on another processor), then the restart waits for the requests in flight."""
    fake = FakeRunner()
    Processor(fake)
    assert run(fake, pooled_settings(tmp_path)) == 0
    out = capsys.readouterr().out
    nft = fake.index("nft -f -")
    # the container's own namespace file (Docker's SandboxKey), never a process id
    assert fake.calls[nft].argv == ["nsenter", f"--net={NETNS}", "nft", "-f", "-"]
    rules = fake.calls[nft].kw["input"]
    assert "tcp dport 5678" in rules and "syn" in rules and "reject with tcp reset" in rules
    counts = [i for i, c in enumerate(fake.commands()) if "cat /proc/net/tcp" in c]
    restart = fake.index("restart -t 150 n8n-webhook-1")
    # counted until none was in flight (2, 1, 0), 0.2 s apart, then restarted
    assert len(counts) == 3 and nft < counts[0] and counts[-1] < restart
    assert "n8n-webhook-1 takes no new requests (Caddy sends them to the others): drained in 0.4s" in out
    assert out.index("drained in") < out.index("n8n-webhook-1 restarted and healthy")
    # the worker is not behind Caddy (it drains itself: its stop timeout): no rule
    assert fake.index("restart -t 150 n8n-worker-1") < nft
    assert sum(1 for c in fake.commands() if c.startswith("nsenter") and c.endswith("nft -f -")) == 1
    # the restarted container has no rule left: nothing to take away
    assert any(i > restart for i, c in enumerate(fake.commands()) if "nft list tables" in c)
    assert not fake.ran("delete table") and "taken away" not in out


def test_requests_still_open_after_the_drain_time_do_not_stop_the_restart(tmp_path, capsys):
    fake = FakeRunner()
    Processor(fake, in_flight=(1,))  # a webhook that answers when its workflow ends, and it does not
    assert run(fake, pooled_settings(tmp_path, drain_seconds=3)) == 0
    out = capsys.readouterr().out
    assert "drained in 3.0s, 1 still open after 3s" in out and "n8n-webhook-1 restarted and healthy" in out


def test_a_restart_that_fails_takes_the_drain_rule_away(tmp_path, capsys):
    fake = FakeRunner()
    p = Processor(fake, restart_rc=1)
    assert run(fake, pooled_settings(tmp_path)) == 1
    out, err = capsys.readouterr()
    assert "restart -t 150 n8n-webhook-1` exited 1" in err
    delete = fake.index("delete table")
    assert fake.calls[delete].argv == ["nsenter", f"--net={NETNS}", "nft", "delete", "table", "inet", "mottivme_drain"]
    assert not p.table and "n8n-webhook-1: the drain rule is taken away" in out
    assert not any(is_main_restart(c) for c in fake.commands())


def test_a_run_cut_short_takes_the_rule_away_and_so_does_the_next_run(tmp_path, capsys):
    """Ctrl-C or a lost SSH session during the drain: the rule goes (finally); a run killed
    outright left it: the next n8n-restart takes it away before anything else."""
    fake = FakeRunner()
    p = Processor(fake, in_flight=(3,))

    def interrupted(seconds):
        raise KeyboardInterrupt  # what the CLI turns SIGINT/SIGHUP/SIGTERM into, during the drain's wait

    fake.sleep = interrupted
    try:
        run(fake, pooled_settings(tmp_path))
    except KeyboardInterrupt:
        pass
    assert not p.table and fake.ran("delete table") and not fake.ran("restart -t 150 n8n-webhook-1")

    fake2 = FakeRunner()
    p2 = Processor(fake2, left_over=True)
    assert run(fake2, pooled_settings(tmp_path)) == 0
    first_delete, worker = fake2.index("delete table"), fake2.index("restart -t 150 n8n-worker-1")
    assert first_delete < worker and not p2.table


def test_a_processor_that_cannot_be_drained_is_restarted_all_the_same(tmp_path, capsys):
    fake = FakeRunner()
    Processor(fake)
    fake.on("nft -f -", rc=1, stderr="nsenter: failed to execute nft: No such file or directory\n")
    assert run(fake, pooled_settings(tmp_path)) == 0
    out, err = capsys.readouterr()
    assert ("n8n-restart: WARNING cannot drain n8n-webhook-1 (nsenter: failed to execute nft: No such file or "
            "directory): restarting it without; install nftables (the deploy does)") in err
    assert "n8n-webhook-1 restarted and healthy" in out and not fake.ran("cat /proc")


def queue_stack(tmp_path, monkeypatch, fake, queue, services=("n8n-worker-1", "n8n-worker-2"), said_at=3,
                fails: str = ""):
    """A worker server's stack in queue mode. A worker's `compose restart` lasts until its holder
    let go (a worker that drains), or fails at once with `fails` on stderr; its log says it got
    the signal from the `said_at`-th read after the restart began (None: never)."""
    monkeypatch.setattr(redisconn, "connect", lambda s: queue)
    for svc in services:
        started, reads = threading.Event(), []
        released = queue.released.setdefault(svc, threading.Event())
        fake.on(f"ps -q {svc}", stdout=f"cid-{svc}\n")

        def restart(argv, kw, started=started, released=released):
            started.set()
            if fails:
                return 1, "", fails
            released.wait(5)

        def logs(argv, kw, started=started, reads=reads):
            assert started.wait(5)  # the restart has begun: the reads are counted from it
            reads.append(1)
            said = said_at is not None and len(reads) >= said_at
            return 0, "n8n worker is now ready\n" + ("Received SIGTERM. Shutting down...\n" if said else ""), ""

        fake.on(f"restart -t 150 {svc}", call=restart)
        fake.on(lambda cmd, svc=svc: cmd.startswith("docker logs --since") and cmd.endswith(f"cid-{svc}"), call=logs)
    fake.on("{{.State.Running}}", stdout="true\n")
    fake.on("{{.State.Health.Status}}", stdout="healthy\n")
    return settings.from_dict({"stack_dir": str(tmp_path / "stack"), "services": list(services), "n8n_host": "n8n.test",
                               "ready_timeout": 30, "drain_seconds": 120, "queue_redis": "127.0.0.1:6380"})


def test_a_worker_is_told_to_stop_with_the_queue_held_and_the_queue_resumes_once_it_got_the_signal(
        tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    queue = Queue(fake)
    s = queue_stack(tmp_path, monkeypatch, fake, queue)
    assert run(fake, s) == 0
    out = capsys.readouterr().out
    assert [(kind, holder) for _, kind, holder in queue.evals] == [
        ("pause", "n8n-worker-1"), ("release", "n8n-worker-1"), ("pause", "n8n-worker-2"), ("release", "n8n-worker-2")]
    (paused, _, _), (released, _, _) = queue.evals[:2]
    cmds = fake.commands()
    restart = fake.index("restart -t 150 n8n-worker-1")
    # held SETTLE s before the signal (an execution fetched before is registered by then), until the
    # worker said it got it and a margin after; then the worker's health is awaited, not held
    assert fake.sleeps[0] == queue_hold.SETTLE
    assert fake.calls[restart].kw["cwd"] == s.stack_dir
    first_log = next(i for i, c in enumerate(cmds) if c.startswith("docker logs --since"))
    assert restart < first_log and fake.calls[first_log].argv[-1] == "cid-n8n-worker-1"
    # held: SETTLE, two reads of the log 0.2 s apart before the third says it, the margin
    assert released - paused == pytest.approx(queue_hold.SETTLE + 0.4 + queue_hold.SIGNAL_MARGIN)
    assert len(set(queue.holders)) == 2 and all(h.count(":") == 3 for h in queue.holders)  # one holder per stop
    health = next(i for i, c in enumerate(cmds) if "{{.State.Health.Status}}" in c)
    assert health > first_log
    assert "n8n-worker-1: n8n's queue held 1.9s while it was told to stop" in out
    assert out.index("n8n-worker-1: n8n's queue held") < out.index("n8n-worker-1 restarted and healthy")
    assert queue.closed


def test_a_worker_that_never_says_it_got_the_signal_holds_the_queue_no_longer_than_the_wait(
        tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    queue = Queue(fake)
    s = queue_stack(tmp_path, monkeypatch, fake, queue, services=("n8n-worker-1",), said_at=None)
    assert run(fake, s) == 0
    (paused, _, _), (released, kind, _) = queue.evals
    assert kind == "release" and released - paused == pytest.approx(queue_hold.SETTLE + queue_hold.SIGNAL_WAIT, abs=0.3)
    err = capsys.readouterr().err
    assert 'WARNING n8n-worker-1 did not log "Received SIGTERM" in 10s: n8n\'s queue resumed all the same' in err


@pytest.mark.parametrize("queue_kw, why", [
    ({"down": "no answer from Redis at 127.0.0.1:6380 (Connection refused; is the tunnel up?)"},
     "no answer from Redis at 127.0.0.1:6380"),
    ({"pause": "ERR Error running script (call to f_1234): @user_script:1: NOSCRIPT"},
     "Redis answered 'ERR Error running script"),
], ids=["redis not answering", "an answer that is not the script's"])
def test_no_hold_is_a_warning_and_the_worker_restarts_unheld(tmp_path, monkeypatch, capsys, queue_kw, why):
    fake = FakeRunner()
    queue = Queue(fake, **queue_kw)
    s = queue_stack(tmp_path, monkeypatch, fake, queue, services=("n8n-worker-1",))
    queue.released["n8n-worker-1"].set()  # unheld: nothing to wait for
    assert run(fake, s) == 0
    out, err = capsys.readouterr()
    assert f"WARNING cannot hold n8n's queue ({why}" in err
    assert "stopping n8n-worker-1 without" in err
    assert "queue held" not in out and "n8n-worker-1 restarted and healthy" in out
    assert queue_hold.SETTLE not in fake.sleeps and not fake.ran("docker logs --since")


def test_a_pause_that_is_not_ours_is_left_alone(tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    queue = Queue(fake, pause="foreign")
    s = queue_stack(tmp_path, monkeypatch, fake, queue, services=("n8n-worker-1",))
    queue.released["n8n-worker-1"].set()
    assert run(fake, s) == 0
    assert [kind for _, kind, _ in queue.evals] == ["pause"]  # never resumed by us
    assert "n8n's queue is paused by something else: left as it is" in capsys.readouterr().out


def test_a_failed_worker_restart_resumes_the_queue_at_once_and_fails(tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    queue = Queue(fake)
    s = queue_stack(tmp_path, monkeypatch, fake, queue, services=("n8n-worker-1",), said_at=None,
                    fails="Error response from daemon: cannot stop\n")
    assert run(fake, s) == 1
    (paused, _, _), (released, kind, _) = queue.evals
    assert kind == "release" and released - paused < queue_hold.SETTLE + 1  # not the whole signal wait
    err = capsys.readouterr().err
    assert "FAILED `docker compose -p n8n restart -t 150 n8n-worker-1` exited 1" in err
    assert "did not log" not in err


def test_a_stop_cut_short_in_the_settle_time_still_lets_the_queue_go(tmp_path, monkeypatch, capsys):
    fake = FakeRunner()
    queue = Queue(fake)
    s = queue_stack(tmp_path, monkeypatch, fake, queue, services=("n8n-worker-1",))

    def ctrl_c(seconds):
        raise KeyboardInterrupt

    fake.sleep = ctrl_c
    assert run(fake, s) == 130
    assert "FAILED interrupted" in capsys.readouterr().err
    assert [kind for _, kind, _ in queue.evals] == ["pause", "release"]
    assert not fake.ran("restart -t 150 n8n-worker-1")


def test_a_processor_and_a_stopped_worker_are_restarted_without_holding(tmp_path, monkeypatch):
    fake = FakeRunner()
    queue = Queue(fake)
    s = queue_stack(tmp_path, monkeypatch, fake, queue, services=("n8n-webhook-1", "n8n-worker-1"))
    s = settings.from_dict({**{k: getattr(s, k) for k in ("stack_dir", "n8n_host", "ready_timeout", "drain_seconds",
                                                          "queue_redis")},
                            "services": ["n8n-webhook-1", "n8n-worker-1"], "pooled": ["n8n-webhook-1"]})
    fake.on(lambda cmd: "{{.State.Running}}" in cmd and "cid-n8n-worker-1" in cmd, stdout="false\n")
    for svc in ("n8n-webhook-1", "n8n-worker-1"):
        queue.released[svc].set()
    assert run(fake, s) == 0
    assert queue.evals == []  # the processor takes no executions; the worker was not running
    assert fake.ran("restart -t 150 n8n-worker-1") and fake.ran("restart -t 150 n8n-webhook-1")
