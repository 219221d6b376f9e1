"""n8n's files (mottivme_host/files.py): a volume's directory into a tar archive and back, with
GNU tar for real on temporary directories; only `docker volume inspect` is the recording fake."""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile

import pytest

from mottivme_host import files, settings
from mottivme_host.run import CommandFailed
from tests.helpers import FakeRunner, dir_tree, run_for_real


def a_volume(root) -> None:
    """What n8n keeps in its home: binary data, a custom node, its settings (0600), a link, its event log."""
    (root / "binaryData" / "workflows" / "w1" / "executions" / "7").mkdir(parents=True)
    (root / "binaryData" / "workflows" / "w1" / "executions" / "7" / "upload").write_bytes(bytes(range(256)) * 40)
    (root / "custom" / "n8n-nodes-echo" / "dist").mkdir(parents=True)
    (root / "custom" / "n8n-nodes-echo" / "package.json").write_text('{"name": "n8n-nodes-echo"}\n')
    (root / "config").write_text('{"encryptionKey": "k"}\n')
    os.chmod(root / "config", 0o600)
    os.symlink("custom/n8n-nodes-echo", root / "echo")
    (root / "n8nEventLog.log").write_text("logs, not data\n")
    (root / "n8nEventLog-1.log").write_text("older logs\n")
    os.utime(root / "config", (1_700_000_000, 1_700_000_000))


def tree(root) -> dict:
    return dir_tree(root, times=True)


@pytest.fixture
def volumes(tmp_path):
    """Two volumes' directories as Docker keeps them (<volume>/_data), and the fake answering for them."""
    fake = FakeRunner()
    dirs = {}
    for name in ("n8n_data", "n8n_files"):
        d = tmp_path / "docker" / f"n8n_{name}" / "_data"
        d.mkdir(parents=True)
        dirs[name] = d
        fake.on(f"docker volume inspect -f {{{{.Mountpoint}}}} n8n_{name}", stdout=f"{d}\n")
    fake.on(lambda c: c.startswith("tar "), call=run_for_real)
    a_volume(dirs["n8n_data"])
    (dirs["n8n_files"] / "report.pdf").write_bytes(b"%PDF-1.7 a report")
    return fake, dirs


def test_a_volume_round_trips_byte_for_byte_less_what_is_excluded(tmp_path, volumes):
    fake, dirs = volumes
    s = settings.from_dict({})
    stage = tmp_path / "staging"
    before = tree(dirs["n8n_data"])
    assert files.pack(s, fake, str(stage), ["n8n_data", "n8n_files"], ["n8nEventLog*.log"]) == ["n8n_data", "n8n_files"]
    got = files.contents(str(stage / files.archive_path("n8n_data")))
    # binaryData/workflows/w1/executions/7 (5 dirs), upload, custom/n8n-nodes-echo/dist (3), package.json,
    # config, echo (link); the two event logs left out
    assert got == {"entries": 12, "files": 3, "bytes": 10240 + len('{"name": "n8n-nodes-echo"}\n') +
                   len('{"encryptionKey": "k"}\n')}
    assert files.contents(str(stage / files.archive_path("n8n_files"))) == {"entries": 1, "files": 1, "bytes": 17}

    # restore over a volume that has changed since: unpacked beside it, then swapped in
    (dirs["n8n_data"] / "config").write_text("changed\n")
    (dirs["n8n_data"] / "binaryData" / "later").write_text("written after the backup\n")
    new = files.unpack(fake, str(stage / files.archive_path("n8n_data")), str(dirs["n8n_data"]) + files.RESTORING)
    # the volume's own directory as it was (its mode: n8n's user must write there)
    assert new == str(dirs["n8n_data"]) + ".restoring"
    assert os.stat(new).st_mode & 0o777 == os.stat(dirs["n8n_data"]).st_mode & 0o777 == 0o755
    files.swap_in(str(dirs["n8n_data"]))
    expected = {k: v for k, v in before.items() if not k.startswith("n8nEventLog")}
    assert tree(dirs["n8n_data"]) == expected
    kept = tree(str(dirs["n8n_data"]) + ".before-restore")
    assert kept["config"][2] == b"changed\n" and "binaryData/later" in kept

    # the swap back: the previous files in service again, the restored ones kept aside
    files.swap_back(str(dirs["n8n_data"]))
    assert tree(dirs["n8n_data"]) == kept
    assert tree(str(dirs["n8n_data"]) + ".restore-failed") == expected


def test_a_second_restore_replaces_what_the_first_kept(tmp_path, volumes):
    fake, dirs = volumes
    stage = tmp_path / "staging"
    files.pack(settings.from_dict({}), fake, str(stage), ["n8n_files"], [])
    vol = str(dirs["n8n_files"])
    for _ in range(2):
        files.unpack(fake, str(stage / files.archive_path("n8n_files")), vol + files.RESTORING)
        files.swap_in(vol)
    assert os.listdir(vol) == ["report.pdf"] and os.listdir(vol + ".before-restore") == ["report.pdf"]
    assert not os.path.exists(vol + ".restoring")


def test_a_volume_the_stack_lacks_is_named_with_the_fix(tmp_path):
    fake = FakeRunner()
    fake.on("docker volume inspect", rc=1, stderr="Error: No such volume: n8n_n8n_files")
    with pytest.raises(LookupError, match=r"the stack has no volume n8n_files \(n8n_n8n_files\): run `pyinfra "
                                          r"inventory.py deploy.py`"):
        files.pack(settings.from_dict({}), fake, str(tmp_path), ["n8n_files"], [])


def test_files_that_change_while_tar_reads_them_are_no_failure_but_a_broken_read_is(tmp_path):
    fake = FakeRunner()
    fake.on("docker volume inspect", stdout=f"{tmp_path}\n")
    fake.on(lambda c: c.startswith("tar "), rc=1, stderr="tar: ./n8nEventLog.log: file changed as we read it")
    files.pack(settings.from_dict({}), fake, str(tmp_path / "stage"), ["n8n_data"], [])
    fake.on(lambda c: c.startswith("tar "), rc=2, stderr="tar: ./binaryData: Cannot open: Permission denied")
    with pytest.raises(CommandFailed, match="exited 2"):
        files.pack(settings.from_dict({}), fake, str(tmp_path / "stage"), ["n8n_data"], [])


def test_tar_keeps_owners_as_numbers_and_reads_a_live_volume():
    """The options the archive is made and unpacked with are GNU tar's own (a typo would fail only
    on a server)."""
    for argv in (files.CREATE, files.EXTRACT):
        r = subprocess.run([*argv, "-cf", "/dev/null", "--files-from", "/dev/null"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert "--numeric-owner" in files.CREATE and "--numeric-owner" in files.EXTRACT


@pytest.mark.parametrize("member, why", [
    (dict(type=tarfile.CHRTYPE, devmajor=1, devminor=3), "./null: a device node"),
    (dict(type=tarfile.REGTYPE, mode=0o4755), "./null: setuid/setgid"),
])
def test_an_archive_holding_what_n8n_never_writes_is_refused_before_anything_is_unpacked(tmp_path, member, why):
    """A forged snapshot's way to root in n8n's container (restored as root, owners and modes kept)."""
    archive = tmp_path / "n8n_data.tar"
    with tarfile.open(archive, "w") as t:
        info = tarfile.TarInfo("./null")
        for k, v in member.items():
            setattr(info, k, v)
        t.addfile(info, io.BytesIO(b""))
    fake = FakeRunner()
    with pytest.raises(ValueError, match=re.escape(f"n8n_data.tar holds what n8n's files never do ({why})")):
        files.unpack(fake, str(archive), str(tmp_path / "_data.restoring"))
    assert fake.calls == [] and not (tmp_path / "_data.restoring").exists()


def test_a_swap_whose_second_rename_fails_leaves_the_volume_its_directory(tmp_path):
    vol = tmp_path / "_data"
    vol.mkdir()
    (vol / "live").write_text("live files\n")
    with pytest.raises(OSError):  # nothing unpacked to swap in (e.g. removed meanwhile)
        files.swap_in(str(vol))
    assert os.listdir(vol) == ["live"] and not os.path.exists(f"{vol}.before-restore")
