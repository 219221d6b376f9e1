"""mottivme-host vault-prune: the retention the append-only vault's clients cannot apply, run on
the vault as the REST server's user, the password on restic's stdin only."""

import json
import os
import time

import pytest

from mottivme_host import cli, settings
from tests.helpers import FakeRunner

PASSWORD = "restic-Pa55word"


@pytest.fixture
def vault(tmp_path):
    root = tmp_path / "srv-restic"
    for name in ("n8n-1", "n8n-2"):
        (root / name).mkdir(parents=True)
        (root / name / "config").write_text("x")
    (root / "half-made").mkdir()  # no config: not a repository
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    s = settings.from_dict({"vault": {"path": str(root), "user": "restic-rest-server",
                                      "keep": {"last": 2, "daily": 5, "weekly": 3, "monthly": 6}}})
    return s, root, str(pw)


def snapshots(n: int) -> str:
    return json.dumps([{"id": f"{i:064x}"} for i in range(n)])


def repo(call) -> str:
    return call.kw["env"]["RESTIC_REPOSITORY"].rsplit("/", 1)[1]


def fake_restic(counts: dict, keys: list | None = None) -> FakeRunner:
    """counts: repository -> [snapshots before, after]."""
    fake = FakeRunner()

    def answer(argv, kw):
        name = kw["env"]["RESTIC_REPOSITORY"].rsplit("/", 1)[1]
        args = argv[argv.index("restic") + 1:]
        if "snapshots" in args:
            n = counts[name].pop(0) if len(counts[name]) > 1 else counts[name][0]
            return 0, snapshots(n), ""
        if args[1:3] == ["key", "list"]:
            return 0, json.dumps(keys or [{"id": "aaaa1111" * 8, "current": True}]), ""
        return 0, "", ""

    fake.on(lambda cmd: "restic" in cmd, call=answer)
    return fake


def test_each_repository_is_pruned_with_the_servers_retention_as_the_rest_servers_user(vault, capsys):
    s, root, pw = vault
    fake = fake_restic({"n8n-1": [9, 4], "n8n-2": [3, 3]})
    assert cli.main(["mottivme-host", "vault-prune", pw], runner=fake, settings=s) == 0
    out = capsys.readouterr().out
    assert "n8n-1: 9 snapshots, 4 kept (last 2, daily 5, weekly 3, monthly 6)" in out
    assert "n8n-2: 3 snapshots, 3 kept" in out and "vault-prune: 2 repositories pruned" in out
    forgets = [c for c in fake.calls if "forget" in c.argv]
    assert [repo(c) for c in forgets] == ["n8n-1", "n8n-2"]  # not the directory without a config
    for c in fake.calls:
        assert c.argv[:5] == ["runuser", "-u", "restic-rest-server", "--", "restic"]
        assert c.kw["input"] == PASSWORD + "\n"  # on stdin: never argv, never the environment
        assert PASSWORD not in " ".join(c.argv) and PASSWORD not in json.dumps(c.kw["env"])
    f = forgets[0].argv
    assert f[f.index("forget"):] == ["forget", "--tag", "n8n", "--group-by", "host,tags", "--keep-last", "2",
                                     "--keep-daily", "5", "--keep-weekly", "3", "--keep-monthly", "6", "--prune"]
    assert PASSWORD not in out


def test_a_repository_the_password_does_not_open_is_named_and_the_others_are_still_pruned(vault, capsys):
    s, root, pw = vault
    fake = FakeRunner()
    fake.on(lambda cmd: "snapshots" in cmd,
            call=lambda argv, kw: (1, "", "Fatal: wrong password or no key found\n")
            if kw["env"]["RESTIC_REPOSITORY"].endswith("n8n-1") else (0, snapshots(2), ""))
    fake.on(lambda cmd: "cat config" in cmd, rc=1, stderr="Fatal: wrong password or no key found\n")
    fake.on(lambda cmd: "key list" in cmd, stdout=json.dumps([{"id": "b" * 64, "current": True}]))
    assert cli.main(["mottivme-host", "vault-prune", pw], runner=fake, settings=s) == 1
    out, err = capsys.readouterr()
    assert "n8n-1: NOT pruned: the restic password does not open it" in out
    assert "n8n-2: 2 snapshots, 2 kept" in out
    assert err.strip() == "vault-prune: FAILED 1 of 2 repositories not pruned (n8n-1); 1 pruned"
    assert [repo(c) for c in fake.calls if "forget" in c.argv] == ["n8n-2"]


@pytest.mark.parametrize("old_keys", ["keep", "remove"])
def test_keys_a_rotation_left_are_named_and_removed_only_when_asked(vault, capsys, old_keys):
    s, root, pw = vault
    keys = [{"id": "c" * 64, "current": True}, {"id": "d" * 64, "current": False}]
    fake = fake_restic({"n8n-1": [1], "n8n-2": [1]}, keys)
    assert cli.main(["mottivme-host", "vault-prune", pw, "--old-keys", old_keys], runner=fake, settings=s) == 0
    out = capsys.readouterr().out
    removes = [c for c in fake.calls if "remove" in c.argv]
    if old_keys == "keep":
        assert "1 other key(s) kept (dddddddd: --old-keys remove removes them)" in out and not removes
    else:
        assert "1 other key(s) removed (dddddddd)" in out
        assert [c.argv[-3:] for c in removes] == [["key", "remove", "dddddddd"]] * 2  # never the current one


def test_not_the_vault_or_no_password_file_stops_with_one_line(tmp_path, vault, capsys):
    s, root, pw = vault
    fake = FakeRunner()
    assert cli.main(["mottivme-host", "vault-prune", pw], runner=fake, settings=settings.from_dict({})) != 0
    assert "this server is not the backup vault" in capsys.readouterr().err
    assert cli.main(["mottivme-host", "vault-prune", str(tmp_path / "nope")], runner=fake, settings=s) != 0
    assert "cannot read the password file" in capsys.readouterr().err and not fake.calls


def test_a_snapshot_dated_away_from_its_arrival_stops_that_repositorys_prune(vault, capsys):
    """An intruder with a server's account can add snapshots dated as it likes (restic backup
    --time); the retention keeps the newest per period, so dated fakes would make the prune forget
    the real ones. A snapshot's own time must agree with its file's arrival time."""
    s, root, pw = vault
    now = time.time()
    real = {"id": "a" * 64, "short_id": "aaaaaaaa",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S.123456789Z", time.gmtime(now - 120))}
    fake_snap = {"id": "f" * 64, "short_id": "ffffffff",
                 "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 20 * 86400))}
    for name, snaps in (("n8n-1", [real, fake_snap]), ("n8n-2", [real])):
        (root / name / "snapshots").mkdir()
        for snap in snaps:
            (root / name / "snapshots" / snap["id"]).write_text("x")
            os.utime(root / name / "snapshots" / snap["id"], (now - 60, now - 60))  # arrived a minute ago
    fake = FakeRunner()
    fake.on(lambda cmd: "snapshots" in cmd, call=lambda argv, kw: (
        0, json.dumps([real, fake_snap] if kw["env"]["RESTIC_REPOSITORY"].endswith("n8n-1") else [real]), ""))
    assert cli.main(["mottivme-host", "vault-prune", pw], runner=fake, settings=s) == 1
    out = capsys.readouterr().out
    assert "n8n-1: NOT pruned: snapshot ffffffff says it was made " in out and "refusing to prune" in out
    assert "n8n-2: 1 snapshots, 1 kept" in out  # its times agree: pruned
    assert [repo(c) for c in fake.calls if "forget" in c.argv] == ["n8n-2"]


def test_the_password_file_is_gone_once_read_and_a_failed_key_removal_fails_the_run(vault, capsys):
    s, root, pw = vault
    keys = [{"id": "c" * 64, "current": True}, {"id": "d" * 64, "current": False}]
    fake = fake_restic({"n8n-1": [1], "n8n-2": [1]}, keys)
    fake.on(lambda cmd: "key remove" in cmd, rc=1, stderr="Fatal: permission denied\n")
    assert cli.main(["mottivme-host", "vault-prune", pw, "--old-keys", "remove"], runner=fake, settings=s) == 1
    out = capsys.readouterr().out
    assert "n8n-1: NOT pruned: pruned, but the other key(s) dddddddd could not be removed" in out
    assert not os.path.exists(pw)
