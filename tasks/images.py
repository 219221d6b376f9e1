"""Images pinned by digest (images.lock): what a deploy runs is what the lock names, byte for byte.

group_data names each image by an exact version tag (`postgres:17.6`); images.lock adds the
digest its registry served when someone last looked on purpose. The deploy pulls and runs
`postgres:17.6@sha256:...`: Docker checks the bits against the digest, so an image re-tagged in
the registry (by upstream or by an attacker) never reaches a server until the lock moves.

    python -m tasks.images check   what the registries serve now against the lock (exit 1: moved)
    python -m tasks.images lock    write the lock from what the registries serve now
    python -m tasks.images add     add only the images the lock lacks (e.g. a new n8n version's,
                                   or its runners' image); every pinned one stays as it is

The lock is read before any host is contacted; an image it lacks stops the run with one line.
The registries are asked over HTTPS with their anonymous pull tokens (Docker's Registry HTTP
API V2), from this machine: a bare server needs no Docker for it. The inventory source says
where the lock lives (production: images.lock in the repository; the sandbox: its state
directory, written from its own registry) and may send a registry's name to another address.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from pathlib import Path

from tasks import groupdata
from tasks.config import ConfigError

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
DOCKER_HUB = "registry-1.docker.io"
ACCEPT = ", ".join((  # a multi-platform image's index first: Docker picks the platform from it
    "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"))


def version_refs(data, version: str) -> list[str]:
    """The images of one n8n release: n8n's, and its task runners' (same version) in external mode."""
    runners = [f"{data['n8n_runners_image_repo']}:{version}"] if data["n8n_runners_mode"] == "external" else []
    return [f"{data['n8n_image_repo']}:{version}", *runners]


def locked_refs(data) -> list[str]:
    """The images the lock holds, from group data: the stack's own, n8n's (and its runners') at
    `n8n_version` and each of `n8n_other_versions` (an emergency deploy's), and the backup's and the
    restore's for each of the Supabase database's major versions (`supabase_majors`)."""
    n8n = [r for v in (data["n8n_version"], *data["n8n_other_versions"]) for r in version_refs(data, v)]
    supabase = [x for m in data["supabase_majors"]
                for x in (data["supabase_postgres_images"][m], data["supabase_scratch_images"][m])]
    return list(dict.fromkeys([data["postgres_image"], data["redis_image"], data["caddy_image"], *n8n, *supabase]))


def split(ref: str) -> tuple[str, str, str]:
    """`ref` as (registry host, repository, tag) the way Docker reads it: a first component with a
    dot or a port (or `localhost`) is a registry; anything else is Docker Hub, whose one-word
    names live under `library/`."""
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag or "@" in ref:
        raise ValueError(f"{ref}: an image needs an exact tag and no digest here (e.g. postgres:17.6)")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, tag
    return DOCKER_HUB, name if "/" in name else f"library/{name}", tag


def read(path: Path) -> dict[str, str]:
    """{image: digest} from the lock at `path`; ConfigError (one line) if it is missing or malformed."""
    fix = "`make images-lock` writes it from what the registries serve now (check those images first)"
    try:
        images = json.loads(path.read_text())["images"]
    except FileNotFoundError:
        raise ConfigError(f"{path.name} is missing: the deploy runs only images pinned by digest; {fix}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path} is not an images lock ({e}): {fix}") from None
    if not isinstance(images, dict):
        raise ConfigError(f"{path}: its images are not a mapping of image to digest: {fix}")
    bad = [k for k, v in images.items() if not isinstance(v, str) or not DIGEST.fullmatch(v)]
    if bad:
        raise ConfigError(f"{path}: not a sha256 digest for {', '.join(bad)}: {fix}")
    return images


def problems(path: Path, data) -> list[str]:
    """What stops a run: group data whose images cannot be locked, a lock that is missing,
    malformed, or lacks one of the images."""
    no_images = [m for m in data["supabase_majors"]
                 if m not in data["supabase_postgres_images"] or m not in data["supabase_scratch_images"]]
    if no_images:
        return [f"group_data supabase_majors lists {', '.join(map(str, no_images))} without an image in "
                "supabase_postgres_images and supabase_scratch_images: add both (exact tags), then `make images-add`"]
    full = [r for r in locked_refs(data) if r.split("/")[0] in ("docker.io", "index.docker.io")]
    if full:
        return [f"group_data: write Docker Hub's images as Docker lists them, without docker.io/ (e.g. postgres:17.6, "
                f"pgvector/pgvector:0.8.0-pg17): {', '.join(full)}"]
    try:
        bad_tags = [r for r in locked_refs(data) if not _exact(r)]
    except ValueError as e:
        return [f"group_data: {e}"]
    if bad_tags:
        return [f"group_data: {', '.join(bad_tags)}: an image needs an exact version tag, not a floating one"]
    try:
        lock = read(path)
    except ConfigError as e:
        return [str(e)]
    missing = [r for r in locked_refs(data) if r not in lock]
    if missing:
        return [f"{path.name} has no digest for {', '.join(missing)}: `make images-add` records what the "
                "registry serves now for those, every pinned image staying as it is (check them first)"]
    return []


def unpinned_version(lock: dict[str, str], data, argv: list[str] | None = None) -> list[str]:
    """`--data n8n_version=X` on pyinfra's command line: X must be in the lock too."""
    from runbooks._args import given

    version = given(argv).get("n8n_version", "").strip()
    missing = [r for r in version_refs(data, version) if r not in lock] if version else []
    if not missing:
        return []
    return [f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no digest in images.lock: add its version "
            "to n8n_other_versions in group_data/all.py, `make images-add`, then run again"]


def _exact(ref: str) -> bool:
    """An exact version tag (`17.6`, `0.8.0-pg17`, `2.41.1`), not a floating one (`17`, `latest`)."""
    return bool(re.fullmatch(r"\d+\.\d+(\.\d+)?([-.+][\w.]+)?", split(ref)[2]))


class Registries:
    """Docker's Registry HTTP API V2, read-only: the digest a registry serves for a tag now.

    `endpoints` sends a registry name to another base URL (the sandbox: its registry through a
    forwarded port); `ca`: a CA file to trust instead of the system's (None: the system's)."""

    def __init__(self, endpoints: dict[str, str] | None = None, ca: str | None = None, timeout: float = 20):
        import requests

        self.http = requests.Session()
        # per request: a session's own `verify` loses to REQUESTS_CA_BUNDLE in the environment
        self.verify = ca or True
        self.endpoints = endpoints or {}
        self.timeout = timeout

    def _ask(self, method: str, url: str, repo: str, headers: dict | None = None):
        headers = dict(headers or {})
        r = self.http.request(method, url, headers=headers, timeout=self.timeout, verify=self.verify)
        if r.status_code == 401:  # an anonymous pull token, from where the registry says (Docker Hub: auth.docker.io)
            headers["Authorization"] = f"Bearer {self._token(r.headers.get('WWW-Authenticate', ''), repo)}"
            r = self.http.request(method, url, headers=headers, timeout=self.timeout, verify=self.verify)
        return r

    def tags(self, ref: str) -> list[str]:
        """Every tag of `ref`'s repository (the registry's tag list, page by page)."""
        host, repo, _ = split(ref)
        base = self.endpoints.get(host, f"https://{host}")
        url, out = f"{base}/v2/{repo}/tags/list?n=1000", []
        while url:
            r = self._ask("GET", url, repo)
            r.raise_for_status()
            out += r.json().get("tags") or []
            nxt = r.links.get("next", {}).get("url")  # Link: </v2/...?last=x&n=1000>; rel="next"
            url = (nxt if nxt.startswith("http") else base + nxt) if nxt else ""
        return out

    def digest(self, ref: str) -> str:
        host, repo, tag = split(ref)
        url = f"{self.endpoints.get(host, f'https://{host}')}/v2/{repo}/manifests/{tag}"
        r = self._ask("HEAD", url, repo, {"Accept": ACCEPT})
        if r.status_code == 404:
            raise LookupError(f"{ref}: its registry ({host}) has no such tag")
        r.raise_for_status()
        digest = r.headers.get("Docker-Content-Digest", "")
        if not DIGEST.fullmatch(digest):
            raise LookupError(f"{ref}: {host} answered without a sha256 digest")
        return digest

    def _token(self, challenge: str, repo: str) -> str:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if not challenge.lower().startswith("bearer ") or "realm" not in params:
            raise LookupError(f"{repo}: the registry asks for credentials this command does not have ({challenge})")
        realm = params.pop("realm")
        params.setdefault("scope", f"repository:{repo}:pull")
        r = self.http.get(realm, params=params, timeout=self.timeout, verify=self.verify)
        r.raise_for_status()
        body = r.json()
        return body.get("token") or body["access_token"]


def current(refs: list[str], registries: Registries) -> dict[str, str]:
    return {ref: registries.digest(ref) for ref in refs}


def write(path: Path, images: dict[str, str]) -> None:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
    text = json.dumps({"written": now, "by": "python -m tasks.images lock", "images": dict(sorted(images.items()))},
                      indent=2)
    groupdata.write_text(path, text + "\n")


def main(argv: list[str] | None = None) -> int:
    from inventory_sources import choose

    p = argparse.ArgumentParser(prog="python -m tasks.images", description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=("check", "lock", "add"))
    a = p.parse_args(argv)
    source = choose()
    path, (endpoints, ca) = source.images_lock(), source.registries()
    refs = locked_refs(source.image_data())
    try:
        old = read(path)
    except ConfigError:
        old = {}
    try:  # `add` asks only for what the lock lacks
        now = current([r for r in refs if a.action != "add" or r not in old], Registries(endpoints, ca))
    except Exception as e:  # noqa: BLE001 - any network or registry failure: one line
        print(f"images: cannot ask the registries: {e}", file=sys.stderr)
        return 2
    if a.action == "add":
        return _add(path, old, now, refs)
    moved = {r: d for r, d in now.items() if old.get(r) != d}
    for ref in refs:
        state = "unchanged" if ref not in moved else ("new" if ref not in old else f"moved from {old[ref]}")
        print(f"{ref:<40} {now[ref]}  {state}")
    if a.action == "check":
        if moved:
            print(f"images: {len(moved)} image(s) differ from {path.name}: if the change is wanted, "
                  "`make images-lock`, then deploy", file=sys.stderr)
        return 1 if moved else 0
    if now == old:  # nothing to commit: the file (and its date) stay as they are
        print(f"images: {path} already holds these")
        return 0
    write(path, now)  # exactly the images in use: one no longer in group data leaves the lock
    dropped = len(set(old) - set(now))
    print(f"images: {path} written ({len(moved)} changed, {dropped} no longer used); the next deploy runs these")
    return 0


def with_missing(old: dict[str, str], now: dict[str, str], refs: list[str]) -> dict[str, str]:
    """The lock `add` writes: each image in use (`refs`) as `old` pins it, or, when `old` lacks
    it, as the registries serve it `now`."""
    return {r: old.get(r) or now[r] for r in refs}


def _add(path: Path, old: dict[str, str], now: dict[str, str], refs: list[str]) -> int:
    for ref in now:
        print(f"{ref:<40} {now[ref]}  new")
    if not now:
        print(f"images: {path} holds every image in use already")
        return 0
    write(path, with_missing(old, now, refs))
    print(f"images: {path} written ({len(now)} added, every pinned image as it was); the next deploy runs these")
    return 0


if __name__ == "__main__":
    sys.exit(main())
