"""Docker engine and compose: Debian's packages by default, Docker's apt repository as an option."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd

from tasks import settings


def compose_command(dk: settings.Docker | None = None) -> str:
    """Debian 12 ships docker-compose 1.29 (no plugin); Docker's repository has the v2 plugin.
    `dk`: this host's Docker settings (read from host.data when not given)."""
    dk = dk or settings.Docker.from_data(host.data)
    return "docker-compose" if dk.source == "debian" else "docker compose"


@deploy("Docker engine")
def docker():
    dk = settings.Docker.from_data(host.data)
    if dk.source == "debian":
        apt.packages(name="docker: docker.io + docker-compose (Debian)", update=True, cache_time=3600,
                     packages=["docker.io", "docker-compose"], no_recommends=True)
    elif dk.source == "docker":
        # Production option: Docker's own repository (docker-ce and the compose plugin).
        files.download(name="docker: repository key", src="https://download.docker.com/linux/debian/gpg",
                       dest="/etc/apt/keyrings/docker.asc", mode="644")
        apt.repo(name="docker: apt repository", filename="docker",
                 src="deb [signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/debian "
                     "bookworm stable")
        apt.packages(name="docker: docker-ce + compose plugin", update=True,
                     packages=["docker-ce", "docker-ce-cli", "containerd.io", "docker-compose-plugin"])
    else:
        raise ValueError(f"docker_source must be 'debian' or 'docker', not {dk.source!r}")

    daemon = files.template(name="docker: daemon.json (log rotation, live-restore)",
                            src="templates/docker-daemon.json.j2", dest="/etc/docker/daemon.json", mode="644",
                            docker=dk)
    systemd.service(name="docker: enabled and running", service="docker.service", running=True, enabled=True)
    # live-restore keeps the containers running while dockerd restarts
    systemd.service(name="docker: restart (daemon.json changed)", service="docker.service", restarted=True,
                    _if=daemon.did_change)
