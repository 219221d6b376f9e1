"""Where the project's hosts come from: the servers listed in .env when it lists any, otherwise
the local sandbox (`make sandbox-up`). inventory.py and the programs that reach the same servers
outside a pyinfra run (the DR drill) ask `choose()`; production code never names the sandbox."""

import os

from sandbox.inventory_source import SandboxSource
from tasks.config import EnvSource, InventorySource


def choose() -> InventorySource:
    """MOTTIVME_TARGET=sandbox (`make demo`) takes the sandbox whatever .env lists, and reads
    nothing from .env: a demo never reaches a production server nor carries its secrets."""
    if os.environ.get("MOTTIVME_TARGET") == "sandbox":
        return SandboxSource(env_file=False)
    env = EnvSource()
    return env if env.configured() else SandboxSource()
