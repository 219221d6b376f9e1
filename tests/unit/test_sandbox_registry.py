"""The sandbox's registry (sandbox/registry.py): which images it holds, under which names, from
which archives. (Pulling from it is the integration tier's: every deploy there pulls.)"""

import pytest

from sandbox import registry
from sandbox.core import versions


def test_the_registry_holds_every_image_the_servers_pull_under_the_production_names():
    v = versions()
    refs = registry.wanted(v)
    n8n = f"{v['n8n_image_repo']}:{v['n8n_version']}"
    assert refs[n8n] == n8n and len(refs) == 8 and all(f"{v['n8n_image_repo']}:{x}" in refs for x in v["n8n_other_versions"])
    # the task runners' image of each n8n version (built with n8n's, in its archive)
    assert all(refs[f"{v['n8n_runners_image_repo']}:{x}"] == f"{v['n8n_runners_image_repo']}:{x}"
               for x in (v["n8n_version"], *v["n8n_other_versions"]))
    # Debian's package of the major version stands in for each exact tag
    assert refs[v["redis_image"]] == "redis:7" and refs[v["caddy_image"]] == "caddy:2"
    # the Supabase stand-in's major version, for the backup's pg_dump and the restore's scratch
    # server: the postgres stand-in (with pgvector) under those names
    assert refs[v["postgres_image"]] == refs["pgvector/pgvector:0.8.0-pg17"] == "postgres:17"
    assert v["supabase_postgres_images"][17] == v["postgres_image"]
    # what the servers' /etc/hosts sends to the services server: Docker Hub's and n8n's registries
    assert registry.names(refs) == ["docker.n8n.io", "registry-1.docker.io"]


def test_each_image_comes_from_its_stand_ins_newest_archive(tmp_path):
    for f in ("docker.n8n.io_n8nio_n8n_2.41.1-r1.tar.zst", "docker.n8n.io_n8nio_n8n_2.41.1-r2-on-2.41.0.tar.zst",
              "docker.n8n.io_n8nio_n8n_2.41.10-r9.tar.zst", "postgres_17-r1.tar.zst", "postgres_16-r1.tar.zst"):
        (tmp_path / f).write_bytes(b"")
    got = registry.sources({"docker.n8n.io/n8nio/n8n:2.41.1": "docker.n8n.io/n8nio/n8n:2.41.1",
                            "postgres:17.6": "postgres:17", "pgvector/pgvector:pg17": "postgres:17"}, tmp_path)
    assert got == {"docker.n8n.io/n8nio/n8n:2.41.1": "docker.n8n.io_n8nio_n8n_2.41.1-r2-on-2.41.0.tar.zst",
                   "postgres:17.6": "postgres_17-r1.tar.zst", "pgvector/pgvector:pg17": "postgres_17-r1.tar.zst"}
    with pytest.raises(RuntimeError, match=r"no image archive for redis:7 .*python -m sandbox images"):
        registry.sources({"redis:7.4.5": "redis:7"}, tmp_path)


def test_an_archive_pushed_once_is_copied_inside_the_registry_for_its_second_name():
    script = registry.script("CERT", "KEY", {"postgres:17": "postgres_17-r1.tar.zst",
                                             "pgvector/pgvector:pg17": "postgres_17-r1.tar.zst"},
                             {"postgres:17": "postgres:17", "pgvector/pgvector:pg17": "postgres:17"})
    copies = [line for line in script.splitlines() if line.startswith("skopeo copy")]
    assert copies == [
        "skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "
        "docker-archive:/sbx/images/postgres_17-r1.tar.zst:postgres:17 docker://127.0.0.1/library/postgres:17",
        "skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "
        "docker://127.0.0.1/library/postgres:17 docker://127.0.0.1/pgvector/pgvector:pg17"]


def test_the_runners_come_from_n8ns_archive_picked_by_their_tag(tmp_path):
    """build-images.sh saves n8n's runners in n8n's archive of the same version: pushed from it by
    their own tag (skopeo picks one image of several), n8n's by its own."""
    v = versions()
    (tmp_path / "docker.n8n.io_n8nio_n8n_2.41.1-r2.tar.zst").write_bytes(b"")
    refs = {"docker.n8n.io/n8nio/n8n:2.41.1": "docker.n8n.io/n8nio/n8n:2.41.1",
            "n8nio/runners:2.41.1": "n8nio/runners:2.41.1"}
    src = registry.sources(refs, tmp_path, registry.archive_repos(v))
    assert set(src.values()) == {"docker.n8n.io_n8nio_n8n_2.41.1-r2.tar.zst"}
    copies = [line.split()[-2:] for line in registry.script("CERT", "KEY", src, refs).splitlines()
              if line.startswith("skopeo copy")]
    assert copies == [
        ["docker-archive:/sbx/images/docker.n8n.io_n8nio_n8n_2.41.1-r2.tar.zst:docker.n8n.io/n8nio/n8n:2.41.1",
         "docker://127.0.0.1/n8nio/n8n:2.41.1"],
        ["docker-archive:/sbx/images/docker.n8n.io_n8nio_n8n_2.41.1-r2.tar.zst:n8nio/runners:2.41.1",
         "docker://127.0.0.1/n8nio/runners:2.41.1"]]
