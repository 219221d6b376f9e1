import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

@pytest.fixture
def tmp_env_file(tmp_path):
    """An empty .env in a temp dir, so the user's own .env is never read by a test."""
    f = tmp_path / "empty.env"
    f.write_text("")
    return f


@pytest.hookimpl(optionalhook=True)  # xdist's hook: without xdist, nothing
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist: each line of the integration tier (tests/helpers.py LINES) goes whole to one
    worker, in file order; the quick tier's modules are shared out between the workers. (xdist's
    own --dist loadgroup cannot be used: with pytest 9 its group marks no longer reach the
    scheduler.)"""
    from xdist.scheduler import LoadScopeScheduling

    from tests.helpers import line_of

    class Lines(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return line_of(nodeid) if module.startswith("tests/integration/") else module

    return Lines(config, log)
