"""One heartbeat token per server, derived from the master token (`ping_token`, MONITOR_PING_TOKEN).

The deploy (tasks/monitoring.py) gives each server only its own token; the receiver (server.py)
accepts a heartbeat for a check with a `sender` only with that sender's token. A server's token
leaked therefore fakes that server's heartbeats and no other's, and the master token never has to
leave the monitor host and the operator's .env. Standard library only: the deploy imports this
module, the monitor host runs it in its own virtualenv.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = b"mottivme-ping:"  # domain separation: anything else ever derived from the master never collides
LENGTH = 48                 # hex characters (192 bits), like `openssl rand -hex 24`


def server_token(master: str, server: str) -> str:
    """The heartbeat token of `server` (its inventory name): hex HMAC-SHA256(master, prefix + name)."""
    if not master:
        raise ValueError("the master ping token is empty (set MONITOR_PING_TOKEN): an empty key would "
                         "give every server a token anyone can compute")
    if not server:
        raise ValueError("a heartbeat token needs the server's inventory name")
    return hmac.new(master.encode(), PREFIX + server.encode(), hashlib.sha256).hexdigest()[:LENGTH]
