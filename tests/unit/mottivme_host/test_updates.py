"""`mottivme-host updates` (what a server would take in the monthly update) and the console's
reading of it (`mottivme update`, mottivme_console/remote.py)."""

import json

from mottivme_console import remote
from mottivme_host import settings, updates
from tests.helpers import FakeRunner

D_CADDY, D_OTHER = "sha256:" + "c" * 64, "sha256:" + "e" * 64
# `apt-get -s dist-upgrade` as Debian 13 prints it: upgrades, a new package (the kernel), Conf lines
APT = """Inst libssl3t64 [3.5.1-1] (3.5.4-1~deb13u1 Debian-Security:13/stable-security [amd64])
Inst tzdata [2025b-4] (2025b-4+deb13u1 Debian:13.1/stable [all])
Inst linux-image-6.12.48+deb13-amd64 (6.12.48-1 Debian:13.1/stable [amd64])
Conf libssl3t64 (3.5.4-1~deb13u1 Debian-Security:13/stable-security [amd64])
Conf tzdata (2025b-4+deb13u1 Debian:13.1/stable [all])
"""


def test_pending_packages_are_read_from_apts_simulation(tmp_path):
    fake = FakeRunner()
    fake.on("apt-get -s", stdout=APT)
    assert updates.packages(fake) == [
        {"name": "libssl3t64", "installed": "3.5.1-1", "candidate": "3.5.4-1~deb13u1", "security": True},
        {"name": "tzdata", "installed": "2025b-4", "candidate": "2025b-4+deb13u1", "security": False},
        {"name": "linux-image-6.12.48+deb13-amd64", "installed": "", "candidate": "6.12.48-1", "security": False}]
    # a simulation: no lock taken, nothing installed
    assert fake.ran("apt-get -s -o Debug::NoLocking=1 -qq dist-upgrade")


def test_each_container_is_reported_with_its_images_digests(tmp_path, monkeypatch):
    monkeypatch.setattr(updates.shutil, "which", lambda name: f"/usr/bin/{name}")
    fake = FakeRunner()
    fake.on("docker ps -a", stdout=f"caddy\tcaddy:2.10.0@{D_CADDY}\tc1\nn8n\tdocker.n8n.io/n8nio/n8n:2.41.1\tc2\n")
    fake.on("docker inspect --format {{.Image}} c1", stdout="sha256:img1\n")
    fake.on("docker inspect --format {{.Image}} c2", stdout="sha256:img2\n")
    fake.on("docker image inspect --format {{json .RepoDigests}} sha256:img1", stdout=f'["caddy@{D_CADDY}"]\n')
    fake.on("docker image inspect --format {{json .RepoDigests}} sha256:img2", stdout="[]\n")
    s = settings.from_dict({"stack_dir": str(tmp_path)})
    assert updates.containers(s, fake) == [
        {"service": "caddy", "image": f"caddy:2.10.0@{D_CADDY}", "digests": [f"caddy@{D_CADDY}"]},
        {"service": "n8n", "image": "docker.n8n.io/n8nio/n8n:2.41.1", "digests": []}]


def test_a_required_reboot_names_the_packages_that_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(updates, "REBOOT", str(tmp_path / "reboot-required"))
    assert updates.reboot() == {"required": False, "packages": []}
    (tmp_path / "reboot-required").write_text("*** System restart required ***\n")
    (tmp_path / "reboot-required.pkgs").write_text("linux-image-amd64\nlibc6\nlinux-image-amd64\n")
    assert updates.reboot() == {"required": True, "packages": ["libc6", "linux-image-amd64"]}
    json.dumps(updates.reboot())  # what the console reads


def test_the_console_says_what_waits_on_a_server_and_its_next_step(capsys):
    lock = {"caddy:2.10.0": D_CADDY, "docker.n8n.io/n8nio/n8n:2.41.1": "sha256:" + "a" * 64}
    report = {"containers": [
        {"service": "caddy", "image": f"caddy:2.10.0@{D_CADDY}", "digests": [f"caddy@{D_CADDY}"]},
        {"service": "n8n", "image": "docker.n8n.io/n8nio/n8n:2.41.1", "digests": [f"docker.n8n.io/n8nio/n8n@{D_OTHER}"]},
        {"service": "postgres", "image": "postgres:16", "digests": []}],
        "packages": [{"name": "libssl3t64", "installed": "1", "candidate": "2", "security": True}],
        "package_lists_age_hours": 72.0, "reboot": {"required": True, "packages": ["linux-image-amd64"]}}
    assert remote._server_updates("n8n1", report, lock) == 3
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ok    caddy: caddy:2.10.0 as images.lock pins it"
    assert out[1] == (f"UPDATE  n8n: runs docker.n8n.io/n8nio/n8n:2.41.1 as docker.n8n.io/n8nio/n8n@{D_OTHER}; "
                      f"images.lock pins {lock['docker.n8n.io/n8nio/n8n:2.41.1']} -- fix: mottivme deploy")
    assert out[2] == "WARN  postgres: runs postgres:16, which images.lock does not pin -- fix: mottivme deploy"
    assert out[3].startswith("UPDATE  packages: 1 pending (1 security): libssl3t64 (package lists 72 h old) -- fix: "
                             "mottivme ssh n8n1 --command 'apt-get update && apt-get dist-upgrade'")
    assert out[4] == ("UPDATE  reboot: required (by linux-image-amd64) -- fix: in a maintenance window: "
                      "mottivme ssh n8n1 --command 'reboot'")


def test_package_lists_never_refreshed_and_a_failing_apt_are_said_not_crashed(capsys):
    report = {"containers": [], "packages": "E: dpkg was interrupted, you must manually run 'dpkg --configure -a'",
              "package_lists_age_hours": None, "reboot": {"required": False, "packages": []}}
    assert remote._server_updates("n8n1", report, {}, sudo="sudo ") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("FAIL  packages: apt-get -s failed: E: dpkg was interrupted, you must manually run 'dpkg "
                      "--configure -a' -- fix: mottivme ssh n8n1, then sudo apt-get -f install")
    report["packages"] = []
    remote._server_updates("n8n1", report, {}, sudo="sudo ")
    assert capsys.readouterr().out.splitlines()[0] == (
        "ok    packages: none pending (package lists: no successful refresh on record)")


def test_apt_failing_is_reported_with_its_last_line():
    fake = FakeRunner()
    fake.on("apt-get -s", rc=100, stderr="W: x\nE: dpkg was interrupted\n")
    assert updates.packages(fake) == "E: dpkg was interrupted"


def test_the_lists_age_is_the_last_successful_refresh(tmp_path, monkeypatch):
    stamp = tmp_path / "update-success-stamp"
    monkeypatch.setattr(updates, "UPDATE_STAMP", str(stamp))
    assert updates.lists_age_hours() is None
    stamp.write_text("")
    import os
    os.utime(stamp, (1000.0, 1000.0))
    assert updates.lists_age_hours(now=1000.0 + 3 * 3600) == 3.0


def test_a_server_without_docker_has_no_containers_to_report(tmp_path, monkeypatch):
    """The vault and the monitor run no Docker: their packages and reboot still count."""
    monkeypatch.setattr(updates.shutil, "which", lambda name: None)
    fake = FakeRunner()
    assert updates.containers(settings.from_dict({"stack_dir": str(tmp_path)}), fake) == []
    assert not fake.calls
