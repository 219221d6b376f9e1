"""What the tests share (the one helpers module; conftest files hold fixtures only, and no test
module imports another): the project's paths, a clean environment, pyinfra as a user runs it,
sandbox servers by name, Ctrl-C of a runbook, and the recording fake of the host programs' runner."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mottivme_host import queue_hold, redisconn  # noqa: E402
from mottivme_host.run import CommandFailed, Result  # noqa: E402
from tasks.variables import VARIABLES  # noqa: E402

# Variables the project reads from the environment (tasks/variables.py); tests start from none of
# them, nor from the sandbox's own.
PROJECT_VARS = [v.name for v in VARIABLES] + ["SBX_STATE"]

GOOD_SECRETS = {
    "N8N_ENCRYPTION_KEY": "0123456789abcdef" * 4,
    "POSTGRES_PASSWORD": "pg-password-0123456789",
    "N8N_RUNNERS_AUTH_TOKEN": "runners-token-0123456789abcdef-0123",
    "N8N_OWNER_EMAIL": "owner@example.test",
    "N8N_OWNER_PASSWORD": "Owner-pass-123",
    "N8N_HOST": "n8n.example.test",
    "RESTIC_PASSWORD": "restic-password-0123456789",
}


def images_lock(data=None) -> dict[str, str]:
    """{image: digest} for the locked images of group data `data` (default: all.py's; tasks/images.py),
    with digests made up here: for the tests that never pull (the quick tier's)."""
    from tasks import groupdata, images

    return {ref: f"sha256:{i:064x}" for i, ref in enumerate(images.locked_refs(data or groupdata.load()), 1)}


def write_images_lock(path: Path, data=None) -> Path:
    from tasks import images

    images.write(path, images_lock(data))
    return path


@contextlib.contextmanager
def lock_holding(images: dict[str, str], lock: Path | None = None):
    """The sandbox's images.lock holding `images` (image -> digest) too, for the length of a block;
    as it was afterwards."""
    from tasks import images as images_mod

    lock = lock or STATE / "images.lock"
    held = lock.read_text()
    images_mod.write(lock, {**images_mod.read(lock), **images})
    try:
        yield
    finally:
        lock.write_text(held)


@contextlib.contextmanager
def polling(poll: Callable[[], object], interval: float, join_timeout: float = 90):
    """`poll()` again and again in a thread, `interval` seconds apart, for the length of a block
    (e.g. a client of n8n while a deploy or a restart runs); yields the list of its results."""
    seen: list = []
    done = threading.Event()

    def run():
        while not done.is_set():
            seen.append(poll())
            time.sleep(interval)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join(join_timeout)


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PROJECT_VARS}
    env.update(extra)
    return env


def run_pyinfra(args, env, timeout=900, cwd=ROOT) -> subprocess.CompletedProcess:
    """Run the pyinfra CLI exactly as a user does, from the repository root."""
    return subprocess.run([sys.executable, "-m", "pyinfra", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_mottivme(args, env, timeout=900, cwd=ROOT) -> subprocess.CompletedProcess:
    """The on-call console `mottivme ARGS` (its module, with this interpreter), as a user runs it
    (from the checkout `cwd`)."""
    return subprocess.run([sys.executable, "-m", "mottivme_console.program", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def checkout(dest: Path) -> Path:
    """Another checkout of this repository at `dest` (its files as they are here, nothing git
    ignores): for a test whose command edits the checkout it runs from."""
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\0")
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    return dest


# The integration tier runs on lines: a line's tests run one after the other, in file order, on
# servers no other line touches. `pytest -m integration -n 2` runs the lines at once (the scheduler
# in tests/conftest.py sends each line whole to one worker); `make test` and any run without xdist
# make the tier one line (docs/sandbox.md says why). LINES: the modules of the second line (else: "main"), chosen so that
# the two take about as long (docs/benchmarks.md); each of them runs on its own as well.
LINES = {"tests/integration/test_runbooks.py": "second", "tests/integration/test_scaling.py": "second"}


def line_of(nodeid: str) -> str:
    return LINES.get(nodeid.split("::", 1)[0], "main")


# The sandbox of this process: each xdist worker (gw0, gw1), whichever line it takes, has its own.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
STATE = ROOT / (".sandbox-test" if WORKER == "gw0" else f".sandbox-test-{WORKER}")
PREFIX = "tst" if WORKER == "gw0" else f"t{WORKER[2:]}x"  # servers tst-N, t1x-N


def run_runbook(monkeypatch, name: str, data: dict, host_data: dict | None = None,
                groups=("n8n_servers",)) -> list[dict]:
    """runbooks/NAME.py as pyinfra would run it on one host of `groups`, with `--data k=v` for each
    of `data` on the command line (the runbook reads its values there, as typed) and `host_data` as
    its host.data (group_data); the run_and_report calls it made, not run."""
    import runpy
    import types

    import pyinfra

    from tasks import n8n, operations, versions, workers
    from tasks.groupdata import Data

    fake_host = types.SimpleNamespace(name="n8n1.example.test", data=Data({**(host_data or {}), **data}),
                                      groups=list(groups))
    monkeypatch.setattr(pyinfra, "host", fake_host)
    for shared in (versions, n8n):  # the runbooks' shared steps (imported once)
        monkeypatch.setattr(shared, "host", fake_host)
    monkeypatch.setattr(sys, "argv", ["pyinfra", "-y", "inventory.py", f"runbooks/{name}.py",
                                      *[x for k, v in data.items() for x in ("--data", f"{k}={v}")]])
    ran = []
    monkeypatch.setattr(operations, "run_and_report", lambda **kw: ran.append(kw))
    monkeypatch.setattr(operations, "barrier", lambda **kw: None)
    monkeypatch.setattr(workers, "worker_servers_ready", lambda **kw: None)
    runpy.run_path(str(ROOT / "runbooks" / f"{name}.py"))
    return ran


# -- the data a backup must bring back (integration tier) ---------------------------------------
SUPABASE_PSQL = "docker exec -i supabase-db psql -U postgres -AtqX -v ON_ERROR_STOP=1"
N8N_PSQL = "mottivme-host compose exec -T postgres psql -U n8n -d n8n -AtqX -v ON_ERROR_STOP=1"


# the stand-in's schemas that hold data (sandbox/supabase.py, sandbox/seed.py)
SUPABASE_SCHEMAS = ("auth", "crm", "public", "storage")


def supabase_checksums(supabase_host) -> dict:
    """Row count and md5 of every row (vectors included) of every table of the stand-in's schemas:
    `table` for public's (the SOP's), `schema.table` for the others."""
    listed = ", ".join(f"'{x}'" for x in SUPABASE_SCHEMAS)
    sql = (f"select string_agg(format('select %L, count(*), md5(coalesce(string_agg(x::text, %L order by x::text), %L)) "
           f"from %I.%I x', case when table_schema = 'public' then table_name else table_schema || '.' || table_name end, "
           f"'|', '', table_schema, table_name), ' union all ' order by table_schema, table_name) "
           f"from information_schema.tables where table_schema in ({listed}) and table_type = 'BASE TABLE'")
    union = supabase_host.sh(f"echo \"{sql}\" | {SUPABASE_PSQL}").strip()
    out = supabase_host.sh(f"{SUPABASE_PSQL}", stdin=union + ";\n")
    return {line.split("|")[0]: tuple(line.split("|")[1:]) for line in out.splitlines()}


def supabase_shape(supabase_host) -> dict:
    """What the stand-in holds besides rows: policies, grants, row-level security, sequences'
    positions, extensions' schemas."""
    listed = ", ".join(f"'{x}'" for x in SUPABASE_SCHEMAS)
    queries = {
        "policies": "select schemaname, tablename, policyname, roles::text, cmd, qual, with_check from pg_policies "
                    "order by 1, 2, 3",
        "grants": f"select table_schema, table_name, grantee, privilege_type from information_schema.role_table_grants "
                  f"where table_schema in ({listed}) order by 1, 2, 3, 4",
        "rls": f"select n.nspname, c.relname, c.relrowsecurity from pg_class c join pg_namespace n on n.oid = "
               f"c.relnamespace where n.nspname in ({listed}) and c.relkind = 'r' order by 1, 2",
        "sequences": "select schemaname, sequencename, last_value from pg_sequences order by 1, 2",
        "extensions": "select extname, extnamespace::regnamespace from pg_extension order by 1",
        "owners": "select schemaname, tablename, tableowner from pg_tables where schemaname in ('auth', 'storage') "
                  "order by 1, 2",
        "realtime": "select pubname, schemaname, tablename from pg_publication_tables order by 1, 2, 3",
    }
    return {k: supabase_host.sh(f"{SUPABASE_PSQL}", stdin=q + ";\n").splitlines() for k, q in queries.items()}


def n8n_state(n8n_server) -> dict:
    wf = n8n_server.sh(f"{N8N_PSQL} -c 'select id, name, \"versionId\" from workflow_entity order by id'")
    cred = n8n_server.sh(f"{N8N_PSQL} -c 'select id, name, type, data from credentials_entity order by id'")
    return {"workflows": wf.splitlines(), "credentials": cred.splitlines()}


def backup_now(sandbox_env, tag="manual"):
    r = run_pyinfra(["-y", "inventory.py", "runbooks/backup_now.py", "--data", f"tag={tag}"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    m = re.search(r"backup ok: snapshot ([0-9a-f]{8})", out)
    assert m, out[-3000:]
    return m.group(1), out


# a shell prefix, on an n8n server: restic's RESTIC_REPOSITORY for its vault repository, with its
# account's password (the host programs' own way: mottivme_host/restic.py)
VAULT_REPOSITORY = ("RESTIC_REPOSITORY=\"$(jq -r '.backup.offsite_repositories[0]' /etc/mottivme/host.json | "
                    "sed \"s|@|:$(cat /etc/mottivme/vault-password)@|\")\"")


def secrets_of(sbx) -> dict:
    return sbx.secrets()


def monitor_status(monitor, page: str = "ops") -> dict:
    """The monitor's status.json through its Caddy, as a browser gets it: the operators' page
    (every check, behind its login: MONITOR_OPS_PASSWORD), or with page="public" the clients'."""
    import base64
    import json
    import ssl
    import urllib.request

    path, headers = "status.json", {}
    if page == "ops":
        from tasks.groupdata import load as group_data

        user = group_data("sandbox")["monitor_ops_user"]
        login = f"{user}:{monitor.sbx.secrets()['MONITOR_OPS_PASSWORD']}".encode()
        path, headers = "ops/status.json", {"Authorization": "Basic " + base64.b64encode(login).decode()}
    req = urllib.request.Request(f"https://localhost:{monitor.h['https_port']}/{path}", headers=headers)
    with urllib.request.urlopen(req, context=ssl._create_unverified_context(), timeout=20) as r:
        return json.loads(r.read())


class Server:
    """A sandbox server by name; its record is read afresh (the DR drill replaces a server)."""

    def __init__(self, sbx, record):
        self.sbx, self.name = sbx, record["name"]

    @property
    def h(self) -> dict:
        return next(h for h in self.sbx.load()["hosts"] if h["name"] == self.name)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.h['https_port']}/"

    def sh(self, command: str, check: bool = True, stdin: str | None = None) -> str:
        r = subprocess.run(self.sbx.ssh_args(self.h) + [command], capture_output=True, text=True, timeout=300,
                           input=stdin)
        if check and r.returncode != 0:
            raise AssertionError(f"{self.name}: `{command}` exit {r.returncode}: {r.stderr}{r.stdout}")
        return r.stdout


def tcp_from(server: Server, service: str, address: str, port: int) -> str:
    """From inside compose service `service` of `server`'s stack (a worker server's on one):
    "open" when a TCP connection to address:port is made within 3 s, else "closed" (refused,
    unreachable, or no answer). With the container's own node, as an escaped Code node would."""
    probe = (f"const s = require('net').connect({port}, '{address}'); s.on('connect', () => {{ console.log('open'); "
             "process.exit(0); }); s.on('error', () => { console.log('closed'); process.exit(0); }); "
             "setTimeout(() => { console.log('closed'); process.exit(0); }, 3000);")
    return server.sh(f"mottivme-host compose exec -T {service} node -", stdin=probe).strip()


def interrupt_runbook(server: Server, env: dict, args: list[str], reached: str, script: str) -> None:
    """Run `pyinfra -y inventory.py ARGS` as an engineer would, press Ctrl-C (SIGINT) once the shell
    test `reached` succeeds on the server, then wait until the server's `script` has ended."""
    p = subprocess.Popen([sys.executable, "-m", "pyinfra", "-y", "inventory.py", *args], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while server.sh(f"{reached} && echo reached || true", check=False).strip() != "reached":
        assert time.time() < deadline and p.poll() is None, f"{args[0]} never got to the point to interrupt"
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    p.wait(60)
    deadline = time.time() + 300
    while server.sh(f"pgrep -f '[{script[0]}]{script[1:]}' || true").strip():
        assert time.time() < deadline, f"{script} never ended"
        time.sleep(1)




def edit_host_settings(server, section: str, **values) -> None:
    """Change keys of one section of /etc/mottivme/host.json on `server` (keep a copy first)."""
    import json as _json

    server.sh("python3 -c 'import json, sys; p = \"/etc/mottivme/host.json\"; d = json.load(open(p)); "
              "d[sys.argv[1]].update(json.loads(sys.argv[2])); json.dump(d, open(p, \"w\"))' "
              f"{section} {shlex.quote(_json.dumps(values))}")


# --- the recording stand-in for mottivme_host.run.Runner ----------------------------------------
# A recording stand-in for mottivme_host.run.Runner: the quick tier drives the host programs'
# decisions with it (what a restore does when a count mismatches, when the swap fails, ...).
#
#     r = FakeRunner()
#     r.on("restic cat config", rc=1, stderr="Fatal: unable to open config file")
#     r.on("pg_dump", write=b"dump bytes")            # written to the stdout file the program gives
#     r.on(lambda cmd: cmd.startswith("curl"), stdout="200")
#     ... program runs ...
#     assert r.ran("restic init")
#
# Rules are tried newest first; a rule's `times` limits how often it answers. A command no rule
# matches succeeds with no output. `sleep()` advances a fake clock, so waits cost no time.






@dataclass
class Rule:
    match: Callable[[str], bool]
    rc: int = 0
    stdout: str = ""
    stderr: str = ""
    write: bytes | str | None = None
    call: Callable | None = None  # call(argv, kw) -> None | (rc, stdout, stderr)
    times: int | None = None


@dataclass
class Call:
    argv: list[str]
    kw: dict = field(default_factory=dict)

    @property
    def cmd(self) -> str:
        return " ".join(self.argv)


def pgpass_of(argv) -> tuple[str, int] | None:
    """The pgpass file a container is given (mottivme_host/pgaccess.py): its text and mode, read
    while the command runs (it is removed after); None when there is none."""
    mounts = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-v" and argv[i + 1].endswith(":/run/pgpass:ro")]
    if not mounts:
        return None
    path = mounts[0].split(":")[0]
    with open(path) as f:
        return f.read(), os.stat(path).st_mode & 0o777


def libpq_url(call) -> str:
    """The database a container reached: libpq's variables (named with -e, values in the environment
    docker was given) and the password of its pgpass file (0600, any host: `*:*:*:*:`)."""
    env = call.kw["env"]
    assert all(f"-e {k}" in call.cmd for k in env), call.cmd
    text, mode = call.kw["pgpass"]
    assert mode == 0o600 and text.startswith("*:*:*:*:") and text.endswith("\n") and text.count("\n") == 1
    return f"postgresql://{env['PGUSER']}:{pgpass_password(text)}@{env['PGHOST']}:{env['PGPORT']}/{env['PGDATABASE']}"


def pgpass_password(line: str) -> str:
    """The password field of a pgpass line as libpq reads it (fe-connect.c passwordFromFile): fields
    end at an unescaped colon, a backslash takes the next character, the password ends at the next
    unescaped colon too."""
    fields, field, chars = [], "", iter(line.rstrip("\n"))
    for c in chars:
        if c == "\\":
            field += next(chars, "")
        elif c == ":":
            fields.append(field)
            field = ""
            if len(fields) == 5:
                break
        else:
            field += c
    return (fields + [field])[4]


def posted(call) -> str | None:
    """The body a curl call POSTs to the monitor or a hook: on stdin (`data-binary = "..."` in its
    config, common.send), never in argv."""
    assert "--data-binary" not in call.argv
    m = re.search(r'^data-binary = "(.*)"$', call.kw.get("input") or "", re.M)
    return None if m is None else m.group(1).replace('\\"', '"').replace("\\\\", "\\")


def run_for_real(argv, kw):
    """A FakeRunner rule's `call` that runs the command for real (GNU tar on temporary directories)."""
    from mottivme_host.run import Runner

    r = Runner().run(argv, check=False)
    return r.returncode, r.stdout, r.stderr


def dir_tree(root, times: bool = False) -> dict:
    """path -> (kind, mode, content or link target[, mtime]) of everything under `root`, for
    comparing two trees."""
    out = {}
    for top, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(top, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir", st.st_mode & 0o7777)
            else:
                with open(path, "rb") as f:
                    out[rel] = ("file", st.st_mode & 0o7777, f.read(), *((int(st.st_mtime),) if times else ()))
    return out


class FakeProcess:
    """What Runner.run hands `started`: records the signals another thread sends it (a rule's
    `call` sees it as kw["process"] and may end early when `stopped` is set)."""

    def __init__(self):
        self.signals: list[str] = []
        self.stopped = threading.Event()

    def terminate(self) -> None:
        self.signals.append("TERM")
        self.stopped.set()

    def kill(self) -> None:
        self.signals.append("KILL")
        self.stopped.set()


class FakeRunner:
    def __init__(self):
        self.rules: list[Rule] = []
        self.calls: list[Call] = []
        self.clock = 1000.0
        self.sleeps: list[float] = []

    def on(self, match, rc: int = 0, stdout: str = "", stderr: str = "", write=None, call=None, times=None) -> Rule:
        """`match`: a substring of the command line, a compiled regex, or a predicate on it."""
        if isinstance(match, str):
            m = match
            pred = lambda cmd: m in cmd  # noqa: E731
        elif isinstance(match, re.Pattern):
            pred = lambda cmd: bool(match.search(cmd))  # noqa: E731
        else:
            pred = match
        rule = Rule(pred, rc, stdout, stderr, write, call, times)
        self.rules.insert(0, rule)
        return rule

    def run(self, argv, *, input=None, stdin=None, stdout=None, log=None, env=None, check=True, cwd=None,
            timeout=None, started=None, new_session=False) -> Result:
        call = Call(list(argv), dict(input=input, stdin=stdin, stdout=stdout, env=env, cwd=cwd, pgpass=pgpass_of(argv),
                                     timeout=timeout, process=FakeProcess() if started else None,
                                     new_session=new_session))
        self.calls.append(call)
        if started:
            started(call.kw["process"])
        rc, out, err = 0, "", ""
        for rule in self.rules:
            if rule.times == 0 or not rule.match(call.cmd):
                continue
            if rule.times is not None:
                rule.times -= 1
            rc, out, err = rule.rc, rule.stdout, rule.stderr
            if rule.write is not None and stdout is not None:
                data = rule.write
                if "b" in getattr(stdout, "mode", ""):
                    stdout.write(data if isinstance(data, bytes) else data.encode())
                else:
                    stdout.write(data if isinstance(data, str) else data.decode())
                stdout.flush()
            if rule.call is not None:
                got = rule.call(call.argv, call.kw)
                if got is not None:
                    rc, out, err = got
            break
        if log is not None and err:
            log.write(err if "b" not in getattr(log, "mode", "") else err.encode())
            err = ""
        result = Result(call.argv, rc, "" if stdout is not None else out, err)
        if check and rc != 0:
            raise CommandFailed(result)
        return result

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock += seconds

    def now(self) -> float:
        return self.clock

    # --- what was run ----------------------------------------------------------------------
    def commands(self) -> list[str]:
        return [c.cmd for c in self.calls]

    def ran(self, fragment: str) -> bool:
        return any(fragment in c for c in self.commands())

    def index(self, fragment: str) -> int:
        """Position of the first command containing `fragment` (ValueError when none)."""
        for i, c in enumerate(self.commands()):
            if fragment in c:
                return i
        raise ValueError(f"no command with {fragment!r} in:\n" + "\n".join(self.commands()))


def group_data(*groups):
    """Group data and the lock's digests (host data, which the inventory adds), as the unit tests render it."""
    from tasks import groupdata

    return groupdata.Data(groupdata.load(*groups), images_lock=images_lock())


class Queue:
    """n8n's Redis as queue_hold's scripts see it: records each EVAL (fake clock, pause/release,
    the service(s) in the holder's name, joined by +) and answers `pause` ('paused', 'shared',
    'foreign') or RedisDown; `released[service]` is set when that service's holder lets go."""

    def __init__(self, fake: FakeRunner, pause: str = "paused", down: str = ""):
        self.fake, self.pause, self.down = fake, pause, down
        self.evals: list[tuple[float, str, str]] = []
        self.holders: list[str] = []
        self.released: dict[str, threading.Event] = {}
        self.closed = False

    def call(self, *args):
        if self.down:
            raise redisconn.RedisDown(self.down)
        kind = "pause" if args[1] == queue_hold.PAUSE.strip() else "release"
        assert args[0] == "EVAL" and args[3:3 + len(queue_hold.KEYS)] == tuple(queue_hold.KEYS)
        holder = args[4 + len(queue_hold.KEYS)]
        self.holders.append(holder)
        service = holder.split(":")[1]
        self.evals.append((self.fake.clock, kind, service))
        if kind == "release":
            self.released.setdefault(service, threading.Event()).set()
        return self.pause if kind == "pause" else "resumed"

    def close(self):
        self.closed = True
