"""Scaling tiers on sandbox servers: bronze -> ouro with one deploy, executions run by workers on
other servers through the SSH tunnel, drained workers lose nothing, Redis/PostgreSQL closed to
everything else, and back to bronze."""

import ipaddress
import json
import re
import shlex
import threading
import time
import uuid

import pytest

from mottivme_host.stack import REDIS_CLI
from sandbox.n8n_client import N8nClient, n8n_api, webhook_workflow
from tasks import groupdata
from tests.helpers import Server, lock_holding, monitor_status, polling, run_pyinfra, secrets_of, tcp_from

RUN = uuid.uuid4().hex[:6]  # webhook paths of this run (a reused sandbox keeps older workflows)
WHO, DRAIN, QUEUED, HELD = (f"scaling-{x}-{RUN}" for x in ("who", "drain", "queued", "held"))
WORKER_CONTAINERS = "docker ps -aq --filter label=com.docker.compose.project=n8n-worker"
SLEEP_CODE = ("const ms = Number($input.first().json.query.ms || 0);\n"
              "await new Promise(r => setTimeout(r, ms));\n"
              "return [{ json: { execution: $execution.id } }];")


def deploy(env, tier, *extra):
    return run_pyinfra(["-y", *extra, "inventory.py", "deploy.py", "--data", f"n8n_tier={tier}"], env, timeout=1500)


@pytest.fixture(scope="module")
def ouro(sbx, sandbox_env, first_deploy, n8n_server):
    """Two worker servers join the sandbox; one deploy moves everything to tier ouro. Afterwards
    one deploy brings it back to bronze from whatever tier the tests left (platina: the webhook
    processors go too, the workers drain) and the worker servers go."""
    records = sbx.up(2, "n8n_workers")
    workers = [Server(sbx, h) for h in records]
    try:
        r = deploy(sandbox_env, "ouro")
        assert r.returncode == 0, f"bronze -> ouro failed:\n{r.stdout[-5000:]}\n{r.stderr[-3000:]}"
        yield workers
        r = deploy(sandbox_env, "bronze")
        assert r.returncode == 0, f"ouro -> bronze failed:\n{r.stdout[-5000:]}\n{r.stderr[-3000:]}"
        for w in workers:
            assert w.sh("docker ps -q --filter label=com.docker.compose.project=n8n-worker").strip() == ""
        names = n8n_server.sh("docker ps --format '{{.Names}}'")
        assert "n8n-webhook" not in names and "redis" not in names, names
        # the queue guard went with queue mode, stopped as a service stops (not "failed")
        guard = n8n_server.sh("systemctl is-active mottivme-queue-guard; systemctl is-enabled mottivme-queue-guard",
                              check=False).split()
        assert guard == ["inactive", "disabled"], guard
    finally:
        sbx.down([w.name for w in workers], stop_shared_services=False)


@pytest.fixture(scope="module")
def api(ouro, n8n_server, sbx):
    client = N8nClient(n8n_server.url)
    return client, n8n_api(client, secrets_of(sbx))


def psql(n8n_server, sql: str) -> str:
    return n8n_server.sh(f"docker exec $(mottivme-host compose ps -q postgres) psql -U n8n -d n8n -AtqX -c \"{sql}\"").strip()


def redis_cli(n8n_server, command: str) -> str:
    """A command of redis-cli in the stack's Redis, as the host programs run it (REDIS_CLI)."""
    return n8n_server.sh("mottivme-host compose " + shlex.join([*REDIS_CLI, "--raw", *command.split()])).strip()


def worker_logs(server: Server) -> str:
    return server.sh(f"for c in $({WORKER_CONTAINERS}); do docker logs $c 2>&1; done")


def test_bronze_to_ouro_is_one_deploy_and_the_next_changes_nothing(ouro, n8n_server, sandbox_env):
    env = n8n_server.sh("docker exec $(mottivme-host compose ps -q n8n) env")
    assert "EXECUTIONS_MODE=queue" in env and "QUEUE_BULL_REDIS_HOST=redis" in env
    assert "running" in n8n_server.sh("docker inspect -f '{{.State.Status}}' $(mottivme-host compose ps -q redis)")
    assert n8n_server.sh("systemctl is-active mottivme-queue-guard", check=False).strip() == "active"
    for w in ouro:
        assert w.sh("systemctl is-active n8n-tunnel").strip() == "active"
        health = w.sh("docker ps --filter label=com.docker.compose.project=n8n-worker --format '{{.Names}} {{.Status}}'")
        assert health.count("(healthy)") == 4 and health.count("-runners-") == 2, health  # 2 workers, their runners
    r = deploy(sandbox_env, "ouro", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout)["results"]["totals"]["success"] == 0, "a second deploy changed something"


def test_a_webhook_on_the_main_server_runs_on_a_worker_server(api, ouro, n8n_server):
    n8n, headers = api
    webhook_workflow(n8n, headers, "itest scaling who", WHO, str(uuid.uuid4()), code=SLEEP_CODE)
    status, body = n8n.request("GET", f"webhook/{WHO}")
    assert status == 200, body
    execution = str(body["execution"])
    started = re.compile(rf"Worker started execution {execution} \(job")
    ran_on = [w.name for w in ouro if started.search(worker_logs(w))]
    assert len(ran_on) == 1, f"execution {execution} started on {ran_on}"
    assert not started.search(n8n_server.sh("docker logs $(mottivme-host compose ps -q n8n) 2>&1")), "the main process ran it itself"


def test_queued_executions_survive_a_worker_server_being_drained(api, ouro, n8n_server, sandbox_env):
    """60 executions of 4 s for 40 worker slots; one worker server is drained at once: the ones it
    was running finish, the queued ones go to the other server, every one succeeds."""
    n8n, headers = api
    wf = webhook_workflow(n8n, headers, "itest scaling drain", DRAIN, str(uuid.uuid4()),
                          code=SLEEP_CODE, response_mode="onReceived")
    before = int(psql(n8n_server, f"select count(*) from execution_entity where \\\"workflowId\\\" = '{wf}'"))
    for _ in range(60):
        assert n8n.request("GET", f"webhook/{DRAIN}?ms=4000")[0] == 200
    drained = ouro[1]
    r = run_pyinfra(["-y", "inventory.py", "runbooks/drain_worker.py", "--limit", drained.name], sandbox_env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert drained.sh("docker ps -q --filter label=com.docker.compose.project=n8n-worker").strip() == ""
    # told to stop with n8n's queue held (mottivme-host stop-workers): none of the 60 is lost below
    out = r.stdout + r.stderr
    assert re.search(rf"\[{drained.name}\] n8n-worker-1, n8n-worker-2: n8n's queue held [0-9.]+s while they were "
                     "told to stop", out), out[-3000:]
    counts = {}
    for _ in range(90):
        rows = psql(n8n_server, f"select status, count(*) from execution_entity where \\\"workflowId\\\" = '{wf}' "
                                "group by 1")
        counts = dict(line.split("|") for line in rows.splitlines())
        if int(counts.get("success", 0)) >= before + 60:
            break
        time.sleep(2)
    assert int(counts.get("success", 0)) == before + 60, counts
    assert set(counts) == {"success"}, counts
    # back in service with one deploy
    r = deploy(sandbox_env, "ouro")
    assert r.returncode == 0, r.stdout[-3000:]
    assert drained.sh("systemctl is-active n8n-tunnel").strip() == "active"


def test_waiting_executions_are_reported_and_one_a_stopping_worker_took_is_not_lost(api, ouro, n8n_server, monitor):
    """Queue mode: the n8n server reports how many executions wait in Redis for a worker (SOP 05:
    time for more workers), read from the real queue, and the monitor has a check for it; the worker
    servers' disk, memory and CPU reports reach it as every managed server's do. And an
    execution a stopping worker took from Redis in the instant it stopped (in the active list, no
    lock, never started: what n8n's SIGTERM leaves when a job arrives as it closes its blocking
    call; n8n would drop it 30-60 s later) is put back in the queue by the queue guard and runs,
    after its grace; one a worker had started (and died running) stays where it is: running it
    again could do its work twice."""
    n8n, headers = api
    wf = webhook_workflow(n8n, headers, "itest scaling queued", QUEUED, str(uuid.uuid4()),
                          code=SLEEP_CODE, response_mode="onReceived")
    succeeded = f"select count(*) from execution_entity where \\\"workflowId\\\" = '{wf}' and status = 'success'"
    time.sleep(3)  # the executions of webhook_workflow's own calls (it waits until the webhook answers) end
    before = int(psql(n8n_server, succeeded))
    for w in ouro:  # no worker anywhere: what arrives waits
        w.sh(f"docker stop -t 60 $({WORKER_CONTAINERS})")
    try:
        for _ in range(3):
            assert n8n.request("GET", f"webhook/{QUEUED}")[0] == 200
        assert "queue 3 waiting" in n8n_server.sh("mottivme-report-disk --print")
        n8n_server.sh("mottivme-report-disk")
        for w in ouro:  # the worker servers report their disk, memory and CPU as every managed server does
            w.sh("mottivme-report-disk; sleep 1; mottivme-report-disk")  # the first has no CPU sample to compare
        monitor.sh("mottivme-monitor run")
        services = {s["name"]: s for s in monitor_status(monitor)["services"]}
        queue = services[f"queue-{n8n_server.name}"]
        assert (queue["state"], queue["reason"]) == ("up", ""), queue  # pinged (not "no ping yet"), 3 <= 100
        for check in (f"{kind}-{w.name}" for w in ouro for kind in ("disk", "memory", "cpu")):
            assert (services[check]["state"], services[check]["reason"]) == ("up", ""), services[check]
        assert n8n.request("GET", f"webhook/{QUEUED}")[0] == 200  # a fourth
        # the stopping worker's race, exactly: a blocking fetch whose caller is gone
        job = redis_cli(n8n_server, "BRPOPLPUSH bull:jobs:wait bull:jobs:active 5")
        orphaned = time.monotonic()
        # and one a worker started (Bull's start stamps processedOn), its worker gone since
        started = redis_cli(n8n_server, "BRPOPLPUSH bull:jobs:wait bull:jobs:active 5")
        assert job.isdigit() and started.isdigit(), (job, started)
        redis_cli(n8n_server, f"HSET bull:jobs:{started} processedOn {int(time.time() * 1000)}")
        for _ in range(40):
            log = n8n_server.sh("journalctl -u mottivme-queue-guard --no-pager -o cat", check=False)
            if f"(queue job {job}) put back in the queue" in log:
                break
            time.sleep(1)
        assert f"(queue job {job}) put back in the queue" in log, log[-2000:]
        assert time.monotonic() - orphaned >= 14  # not before its 15 s grace (a slow worker may still take it)
        time.sleep(5)  # two more checks
        assert redis_cli(n8n_server, "LRANGE bull:jobs:active 0 -1").split() == [started]
        assert f"(queue job {started})" not in n8n_server.sh("journalctl -u mottivme-queue-guard --no-pager -o cat")
    finally:
        for w in ouro:
            w.sh(f"docker start $({WORKER_CONTAINERS})")
    for _ in range(60):  # and nothing was lost but the started one: the workers take them when back
        done = int(psql(n8n_server, succeeded)) - before
        if done >= 3:
            break
        time.sleep(2)
    assert done == 3
    assert "queue 0 waiting" in n8n_server.sh("mottivme-report-disk --print")


def hold(server: Server, script: str, *argv: str) -> str:
    """queue_hold's PAUSE or RELEASE run by the server's host programs, Redis reached as they reach
    it (the main server: its redis container; a worker server: the tunnel, RESP)."""
    code = ("import sys; sys.path.insert(0, '/usr/local/lib/mottivme'); "
            "from mottivme_host import queue_hold as q, redisconn, settings; r = redisconn.connect(settings.load()); "
            "print(q._eval(r, getattr(q, sys.argv[1]), *sys.argv[2:])); r.close()")
    return server.sh(shlex.join(["python3", "-c", code, script, *argv])).strip()


def test_a_held_queue_keeps_what_arrives_and_the_guard_ends_a_pause_whose_holder_died(api, ouro, n8n_server):
    """queue_hold's scripts in the real Redis: two restarts (a worker server's, the main server's)
    hold the queue together, an execution arriving meanwhile waits and runs once the last one
    lets go; a holder that died leaves a pause the queue guard ends after its deadline; a pause
    that is not ours is neither joined nor ended."""
    n8n, headers = api
    webhook_workflow(n8n, headers, "itest scaling held", HELD, str(uuid.uuid4()), code=SLEEP_CODE)

    def paused() -> bool:
        return redis_cli(n8n_server, "EXISTS bull:jobs:meta-paused") == "1"

    assert hold(ouro[0], "PAUSE", "itest-a", "600000") == "paused"
    assert hold(n8n_server, "PAUSE", "itest-b", "600000") == "shared"
    answers: list = []
    try:
        sent = threading.Thread(target=lambda: answers.append(n8n.request("GET", f"webhook/{HELD}")), daemon=True)
        sent.start()
        time.sleep(4)
        assert paused() and not answers  # it waits in Bull's paused list, no worker can take it
        assert redis_cli(n8n_server, "LLEN bull:jobs:paused") == "1"
        assert hold(n8n_server, "RELEASE", "itest-a") == "held"  # itest-b still holds it
        assert paused()
        assert hold(ouro[0], "RELEASE", "itest-b") == "resumed"
        sent.join(60)
        assert answers and answers[0][0] == 200 and "execution" in answers[0][1], answers
    finally:
        for holder in ("itest-a", "itest-b"):
            hold(n8n_server, "RELEASE", holder)
    assert not paused()
    assert hold(n8n_server, "PAUSE", "itest-dead", "1000") == "paused"  # and it never lets go
    for _ in range(20):
        if not paused():
            break
        time.sleep(1)
    assert not paused(), "the queue guard did not resume a pause whose holder's deadline passed"
    log = n8n_server.sh("journalctl -u mottivme-queue-guard --no-pager -o cat", check=False)
    assert "n8n's queue resumed: the worker's stop that held it (queue_hold.py) left it paused" in log, log[-1500:]
    redis_cli(n8n_server, "SET bull:jobs:meta-paused 1")  # someone else's pause (Bull's Queue.pause())
    try:
        assert hold(n8n_server, "PAUSE", "itest-c", "1000") == "foreign"
        time.sleep(5)  # two checks of the guard, the would-be holder's deadline passed
        assert paused()
    finally:  # Bull's resume: what arrived meanwhile (nothing is sent) goes back to the waiting list
        if redis_cli(n8n_server, "EXISTS bull:jobs:paused") == "1":
            redis_cli(n8n_server, "RENAME bull:jobs:paused bull:jobs:wait")
        redis_cli(n8n_server, "DEL bull:jobs:meta-paused")


def test_redis_and_postgres_refuse_everything_but_the_stack_and_the_tunnel(ouro, n8n_server, probe, sbx):
    main_ip = n8n_server.h["private_ip"]
    for port in (6379, 5432):  # another machine on the private network
        out = probe.sh(f"timeout 5 bash -c '</dev/tcp/{main_ip}/{port}' && echo open || echo closed", check=False)
        assert out.strip().endswith("closed"), f"port {port} reachable from {probe.name}"
    # no password, no Redis
    assert "NOAUTH" in n8n_server.sh("docker exec $(mottivme-host compose ps -q redis) redis-cli ping 2>&1", check=False)
    # the tunnel account opens nothing else and runs nothing
    w = ouro[0]
    ssh = (f"ssh -i /etc/mottivme/tunnel_ed25519 -o BatchMode=yes -o StrictHostKeyChecking=accept-new "
           f"-o UserKnownHostsFile=/etc/mottivme/tunnel_known_hosts n8n-tunnel@{main_ip}")
    assert "rc=0" not in w.sh(f"{ssh} id 2>&1; echo rc=$?", check=False)
    out = w.sh(f"{ssh} -N -L 127.0.0.1:2222:127.0.0.1:22 & pid=$!; sleep 3; "
               "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2222; head -c 4 <&3' 2>&1; kill $pid", check=False)
    assert "SSH-" not in out, "the tunnel account could reach the main server's sshd"
    # nor listen on the main server (a remote forward): refused at once, not left open
    out = w.sh(f"timeout 10 {ssh} -N -o ExitOnForwardFailure=yes -R 127.0.0.1:2223:127.0.0.1:22 2>&1; echo rc=$?",
               check=False)
    assert "rc=255" in out and "remote port forwarding failed" in out, out
    # the workers' task runners: their own broker on the runners' bridge, nothing else of the
    # host (not sshd, not the tunnel's ends), nothing beyond it (not the main server)
    gateway = str(next(ipaddress.ip_network(groupdata.load()["n8n_runners_subnet"]).hosts()))
    for i in (1, 2):
        assert tcp_from(w, f"n8n-worker-{i}-runners", gateway, 5700 + i) == "open"
    for address, port in ((gateway, 22), (main_ip, 443), (main_ip, 22)):
        assert tcp_from(w, "n8n-worker-1-runners", address, port) == "closed", (address, port)
    assert tcp_from(w, "n8n-worker-1", main_ip, 443) == "open"  # the worker itself: what a way out looks like
    # and through the tunnel, with the password, Redis answers (what the workers use)
    secret = secrets_of(sbx)["REDIS_PASSWORD"]
    got = w.sh(f"exec 3<>/dev/tcp/127.0.0.1/6379; printf 'AUTH {secret}\\r\\nPING\\r\\n' >&3; timeout 3 head -c 12 <&3")
    assert "+OK" in got and "+PONG" in got


def test_a_version_change_takes_the_worker_servers_along(seeded, api, ouro, n8n_server, sandbox_env):
    """Main and workers never run different versions: a version a worker server cannot load stops
    the runbook before anything stops; otherwise the worker servers drain during the switch and
    start on the version the main server ended on."""
    def images() -> set[str]:
        return {i for w in ouro for i in w.sh("docker ps --filter label=com.docker.compose.project=n8n-worker "
                                              "--format '{{.Image}}'").split()}

    # a version pinned in images.lock that the registry does not serve: the worker servers cannot pull it
    with lock_holding({"docker.n8n.io/n8nio/n8n:2.41.7": "sha256:" + "7" * 64, "n8nio/runners:2.41.7": "sha256:" + "7" * 64}):
        r = run_pyinfra(["-y", "inventory.py", "runbooks/emergency_deploy.py", "--data", "n8n_version=2.41.7"],
                        sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "cannot take this version" in out and "nothing was changed" in out, out[-3000:]
    assert images() == {"docker.n8n.io/n8nio/n8n:2.41.1", "n8nio/runners:2.41.1"}
    assert "n8n:2.41.1" in n8n_server.sh("docker inspect -f '{{.Config.Image}}' $(mottivme-host compose ps -q n8n)")
    n8n, _ = api
    # back by the emergency deploy, forward by deploy.py (group_data's version): the same path
    for version in ("2.41.0", "2.41.1"):
        if version == "2.41.0":
            r = run_pyinfra(["-y", "inventory.py", "runbooks/emergency_deploy.py", "--data", f"n8n_version={version}"],
                            sandbox_env)
        else:
            r = deploy(sandbox_env, "ouro")
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-4000:]
        assert (out.index("drain and stop during the switch") < out.index(f"n8n {version} (snapshot first")
                < out.index("the version the main server ended on")), out[-4000:]
        for w in ouro:  # each worker server's workers told to stop with n8n's queue held
            assert re.search(rf"\[{w.name}\] n8n-worker-1, n8n-worker-2: n8n's queue held", out), out[-4000:]
        assert images() == {f"docker.n8n.io/n8nio/n8n:{version}", f"n8nio/runners:{version}"}  # runners follow
        status, body = n8n.request("GET", f"webhook/{WHO}")
        assert status == 200 and "execution" in body, body


def test_backup_and_restore_work_in_queue_mode(seeded, api, ouro, n8n_server, sandbox_env):
    r = run_pyinfra(["-y", "inventory.py", "runbooks/backup_now.py"], sandbox_env)
    assert r.returncode == 0, r.stdout[-3000:]
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restore.py", "--data", "snapshot=latest",
                     "--data", "safety_snapshot=no"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert out.index("drain and stop during the restore") < out.index("restore snapshot") < out.index("workers: start")
    n8n, _ = api
    status, body = n8n.request("GET", f"webhook/{WHO}")
    assert status == 200 and "execution" in body, body


def test_platina_webhooks_answer_without_the_main_process_and_through_a_restart(api, ouro, n8n_server, sandbox_env):
    """Tier platina: production webhooks go through Caddy to the webhook processors and run on the
    workers, so they keep answering while the main process is stopped; and through the restart
    runbook (workers one at a time, each told to stop with the queue held, each processor drained
    and restarted, then the main process) three steady streams of them keep answering: none fails
    (bronze loses every webhook while n8n restarts; before the hold, CI saw this stream lose the
    execution a stopping worker had just taken; before n8n_queue_keep_finished, a webhook a
    processor took right after its restart whose execution ended before the processor asked). (The last test of the module: its teardown goes from platina straight back to
    bronze.)"""
    # with a new configuration for the workers too (their concurrency): `compose up -d` re-creates
    # them, each worker server stops its workers first with n8n's queue held
    r = deploy(sandbox_env, "platina", "--data", "n8n_worker_concurrency=7")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    out = r.stdout + r.stderr
    for w in ouro:
        assert re.search(rf"\[{w.name}\] n8n-worker-1, n8n-worker-2: n8n's queue held [0-9.]+s while they were told to "
                         "stop", out), out[-4000:]
        assert re.search(rf"\[{w.name}\] n8n-worker-1, n8n-worker-2 stopped in \d+s before the new configuration is "
                         "applied", out), out[-4000:]
        assert w.sh("docker inspect -f '{{json .Config.Cmd}}' $(docker ps -q --filter "
                    "label=com.docker.compose.service=n8n-worker-1)").count("--concurrency=7") == 1
    env = n8n_server.sh("docker exec $(mottivme-host compose ps -q n8n) env")
    assert "N8N_DISABLE_PRODUCTION_MAIN_PROCESS=true" in env
    n8n, _ = api
    n8n_server.sh("mottivme-host compose stop n8n")
    try:
        for _ in range(3):
            status, body = n8n.request("GET", f"webhook/{WHO}")
            assert status == 200 and "execution" in body, (status, body)
    finally:
        n8n_server.sh("mottivme-host compose start n8n")

    def webhook():  # one at a time, as long as the restart runs: (when, status, answer, answered)
        try:
            status, body = n8n.request("GET", f"webhook/{WHO}")
        except OSError as e:
            status, body = None, repr(e)
        return time.strftime("%H:%M:%S"), status, str(body)[:200], status == 200 and "execution" in body

    # three clients at once: a processor just restarted takes several requests in its first
    # second (the moment a finished execution's end could be missed: docs/scaling.md)
    with polling(webhook, 0.2) as one, polling(webhook, 0.2) as two, polling(webhook, 0.2) as three:
        r = run_pyinfra(["-y", "inventory.py", "runbooks/restart_n8n.py"], sandbox_env)
    sent = one + two + three
    failed = [x[:3] for x in sent if not x[3]]
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    for w in ouro:
        assert out.count(f"[{w.name}] n8n-worker-1 restarted and healthy") == 1, out[-4000:]
        assert f"[{w.name}] n8n-worker-2 restarted and healthy" in out
        for worker in ("n8n-worker-1", "n8n-worker-2"):  # each told to stop with the queue held (Redis by the tunnel)
            assert re.search(rf"\[{w.name}\] {worker}: n8n's queue held [0-9.]+s while it was told to stop", out), out[-4000:]
    for hook in ("n8n-webhook-1", "n8n-webhook-2"):
        assert f"{hook} takes no new requests (Caddy sends them to the others): drained in" in out, out[-4000:]
        assert out.index(f"{hook} takes no new requests") < out.index(f"{hook} restarted and healthy")
    assert "n8n ready again" in out
    assert len(sent) >= 20 and not failed, f"{len(failed)} of {len(sent)} webhooks failed during the restart: {failed}"

