"""sandbox/layerdiff.py: the layer that turns one n8n tree into another, applied the way an image
build applies it (remove, then extract), gives exactly the new tree."""

import json
import os
import shutil
import tarfile

from sandbox import layerdiff
from tests.helpers import dir_tree


def tree(root, files: dict[str, str], links: dict[str, str] = None, modes: dict[str, int] = None):
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    for rel, target in (links or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / rel)
    for rel, mode in (modes or {}).items():
        os.chmod(root / rel, mode)
    return root


def apply(image_root, outdir, prefix):
    """What `docker build` does with the Dockerfile: RUN rm -rf, then ADD layer.tar /."""
    lines = (outdir / "Dockerfile").read_text().splitlines()
    for line in lines:
        if line.startswith("RUN "):
            for path in json.loads(line[4:])[2:]:
                target = image_root / path.lstrip("/")
                shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
    with tarfile.open(outdir / "layer.tar") as tar:
        tar.extractall(image_root, filter="fully_trusted")
    return lines


def test_the_layer_applied_over_the_old_tree_gives_the_new_tree(tmp_path):
    old = tree(tmp_path / "old", {
        "package.json": '{"version": "2.41.0"}',  # changed, same length
        "dist/a.js": "same", "dist/b.js": "old b",
        "gone/x.js": "x", "gone/deep/y.js": "y",  # a directory that goes away
        "was-file": "now a directory",
        "bin/run": "#!/bin/sh",
    }, links={"node_modules/.bin/n8n": "../n8n/bin/n8n"})
    new = tree(tmp_path / "new", {
        "package.json": '{"version": "2.41.1"}',
        "dist/a.js": "same", "dist/b.js": "new b, longer",
        "dist/new/c.js": "c",
        "was-file/inside.js": "i",
        "bin/run": "#!/bin/sh",
    }, links={"node_modules/.bin/n8n": "../n8n/bin/n8n-v2"}, modes={"bin/run": 0o755})
    out = tmp_path / "ctx"

    assert layerdiff.main([str(old), str(new), "usr/local/lib/node_modules/n8n", str(out),
                           "--from", "n8n:2.41.0", "--env", "N8N_VERSION=2.41.1", "--user", "node"]) == 0

    changed, removed = layerdiff.diff(str(old), str(new))
    assert "dist/a.js" not in changed and "dist/b.js" in changed and "package.json" in changed
    assert removed == ["gone", "was-file"]
    image = tmp_path / "image"
    shutil.copytree(old, image / "usr/local/lib/node_modules/n8n", symlinks=True)
    lines = apply(image, out, "usr/local/lib/node_modules/n8n")
    assert dir_tree(image / "usr/local/lib/node_modules/n8n") == dir_tree(new)
    assert lines[0] == "FROM n8n:2.41.0" and lines[-2:] == ["ENV N8N_VERSION=2.41.1", "USER node"]
    with tarfile.open(out / "layer.tar") as tar:
        members = tar.getmembers()
    assert all(m.uid == 0 and m.gid == 0 for m in members)
    assert all(m.name.startswith("usr/local/lib/node_modules/n8n") or m.name in ("usr", "usr/local", "usr/local/lib",
                                                                                 "usr/local/lib/node_modules")
               for m in members)


def test_identical_trees_give_an_empty_layer_and_no_removal(tmp_path):
    files = {"a.js": "a", "lib/b.js": "b"}
    old, new = tree(tmp_path / "old", files), tree(tmp_path / "new", files)
    assert layerdiff.diff(str(old), str(new)) == ([], [])
    layerdiff.main([str(old), str(new), "opt/x", str(tmp_path / "ctx"), "--from", "x:1"])
    assert not any(line.startswith("RUN") for line in (tmp_path / "ctx/Dockerfile").read_text().splitlines())


def test_a_missing_tree_is_refused(tmp_path, capsys):
    assert layerdiff.main([str(tmp_path / "nope"), str(tmp_path), "opt/x", str(tmp_path / "ctx"), "--from", "x:1"]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_many_removals_stay_within_the_dockerfile_line_limit(tmp_path):
    old = tree(tmp_path / "old", {f"gone/asset-{i:05d}-{'x' * 60}.js": "x" for i in range(3000)})
    new = tree(tmp_path / "new", {"kept.js": "k"})
    (old / "kept.js").write_text("k")
    # one removed directory is one path; removed files of a kept directory are each a path
    old2 = tree(tmp_path / "old2", {f"dist/asset-{i:05d}-{'x' * 60}.js": "x" for i in range(3000)})
    new2 = tree(tmp_path / "new2", {"dist/kept.js": "k"})
    for o, n in ((old, new), (old2, new2)):
        out = tmp_path / f"ctx-{o.name}"
        layerdiff.main([str(o), str(n), "usr/local/lib/node_modules/n8n", str(out), "--from", "x:1"])
        lines = (out / "Dockerfile").read_text().splitlines()
        assert all(len(line.encode()) < 65536 for line in lines)
        removed = [p for line in lines if line.startswith("RUN ") for p in json.loads(line[4:])[2:]]
        assert len(removed) == (1 if o.name == "old" else 3000)
