"""Hold n8n's queue still for the moment a worker is told to stop, so that the stop loses nothing.

Why (n8n 2.41.1's ScalingService.stopWorker and JobProcessor.processJob): on SIGTERM a worker
stops taking executions and waits for the ones it has registered as running. An execution it
fetched from Redis in the last milliseconds before the signal is not registered yet (the worker
is still reading it from the database, or marking it running): the worker does not wait for it,
exits, and the execution is failed 30-60 s later by Bull's stalled check ("job stalled more than
allowable limit") or ends in an error at once; the webhook waiting for it gets no answer or a 500.
Measured in the sandbox: 12 of 14,228 webhooks failed over 64 worker restarts (6 clients), none
of them one the queue guard (queue_guard.py) could put back: Bull had stamped each as started.

What `hold()` does: Bull's own global pause, as `Queue.pause()` does it (the waiting list
renamed to the paused list, `meta-paused` set, the `paused` event): new executions queue up in
the paused list, no worker can fetch one. SETTLE seconds later every execution fetched before is
registered; then the caller stops the worker, waits until the worker says it got the signal (it
has paused its own fetching by then), and the hold ends with Bull's resume. New executions wait
about two seconds; none is lost; running ones go on.

Several holders at once (two servers' restarts) share the pause: each is a member of a sorted
set with its deadline (HOLD_SECONDS), and the last one out resumes. A holder that dies (a killed
run, a lost SSH session) never resumes: the queue guard on the main server (`release_expired`,
every check) resumes the queue once every holder's deadline has passed. A pause that is not this
program's (meta-paused with no holder) is left alone: no hold is taken and nothing resumed. (What
cannot be told apart: a pause by something else taken while a holder is in the set is resumed
when the last holder leaves. n8n itself never pauses the queue globally: its pauses are local.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager

from .common import out_line, stderr_line
from .redisconn import RedisDown
from .stack import BULL_QUEUE

# a holder's deadline: after it the queue guard resumes a queue its holder left paused. A hold
# lasts SETTLE + the worker's signal (SIGNAL_WAIT at most) + a margin: well under it
HOLD_SECONDS = 30
SETTLE = 1.0  # seconds between the pause and the signal: an execution fetched before is registered by then
SIGNALLED = "Received SIGTERM"  # what n8n logs (info) when the signal reaches it: it stops fetching executions
SIGNAL_WAIT = 10  # seconds the queue stays held at most, waiting for that line
SIGNAL_MARGIN = 0.5  # seconds after it: n8n's own pause of its fetching is done
LOGS_TIMEOUT = 5  # seconds for one `docker logs` while the queue is held
POLL = 0.2  # seconds between two reads of the workers' logs
# a hold ends well before its deadline, whatever Docker does: the settle time, the wait for the
# signal (a read of the logs is cut at its end, 0.5 s at the least), the margin; Redis's answers
assert SETTLE + SIGNAL_WAIT + 0.5 + SIGNAL_MARGIN < HOLD_SECONDS / 2
HOLDERS = "mottivme:queue-holders"  # sorted set: holder -> deadline (ms, Redis's clock)
# Bull's keys (bull 4.16, lib/commands/pause-5.lua): the lists, the flag, the meta hash, the event channels
KEYS = [HOLDERS] + [BULL_QUEUE + k for k in ("wait", "paused", "meta-paused", "meta")]
_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)"
# a list into another: Bull's RENAME when the target is empty; when something put jobs there
# meanwhile, moved one by one behind them, oldest first (Bull takes from the right)
_MOVE = """
local function move(from, to)
  if redis.call('EXISTS', to) == 0 then
    if redis.call('EXISTS', from) == 1 then redis.call('RENAME', from, to) end
  else
    while redis.call('RPOPLPUSH', from, to) do end
  end
end
"""
_RESUME = _MOVE + """
local function resume()
  move(KEYS[3], KEYS[2])
  redis.call('DEL', KEYS[4])
  redis.call('HDEL', KEYS[5], 'paused')
  redis.call('PUBLISH', ARGV[1] .. 'resumed', 'resumed')
end
"""
# ARGV[1]: Bull's key prefix, ARGV[2]: the holder, ARGV[3]: its deadline from now (ms)
PAUSE = _NOW + _MOVE + """
if redis.call('EXISTS', KEYS[4]) == 1 and redis.call('EXISTS', KEYS[1]) == 0 then return 'foreign' end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
if redis.call('EXISTS', KEYS[4]) == 1 then return 'shared' end
move(KEYS[2], KEYS[3])
redis.call('SET', KEYS[4], 1)
redis.call('HSET', KEYS[5], 'paused', 1)
redis.call('PUBLISH', ARGV[1] .. 'paused', 'paused')
return 'paused'
"""
# ARGV[1]: Bull's key prefix, ARGV[2]: the holder leaving ('' for the queue guard: expired ones only)
RELEASE = _NOW + _RESUME + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'none' end
if ARGV[2] ~= '' then redis.call('ZREM', KEYS[1], ARGV[2]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) > 0 then return 'held' end
resume()
return 'resumed'
"""
for _script in (PAUSE, RELEASE):  # each travels as one argument of a redis-cli line (redisconn.quoted)
    assert '"' not in _script and "\\" not in _script


def _eval(redis, script: str, *argv: str) -> str:
    return redis.call("EVAL", script.strip(), str(len(KEYS)), *KEYS, BULL_QUEUE, *argv).strip()


def holder_name(service: str) -> str:
    """A holder no other run shares (this server, the service(s) joined by +, this process, a
    random part): two restarts of `n8n-worker-1` on two servers are two holders."""
    return f"{socket.gethostname()}:{service.replace(', ', '+')}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextmanager
def hold(redis, runner, service: str, prog: str, warn=stderr_line):
    """Hold the queue for the block (see the module's text); yields whether it is held.
    `redis`: redisconn.connect(s)'s (None: no queue here, nothing held). Redis not answering, or
    answering something else, is a warning, never a failure: the stop goes on as before, unheld.
    Once PAUSE was sent, RELEASE is sent whatever happens (Ctrl-C in the settle time included):
    for a holder that is not in the set it changes nothing."""
    if redis is None:
        yield False
        return
    holder, state = holder_name(service), ""
    try:
        try:
            state = _eval(redis, PAUSE, holder, str(HOLD_SECONDS * 1000))
            why = f"Redis answered {state[:160]!r}"
        except RedisDown as e:
            why = str(e)
        if state == "foreign":
            out_line(f"{prog}: n8n's queue is paused by something else: left as it is")
        elif state not in ("paused", "shared"):
            warn(f"{prog}: WARNING cannot hold n8n's queue ({why}): stopping {service} without; "
                 "an execution it takes at that instant may be lost")
        held = state in ("paused", "shared")
        if held:
            runner.sleep(SETTLE)
        yield held
    finally:
        if state != "foreign":
            try:
                answer = _eval(redis, RELEASE, holder)
                if answer not in ("resumed", "held", "none"):
                    raise RedisDown(f"Redis answered {answer[:160]!r}")
            except RedisDown as e:
                if state in ("paused", "shared"):
                    warn(f"{prog}: WARNING could not resume n8n's queue ({e}); the queue guard resumes it "
                         f"within {HOLD_SECONDS} s and its next check")


def release_expired(redis) -> bool:
    """The queue guard's part: resume a queue whose holders all passed their deadline. True when
    it resumed one."""
    return _eval(redis, RELEASE, "") == "resumed"


def running(st, runner, services) -> dict[str, str]:
    """service -> container id, of those of `services` whose container runs now."""
    found = {}
    for service in services:
        cid = st.container_id(service)
        if cid and runner.run(["docker", "inspect", "--format", "{{.State.Running}}", cid],
                              check=False).stdout.strip() == "true":
            found[service] = cid
    return found


def _said(runner, cid: str, since: str, seconds: float) -> bool:
    """Did the container log the signal since `since` (asked for `seconds` at most)? A container
    that is gone (removed once it stopped: `compose down`, a re-creation) has stopped: it fetches
    nothing more."""
    try:
        r = runner.run(["docker", "logs", "--since", since, cid], check=False, timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return SIGNALLED in r.stdout + r.stderr or (not r.ok and "No such container" in r.stderr)


def _signalled(runner, cids: dict[str, str], since: str, stopping) -> list[str]:
    """Wait (SIGNAL_WAIT s at most, whatever `docker logs` does) until each container's log since
    `since` says n8n got the signal; the services that did not say it. At once when the stop
    (`stopping()`) ended: a container it left running was not stopped by it (compose had nothing
    to change there), and one it failed to stop is its error to tell."""
    deadline, left = runner.now() + SIGNAL_WAIT, dict(cids)
    while True:
        alive = stopping()  # before the logs are read: a stop that ended has its last word in them
        for svc, cid in list(left.items()):
            remaining = deadline - runner.now()
            if remaining <= 0:
                break
            if _said(runner, cid, since, max(0.5, min(LOGS_TIMEOUT, remaining))):
                del left[svc]
        if not left:
            runner.sleep(SIGNAL_MARGIN)
            return []
        if not alive:
            return []
        if runner.now() >= deadline:
            return sorted(left)
        runner.sleep(POLL)


def held_stop(st, runner, services, redis, prog: str, stop, say=out_line, warn=stderr_line):
    """Run `stop()` (a compose command that signals workers: n8n-restart's `restart`, the `stop`
    of deploy-version and stop-workers) beside, with the queue held from SETTLE s before it until
    each of `services` that runs now has logged the signal (and SIGNAL_MARGIN after): not for the
    time a worker with running executions takes to finish them. Returns what `stop()` returned, raises what it
    raised. `redis` None (no queue here) or none of `services` running: `stop()` alone. `say`
    and `warn`: where its line and its warnings go."""
    cids = running(st, runner, services) if redis is not None else {}
    if not cids:
        return stop()
    since, result, failed, silent = f"{time.time():.3f}", [], [], []

    def beside():
        try:
            result.append(stop())
        except BaseException as e:  # handed to the caller's thread below
            failed.append(e)

    thread = threading.Thread(target=beside, name=f"stop {' '.join(cids)}", daemon=True)
    names = ", ".join(cids)
    t = runner.now()
    with hold(redis, runner, names, prog, warn) as held:
        thread.start()
        if held:
            silent = _signalled(runner, cids, since, thread.is_alive)
            if silent:
                warn(f"{prog}: WARNING {', '.join(silent)} did not log \"{SIGNALLED}\" in {SIGNAL_WAIT}s: "
                     "n8n's queue resumed all the same")
    seconds = runner.now() - t
    thread.join()
    if failed:
        raise failed[0]
    if held and silent:
        say(f"{names}: n8n's queue held {seconds:.1f}s; not confirmed that {', '.join(silent)} got the signal "
            "before it resumed")
    elif held:
        they = "it was" if len(cids) == 1 else "they were"
        say(f"{names}: n8n's queue held {seconds:.1f}s while {they} told to stop "
            "(an execution just taken is not lost)")
    return result[0]
