"""operations.tree and its fact Tree (tasks/operations.py, tasks/facts.py): the listing the fact's
one command prints on a host must equal the one computed from the repository's copy exactly when
the host holds that copy, or a second deploy would report a change (or miss one). The command
runs here on a directory unpacked from the operation's own archive, as the host unpacks it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tasks.facts import parse_tree, tree_command
from tasks.operations import tree_archive, tree_listing, tree_swap

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the archive's files are root's: unpacked as root")


def on_host(path: Path) -> dict | None:
    out = subprocess.run(["sh", "-c", tree_command(str(path))], capture_output=True, text=True, check=True).stdout
    return parse_tree(out.splitlines())


def unpacked(src: Path, dest: Path) -> Path:
    dest.mkdir()
    dest.chmod(0o755)  # as `mkdir -m 755` makes it, whatever the umask
    with tarfile.open(fileobj=tree_archive(src)) as tar:
        tar.extractall(dest, filter="fully_trusted")  # as GNU tar does as root: owners and modes kept
    return dest


@pytest.mark.parametrize("package", ["mottivme_host", "mottivme_monitor"])
def test_a_host_holding_the_package_lists_as_the_repository_does(tmp_path, package):
    host = unpacked(ROOT / package, tmp_path / package)
    (host / "__pycache__").mkdir()  # what running it leaves there: not compared
    (host / "__pycache__" / "cli.cpython-313.pyc").write_bytes(b"\0")
    assert on_host(host) == tree_listing(ROOT / package)
    assert on_host(host)["./cli.py"][:3] == ("f", "644", "root:root")


def test_any_difference_is_a_difference(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "mottivme_host", src, ignore=shutil.ignore_patterns("__pycache__"))
    want = tree_listing(src)
    host = unpacked(src, tmp_path / "host")
    assert on_host(host) == want
    edits = [
        lambda: (host / "cli.py").write_text((host / "cli.py").read_text() + "#"),  # a byte more
        lambda: (host / "stray.py").write_text(""),  # a file the repository lacks
        lambda: os.chmod(host / "run.py", 0o666),  # a mode
        lambda: os.chmod(host, 0o700),  # the directory's own
        lambda: (host / "run.py").unlink(),  # a file gone
    ]
    for edit in edits:
        shutil.rmtree(host)
        unpacked(src, host)
        edit()
        assert on_host(host) != want


def test_no_directory_is_none(tmp_path):
    assert on_host(tmp_path / "nothing") is None


def test_the_swap_puts_the_package_in_place_of_whatever_was_there(tmp_path):
    """The operation's own command, on a directory that is missing, then one holding another
    version with a file the package lacks and a Python cache: the package's listing, nothing left beside."""
    want = tree_listing(ROOT / "mottivme_host")
    dest = tmp_path / "lib" / "mottivme_host"
    dest.parent.mkdir()
    for before in (None, "older"):
        if before:
            (dest / "gone.py").write_text("# a module the package dropped")
            (dest / "__pycache__").mkdir(exist_ok=True)
        archive = tmp_path / "upload.tar"
        archive.write_bytes(tree_archive(ROOT / "mottivme_host").getvalue())
        subprocess.run(["sh", "-c", tree_swap(str(archive), str(dest))], check=True)
        assert on_host(dest) == want and not (dest / "__pycache__").exists()
        assert sorted(p.name for p in dest.parent.iterdir()) == ["mottivme_host"] and not archive.exists()
