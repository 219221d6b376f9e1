"""Shared by the host programs' unit tests (no __init__.py here: it would shadow mottivme_host)."""

import os
import signal

import pytest


@pytest.fixture(autouse=True)
def _signals():
    """cli.main installs SIGTERM/SIGHUP handlers, and some paths ignore SIGINT: pytest gets its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture(autouse=True)
def _nothing_in_the_machines_run_dir():
    """The programs' private files (pgpass) go to the settings' run_dir: the tests' own, never the
    machine's /run/mottivme (the tests may run as root)."""
    listing = lambda: sorted(os.listdir("/run/mottivme")) if os.path.isdir("/run/mottivme") else None  # noqa: E731
    before = listing()
    yield
    assert listing() == before, "a test wrote to the machine's /run/mottivme"
