"""Which systems the deploy accepts, and which compose it then runs."""

import pytest

from tasks.docker import compose_for
from tasks.platform import unsupported


def distro(name, major, pretty, ident):
    return {"name": name, "major": major, "minor": None, "release_meta": {"ID": ident, "PRETTY_NAME": pretty}}


@pytest.mark.parametrize("major", [13, 12])
def test_debian_13_and_12_are_supported(major):
    assert unsupported(distro("Debian", major, f"Debian GNU/Linux {major}", "debian")) is None


@pytest.mark.parametrize("d", [
    distro("Debian", 11, "Debian GNU/Linux 11 (bullseye)", "debian"),
    distro("Ubuntu", 24, "Ubuntu 24.04.1 LTS", "ubuntu"),
    distro("Debian", None, "Debian GNU/Linux trixie/sid", "debian"),
    {"name": None, "major": None, "release_meta": {}},
])
def test_anything_else_is_refused_in_one_line_naming_the_fix(d):
    why = unsupported(d)
    assert why and "\n" not in why
    assert "supports Debian 13 (trixie) and Debian 12 (bookworm)" in why and "reinstall the server with Debian 13" in why
    assert (d["release_meta"].get("PRETTY_NAME") or "an unknown system") in why


def test_the_backup_vault_needs_debian_13_the_n8n_servers_do_not():
    d12 = distro("Debian", 12, "Debian GNU/Linux 12 (bookworm)", "debian")
    assert unsupported(d12, ["n8n_servers"]) is None
    why = unsupported(d12, ["backup_vault"])
    assert why == ("runs Debian GNU/Linux 12 (bookworm); the backup vault runs restic's REST server, packaged from "
                   "Debian 13 on: reinstall it with Debian 13")
    assert unsupported(distro("Debian", 13, "Debian GNU/Linux 13 (trixie)", "debian"), ["backup_vault"]) is None


def test_compose_v2_everywhere_but_debian_12s_own_package():
    assert compose_for("debian", 13) == "docker compose"
    assert compose_for("docker", 13) == "docker compose"
    assert compose_for("docker", 12) == "docker compose"
    assert compose_for("debian", 12) == "docker-compose"  # Debian 12 ships Compose v1 (1.29) only
