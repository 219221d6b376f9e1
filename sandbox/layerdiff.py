"""layerdiff.py OLD NEW PREFIX OUTDIR: what turns the tree OLD into the tree NEW, as an image layer.

The sandbox builds its second n8n version (the emergency deploy's roll forward/back) as the
first version's image plus one layer, the way a registry's images share their base layers: a
server that already holds the first version then extracts only what differs (a few dozen files
between two patch releases) instead of 1.3 GB again. Writes to OUTDIR:

- ``layer.tar``: every entry of NEW that OLD lacks or holds differently (type, mode, content,
  link target), under PREFIX, owned by root like the rest of the image;
- ``Dockerfile``: FROM the first version's image, remove what NEW no longer has (RUN rm lines,
  each a layer of whiteouts, only when something was removed), ADD the layer (``--from IMAGE``,
  ``--env K=V`` and ``--user U`` are written into it).

OLD must be the tree the image holds (build-images.sh copies it out of the image), so that the
result is exactly NEW.

Prints one summary line. Standard library only (run by build-images.sh with the host's python3).
"""

import argparse
import filecmp
import json
import os
import stat
import sys
import tarfile


def entries(root: str) -> dict[str, os.stat_result]:
    """Relative path -> lstat of every entry below root (root itself excluded)."""
    found = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            found[os.path.relpath(path, root)] = os.lstat(path)
    return found


def differs(old_root: str, new_root: str, rel: str, a: os.stat_result, b: os.stat_result) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode) or stat.S_IMODE(a.st_mode) != stat.S_IMODE(b.st_mode):
        return True
    if stat.S_ISLNK(b.st_mode):
        return os.readlink(os.path.join(old_root, rel)) != os.readlink(os.path.join(new_root, rel))
    if stat.S_ISREG(b.st_mode):
        return a.st_size != b.st_size or not filecmp.cmp(os.path.join(old_root, rel), os.path.join(new_root, rel),
                                                        shallow=False)
    return False  # a directory with the same mode: its entries are compared one by one


def diff(old_root: str, new_root: str) -> tuple[list[str], list[str]]:
    """(changed or added, removed): relative paths, sorted; a removed directory is named once."""
    old, new = entries(old_root), entries(new_root)
    changed = sorted(rel for rel, st in new.items() if rel not in old or differs(old_root, new_root, rel, old[rel], st))
    retyped = {rel for rel in changed if rel in old and stat.S_IFMT(old[rel].st_mode) != stat.S_IFMT(new[rel].st_mode)}
    gone = {rel for rel in old if rel not in new} | retyped  # a retyped entry goes first, then comes back
    removed = sorted(rel for rel in gone if os.path.dirname(rel) not in gone)
    return changed, removed


def write_layer(new_root: str, changed: list[str], prefix: str, out: str) -> None:
    def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        parts = prefix.strip("/").split("/")
        for i in range(1, len(parts) + 1):  # the prefix's directories, so the tar stands alone
            info = tarfile.TarInfo("/".join(parts[:i]))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(as_root(info))
        for rel in changed:
            tar.add(os.path.join(new_root, rel), arcname=f"{prefix.strip('/')}/{rel}", recursive=False, filter=as_root)


def dockerfile(base: str, prefix: str, removed: list[str], env: list[str], user: str) -> str:
    lines = [f"FROM {base}", "USER root"]
    paths = [f"/{prefix.strip('/')}/{rel}" for rel in removed]
    while paths:  # a Dockerfile line may not pass 64 KiB: RUN lines of at most ~16 KiB
        chunk, size = [], 0
        while paths and (not chunk or size + len(paths[0]) < 16384):
            size += len(paths[0]) + 4
            chunk.append(paths.pop(0))
        lines.append("RUN " + json.dumps(["rm", "-rf", *chunk]))
    lines.append("ADD layer.tar /")
    lines += [f"ENV {kv}" for kv in env]
    if user:
        lines.append(f"USER {user}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("prefix", help="where NEW lives in the image, e.g. usr/local/lib/node_modules/n8n")
    p.add_argument("outdir")
    p.add_argument("--from", dest="base", required=True, help="the image that holds OLD")
    p.add_argument("--env", action="append", default=[], help="K=V set in the new image")
    p.add_argument("--user", default="", help="the user the new image runs as")
    a = p.parse_args(argv)
    for root in (a.old, a.new):
        if not os.path.isdir(root):
            print(f"layerdiff: {root} is not a directory", file=sys.stderr)
            return 2
    changed, removed = diff(a.old, a.new)
    os.makedirs(a.outdir, exist_ok=True)
    write_layer(a.new, changed, a.prefix, os.path.join(a.outdir, "layer.tar"))
    with open(os.path.join(a.outdir, "Dockerfile"), "w") as f:
        f.write(dockerfile(a.base, a.prefix, removed, a.env, a.user))
    print(f"layerdiff: {len(changed)} changed or added, {len(removed)} removed under /{a.prefix.strip('/')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
