"""The sandbox as an inventory source (tasks/config.InventorySource): its servers from
.sandbox/hosts.json, its throwaway secrets from .sandbox/secrets.env, the Supabase stand-in's
URL, and "replace this server" for the DR drill. inventory.py uses it when .env lists no hosts;
production code never names it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dotenv import dotenv_values

from sandbox import acme
from tasks.config import ConfigError
from tasks.groups import N8N_SERVERS, NAMES

ROOT = Path(__file__).resolve().parent.parent


class SandboxSource:
    def __init__(self, env_file: bool = True, state_dir: Path | None = None):
        """`env_file`: False = the operator's .env is not read at all (`make demo`)."""
        from sandbox.core import resolve_state_dir

        self.state = resolve_state_dir(state_dir)
        self.reads_env_file = env_file

    def _state(self) -> dict:
        f = self.state / "hosts.json"
        return json.loads(f.read_text()) if f.exists() else {"hosts": []}

    def _hosts(self) -> list[dict]:
        return self._state()["hosts"]

    def configured(self) -> bool:
        return bool(self._hosts())

    def groups(self) -> dict[str, list[tuple[str, dict]]]:
        state = self._state()
        hosts = state["hosts"]
        if not hosts:
            raise ConfigError(
                "no hosts to deploy to: set N8N_SERVERS (and SSH_USER, SSH_KEY_FILE) in .env for real "
                "servers, or start a local sandbox server with `make sandbox-up`")
        if "services" not in state:  # made before the sandbox had its registry and images.lock
            raise ConfigError("this sandbox predates its registry and images.lock: `make sandbox-down`, then "
                              "`make sandbox-up` (or `make demo`)")
        groups: dict[str, list] = {g: [] for g in NAMES}
        for h in hosts:
            groups.setdefault(h["group"], []).append((h["name"], {
                "ssh_hostname": h["ssh_host"], "ssh_port": h["ssh_port"], "ssh_user": h["ssh_user"],
                "ssh_key": h["key"], "ssh_known_hosts_file": "/dev/null",
                "ssh_strict_host_key_checking": "off",
                "n8n_public_url": f"https://localhost:{h['https_port']}/",
                "private_ip": h["private_ip"],
                # how the other servers reach this one (the backup vault's REST server, the monitor, the tunnel)
                "peer_address": h["private_ip"], "peer_ssh_port": 22,
                # Caddy's certificates from the sandbox's ACME CA (sandbox/acme.py)
                **acme.settings(state),
            }))
        groups["sandbox"] = [h["name"] for h in hosts]  # group_data/sandbox.py
        standin = [h for h in hosts if h["group"] == "supabase"]
        if standin and not os.environ.get("SUPABASE_DB_URL"):
            # the stand-in for Supabase's database (sandbox/supabase.py), and the DR drill's own beside it
            password = dotenv_values(self.state / "secrets.env", interpolate=False).get("SUPABASE_STANDIN_PASSWORD", "")
            base = f"postgresql://postgres:{password}@{standin[0]['private_ip']}:5432"
            os.environ["SUPABASE_DB_URL"] = f"{base}/postgres"
            os.environ.setdefault("DR_DRILL_SUPABASE_URL", f"{base}/drill")
        return groups

    def secret_files(self) -> list[Path]:
        return [self.state / "secrets.env"]

    def describe(self) -> str:
        return f"no hosts in .env, targeting the sandbox in {self.state.name}/"

    def can_replace_servers(self) -> bool:
        return True

    def images_lock(self) -> Path:
        """Written from the sandbox's own registry when its services server starts (sandbox/core.py)."""
        return self.state / "images.lock"

    def image_groups(self) -> tuple[str, ...]:
        """The sandbox's servers read group_data/sandbox.py too (its supabase_majors, n8n_other_versions)."""
        return N8N_SERVERS.name, "sandbox"

    def image_data(self):
        from tasks import groupdata

        return groupdata.load(*self.image_groups())

    def registries(self) -> tuple[dict[str, str], str | None]:
        """The registries' names, through the services server's forwarded HTTPS port, over its CA."""
        svc = self._state().get("services") or {}
        if "registry" not in svc:
            return {}, None
        base = f"https://127.0.0.1:{svc['server']['https_port']}"
        return {name: base for name in svc["registry"]["names"]}, svc["certs"]["ca"]

    def replace_server(self, name: str, group: str) -> None:
        from sandbox.core import Sandbox

        sbx = Sandbox(state_dir=self.state)
        old = next((h for h in sbx.load()["hosts"] if h["name"] == name), {})
        sbx.down([name])
        sbx.up(1, group, old.get("release"))  # the same Debian release as the server it replaces
