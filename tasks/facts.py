"""Custom pyinfra facts: what the n8n host's Docker and n8n look like right now."""

from __future__ import annotations

import json
from shlex import quote

from pyinfra.api import FactBase


def curl_command(url: str, resolve: str | None = None, extra: str = "") -> str:
    """curl on the host, TLS unchecked (the host's own Caddy, maybe with its local CA); `resolve`
    pins the name to an address like curl's --resolve, so the check does not depend on DNS."""
    pin = f"--resolve {quote(resolve)} " if resolve else ""
    return f"curl -sk -m 10 {pin}{extra}{quote(url)}"


class DockerImages(FactBase):
    """Image references present in the host's Docker engine.

    .. code:: python

        "postgres:17" in host.get_fact(DockerImages)
    """

    default = set

    def requires_command(self, *args, **kwargs) -> str:
        return "docker"

    def command(self) -> str:
        return "docker images --format '{{.Repository}}:{{.Tag}}'"

    def process(self, output):
        return {line.strip() for line in output if line.strip()}


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


class N8nSettings(FactBase):
    """n8n's public front-end settings (`GET /rest/settings`), or {} when n8n does not answer.

    `["userManagement"]["showSetupOnFirstLoad"]` is true until the owner account is claimed.
    """

    default = dict

    def command(self, url: str, resolve: str | None = None) -> str:
        return curl_command(url, resolve, "-f ") + " 2>/dev/null || true"

    def process(self, output):
        try:
            return json.loads("".join(output)).get("data", {})
        except ValueError:
            return {}
