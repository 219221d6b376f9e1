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
