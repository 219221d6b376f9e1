"""Custom pyinfra operations for the n8n stack. Each one changes nothing when there is nothing
to do, so a second deploy reports zero changes."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from io import StringIO
from pathlib import Path
from shlex import quote

from pyinfra import host, logger, state
from pyinfra.api import FileUploadCommand, FunctionCommand, HiddenValue, StringCommand, operation
from pyinfra.api.util import get_template
from pyinfra.facts.files import File, FindInFile, Sha256File

from tasks import scaling
from tasks.facts import (
    N8N_INSIDE,
    ComposeHealth,
    ComposeServices,
    DockerImages,
    HttpStatus,
    N8nSettings,
    N8nUsers,
    Tree,
)


def caddy_acme_root(acme_root_pem: str, dest: str, who: str):
    """caddy_acme_ca_root's PEM at `dest` (beside `who`'s Caddyfile), or no file when it is empty:
    the operation, whose change asks Caddy to reload."""
    from pyinfra.operations import files

    if acme_root_pem:
        return files.put(name=f"{who}: the ACME CA's root", src=StringIO(acme_root_pem.strip() + "\n"), dest=dest,
                         mode="644")
    return files.file(name=f"{who}: no ACME CA root of its own", path=dest, present=False)


def _write_secret(state, host, dest: str, content: HiddenValue, user: str, group: str, mode: str):
    tmp = f"{dest}.mottivme-new"
    # the file exists with its final owner and mode before a byte of the secret is in it
    ok, _ = host.run_shell_command(f"install -m {mode} -o {quote(user)} -g {quote(group)} /dev/null {quote(tmp)}",
                                   print_input=False)
    if not ok:
        return _fail(host, f"cannot create {tmp}")
    try:
        host.put_file(StringIO(content.unmask()), tmp, print_output=False, print_input=False)
    except Exception:  # noqa: BLE001 - one line, never the content
        host.run_shell_command(f"rm -f {quote(tmp)}", print_input=False)
        return _fail(host, f"cannot write {dest}")
    ok, _ = host.run_shell_command(f"mv -f {quote(tmp)} {quote(dest)}", print_input=False)
    return ok or _fail(host, f"cannot move {tmp} to {dest}")


@operation()
def secret_file(dest: str, content: HiddenValue, user: str = "root", group: str = "root", mode: str = "600"):
    """A file that holds a secret: compared by its sha256, written only when it differs, never shown
    (not even with ``--diff`` or ``-vvv``: pyinfra's files.put/template print what they write), and
    with its owner and mode from before its first byte (files.put uploads, then chmods).

    + dest: the file on the host
    + content: its whole text, as a HiddenValue

    .. code:: python

        operations.secret_file(name="restic password", dest="/etc/mottivme/restic-password",
                               content=HiddenValue(password + "\\n"))
    """
    want = hashlib.sha256(content.unmask().encode()).hexdigest()
    info = host.get_fact(File, path=dest)
    if (info and host.get_fact(Sha256File, path=dest) == want and info.get("user") == user
            and info.get("group") == group and info.get("mode") == int(mode)):
        return
    if state.config.DIFF:
        host.log(f"Will {'modify' if info else 'create'} {dest} (it holds a secret: its content is not shown)",
                 logger.info)
    yield FunctionCommand(_write_secret, (dest, content, user, group, mode), {})


def render(src: str, context: dict) -> str:
    """A configuration template (`templates/...`) rendered here as files.template renders it."""
    return get_template(src).render(**context)


def render_secret(template: str, **context) -> HiddenValue:
    """A template rendered here (as files.template would) for secret_file: its text stays hidden."""
    return HiddenValue(render(f"templates/{template.removeprefix('templates/')}", context))


@operation(is_idempotent=True)
def barrier():
    """Nothing, on every host, from one line of deploy.py: pyinfra orders the hosts' operations as
    one graph, so what each host does before this line comes before what any host does after it.
    (Without it, hosts whose operation lists differ are interleaved by position.)

    .. code:: python

        operations.barrier(name="main server's stack up before the workers start")
    """
    return
    yield  # an operation is a generator


def _fail(host, message: str) -> bool:
    """End a Python-side command with a one-line reason (no traceback): pyinfra counts False as failed."""
    host.log_styled(message, fg="red", log_func=logger.error)
    return False


@operation()
def image(ref: str):
    """Make sure an image is in the host's Docker engine (``docker pull`` from its registry).

    + ref: image reference, e.g. ``docker.n8n.io/n8nio/n8n:2.41.1``, or pinned by digest
      (``caddy:2.10.0@sha256:...``, tasks/images.py): pulled by the digest (Docker checks the bits
      against it) and given the tag, so that what runs `caddy:2.10.0` runs the locked image; a tag
      on other bits (pulled by hand, an older lock) is moved to them

    .. code:: python

        operations.image(name="caddy image", ref=stack.caddy_ref)
    """
    if ref in host.get_fact(DockerImages):
        return
    tagged, _, digest = ref.partition("@")
    if not digest:
        yield f"docker pull -q {quote(ref)}"
        return
    why = (f"{ref}: not pulled (docker's reason above): if its registry no longer serves that digest, "
           "`make images-check` shows what it serves now and `make images-lock` moves the lock to it")
    repo = tagged.rpartition(":")[0]
    yield (f"docker pull -q {quote(ref)} || {{ echo {quote(why)} >&2; exit 1; }}; "
           f"docker tag {quote(f'{repo}@{digest}')} {quote(tagged)}")


@operation()
def compose_running(stack_dir: str, project: str, services: list[str], *, compose: str):
    """Start the compose project's services that are not running (drift: a stopped or removed
    container). Configuration changes are applied by the caller with ``compose up -d``.

    .. code:: python

        operations.compose_running(stack_dir="/opt/n8n", project="n8n",
                                   services=["postgres", "n8n", "caddy"], compose="docker compose")
    """
    state = host.get_fact(ComposeServices, project=project)
    if all(state.get(s) == "running" for s in services):
        return
    yield f"cd {quote(stack_dir)} && {compose} -p {quote(project)} up -d --remove-orphans"


@operation()
def workers_stopped(stack_dir: str, project: str, timeout: int, *, compose: str, command_module: str):
    """Stop a worker server's workers, if its compose project has containers: the host programs'
    ``mottivme-host stop-workers`` (each worker gets its settings' stop_seconds to finish its
    running executions; n8n's queue held still at the moment of the signal,
    mottivme_host/queue_hold.py). Volumes are kept. A server whose host programs predate that
    command (no ``command_module``: a runbook run before the deploy that updates them) gets the
    plain ``compose down -t timeout`` it replaced, unheld (the deploy passes the same number).

    .. code:: python

        operations.workers_stopped(name="workers: drain and stop", stack_dir="/opt/n8n-worker",
                                   project="n8n-worker", timeout=150, compose="docker compose",
                                   command_module="/usr/local/lib/mottivme/mottivme_host/stop_workers.py")
    """
    if not host.get_fact(ComposeServices, project=project):
        return
    if host.get_fact(File, path=command_module):  # its output shown: how long the queue was held
        yield FunctionCommand(_run_and_report, ("mottivme-host stop-workers", "stopping the workers", False), {})
    else:
        yield f"cd {quote(stack_dir)} && {compose} -p {quote(project)} down -t {int(timeout)}"


@operation()
def workers_stopped_before_apply(project: str, *, command_module: str):
    """Just before a deploy applies a new configuration to a stack (`compose up -d`, which then
    re-creates its workers or starts them again): the queue workers that run there stopped with
    n8n's queue held, ``mottivme-host stop-workers --keep-stack`` (its output shown; the rest of
    the stack keeps running). Nothing when no worker runs there, nor when the host's programs
    predate that option: `compose up -d` then re-creates them unheld, as before. The deploy
    adds it when its apply will re-create a running worker (tasks/n8n.workers_recreated).

    .. code:: python

        operations.workers_stopped_before_apply(
            name="workers stopped before the new configuration", project="n8n",
            command_module="/usr/local/lib/mottivme/mottivme_host/stop_workers.py")
    """
    services = host.get_fact(ComposeServices, project=project)
    if not any(state == "running" and scaling.is_worker(svc) for svc, state in services.items()):
        return
    if host.get_fact(FindInFile, path=command_module, pattern="--keep-stack"):
        yield FunctionCommand(_run_and_report, ("mottivme-host stop-workers --keep-stack",
                                                "stopping the workers before the new configuration", False), {})


def _wait_healthy(state, host, project, services, timeout, compose):
    fact = ComposeHealth()
    deadline = time.time() + timeout
    health = {}
    while time.time() < deadline:
        ok, out = host.run_shell_command(fact.command(project), print_output=False, print_input=False)
        health = fact.process(out.stdout_lines) if ok else {}
        if all(health.get(s) == "healthy" for s in services):
            return True
        time.sleep(2)
    bad = [s for s in services if health.get(s) != "healthy"]
    ok, out = host.run_shell_command(f"{compose} -p {quote(project)} logs --no-color --tail 20 {' '.join(bad)}",
                                     print_output=False, print_input=False)
    tail = "\n".join(out.stdout_lines[-40:]) if out else ""
    states = ", ".join(f"{s} ({health.get(s, 'missing')})" for s in bad)
    return _fail(host, f"{states} not healthy after {timeout}s; last log lines:\n{tail}")


@operation()
def compose_healthy(stack_dir: str, project: str, services: list[str], timeout: int = 300, *, compose: str):
    """Wait until the compose services' healthchecks pass (e.g. n8n workers, whose /healthz answers
    once they take executions from Redis); fail with their last log lines otherwise.

    .. code:: python

        operations.compose_healthy(stack_dir="/opt/n8n-worker", project="n8n-worker",
                                   services=["n8n-worker-1", "n8n-worker-2"], compose="docker compose")
    """
    if all(host.get_fact(ComposeHealth, project=project).get(s) == "healthy" for s in services):
        return
    yield FunctionCommand(_wait_healthy, (project, services, timeout, f"cd {quote(stack_dir)} && {compose}"), {})


def _wait_ready(state, host, url, resolve, timeout, logs_command):
    deadline = time.time() + timeout
    status = 0
    while time.time() < deadline:
        ok, out = host.run_shell_command(
            HttpStatus().command(url, resolve),
            print_output=False, print_input=False)
        text = "".join(out.stdout_lines).strip() if ok else ""
        status = int(text) if text.isdigit() else 0
        if status == 200:
            return True
        time.sleep(2)
    ok, out = host.run_shell_command(logs_command, print_output=False, print_input=False)
    tail = "\n".join(out.stdout_lines[-30:] + out.stderr_lines[-10:]) if out else ""
    return _fail(host, f"{url} not ready after {timeout}s (last HTTP status {status}); last n8n log lines:\n{tail}")


@operation()
def n8n_ready(url: str, resolve: str | None = None, timeout: int = 300, logs_command: str = "true"):
    """Wait until n8n answers 200 on ``/healthz/readiness`` (database up, migrations done);
    fail with n8n's last log lines when it does not within ``timeout`` seconds.

    ``/healthz`` answers ``ok`` before migrations have run, so it is not used.

    .. code:: python

        operations.n8n_ready(url="https://n8n.example.com/healthz/readiness",
                             resolve="n8n.example.com:443:127.0.0.1")
    """
    if host.get_fact(HttpStatus, url=url, resolve=resolve) == 200:
        return
    yield FunctionCommand(_wait_ready, (url, resolve, timeout, logs_command), {})


# POST the owner's JSON (on stdin) to n8n's owner setup, inside its container; prints the status
CLAIM_JS = ("let b = ''; process.stdin.on('data', d => b += d).on('end', () => "
            f"fetch('{N8N_INSIDE}/rest/owner/setup', {{method: 'POST', headers: {{'Content-Type': 'application/json'}}, "
            "body: b}).then(r => console.log(r.status), () => console.log(0)))")


def run_with_secret_file(host, path: str, text: str, command: str, print_output: bool = False):
    """Inside a FunctionCommand: run ``command`` (which reads ``path``) with ``text`` in ``path``,
    created 0600 before its first byte and removed whatever happens; neither the text nor the
    command is printed. Returns pyinfra's (ok, output)."""
    host.run_shell_command(f"install -m 600 /dev/null {path}", print_input=False)
    try:
        host.put_file(StringIO(text), path, print_output=False, print_input=False)
        return host.run_shell_command(command, print_output=print_output, print_input=False)
    finally:
        host.run_shell_command(f"rm -f {path}", print_input=False)


def _claim_owner(state, host, compose, payload: HiddenValue):
    tmp = "/root/.n8n-owner-setup.json"
    ok, out = run_with_secret_file(host, tmp, payload.unmask(), f"{compose} exec -T n8n node -e {quote(CLAIM_JS)} < {tmp}")
    status = "".join(out.stdout_lines).strip()
    if not ok or status != "200":
        return _fail(host, f"claiming n8n's owner account failed: HTTP {status or 'no answer'}")
    return True


@operation()
def n8n_owner(compose: str, payload: HiddenValue):
    """Claim n8n's owner account when the instance still offers its owner-setup page, so no
    fresh server is ever open for takeover: from inside the n8n container (``compose`` runs the
    stack's compose), while Caddy keeps the public out. ``payload`` is the JSON body of
    ``POST /rest/owner/setup`` (email, firstName, lastName, password), kept hidden, on stdin.

    .. code:: python

        operations.n8n_owner(compose="cd /opt/n8n && docker compose -p n8n", payload=HiddenValue(body))
    """
    settings = host.get_fact(N8nSettings, compose=compose)
    if settings and not settings.get("userManagement", {}).get("showSetupOnFirstLoad", False):
        return
    yield FunctionCommand(_claim_owner, (compose, payload), {})


# log in as the owner, invite members, remove accounts (their workflows and credentials go to
# the owner's personal project): the JSON instructions on stdin, the outcome as one JSON line
USERS_JS = (
    "let b = ''; process.stdin.on('data', d => b += d).on('end', async () => {"
    " const p = JSON.parse(b), out = {invited: [], removed: []};"
    f" const base = '{N8N_INSIDE}/rest', H = {{'Content-Type': 'application/json', 'browser-id': 'mottivme-deploy'}};"
    " try {"
    "  let r = await fetch(base + '/login', {method: 'POST', headers: H, body: JSON.stringify(p.login)});"
    "  if (r.status !== 200) throw new Error('logging in as the owner: HTTP ' + r.status);"
    "  const cookie = r.headers.getSetCookie().map(c => c.split(';')[0]).join('; ');"
    "  const A = {...H, cookie};"
    "  if (p.invite.length) {"
    "   r = await fetch(base + '/invitations', {method: 'POST', headers: A,"
    "    body: JSON.stringify(p.invite.map(email => ({email, role: 'global:member'})))});"
    "   if (r.status !== 200) throw new Error('inviting: HTTP ' + r.status + ' ' + (await r.text()).slice(0, 200));"
    "   out.invited = p.invite;"
    "  }"
    "  if (p.remove.length) {"
    "   const mine = (await (await fetch(base + '/projects/personal', {headers: A})).json()).data;"
    "   const got = (await (await fetch(base + '/users', {headers: A})).json()).data;"
    "   for (const email of p.remove) {"
    "    const u = (got.items || got).find(x => (x.email || '').toLowerCase() === email);"
    "    if (!u) continue;"
    "    if (u.role === 'global:owner') throw new Error(email + ' is the owner: never removed');"
    "    r = await fetch(base + '/users/' + u.id + '?transferId=' + mine.id, {method: 'DELETE', headers: A});"
    "    if (r.status !== 200) throw new Error('removing ' + email + ': HTTP ' + r.status);"
    "    out.removed.push(email);"
    "   }"
    "  }"
    " } catch (e) { out.error = String(e.message || e); }"
    " console.log(JSON.stringify(out)); })"
)


def _n8n_users(state, host, compose, login: HiddenValue, invite: list[str], remove: list[str]):
    tmp = "/root/.n8n-users.json"
    body = json.dumps({"login": json.loads(login.unmask()), "invite": invite, "remove": remove})
    ok, out = run_with_secret_file(host, tmp, body, f"{compose} exec -T n8n node -e {quote(USERS_JS)} < {tmp}")
    try:
        result = json.loads((out.stdout_lines or ["{}"])[-1]) if ok else {}
    except ValueError:
        result = {}
    done = [f"invited {', '.join(result['invited'])}"] if result.get("invited") else []
    done += [f"removed {', '.join(result['removed'])} (their work now the owner's)"] if result.get("removed") else []
    if done:
        host.log_styled("n8n users: " + "; ".join(done), fg="green", log_func=logger.info)
    if not ok or "error" in result or not result:
        return _fail(host, f"n8n users: {result.get('error') or 'no answer from n8n'}")
    return True


@operation()
def n8n_users(compose: str, login: HiddenValue, present: list[str], absent: list[str],
              postgres_user: str = "n8n", postgres_db: str = "n8n"):
    """n8n's member accounts follow group_data `people`: each ``present`` email has an account
    (invited when it has none), each ``absent`` one has none (removed through n8n's API, its
    workflows and credentials transferred to the owner's personal project). The owner is never
    touched. ``login`` is the owner's ``{"emailOrLdapLoginId", "password"}`` JSON, kept hidden, on
    stdin; the calls are made from inside the n8n container.

    .. code:: python

        operations.n8n_users(compose="cd /opt/n8n && docker compose -p n8n", login=HiddenValue(body),
                             present=["ana@example.com"], absent=["bruno@example.com"])
    """
    users = {u["email"]: u for u in host.get_fact(N8nUsers, compose=compose, user=postgres_user, db=postgres_db)}
    invite = [e for e in present if e not in users]
    remove = [e for e in absent if e in users and users[e]["role"] != "global:owner"]
    if invite or remove:
        yield FunctionCommand(_n8n_users, (compose, login, invite, remove), {})


def _run_and_report(state, host, command, what, pty):
    ok, out = host.run_shell_command(command, print_output=True, print_input=False, _get_pty=pty)
    if not ok:
        reason = (out.stderr_lines or out.stdout_lines or ["no output"])[-1]
        return _fail(host, f"{what} failed: {reason}")
    return True


@operation()
def run_and_report(command: str, what: str, pty: bool = False):
    """Run a command on the host (one of the project's scripts), show its output, and fail with
    its last line of errors when it fails. Always an action: it counts as a change.
    ``pty``: run it on a terminal, so Ctrl-C here (the SSH session closing) sends it SIGHUP at
    once instead of whenever it next prints (its output then arrives as one stream).

    .. code:: python

        operations.run_and_report(name="backup now", command="n8n-backup --tag manual", what="backup")
    """
    yield FunctionCommand(_run_and_report, (command, what, pty), {})


TREE_FILE_MODE, TREE_DIR_MODE, TREE_OWNER = "644", "755", "root:root"


def _tree_paths(src: Path) -> list[tuple[str, Path]]:
    """("./rel", path) of `src` itself and everything under it, Python's caches left out, sorted."""
    out = [(".", src)]
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if "__pycache__" in rel.parts or p.name.endswith(".pyc"):
            continue
        out.append((f"./{rel.as_posix()}", p))
    return out


def tree_listing(src: Path) -> dict:
    """What Tree finds on a host where `src` was copied by operations.tree."""
    listing = {}
    for rel, p in _tree_paths(src):
        if p.is_dir():
            listing[rel] = ("d", TREE_DIR_MODE, TREE_OWNER, None)
        else:
            listing[rel] = ("f", TREE_FILE_MODE, TREE_OWNER, hashlib.sha256(p.read_bytes()).hexdigest())
    return listing


def tree_archive(src: Path) -> io.BytesIO:
    """`src`'s contents as a tar archive: root's, 644 files, 755 directories, dated now (Python's
    bytecode caches compare a source's date and size)."""
    buf, now = io.BytesIO(), int(time.time())
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel, p in _tree_paths(src)[1:]:
            info = tarfile.TarInfo(rel)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = now
            if p.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, int(TREE_DIR_MODE, 8)
                tar.addfile(info)
            else:
                data = p.read_bytes()
                info.size, info.mode = len(data), int(TREE_FILE_MODE, 8)
                tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


@operation()
def tree(src: str, dest: str):
    """A directory of this repository (a Python package: mottivme_host/, mottivme_monitor/) at
    `dest`, whole: root's, files 644, directories 755, nothing else in it. One command compares
    every file's sha256, mode and owner (files.sync asks once per file: seconds per package on
    each run); when anything differs, one archive is unpacked beside `dest` and swapped in.
    Python's caches (__pycache__, *.pyc) are neither compared nor copied.

    + src: the local directory
    + dest: the directory on the host

    .. code:: python

        operations.tree(name="host programs: the package", src="mottivme_host",
                        dest="/usr/local/lib/mottivme/mottivme_host")
    """
    if host.get_fact(Tree, path=dest) == tree_listing(Path(src)):
        host.noop(f"{dest} holds {src} as it is")
        return
    tmp = host.get_temp_filename()  # a random name: nobody else on the host can have made it first
    yield FileUploadCommand(tree_archive(Path(src)), tmp)
    yield StringCommand(tree_swap(tmp, dest))


def tree_swap(archive: str, dest: str) -> str:
    """Shell: `archive` (tree_archive's, on the host) unpacked beside `dest`, then swapped in for it
    (a run cut short leaves `dest` whole, old or new; the next change clears what it left)."""
    new, old = quote(f"{dest}.mottivme-new"), quote(f"{dest}.mottivme-old")
    return (f"rm -rf {new} {old} && mkdir -m {TREE_DIR_MODE} {new} && chown {TREE_OWNER} {new} && "
            f"tar -xf {quote(archive)} -C {new} && rm -f {quote(archive)} && "
            f"{{ [ ! -e {quote(dest)} ] || mv {quote(dest)} {old}; }} && mv {new} {quote(dest)} && rm -rf {old}")
