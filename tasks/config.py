"""Hosts and secrets, checked before pyinfra connects anywhere.

inventory.py picks an inventory source and calls `load_inventory(source)`. A source says which
hosts are in which group (tasks/groups.py) and where values come from that `.env` leaves unset;
`EnvSource` (the hosts listed in `.env`) is the production one. Every problem is reported at
once, each naming the variable and how to fix it (tasks/variables.py), and the run stops (exit 2)
before any host is contacted. Secret values are handed to operations only as pyinfra
`HiddenValue`s (`secret(name)`), so pyinfra prints `*MASKED*` wherever it would show them.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Protocol

from pyinfra.api import HiddenValue

from tasks import access, groupdata, settings, variables
from tasks import groups as group_registry

ROOT = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    pass


class InventorySource(Protocol):
    """Where the hosts come from. `describe` is printed when it is not the operator's .env."""

    def configured(self) -> bool: ...  # does this source have hosts at all?
    def groups(self) -> dict[str, list[tuple[str, dict]]]: ...  # {group: [(name, host data)]}; may raise ConfigError
    def secret_files(self) -> list[Path]: ...  # read after .env for unset values; rotated values go back there
    def describe(self) -> str: ...
    reads_env_file: bool  # the operator's .env is read (False: only the source's own secret files)
    def can_replace_servers(self) -> bool: ...  # the DR drill's "destroy the server, get a bare one"
    def replace_server(self, name: str, group: str) -> None: ...
    def images_lock(self) -> Path: ...  # the images' digests these hosts run (tasks/images.py)
    def image_groups(self) -> tuple[str, ...]: ...  # the groups whose group_data set the pinned images
    def image_data(self) -> groupdata.Data: ...  # that group data (all.py, then each group's file)
    def registries(self) -> tuple[dict[str, str], str | None]: ...  # registry name -> base URL, CA file


def env_file() -> Path:
    return Path(os.environ.get("MOTTIVME_ENV_FILE") or ROOT / ".env")


def load_env() -> None:
    """.env (MOTTIVME_ENV_FILE names another file) under whatever the environment already sets, each
    value exactly as written: no ${VAR} expansion (a $ in a password is a $)."""
    from dotenv import load_dotenv

    load_dotenv(env_file(), override=False, interpolate=False)


class EnvSource:
    """The servers listed in .env / the environment (N8N_SERVERS=host1,host2:2222, SSH_USER, SSH_KEY_FILE)."""

    reads_env_file = True

    def __init__(self):
        load_env()

    def configured(self) -> bool:
        return any(os.environ.get(g.variable, "").strip() for g in group_registry.GROUPS)

    def groups(self) -> dict[str, list[tuple[str, dict]]]:
        user = os.environ.get("SSH_USER", "root")
        key = os.environ.get("SSH_KEY_FILE")
        out = {}
        for g in group_registry.GROUPS:
            out[g.name] = []
            for name, port in parse_hosts(os.environ.get(g.variable, ""), g.variable):
                data = {"ssh_user": user, "peer_address": name, "peer_ssh_port": port or 22}
                if port:
                    data["ssh_port"] = port
                if key:
                    data["ssh_key"] = str(Path(key).expanduser())
                if os.environ.get("SSH_KNOWN_HOSTS_FILE"):
                    data["ssh_known_hosts_file"] = os.environ["SSH_KNOWN_HOSTS_FILE"]
                out[g.name].append((name, data))
        return out

    def secret_files(self) -> list[Path]:
        return []

    def describe(self) -> str:
        return ""

    def can_replace_servers(self) -> bool:
        return False

    def replace_server(self, name: str, group: str) -> None:
        raise ConfigError("the hosts in .env are real servers: nothing here can order a new one")

    def images_lock(self) -> Path:
        return Path(os.environ.get("MOTTIVME_IMAGES_LOCK") or ROOT / "images.lock")

    def image_groups(self) -> tuple[str, ...]:
        return (group_registry.N8N_SERVERS.name,)

    def image_data(self) -> groupdata.Data:
        return groupdata.load(*self.image_groups())

    def registries(self) -> tuple[dict[str, str], str | None]:
        return {}, None  # the registries' own names, the system's CAs


_active: InventorySource | None = None


def active_source() -> InventorySource:
    """The source load_inventory() used (the rotation writes secrets back to its files)."""
    return _active if _active is not None else EnvSource()


def secret(name: str) -> HiddenValue:
    """The secret's value, masked in pyinfra's output (templates call `.unmask()`)."""
    return HiddenValue(os.environ[name])


def peer(h) -> tuple[str, int]:
    """(address, SSH port) by which the other servers reach inventory host `h` (the sandbox: its
    private address; real hosts: their inventory name)."""
    return h.data.get("peer_address") or h.name, h.data.get("peer_ssh_port") or 22


def parse_hosts(value: str, var: str) -> list[tuple[str, int | None]]:
    hosts = []
    for item in filter(None, (x.strip() for x in value.split(","))):
        m = re.fullmatch(r"([A-Za-z0-9._-]+)(?::([0-9]{1,5}))?", item)
        if not m:
            raise ConfigError(f"{var}: '{item}' is not host or host:port (e.g. {var}=n8n1.example.com,10.0.0.5:2222)")
        hosts.append((m.group(1), int(m.group(2)) if m.group(2) else None))
    return hosts


def load_inventory(source: InventorySource) -> dict[str, list]:
    """Return {group: [(name, host_data), ...]} or exit(2) with every problem named."""
    global _active
    from dotenv import load_dotenv

    if source.reads_env_file:
        load_env()
    else:  # a sandbox-only run: no value of the project's from the shell either, only the source's own
        for v in variables.VARIABLES:
            if v.name not in ("MOTTIVME_ENV_FILE", "MOTTIVME_TARGET"):
                os.environ.pop(v.name, None)
    _active = source
    try:
        found = source.groups()
    except ConfigError as e:
        _die([str(e)])
    if source.describe():
        names = ", ".join(f"{n} ({g})" for g, hs in found.items() if g in group_registry.NAMES for n, _ in hs)
        print(f"inventory: {source.describe()}: {names}", file=sys.stderr)
    for f in source.secret_files():  # values .env / the environment do not set
        load_dotenv(f, override=False, interpolate=False)
    errors = variables.problems(os.environ, found)
    data = groupdata.load(group_registry.N8N_SERVERS.name)
    errors += variables.source_problems(data.get("backup_sources", []), os.environ)
    errors += access.problems(data.get("people", []))
    for check, name in ((settings.dump_compression, "backup_dump_compression"),
                        (settings.keep_finished, "n8n_queue_keep_finished")):
        try:
            check(data.get(name, 0))
        except settings.SettingsError as e:
            errors.append(str(e))
    if "admin_ssh_keys" in data:
        errors.append("group_data admin_ssh_keys is now `people` (a name, the key and present/absent per person): "
                      "move each key there (group_data/all.py shows the shape)")
    from tasks import images  # (it reads ConfigError from here)

    errors += images.problems(source.images_lock(), source.image_data())
    if not errors:  # a version asked for on the command line (deploy.py, the emergency deploy) is pinned too
        errors += images.unpinned_version(images.read(source.images_lock()), source.image_data())
    if errors:
        _die(errors)
    lock = images.read(source.images_lock())
    for hosts in found.values():  # every host runs the images the lock pins (tasks/settings.Stack)
        for h in hosts:
            if isinstance(h, tuple):
                h[1]["images_lock"] = lock
    return found


def _die(errors: list[str], header: str = "cannot start, fix the configuration first (nothing was contacted)") -> None:
    print(f"mottivme-infra: {header}:", file=sys.stderr)
    for e in errors:
        print(f"  - {e}", file=sys.stderr)
    sys.exit(2)


def _secret_homes() -> list[Path]:
    source = active_source()
    return [env_file()] * source.reads_env_file + source.secret_files()


def rotation_pending_file() -> Path:
    """Where a secret rotation keeps its new values until every host has them and they are written
    back: beside the operator's .env (or beside the source's own secrets file when there is no .env)."""
    homes = _secret_homes()
    home = next((f for f in homes if f.is_file()), homes[0])
    return home.with_name(".rotation-pending.env")


def persist_secret(name: str, value: str) -> str:
    """Write a rotated secret back where the operator keeps it; return where (never the value).

    The operator's .env (MOTTIVME_ENV_FILE) when it holds the variable, else the source's secrets
    file when that is where it came from; otherwise the value only lived in the process
    environment and the operator must update it there."""
    from dotenv import dotenv_values, set_key

    for f in _secret_homes():
        if f.is_file() and name in dotenv_values(f, interpolate=False):
            set_key(str(f), name, value, quote_mode="never")
            os.environ[name] = value
            return str(f)
    return ""
