"""Put back in n8n's queue the executions a stopping worker took but never started.

mottivme-host queue-guard [--interval SECONDS] [--grace SECONDS]

Runs for as long as the main server's stack is in queue mode (systemd unit
mottivme-queue-guard.service, which the deploy starts in tier prata and up).

Why: a queue-mode worker waits for its next execution with a blocking Redis call (Bull's
BRPOPLPUSH from `bull:jobs:wait` to `bull:jobs:active`). When it stops (a restart, a deploy, a
drain: SIGTERM), n8n cuts that call short by closing its connection. An execution Redis hands to
the closing connection in that instant is moved to the active list, and nobody gets it: no worker
holds its lock, none ever started it. n8n runs Bull with maxStalledCount 0, so Bull's stalled
check fails it 30 to 60 seconds later ("job stalled more than allowable limit"): the execution
never runs and the webhook waiting for its answer gets none. The window is short, but wider for a
worker server's workers, whose connection goes through the SSH tunnel.

What it does: every `interval` seconds one Lua script in Redis lists the active executions with
no lock that were never started (no `processedOn`: Bull sets it, with the lock, in the same step
that starts one), and moves back to the head of the queue (or of the paused list, when the queue
is paused) those that have been so for `grace` seconds. A live worker takes an execution's lock
in a second Redis call right after fetching it, normally within milliseconds; the grace (15 s)
leaves that call seconds of slack (a busy worker, a tunnel that reconnects: a call arriving
after the execution went back would run it twice), and still ends well before Bull's stalled
check (every 30 s) would drop it. An execution that was started (a worker died while running
it) is never put back: running it twice could do its work twice.

It also resumes n8n's queue when a worker's stop held it (queue_hold.py) and died before
resuming it, once the holder's deadline has passed.

Redis is reached through the stack's redis container (`compose exec -T redis redis-cli`, one
session kept open): the password stays in that container's environment. Each execution put back
is one line on stdout (the journal: `journalctl -u mottivme-queue-guard`).
"""

from __future__ import annotations

import json

from . import queue_hold
from .common import Fail, out_line, stderr_line
from .redisconn import RedisCli, RedisDown
from .run import Runner
from .settings import Settings
from .stack import BULL_QUEUE

PROG = "mottivme-host queue-guard"
KEYS = [BULL_QUEUE + k for k in ("active", "wait", "paused", "meta-paused", "stalled")]
# KEYS: active, wait, paused, meta-paused, stalled; ARGV[1]: the queue's key prefix, ARGV[2..]: the
# executions (Bull job ids) to put back if they still have no lock and were never started.
# (No double quote, no backslash: it travels as one quoted argument of redis-cli's line.)
SCRIPT = """
local function orphan(id)
  local job = ARGV[1] .. id
  return redis.call('EXISTS', job) == 1 and redis.call('EXISTS', job .. ':lock') == 0
    and redis.call('HEXISTS', job, 'processedOn') == 0
end
local function execution(id)
  local ok, data = pcall(cjson.decode, redis.call('HGET', ARGV[1] .. id, 'data') or 'null')
  if ok and type(data) == 'table' and data['executionId'] then return tostring(data['executionId']) end
  return '?'
end
local moved = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  if orphan(id) and redis.call('LREM', KEYS[1], 1, id) > 0 then
    local target = KEYS[2]
    if redis.call('EXISTS', KEYS[4]) == 1 then target = KEYS[3] end
    redis.call('RPUSH', target, id)
    redis.call('SREM', KEYS[5], id)
    table.insert(moved, {id, execution(id)})
  end
end
local orphans = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if orphan(id) then table.insert(orphans, id) end
end
return cjson.encode({moved = moved, orphans = orphans})
""".strip()


def add_arguments(p) -> None:
    p.add_argument("--interval", type=float, default=2.0, metavar="SECONDS", help="seconds between two checks (default 2)")
    p.add_argument("--grace", type=float, default=15.0, metavar="SECONDS",
                   help="how long an execution stays found with no lock, never started, before it is put back "
                        "(default 15; keep grace + interval well under Bull's stalled check, 30 s)")


class Guard:
    """The checks, apart from how Redis is reached (`redis.call(*args) -> str`) and the clock."""

    def __init__(self, redis, runner: Runner, grace: float):
        self.redis, self.r, self.grace = redis, runner, grace
        self.seen: dict[str, float] = {}  # job id -> when it was first found with no lock, never started

    def check(self) -> list[tuple[str, str]]:
        """One check: puts back the executions found so `grace` seconds ago or more; returns
        them, (job id, execution id)."""
        # first (a bad answer to the orphans' script below must not keep a dead holder's pause)
        if queue_hold.release_expired(self.redis):
            out_line(f"n8n's queue resumed: the worker's stop that held it (queue_hold.py) left it paused for more "
                     f"than {queue_hold.HOLD_SECONDS} s")
        now = self.r.now()
        due = [job for job, first in self.seen.items() if now - first >= self.grace]
        answer = self.redis.call("EVAL", SCRIPT, str(len(KEYS)), *KEYS, BULL_QUEUE, *due)
        try:
            reply = json.loads(answer)
            moved = [(str(job), str(execution)) for job, execution in (reply["moved"] or [])]
            orphans = [str(x) for x in (reply["orphans"] or [])]
        except (ValueError, KeyError, TypeError):
            raise RedisDown(f"unexpected answer from Redis: {answer[:160]!r}") from None
        self.seen = {job: self.seen.get(job, now) for job in orphans}
        for job, execution in moved:
            out_line(f"execution {execution} (queue job {job}) put back in the queue: a stopping worker "
                     "had taken it but never started it")
        return moved


def main(ns, s: Settings, runner: Runner) -> int:
    if ns.interval <= 0 or ns.grace < 0:
        raise Fail("--interval must be more than 0 seconds and --grace not negative", 2)
    redis = RedisCli(s)
    guard = Guard(redis, runner, grace=ns.grace)
    out_line(f"{PROG}: watching n8n's queue every {ns.interval:g} s (grace {ns.grace:g} s)")
    down = ""
    try:
        while True:  # until systemd stops it (SIGTERM: KeyboardInterrupt, cli.py), its normal end
            try:
                guard.check()
                if down:
                    out_line(f"{PROG}: Redis answers again")
                down = ""
            except RedisDown as e:
                if str(e) != down:  # one line per state, not one per check
                    stderr_line(f"{PROG}: WARNING {e}; trying again every {ns.interval:g} s")
                down = str(e)
            runner.sleep(ns.interval)
    except KeyboardInterrupt:
        out_line(f"{PROG}: stopped")
        return 0
    finally:
        redis.close()
