"""Docker engine and compose: Debian's packages by default, Docker's apt repository as an option.

Compose is v2 (`docker compose`) on Debian 13 and from Docker's repository; Debian 12's own
package is Compose v1 (`docker-compose` 1.29). compose_command() is the one place that knows."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd

from tasks import platform, settings


def compose_for(source: str, release: int) -> str:
    """The compose command for a Docker source on a Debian release."""
    return "docker-compose" if (source, release) == ("debian", 12) else "docker compose"


def compose_command(dk: settings.Docker | None = None) -> str:
    """This host's compose command. `dk`: its Docker settings (read from host.data when not given)."""
    dk = dk or settings.Docker.from_data(host.data)
    return compose_for(dk.source, platform.debian_release())


@deploy("Docker engine")
def docker():
    dk = settings.Docker.from_data(host.data)
    if dk.source == "debian":
        # Debian 13: docker.io 26, its client in docker-cli (only recommended), docker-compose 2 (the
        # compose plugin); Debian 12: docker.io 20.10 with its client, docker-compose 1.29
        cli = ["docker-cli"] if platform.debian_release() >= 13 else []
        apt.packages(name="docker: docker.io + docker-compose (Debian)", update=True, cache_time=3600,
                     packages=["docker.io", *cli, "docker-compose"], no_recommends=True)
    elif dk.source == "docker":
        # Production option: Docker's own repository (docker-ce and the compose plugin).
        files.download(name="docker: repository key", src="https://download.docker.com/linux/debian/gpg",
                       dest="/etc/apt/keyrings/docker.asc", mode="644")
        apt.repo(name="docker: apt repository", filename="docker",
                 src="deb [signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/debian "
                     f"{platform.codename()} stable")
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
