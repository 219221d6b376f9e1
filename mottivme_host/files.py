"""n8n's files: the stack's volumes of the n8n source (settings: its `volumes`, group_data
n8n_volumes), one tar archive each in the backup's staging directory, and back into the volumes
on restore.

The archives are made on the host from the volumes' own directories (GNU tar, owners kept as
numbers), so nothing depends on the tools inside n8n's image. A restore unpacks each archive
beside its volume while n8n runs, then, with n8n stopped, swaps the directories by two renames
(the previous files stay beside it as `<volume dir>.before-restore` until the next restore); the
swap back is two renames too.
"""

from __future__ import annotations

import os
import shutil
import tarfile

from .run import CommandFailed, Runner
from .settings import Settings

ARCHIVE_DIR = "n8n/files"  # in the staging directory: <volume>.tar each
# GNU tar: n8n writes while the backup reads; a file that changes or goes meanwhile is taken as
# tar finds it (exit 1, "some files differ"), never a failed backup
CREATE = ["tar", "--numeric-owner", "--warning=no-file-changed", "--warning=no-file-removed",
          "--warning=no-file-shrank"]
EXTRACT = ["tar", "--numeric-owner", "--same-permissions", "--same-owner"]
RESTORING, BEFORE, FAILED = ".restoring", ".before-restore", ".restore-failed"


def archive_path(volume: str) -> str:
    """The archive of `volume`, relative to the staging directory (as the manifest names it)."""
    return f"{ARCHIVE_DIR}/{volume}.tar"


def mountpoint(s: Settings, r: Runner, volume: str) -> str:
    """The host directory of the stack's volume `volume` ("" when the volume does not exist)."""
    res = r.run(["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", f"{s.compose_project}_{volume}"],
                check=False)
    return res.stdout.strip() if res.ok else ""


def pack(s: Settings, r: Runner, stage: str, volumes, exclude, log=None) -> list[str]:
    """Each volume's files into <stage>/n8n/files/<volume>.tar (`exclude`: tar patterns). Returns
    the volumes packed. Raises LookupError for a volume the stack does not have."""
    os.makedirs(os.path.join(stage, ARCHIVE_DIR), exist_ok=True)
    for volume in volumes:
        path = mountpoint(s, r, volume)
        if not path:
            raise LookupError(f"the stack has no volume {volume} ({s.compose_project}_{volume}): "
                              "run `pyinfra inventory.py deploy.py`")
        res = r.run([*CREATE, *(f"--exclude={x}" for x in exclude), "-C", path, "-cf",
                     os.path.join(stage, archive_path(volume)), "."], log=log, check=False)
        if res.returncode not in (0, 1):
            raise CommandFailed(res)
    return list(volumes)


def contents(path: str) -> dict:
    """{"entries": everything in the archive (files, directories, links), "files": its regular
    files, "bytes": their size}."""
    entries = count = size = 0
    with tarfile.open(path) as t:
        for m in t:
            if m.name not in (".", "./"):
                entries += 1
                if m.isfile():
                    count += 1
                    size += m.size
    return {"entries": entries, "files": count, "bytes": size}


def refused_member(archive: str) -> str | None:
    """What in `archive` n8n's files never hold and a restore as root must not create (a device
    node, a setuid/setgid file: a forged snapshot's way to root in the container), else None."""
    with tarfile.open(archive) as t:
        for m in t:
            if m.ischr() or m.isblk():
                return f"{m.name}: a device node"
            if m.mode & 0o6000:
                return f"{m.name}: setuid/setgid"
    return None


def unpack(r: Runner, archive: str, into: str, log=None) -> str:
    """`archive` into the new directory `into` (its owners, modes and times). Raises ValueError for
    an archive refused_member() refuses."""
    bad = refused_member(archive)
    if bad:
        raise ValueError(f"{os.path.basename(archive)} holds what n8n's files never do ({bad})")
    shutil.rmtree(into, ignore_errors=True)
    os.mkdir(into, 0o700)
    r.run([*EXTRACT, "-C", into, "-xf", archive], log=log)
    return into


def _rotate(volume_dir: str, aside: str, incoming: str) -> None:
    """volume_dir -> aside, then incoming -> volume_dir; when the second rename fails the first is
    undone, so the volume never lacks its directory."""
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(volume_dir, aside)
    try:
        os.rename(incoming, volume_dir)
    except OSError:
        os.rename(aside, volume_dir)
        raise


def swap_in(volume_dir: str) -> None:
    """The unpacked directory (<dir>.restoring) becomes the volume's; the volume's files stay beside
    it as <dir>.before-restore (the one a previous restore left goes)."""
    _rotate(volume_dir, volume_dir + BEFORE, volume_dir + RESTORING)


def swap_back(volume_dir: str) -> None:
    """Undo swap_in: the restored files go to <dir>.restore-failed, the previous ones come back."""
    _rotate(volume_dir, volume_dir + FAILED, volume_dir + BEFORE)
