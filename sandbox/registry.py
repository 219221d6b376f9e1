"""The sandbox's container registry: the CNCF distribution server (Debian's `docker-registry`) on
the sandbox's services server, over HTTPS with a certificate of the sandbox's own CA, holding the
stand-in images under their production names (`docker.n8n.io/n8nio/n8n:2.41.1`, `postgres:17.6`,
`pgvector/pgvector:0.8.0-pg17`, ...).

A sandbox server pulls exactly as a real one does: its /etc/hosts sends the registries' names
(`registry-1.docker.io` for Docker Hub, `docker.n8n.io`) to the services server, and the sandbox's
CA is in its trust store (sandbox/core.py does both when it starts a server). Production code
knows nothing of this. Docker Hub's name needs no other trick: with no auth challenge from
`/v2/`, Docker asks no token server.

The images get there with `skopeo copy` from the archives the sandbox builds (mounted read-only
on the services server at /sbx/images), over loopback on that server.
"""

from __future__ import annotations

import glob
import subprocess
from pathlib import Path

from tasks.images import split, version_refs

CONFIG = "/etc/docker/registry/config.yml"
UNIT = "docker-registry.service"  # Debian's unit, run as the user docker-registry


def archive_pattern(archive_dir: str, ref: str) -> str:
    """The glob of `ref`'s image archives in `archive_dir` (build-images.sh's `docker save | zstd`
    files, named `<ref with / and : as _>-rN[-on-BASE].tar.zst`). The `-r` after the tag keeps
    2.41.1 from matching 2.41.10's archives."""
    name = ref.replace("/", "_").replace(":", "_")
    return str(Path(glob.escape(archive_dir)) / f"{glob.escape(name)}-r*.tar.zst")


def stand_in(ref: str) -> str:
    """The stand-in build-images.sh builds for `ref`: Debian's package of that major version,
    named `repo:MAJOR` (`postgres:17.6` -> `postgres:17`). A new minor tag in group data is the
    same stand-in under another name: no rebuild."""
    name, _, tag = ref.rpartition(":")
    return f"{name}:{tag.split('.')[0]}"


def wanted(v: dict) -> dict[str, str]:
    """Every image a sandbox server pulls, from the group data `v` (sandbox/core.versions()) ->
    the stand-in image it is (the name build-images.sh builds it under; n8n's are built at their
    exact versions, from npm)."""
    pg = stand_in(v["postgres_image"])
    refs = {r: r for x in (v["n8n_version"], *v["n8n_other_versions"]) for r in version_refs(v, x)}
    refs.update({v["postgres_image"]: pg, v["redis_image"]: stand_in(v["redis_image"]),
                 v["caddy_image"]: stand_in(v["caddy_image"])})
    # the backup's pg_dump and the restore's scratch server for the Supabase stand-in's major
    # version, the stack's: the postgres stand-in (it has pgvector) under those names too
    for m in v["supabase_majors"]:
        if m != v["postgres_major"]:
            raise RuntimeError(f"supabase_majors: the sandbox builds PostgreSQL {v['postgres_major']} only, not {m}")
        refs.update({v["supabase_postgres_images"][m]: pg, v["supabase_scratch_images"][m]: pg})
    return refs


def archive_of(built: str, repos: dict[str, str]) -> str:
    """The name whose archive holds the stand-in `built`: n8n's runners are saved with n8n's image
    of the same version (`repos`: {runners repo: n8n repo})."""
    name, _, tag = built.rpartition(":")
    return f"{repos[name]}:{tag}" if name in repos else built


def sources(refs: dict[str, str], images: Path, repos: dict[str, str] | None = None) -> dict[str, str]:
    """The archive in `images` each reference is pushed from: its stand-in's (`wanted`), the last
    by name (a newer recipe revision sorts later)."""
    out = {}
    for ref, built in refs.items():
        found = sorted(glob.glob(archive_pattern(str(images), archive_of(built, repos or {}))))
        if not found:
            raise RuntimeError(f"no image archive for {built} in {images} (python -m sandbox images)")
        out[ref] = Path(found[-1]).name
    return out


def names(refs: list[str]) -> list[str]:
    """The registry host names the servers must resolve to the services server."""
    return sorted({split(r)[0] for r in refs})


def _config() -> str:
    return ("version: 0.1\n"
            "log:\n  level: warn\n"
            "storage:\n  filesystem:\n    rootdirectory: /var/lib/docker-registry\n  delete:\n    enabled: true\n"
            "http:\n  addr: :443\n  tls:\n    certificate: /etc/docker/registry/https.pem\n"
            "    key: /etc/docker/registry/https-key.pem\n"
            "  headers:\n    X-Content-Type-Options: [nosniff]\n")


def script(cert: str, key: str, sources_: dict[str, str], built: dict[str, str] | None = None) -> str:
    """The shell script that installs, configures and fills the registry on the services server
    (`sources_`: {ref: archive}; `built`: {ref: the stand-in's name in its archive, which may hold
    more than one image: n8n's and its runners'})."""
    built = built or {}
    s = ("set -e\numask 077\n"
         "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry skopeo "
         ">/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
         "--no-install-recommends docker-registry skopeo >/dev/null; }\n"
         "install -d -m 755 /etc/systemd/system/docker-registry.service.d\n"
         # port 443 as the unprivileged user Debian's unit runs it as
         "printf '[Service]\\nAmbientCapabilities=CAP_NET_BIND_SERVICE\\n' "
         "> /etc/systemd/system/docker-registry.service.d/sandbox.conf\n"
         "chmod 644 /etc/systemd/system/docker-registry.service.d/sandbox.conf\n")
    for path, text, mode in ((CONFIG, _config(), "644"), ("/etc/docker/registry/https.pem", cert, "644"),
                             ("/etc/docker/registry/https-key.pem", key, "640")):
        s += f"cat > {path} <<'SBX_EOF'\n{text.rstrip()}\nSBX_EOF\nchown root:docker-registry {path}\nchmod {mode} {path}\n"
    s += (f"systemctl daemon-reload\nsystemctl restart {UNIT}\n"
          "for i in $(seq 100); do curl -skf -o /dev/null https://127.0.0.1/v2/ && break; sleep 0.1; done\n"
          f"curl -skf -o /dev/null https://127.0.0.1/v2/ || {{ echo 'the registry does not answer (journalctl -u {UNIT})'; exit 1; }}\n"
          "cd /tmp\n")
    pushed: dict[tuple[str, str], str] = {}
    for ref, archive in sources_.items():
        _, repo, tag = split(ref)
        dest = f"docker://127.0.0.1/{repo}:{tag}"
        image = built.get(ref, ref)
        # named: an archive may hold more than one image (skopeo picks it by the tag it was saved under)
        src = f"docker-archive:/sbx/images/{archive}:{image}"
        # an image already pushed under another name: copied inside the registry (its blobs are there)
        src = pushed.get((archive, image)) or src
        s += f"skopeo copy -q --src-tls-verify=false --dest-tls-verify=false {src} {dest}\n"
        pushed.setdefault((archive, image), dest)
    return s


def archive_repos(v: dict) -> dict[str, str]:
    """{runners repo: n8n repo}: build-images.sh saves n8n's runners with n8n's image (archive_of)."""
    return {v["n8n_runners_image_repo"]: v["n8n_image_repo"]}


def set_up(ssh_args: list[str], h: dict, certs: dict, refs: dict[str, str], images: Path,
           repos: dict[str, str] | None = None) -> dict:
    """Install the registry on the services server `h` and push `refs` into it; the record
    hosts.json keeps: the names it answers for and where each image came from."""
    src = sources(refs, images, repos)
    r = subprocess.run(ssh_args + ["bash", "-s"], input=script(Path(certs["cert"]).read_text(),
                                                               Path(certs["key"]).read_text(), src, refs),
                       text=True, capture_output=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"the registry on {h['name']}: {(r.stderr or r.stdout).strip()[-500:]}")
    return {"names": names(refs), "images": src}
