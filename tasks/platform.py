"""The systems this project deploys to: Debian 13 (trixie, the default) and Debian 12 (bookworm).

Read once per host from pyinfra's LinuxDistribution fact; anything else is refused before the
first operation, with one line."""

from __future__ import annotations

import sys

from pyinfra import host
from pyinfra.facts.server import LinuxDistribution

# Debian major version -> codename. 13 is what a server rented today comes with.
SUPPORTED = {13: "trixie", 12: "bookworm"}


# roles that need more than Debian 12 has: the backup vault runs restic's REST server, which
# Debian packages from 13 on (restic-rest-server)
NEEDS_13 = {"backup_vault": "the backup vault runs restic's REST server, packaged from Debian 13 on"}


def unsupported(distro: dict, groups=()) -> str | None:
    """Why this system is not supported (one line), or None when it is."""
    meta = distro.get("release_meta") or {}
    name = meta.get("PRETTY_NAME") or distro.get("name") or "an unknown system"
    if (meta.get("ID") or str(distro.get("name") or "").lower()) != "debian" or distro.get("major") not in SUPPORTED:
        return (f"runs {name}; mottivme-infra supports Debian 13 (trixie) and Debian 12 (bookworm): "
                "reinstall the server with Debian 13")
    for group, why in NEEDS_13.items():
        if group in groups and distro.get("major") < 13:
            return f"runs {name}; {why}: reinstall it with Debian 13"
    return None


def debian_release() -> int:
    """This host's Debian major version (13 or 12)."""
    return host.get_fact(LinuxDistribution)["major"]


def codename() -> str:
    return SUPPORTED[debian_release()]


def refuse_unsupported_os() -> None:
    """Stop the run, before any operation, on a host that is not Debian 13 or 12."""
    why = unsupported(host.get_fact(LinuxDistribution), host.groups)
    if why:
        print(f"mottivme-infra: {host.name} {why}. Nothing was changed.", file=sys.stderr)
        sys.exit(2)
