"""mottivme-host queue-guard (mottivme_host/queue_guard.py): the checks, driven by a recording
stand-in for Redis's answers and the fake clock. (Its Lua script runs in real Redis in the
integration tier: test_scaling's orphaned execution.)"""

from __future__ import annotations

import json
import subprocess

import pytest

from mottivme_host import cli, queue_guard, queue_hold, redisconn, settings
from tests.helpers import FakeRunner


class Answers:
    """What Redis answers each check: the executions it finds with no lock, never started, and
    whether it could move the ones it was asked to (`gone`: moved already, or taken since)."""

    def __init__(self):
        self.orphans: list[str] = []
        self.gone: set[str] = set()
        self.asked: list[list[str]] = []  # the job ids each check asked to put back
        self.down: str = ""

        self.released = "none"  # what queue_hold's RELEASE answers ('resumed': a dead holder's pause ended)

    def call(self, *args):
        if self.down:
            raise queue_guard.RedisDown(self.down)
        if args[1] == queue_hold.RELEASE.strip():
            assert args[-1] == ""  # the guard is no holder: expired holders only
            return self.released
        assert args[0] == "EVAL" and args[1] == queue_guard.SCRIPT
        n = int(args[2])
        assert list(args[3:3 + n]) == queue_guard.KEYS and args[3 + n] == queue_guard.BULL_QUEUE
        due = list(args[4 + n:])
        self.asked.append(due)
        moved = [[j, f"e{j}"] for j in due if j in self.orphans and j not in self.gone]
        self.orphans = [j for j in self.orphans if j not in {m[0] for m in moved}]
        # cjson writes an empty table as {}
        return json.dumps({"moved": moved or {}, "orphans": self.orphans or {}})


def test_an_execution_goes_back_only_when_two_checks_a_grace_apart_find_it(capsys):
    fake, redis = FakeRunner(), Answers()
    guard = queue_guard.Guard(redis, fake, grace=2)
    redis.orphans = ["12"]
    assert guard.check() == [] and redis.asked == [[]]  # first seen: a worker may be taking its lock now
    fake.clock += 1.5
    assert guard.check() == [] and redis.asked[-1] == []  # not yet a grace later
    fake.clock += 0.5
    assert guard.check() == [("12", "e12")] and redis.asked[-1] == ["12"]
    assert capsys.readouterr().out == ("execution e12 (queue job 12) put back in the queue: a stopping worker had "
                                       "taken it but never started it\n")
    fake.clock += 5
    assert guard.check() == [] and redis.asked[-1] == []  # once back in the queue it is forgotten


def test_an_execution_a_worker_started_meanwhile_stays_where_it_is(capsys):
    fake, redis = FakeRunner(), Answers()
    guard = queue_guard.Guard(redis, fake, grace=2)
    redis.orphans = ["7", "10"]
    guard.check()
    redis.orphans = ["10"]  # 7 got its lock: the script's own re-check leaves it
    fake.clock += 2
    assert guard.check() == [("10", "e10")]
    assert redis.asked[-1] == ["7", "10"]
    # one found later waits its own grace, whatever the others did
    redis.orphans = ["11"]
    fake.clock += 2
    assert guard.check() == [] and redis.asked[-1] == []  # 7 is not asked for again either
    fake.clock += 2
    assert guard.check() == [("11", "e11")]
    assert "execution e7" not in capsys.readouterr().out


def test_one_that_could_not_be_moved_is_not_reported(capsys):
    fake, redis = FakeRunner(), Answers()
    guard = queue_guard.Guard(redis, fake, grace=2)
    redis.orphans = ["3"]
    guard.check()
    redis.gone = {"3"}  # the script's own re-check refused it (it got a lock in between)
    redis.orphans = []
    fake.clock += 3
    assert guard.check() == [] and redis.asked[-1] == ["3"]
    assert capsys.readouterr().out == ""


def test_a_queue_a_dead_restart_left_paused_is_resumed_and_said(capsys):
    fake, redis = FakeRunner(), Answers()
    guard = queue_guard.Guard(redis, fake, grace=2)
    guard.check()
    assert capsys.readouterr().out == ""  # nothing held, or a holder still within its deadline
    redis.released = "resumed"
    guard.check()
    assert capsys.readouterr().out == ("n8n's queue resumed: the worker's stop that held it (queue_hold.py) left it "
                                       f"paused for more than {queue_hold.HOLD_SECONDS} s\n")


@pytest.mark.parametrize("answer", ["ERR NOSCRIPT", "", "[1, 2]", '{"moved": 3, "orphans": []}'])
def test_an_answer_that_is_not_the_scripts_is_redis_down(answer):
    class Odd:
        def call(self, *args):
            return answer

    with pytest.raises(queue_guard.RedisDown, match="unexpected answer from Redis"):
        queue_guard.Guard(Odd(), FakeRunner(), grace=2).check()


def test_the_script_travels_as_one_argument_of_a_redis_cli_line():
    assert '"' not in queue_guard.SCRIPT and "\\" not in queue_guard.SCRIPT
    line = redisconn.quoted(queue_guard.SCRIPT)
    assert "\n" not in line and line.startswith('"') and line.endswith('"')
    assert redisconn.quoted('a "b"\\\nc') == '"a \\"b\\"\\\\\\nc"'


def test_the_loop_says_once_that_redis_is_down_and_once_that_it_is_back(monkeypatch, tmp_path, capsys):
    fake, redis = FakeRunner(), Answers()
    states = iter(["no answer from Redis in 10 s"] * 3 + [""] * 2 + ["the redis-cli session ended"])
    monkeypatch.setattr(queue_guard, "RedisCli", lambda s: type("R", (), {"call": redis.call, "close": lambda self: None})())

    def sleep(seconds):
        assert seconds == 0.5
        try:
            redis.down = next(states)
        except StopIteration:
            raise KeyboardInterrupt from None  # the end of the test: systemd's stop

    fake.sleep = sleep
    s = settings.from_dict({"stack_dir": str(tmp_path), "services": ["n8n"], "n8n_host": "n8n.test"})
    # stopped by systemd (SIGTERM: KeyboardInterrupt) is its normal end: exit 0, not a failed unit
    assert cli.main(["mottivme-host", "queue-guard", "--interval", "0.5"], runner=fake, settings=s) == 0
    out, err = capsys.readouterr()
    assert out.endswith("queue-guard: stopped\n") and "FAILED" not in err
    assert out.count("Redis answers again") == 1
    assert err.count("WARNING no answer from Redis in 10 s; trying again every 0.5 s") == 1
    assert err.count("WARNING the redis-cli session ended; trying again") == 1  # a new state: a line of its own
    assert err.index("WARNING no answer") < err.index("WARNING the redis-cli session ended")
    assert out.index("watching n8n's queue every 0.5 s (grace 15 s)") < out.index("Redis answers again")


def test_a_zero_interval_is_refused(tmp_path, capsys):
    s = settings.from_dict({"stack_dir": str(tmp_path), "services": ["n8n"], "n8n_host": "n8n.test"})
    assert cli.main(["mottivme-host", "queue-guard", "--interval", "0"], runner=FakeRunner(), settings=s) == 2
    assert "--interval must be more than 0 seconds" in capsys.readouterr().err


def test_a_session_that_ended_is_redis_down_and_the_next_call_starts_another(tmp_path, monkeypatch):
    """What a stopped redis container leaves: a `compose exec` that ended. (`true` stands for it.)"""
    started = []

    def start(self):
        started.append(1)
        return subprocess.Popen(["true"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    monkeypatch.setattr(queue_guard.RedisCli, "_start", start)
    cli_session = queue_guard.RedisCli(settings.from_dict({"stack_dir": str(tmp_path), "services": ["n8n"],
                                                           "n8n_host": "n8n.test"}))
    for _ in range(2):
        with pytest.raises(queue_guard.RedisDown, match="the redis-cli session ended"):
            cli_session.call("PING")
        assert cli_session.proc is None
    assert len(started) == 2
