"""images.lock (tasks/images.py): reading it, what stops a run, the pinned references, and the
registry client's token flow. (The client against a real registry: every sandbox writes its lock
with it; the deploy pulling by digest, a moved tag and a lock moved on purpose: the integration
tier's test_deploy.)"""

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tasks import groupdata, images
from tasks.config import ConfigError
from tests.helpers import images_lock, write_images_lock

D1, D2, D3, D4 = ("sha256:" + x * 64 for x in "abcd")


@pytest.mark.parametrize("ref, expected", [
    ("postgres:17.6", ("registry-1.docker.io", "library/postgres", "17.6")),
    ("pgvector/pgvector:pg17", ("registry-1.docker.io", "pgvector/pgvector", "pg17")),
    ("docker.n8n.io/n8nio/n8n:2.41.1", ("docker.n8n.io", "n8nio/n8n", "2.41.1")),
    ("localhost:5000/x:1", ("localhost:5000", "x", "1")),
    ("localhost/x:1", ("localhost", "x", "1")),
])
def test_a_reference_is_read_the_way_docker_reads_it(ref, expected):
    assert images.split(ref) == expected


@pytest.mark.parametrize("ref", ["localhost:5000/x", "postgres", f"postgres:17@{D1}"])
def test_a_reference_without_an_exact_tag_is_refused(ref):
    with pytest.raises(ValueError, match="needs an exact tag"):
        images.split(ref)


def test_group_data_names_every_image_by_an_exact_version():
    for ref in images.locked_refs(groupdata.load()):
        tag = images.split(ref)[2]
        assert tag.count(".") >= 1 and tag[0].isdigit(), f"{ref}: not an exact version tag"


def test_a_run_without_a_lock_or_with_an_image_missing_from_it_stops_with_one_line(tmp_path):
    data = groupdata.load()
    lock = tmp_path / "images.lock"
    [problem] = images.problems(lock, data)
    assert problem.startswith("images.lock is missing: the deploy runs only images pinned by digest")
    assert "`make images-lock`" in problem
    write_images_lock(lock)
    assert images.problems(lock, data) == []
    held = json.loads(lock.read_text())
    del held["images"][data["caddy_image"]]
    lock.write_text(json.dumps(held))
    assert images.problems(lock, data) == [f"images.lock has no digest for {data['caddy_image']}: `make images-add` "
                                           "records what the registry serves now for those, every pinned image "
                                           "staying as it is (check them first)"]


def test_add_pins_only_what_the_lock_lacks_and_keeps_every_pinned_digest():
    """`make images-add` after this repository gained the runners' image: the lock's digests stay,
    even where the registry serves another one now; the missing image comes from the registry."""
    refs = ["caddy:2.10.0", "n8nio/runners:2.41.1"]
    old = {"caddy:2.10.0": D1, "redis:7.4.4": D2}  # redis: no longer in use, leaves
    assert images.with_missing(old, {"n8nio/runners:2.41.1": D3}, refs) == {"caddy:2.10.0": D1,
                                                                            "n8nio/runners:2.41.1": D3}


@pytest.mark.parametrize("text", ["{", '{"images": {"caddy:2.10.0": "sha256:short"}}', '{"other": {}}', "[]"])
def test_a_malformed_lock_is_named(tmp_path, text):
    lock = tmp_path / "images.lock"
    lock.write_text(text)
    with pytest.raises(ConfigError, match="images.lock"):
        images.read(lock)


def test_the_lock_is_written_whole_and_read_back(tmp_path):
    lock = write_images_lock(tmp_path / "images.lock")
    assert images.read(lock) == images_lock()
    assert not list(tmp_path.glob("*.tmp"))


class Hub(BaseHTTPRequestHandler):
    """A registry that, like Docker Hub, answers anonymous reads only with a pull token from its
    auth server (here the same loopback server), and names manifests by digest."""

    tags = {"library/caddy": {"2.10.0": D1}}
    seen: list = []

    def log_message(self, *a):
        pass

    def do_GET(self):  # the token endpoint, and a repository's tag list
        self.seen.append(self.path)
        if self.path.startswith("/v2/"):
            repo = self.path.removeprefix("/v2/").partition("/tags/list")[0]
            if self.headers.get("Authorization") != "Bearer anon-token":
                return self._challenge()
            body = json.dumps({"name": repo, "tags": sorted(self.tags.get(repo, {}))}).encode()
        else:
            body = json.dumps({"token": "anon-token"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):
        repo, _, tag = self.path.removeprefix("/v2/").partition("/manifests/")
        if self.headers.get("Authorization") != "Bearer anon-token":
            return self._challenge()
        if tag in self.tags.get(repo, {}):
            self.send_response(200)
            self.send_header("Docker-Content-Digest", self.tags[repo][tag])
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


    def _challenge(self):
        self.send_response(401)
        host = f"{getattr(self.server, 'scheme', 'http')}://127.0.0.1:{self.server.server_port}"
        self.send_header("WWW-Authenticate", f'Bearer realm="{host}/token",service="registry.test"')
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hub.seen = []
    url = f"http://127.0.0.1:{server.server_port}"
    yield images.Registries({"registry-1.docker.io": url, "docker.n8n.io": url})
    server.shutdown()


def test_the_digest_is_asked_with_an_anonymous_pull_token(hub):
    assert hub.digest("caddy:2.10.0") == D1
    assert Hub.seen == ["/token?service=registry.test&scope=repository%3Alibrary%2Fcaddy%3Apull"]


def test_a_tag_the_registry_does_not_have_is_named(hub):
    with pytest.raises(LookupError, match=r"caddy:9.9.9: its registry \(registry-1.docker.io\) has no such tag"):
        hub.digest("caddy:9.9.9")


@pytest.mark.parametrize("change, expected", [
    ({"supabase_majors": [15, 16, 17, 18]}, "group_data supabase_majors lists 18 without an image in "
                                             "supabase_postgres_images and supabase_scratch_images"),
    ({"caddy_image": "docker.io/library/caddy:2.10.0"}, "group_data: write Docker Hub's images as Docker lists them"),
    ({"redis_image": "redis:7"}, "group_data: redis:7: an image needs an exact version tag"),
    ({"redis_image": "redis"}, "group_data: redis: an image needs an exact tag"),
])
def test_group_data_whose_images_cannot_be_locked_is_named_in_one_line(tmp_path, change, expected):
    data = {**groupdata.load(), **change}
    [problem] = images.problems(write_images_lock(tmp_path / "images.lock"), data)
    assert problem.startswith(expected), problem


def test_a_lock_whose_images_are_not_a_mapping_is_named(tmp_path):
    lock = tmp_path / "images.lock"
    lock.write_text('{"images": []}')
    with pytest.raises(ConfigError, match="its images are not a mapping of image to digest"):
        images.read(lock)


def test_the_image_fact_says_which_tag_is_on_which_digest():
    """What makes a second deploy change nothing: `repo:tag@digest` is there only when that tag is
    on the image the digest names (`docker images --digests` prints a row per tag and digest)."""
    from tasks.facts import DockerImages
    from tasks.operations import image  # noqa: F401 - the operation that reads it

    rows = [f"caddy 2.10.0 {D1}", f"caddy 2.10.0 {D2}",  # one image, pulled by two digests
            f"docker.n8n.io/n8nio/n8n 2.41.1 {D1}", f"postgres <none> {D2}", "<none> <none> <none>",
            "redis 7.4.5 <none>"]  # built or loaded here: no registry's digest
    refs = DockerImages().process(rows)
    assert {f"caddy:2.10.0@{D1}", f"caddy:2.10.0@{D2}", f"docker.n8n.io/n8nio/n8n:2.41.1@{D1}"} <= refs
    assert f"postgres@{D2}" in refs and not any(r.startswith("postgres:") for r in refs)
    assert "redis:7.4.5" in refs and not any(r.startswith("redis:7.4.5@") for r in refs)
    assert not any("<none>" in r for r in refs)


def test_the_ca_given_is_the_one_trusted_whatever_the_environment_names(tmp_path, monkeypatch):
    """requests lets REQUESTS_CA_BUNDLE override a session's own CA: the registry's CA (the
    sandbox's) must win, or every sandbox's lock fails to be written."""
    import ssl

    from sandbox.receivers import make_certs

    certs = make_certs(tmp_path, days=1, name="reg")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certs["cert"], certs["key"])
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.scheme = "https"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    try:
        hub = images.Registries({"registry-1.docker.io": f"https://127.0.0.1:{server.server_port}"}, certs["ca"])
        assert hub.digest("caddy:2.10.0") == D1
    finally:
        server.shutdown()


def test_a_version_asked_for_on_the_command_line_must_be_pinned_too():
    data = groupdata.load()
    lock = images_lock(data)
    argv = ["pyinfra", "-y", "inventory.py", "runbooks/emergency_deploy.py", "--data", "n8n_version=2.42.0"]
    # n8n's image and its task runners' (external mode, group data's): a release is both
    assert images.unpinned_version(lock, data, argv) == [
        "docker.n8n.io/n8nio/n8n:2.42.0, n8nio/runners:2.42.0 have no digest in images.lock: add its version to "
        "n8n_other_versions in group_data/all.py, `make images-add`, then run again"]
    assert images.unpinned_version(lock, dict(data, n8n_runners_mode="internal"), argv) == [
        "docker.n8n.io/n8nio/n8n:2.42.0 has no digest in images.lock: add its version to n8n_other_versions in "
        "group_data/all.py, `make images-add`, then run again"]
    argv[-1] = f"n8n_version={data['n8n_version']}"
    assert images.unpinned_version(lock, data, argv) == []
    assert images.unpinned_version(lock, data, ["pyinfra", "inventory.py", "deploy.py"]) == []


class Source:
    """Where `mottivme update --apply` moves the pins: a copy of group_data and a lock (an inventory
    source's own two answers)."""

    def __init__(self, tmp_path, monkeypatch):
        shutil.copytree(groupdata.DIR, tmp_path / "group_data")
        monkeypatch.setattr(groupdata, "DIR", tmp_path / "group_data")
        self.lock = write_images_lock(tmp_path / "images.lock")

    def image_groups(self):
        return ("n8n_servers",)

    def images_lock(self):
        return self.lock

    def files(self) -> dict:
        return {p.name: p.read_text() for p in [*groupdata.DIR.glob("*.py"), self.lock]}


@pytest.fixture
def n8n_tags(monkeypatch):
    current = groupdata.load("n8n_servers")["n8n_version"]
    major, minor, patch = (int(x) for x in current.split("."))
    newer = f"{major}.{minor + 1}.0"
    monkeypatch.setattr(Hub, "tags", {"n8nio/n8n": {current: D1, newer: D2, "latest": D2},
                                      "n8nio/runners": {current: D3, newer: D4}})
    return current, newer


def test_apply_moves_n8n_version_up_keeps_the_old_one_and_locks_the_new_digest(tmp_path, monkeypatch, hub, n8n_tags,
                                                                                 capsys):
    from mottivme_console import remote

    current, newer = n8n_tags
    source = Source(tmp_path, monkeypatch)
    before = source.files()
    data, lock = groupdata.load("n8n_servers"), images.read(source.lock)
    remote.move_n8n_pins(source, data, lock, hub, newer)
    after = groupdata.load("n8n_servers")
    assert (after["n8n_version"], after["n8n_other_versions"]) == (newer, [current])
    moved = images.read(source.lock)
    # the new release (n8n's image and its runners'); nothing else in the lock moved
    assert moved == {**lock, f"docker.n8n.io/n8nio/n8n:{newer}": D2, f"n8nio/runners:{newer}": D4}
    text = (groupdata.DIR / "all.py").read_text()
    assert text.count("\n") == before["all.py"].count("\n") and "# --- versions" in text  # comments kept
    assert f'n8n_version = "{newer}"  # `--data' in text
    out = capsys.readouterr().out
    assert f"== group_data/all.py: n8n_version = '{newer}' (was '{current}')" in out
    assert f"== images.lock: + docker.n8n.io/n8nio/n8n:{newer} {D2}" in out
    assert f"n8n {current} -> {newer} pinned" in out
    again = source.files()
    remote.move_n8n_pins(source, after, moved, hub, newer)  # a re-run: nothing more to move
    assert source.files() == again and "already pins" in capsys.readouterr().out


@pytest.mark.parametrize("target, expected", [
    ("older", "n8n {target} is not newer than n8n_version {current}: deploy.py never goes back (mottivme emergency-deploy "
              "--n8n-version {target} does, with a snapshot)"),
    ("9.9.9", "the registry does not offer docker.n8n.io/n8nio/n8n:9.9.9, n8nio/runners:9.9.9: `mottivme update` "
              "lists what it does"),
    ("no runners", "the registry does not offer n8nio/runners:{target}: `mottivme update` lists what it does"),
    ("2.x", "--n8n '2.x' is not a version like 2.41.1"),
])
def test_apply_refuses_a_version_it_cannot_move_to_and_writes_nothing(tmp_path, monkeypatch, hub, n8n_tags,
                                                                       target, expected):
    from invoke.exceptions import Exit

    from mottivme_console import remote

    current, newer = n8n_tags
    if target == "no runners":  # n8n's image is out, its runners' not (yet)
        Hub.tags["n8nio/runners"].pop(newer)
    target = {"older": "0.1.0", "no runners": newer}.get(target, target)
    source = Source(tmp_path, monkeypatch)
    before = source.files()
    with pytest.raises(Exit) as e:
        remote.move_n8n_pins(source, groupdata.load("n8n_servers"), images.read(source.lock), hub, target)
    assert e.value.code == 2 and e.value.message == "mottivme update: " + expected.format(current=current, target=target)
    assert source.files() == before


def test_apply_leaves_a_group_data_file_it_cannot_edit_to_the_operator(tmp_path, monkeypatch, hub, n8n_tags):
    from invoke.exceptions import Exit

    from mottivme_console import remote

    _, newer = n8n_tags
    source = Source(tmp_path, monkeypatch)
    path = groupdata.DIR / "all.py"
    path.write_text(path.read_text().replace("n8n_other_versions = []", "n8n_other_versions = list(OTHERS)")
                    .replace("# --- versions", "OTHERS = ()\n# --- versions"))
    before = source.files()
    with pytest.raises(Exit) as e:
        remote.move_n8n_pins(source, groupdata.load("n8n_servers"), images.read(source.lock), hub, newer)
    assert e.value.message == "mottivme update: group_data/all.py: n8n_other_versions is not a plain value there; " \
                              "set it by hand"
    assert source.files() == before  # not even n8n_version, which it could have edited


def test_a_literal_is_replaced_where_it_stands(tmp_path):
    text = 'a = 1\nn8n_other_versions = [\n    "1.0.0",  # ünïcode\n]  # the old ones\nb = "x"\n'
    out = groupdata.with_literal(text, "x.py", "n8n_other_versions", ["2.0.0", "1.0.0"])
    assert out == 'a = 1\nn8n_other_versions = ["2.0.0", "1.0.0"]  # the old ones\nb = "x"\n'
    with pytest.raises(ValueError, match="x.py: c is assigned 0 times at the top level; set it there by hand"):
        groupdata.with_literal(text, "x.py", "c", "1")
    with pytest.raises(ValueError, match="assigned 2 times"):
        groupdata.with_literal(text + "a = 2\n", "x.py", "a", "1")


def test_a_group_without_a_group_data_file_reads_all_py_as_pyinfra_does():
    assert not (groupdata.DIR / "backup_vault.py").exists()
    assert groupdata.load("backup_vault", "monitors") == groupdata.load()
    assert groupdata.load("n8n_servers")["reboot_timeout"] == groupdata.load("backup_vault")["reboot_timeout"]
