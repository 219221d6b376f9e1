"""The floor for bench/converge.py: a pyinfra deploy that only gathers the facts deploy.py needs
(packages, managed files and their checksums, systemd units, Docker images, compose services,
readiness, n8n settings) and runs no operation."""

from pyinfra import host
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import File, Link, Sha1File
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus

from tasks.facts import ComposeServices, DockerImages, HttpStatus, N8nSettings
from tasks.n8n import local_resolve, local_url

MANAGED_FILES = [
    "/etc/timezone", "/etc/apt/apt.conf.d/20auto-upgrades", "/etc/ssh/sshd_config.d/50-mottivme.conf",
    "/etc/mottivme/firewall.nft", "/etc/systemd/system/mottivme-firewall.service", "/etc/docker/daemon.json",
    "/opt/n8n/docker-compose.yml", "/opt/n8n/.env", "/opt/n8n/caddy/Caddyfile",
]

if "n8n_servers" in host.groups:
    host.get_fact(DebPackages)
    host.get_fact(Link, path="/etc/localtime")
    for path in MANAGED_FILES:
        host.get_fact(File, path=path)
        host.get_fact(Sha1File, path=path)
    host.get_fact(SystemdStatus)
    host.get_fact(SystemdEnabled)
    host.get_fact(DockerImages)
    host.get_fact(ComposeServices, project=host.data.compose_project)
    host.get_fact(HttpStatus, url=local_url("healthz/readiness"), resolve=local_resolve())
    host.get_fact(N8nSettings, url=local_url("rest/settings"), resolve=local_resolve())
