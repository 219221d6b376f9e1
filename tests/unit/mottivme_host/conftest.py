"""Shared by the host programs' unit tests (no __init__.py here: it would shadow mottivme_host)."""

import signal

import pytest


@pytest.fixture(autouse=True)
def _signals():
    """cli.main installs SIGTERM/SIGHUP handlers, and some paths ignore SIGINT: pytest gets its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)
