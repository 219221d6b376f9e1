"""Custom pyinfra facts: what the n8n host's Docker and n8n look like right now."""

from __future__ import annotations

import inspect
import json
from shlex import quote

from pyinfra.api import FactBase

from mottivme_host import stack_state


def curl_command(url: str, resolve: str | None = None, extra: str = "") -> str:
    """curl on the host, TLS unchecked (the host's own Caddy, maybe with its local CA); `resolve`
    pins the name to an address like curl's --resolve, so the check does not depend on DNS."""
    pin = f"--resolve {quote(resolve)} " if resolve else ""
    return f"curl -sk -m 10 {pin}{extra}{quote(url)}"


class DockerImages(FactBase):
    """Image references present in the host's Docker engine: `repo:tag`, `repo@digest`, and
    `repo:tag@digest` when that tag is on the image that digest names.

    .. code:: python

        "postgres:17.6@sha256:..." in host.get_fact(DockerImages)
    """

    default = set

    def requires_command(self, *args, **kwargs) -> str:
        return "docker"

    def command(self) -> str:
        return "docker images --digests --format '{{.Repository}} {{.Tag}} {{.Digest}}'"

    def process(self, output):
        refs = set()
        for line in output:
            repo, tag, digest = (line.split() + ["", "", ""])[:3]
            if not repo or repo == "<none>":
                continue
            tagged = tag and tag != "<none>"
            if tagged:
                refs.add(f"{repo}:{tag}")
            if digest.startswith("sha256:"):
                refs.add(f"{repo}@{digest}")
                if tagged:
                    refs.add(f"{repo}:{tag}@{digest}")
        return refs


class ComposeServices(FactBase):
    """State of each service container of a compose project: {"n8n": "running", ...}.

    .. code:: python

        host.get_fact(ComposeServices, project="n8n")
    """

    default = dict

    def requires_command(self, *args, **kwargs) -> str:
        return "docker"

    def command(self, project: str) -> str:
        return (
            f"docker ps -a --filter label=com.docker.compose.project={project} "
            "--format '{{.Label \"com.docker.compose.service\"}} {{.State}}' || true"
        )

    def process(self, output):
        services = {}
        for line in output:
            parts = line.split()
            if len(parts) == 2:
                services[parts[0]] = parts[1]
        return services


class ComposeHealth(FactBase):
    """Health of each service container of a compose project that has a healthcheck:
    {"n8n-worker-1": "healthy", "n8n-worker-2": "starting", ...}.

    .. code:: python

        host.get_fact(ComposeHealth, project="n8n-worker")
    """

    default = dict

    def requires_command(self, *args, **kwargs) -> str:
        return "docker"

    def command(self, project: str) -> str:
        return (f"for c in $(docker ps -q --filter label=com.docker.compose.project={project}); do "
                "docker inspect -f '{{index .Config.Labels \"com.docker.compose.service\"}} "
                "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $c; done")

    def process(self, output):
        return dict(line.split() for line in output if len(line.split()) == 2)


class HttpStatus(FactBase):
    """HTTP status of a URL fetched on the host itself (0 = no answer).

    `resolve` pins the name to an address, as curl's --resolve (e.g. "n8n.example.com:443:127.0.0.1"),
    so a check goes through the host's own Caddy without depending on DNS.

    .. code:: python

        host.get_fact(HttpStatus, url="https://n8n.example.com/healthz/readiness",
                      resolve="n8n.example.com:443:127.0.0.1")
    """

    default = int

    def command(self, url: str, resolve: str | None = None) -> str:
        return curl_command(url, resolve, "-o /dev/null -w '%{http_code}' ") + " 2>/dev/null || true"

    def process(self, output):
        text = "".join(output).strip()
        return int(text) if text.isdigit() else 0


# n8n's own HTTP port, asked from inside its container (node's fetch): the deploy reaches n8n there
# while Caddy keeps the public out (no owner claimed yet)
N8N_INSIDE = "http://127.0.0.1:5678"
SETTINGS_JS = (f"fetch('{N8N_INSIDE}/rest/settings').then(r => r.json())"
               ".then(j => console.log(JSON.stringify(j.data || {})), () => console.log('{}'))")


class N8nSettings(FactBase):
    """n8n's front-end settings (`GET /rest/settings`, asked inside the n8n container), or {} when
    n8n does not answer. `["userManagement"]["showSetupOnFirstLoad"]` is true until the owner
    account is claimed.

    .. code:: python

        host.get_fact(N8nSettings, compose="cd /opt/n8n && docker compose -p n8n")
    """

    default = dict

    def command(self, compose: str) -> str:
        return f"{compose} exec -T n8n node -e {quote(SETTINGS_JS)} 2>/dev/null || true"

    def process(self, output):
        try:
            return json.loads("".join(output))
        except ValueError:
            return {}


class StackState(FactBase):
    """The n8n stack as this server runs it: its n8n version (N8N_VERSION of the stack's .env) and
    the fingerprints (mottivme_host/stack_state.py, salted with `salt`) of the secrets in use; "STATE": "ok", or
    "none" on a server without a stack yet (missing: the fact failed).

    .. code:: python

        host.get_fact(StackState, env_file="/opt/n8n/.env", password_file="/etc/mottivme/restic-password",
                      salt="1f2e...")  # {"N8N_VERSION": "2.41.1", "N8N_ENCRYPTION_KEY": "<fingerprint>", ...}
    """

    default = dict

    def command(self, env_file: str, password_file: str, salt: str) -> str:
        program = inspect.getsource(stack_state)  # the host package's module, run as it is
        return (f"test -f {quote(env_file)} || {{ echo STATE=none; exit 0; }}; python3 -c {quote(program)} "
                f"{quote(env_file)} {quote(password_file)} {quote(salt)}")

    def process(self, output):
        return dict(line.split("=", 1) for line in output if "=" in line)


class N8nUsers(FactBase):
    """n8n's user accounts, read from its database (the postgres container): a list of
    {"email" (lower case), "role" (global:owner, global:member ...), "pending" (invited, not
    signed up yet)}; [] when the stack does not answer (a fresh server: the deploy's operation
    asks n8n again when it runs).

    .. code:: python

        host.get_fact(N8nUsers, compose="cd /opt/n8n && docker compose -p n8n", user="n8n", db="n8n")
    """

    default = list

    def command(self, compose: str, user: str, db: str) -> str:
        sql = 'select lower(email), "roleSlug", (password is null) from "user" where email is not null order by 1'
        return (f"{compose} exec -T postgres psql -U {quote(user)} -d {quote(db)} -At -F '|' -c {quote(sql)} "
                "2>/dev/null || true")

    def process(self, output):
        users = []
        for line in output:
            parts = line.strip().split("|")
            if len(parts) == 3 and "@" in parts[0]:
                users.append({"email": parts[0], "role": parts[1], "pending": parts[2] == "t"})
        return users


def tree_command(path: str) -> str:
    """Shell: one line per directory and file under `path` (`%y %m %u:%g ./rel`), then each
    file's `sha256sum`; `MISSING` when `path` is no directory. (Tree's command; a unit test runs
    it on a local directory.)"""
    p = quote(path)
    keep = "-name __pycache__ -prune -o ! -name '*.pyc'"
    return (f"if [ -d {p} ]; then cd {p} && find . {keep} -printf '%y %m %u:%g %p\\n' && "
            f"find . {keep} -type f -exec sha256sum {{}} + ; else echo MISSING; fi")


def parse_tree(lines) -> dict | None:
    """Tree's output -> {"./rel": (type, mode, "user:group", sha256 or None)}; None: no directory."""
    entries, sums = {}, {}
    for line in lines:
        if line == "MISSING":
            return None
        if len(line) > 66 and line[64:66] == "  " and all(c in "0123456789abcdef" for c in line[:64]):
            sums[line[66:]] = line[:64]
            continue
        parts = line.split(" ", 3)
        if len(parts) == 4:
            entries[parts[3]] = (parts[0], parts[1], parts[2])
    return {rel: (*attrs, sums.get(rel)) for rel, attrs in entries.items()}


class Tree(FactBase):
    """Every directory and file under `path` with its type, mode, owner and (files) sha256, from
    one command however many files there are (files.sync asks once per file): what
    operations.tree compares with the repository's copy. None when `path` is no directory.

    .. code:: python

        host.get_fact(Tree, path="/usr/local/lib/mottivme/mottivme_host")
    """

    def command(self, path: str) -> str:
        return tree_command(path)

    def process(self, output):
        return parse_tree(list(output))
