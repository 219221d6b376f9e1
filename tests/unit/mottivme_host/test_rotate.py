"""n8n-rotate-secrets (mottivme_host/rotate.py) driven by the recording fake and a small stand-in
for restic's keys: each new value applied, verified, kept or rolled back; no secret in any argv;
restic never left with a repository on a password that is gone."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os

import pytest

from mottivme_host import cli, common, envfile, secret_age, settings
from tests.helpers import Call, FakeRunner, libpq_url, posted

OLD_PG, NEW_PG = "old-pg-pass", "new'pg-pass"  # a quote: the SQL literal must double it
OLD_RESTIC, NEW_RESTIC = "old-restic-pass", "new-restic-pass"
LOCAL = "/var/backups/n8n/restic"
VAULT = "rest:https://tst-1@vault:8000/tst-1/"  # the vault: append-only (no key can be removed there)
VAULT_PASSWORD = "vault-Acc0unt-pw"
BUCKET = "s3:http://bucket.example.test/n8n"
ENV = (f"N8N_VERSION=2.41.1\nN8N_ENCRYPTION_KEY=k3y\nPOSTGRES_PASSWORD={OLD_PG}\n"
       f"DB_POSTGRESDB_PASSWORD={OLD_PG}\nREDIS_PASSWORD=r3dis\n")
SECRETS = (OLD_PG, NEW_PG, OLD_RESTIC, NEW_RESTIC)




@pytest.fixture
def fake(monkeypatch):
    f = FakeRunner()
    monkeypatch.setattr(common, "ignore_interrupts", lambda: f.calls.append(Call(["<ignore interrupts>"])))
    return f


@pytest.fixture
def host(tmp_path):
    stack, etc = tmp_path / "stack", tmp_path / "etc"
    stack.mkdir()
    etc.mkdir()
    env = stack / ".env"
    env.write_text(ENV)
    env.chmod(0o600)
    pw = etc / "restic-password"
    pw.write_text(OLD_RESTIC + "\n")
    pw.chmod(0o600)
    (etc / "vault-password").write_text(VAULT_PASSWORD + "\n")
    s = settings.from_dict({
        "stack_dir": str(stack), "n8n_host": "n8n.test", "ready_timeout": 20, "run_dir": str(tmp_path / "run"),
        "secret_ages": str(tmp_path / "lib" / "secret-ages.json"),
        "backup": {"local_repository": LOCAL, "offsite_repositories": [VAULT, BUCKET], "password_file": str(pw),
                   "append_only_repositories": [VAULT], "vault_password_file": str(etc / "vault-password"),
                   "vault_cert_file": "/etc/mottivme/vault-cert.pem",
                   "env": {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s3cret"}},
    })
    return s, env, pw


def values_file(tmp_path, **values) -> str:
    f = tmp_path / "rotate.env"
    f.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    f.chmod(0o600)
    return str(f)


def rotate(fake, s, path):
    return cli.main(["n8n-rotate-secrets", path], runner=fake, settings=s)


def assert_no_secret_in_argv(fake):
    for c in fake.calls:
        for secret in SECRETS:
            assert secret not in c.cmd, f"a password in `{c.cmd}`"


# --- a stand-in for PostgreSQL's role password ------------------------------------------------
class Postgres:
    """The role's password as `alter role` (psql on stdin) sets it; the connection test from the
    stack's network (docker run ... psql -h postgres) succeeds with the password in force —
    or with any password (`trust`: the old one still works)."""

    def __init__(self, fake: FakeRunner, env, password=OLD_PG, trust=False, up_rc=0, ready=True, fail_set=False):
        self.env, self.password, self.trust, self.fail_set = env, password, trust, fail_set
        self.statements: list[str] = []
        self.before_modes: list[int] = []
        fake.on("exec -T postgres psql", call=self.psql)
        fake.on("docker run --rm --network n8n_backend", call=self.connect)
        fake.on("up -d", rc=up_rc)
        fake.on("healthz/readiness", stdout="200" if ready else "502")

    def psql(self, argv, kw):
        before = os.path.join(os.path.dirname(self.env), ".env.before-rotation")
        self.before_modes.append(os.stat(before).st_mode & 0o777)
        sql = kw["input"]
        self.statements.append(sql)
        if self.fail_set:
            return 1, "", "ERROR: something\n"
        prefix = 'alter role "n8n" password \''
        assert sql.startswith(prefix) and sql.endswith("';\n"), sql
        self.password = sql[len(prefix):-3].replace("''", "'")
        return None

    def connect(self, argv, kw):
        assert argv[:5] == ["docker", "run", "--rm", "--network", "n8n_backend"]
        assert argv[-4:] == ["postgres:17", "psql", "-Atc", "select 1"]
        # as n8n connects: host postgres, user n8n; the password only in a 0600 pgpass file
        assert kw["env"] == {"PGHOST": "postgres", "PGPORT": "5432", "PGUSER": "n8n", "PGDATABASE": "postgres"}
        ok = self.trust or libpq_url(Call(argv, kw)) == f"postgresql://n8n:{self.password}@postgres:5432/postgres"
        return (0, "1\n", "") if ok else (2, "", "psql: error: password authentication failed\n")


# --- a stand-in for restic's repositories and keys ----------------------------------------------
NO_REPO = ("Fatal: unable to open config file: stat /srv/restic/tst-1/config: no such file or directory\n"
           "Is there a repository at the following location?\n")
DOWN = ("Fatal: unable to open repository at rest:https://tst-1:***@vault:8000/tst-1/: Get "
        "\"https://vault:8000/tst-1/config\": dial tcp 10.0.0.5:8000: connect: connection refused\n")


def repo_of(kw: dict) -> str:
    return kw["env"]["RESTIC_REPOSITORY"].replace(f":{VAULT_PASSWORD}@", "@")


KEPT_IN_VAULT = (f"; the old key removed, except from {VAULT} (append-only: `mottivme vault-prune --old-keys remove` "
                 "removes it there)\n")


class Restic:
    """url -> a list of keys ({"id", "password"}), or "missing" (no repository there yet), or "down"."""

    def __init__(self, fake: FakeRunner, repos: dict):
        self.repos, self.n = repos, 0
        fake.on(lambda cmd: cmd.startswith("restic "), call=self)

    def __call__(self, argv, kw):
        env = kw["env"]
        url = env["RESTIC_REPOSITORY"].replace(f":{VAULT_PASSWORD}@", "@")
        args = argv[1:]
        if args[:1] == ["--cacert"]:
            assert url == VAULT and env["RESTIC_REPOSITORY"] != VAULT  # the password: in the environment only
            args = args[2:]
        assert not (url == VAULT and args[:2] == ["key", "remove"]), "a key removal on the append-only vault"
        assert env["AWS_SECRET_ACCESS_KEY"] == "s3cret"
        with open(env["RESTIC_PASSWORD_FILE"]) as f:
            password = f.read().rstrip("\n")
        state = self.repos[url]
        if state == "missing":
            return 1, "", NO_REPO
        if state == "down":
            return 1, "", DOWN
        mine = next((k for k in state if k["password"] == password), None)
        if mine is None:
            return 1, "", "Fatal: wrong password or no key found\n"
        if args[:2] == ["cat", "config"]:
            return 0, '{"version": 2}', ""
        if args[:2] == ["key", "add"]:
            with open(args[args.index("--new-password-file") + 1]) as f:
                new = f.read().rstrip("\n")
            self.n += 1
            state.append({"id": f"new{self.n:05d}", "password": new})
            return 0, "", ""
        if args[:3] == ["key", "list", "--json"]:
            return 0, json.dumps([{"current": k is mine, "id": k["id"], "userName": "root"} for k in state]), ""
        if args[:2] == ["key", "remove"]:
            if args[2] == mine["id"]:
                return 1, "", "Fatal: refusing to remove key currently used to access repository\n"
            state[:] = [k for k in state if k["id"] != args[2]]
            return 0, "", ""
        raise AssertionError(f"unexpected restic {args}")

    def passwords(self, url):
        return [k["password"] for k in self.repos[url]]


def old_keys():
    return [{"id": "old00001", "password": OLD_RESTIC}]


# --- N8N_ENCRYPTION_KEY, the values file ----------------------------------------------------------
def test_the_encryption_key_is_refused(tmp_path, host, fake, capsys):
    s, env, pw = host
    path = values_file(tmp_path, N8N_ENCRYPTION_KEY="x" * 64, POSTGRES_PASSWORD=NEW_PG)
    assert rotate(fake, s, path) == 1
    assert capsys.readouterr().err == ("n8n-rotate-secrets: FAILED N8N_ENCRYPTION_KEY is never rotated: "
                                       "n8n encrypts every credential with it\n")
    assert not os.path.exists(path)
    assert [c.cmd for c in fake.calls] == ["<ignore interrupts>"]
    assert env.read_text() == ENV


def test_interrupts_are_ignored_from_the_start_and_the_values_file_goes(tmp_path, host, fake, capsys):
    s, env, pw = host
    Postgres(fake, env)
    path = values_file(tmp_path, POSTGRES_PASSWORD=NEW_PG)
    assert rotate(fake, s, path) == 0
    assert fake.commands()[0] == "<ignore interrupts>"
    assert not os.path.exists(path)


# --- postgres ------------------------------------------------------------------------------------
def test_postgres_rotation_applies_verifies_and_keeps_the_new_password(tmp_path, host, fake, capsys):
    s, env, pw = host
    pg = Postgres(fake, env)
    assert rotate(fake, s, values_file(tmp_path, POSTGRES_PASSWORD=NEW_PG)) == 0
    out = capsys.readouterr()
    assert out.out == "postgres: password rotated, n8n ready, the old password is refused\n"
    assert pg.password == NEW_PG
    assert pg.statements == ["alter role \"n8n\" password 'new''pg-pass';\n"]
    assert env.read_text() == ENV.replace(f"={OLD_PG}", f"={NEW_PG}")
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    assert not (env.parent / ".env.before-rotation").exists()
    assert pg.before_modes == [0o600]  # the copy of the old secrets was never readable by others
    # the role first, then the stack on the new password, ready, then old refused and new accepted
    cmds = fake.commands()
    tries = [i for i, c in enumerate(cmds) if c.startswith("docker run")]
    assert fake.index("exec -T postgres psql") < fake.index("up -d") < fake.index("healthz/readiness") < tries[0]
    assert [libpq_url(fake.calls[i]).split(":")[2].split("@")[0] for i in tries] == [OLD_PG, NEW_PG]
    assert_no_secret_in_argv(fake)
    assert not any(secret in out.out + out.err for secret in SECRETS)


def test_postgres_already_rotated_does_nothing(tmp_path, host, fake, capsys):
    s, env, pw = host
    assert rotate(fake, s, values_file(tmp_path, POSTGRES_PASSWORD=OLD_PG)) == 0
    assert capsys.readouterr().out == "postgres: already rotated\n"
    assert fake.commands() == ["<ignore interrupts>"]


@pytest.mark.parametrize("case, why", [
    ("trust", "the old password still works"),
    ("not ready", "n8n not ready with the new password"),
    ("up fails", "compose up failed"),
])
def test_postgres_rolls_back_when_a_check_fails(tmp_path, host, fake, capsys, case, why):
    s, env, pw = host
    pg = Postgres(fake, env, trust=case == "trust", ready=case != "not ready", up_rc=1 if case == "up fails" else 0)
    path = values_file(tmp_path, POSTGRES_PASSWORD=NEW_PG)
    assert rotate(fake, s, path) == 1
    out = capsys.readouterr()
    assert out.err == f"n8n-rotate-secrets: FAILED postgres: {why}; the old password is back in force\n"
    assert pg.password == OLD_PG  # the role has the old password again
    assert pg.statements[-1] == f"alter role \"n8n\" password '{OLD_PG}';\n"
    assert env.read_text() == ENV  # .env as it was
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    assert not (env.parent / ".env.before-rotation").exists()
    assert len([c for c in fake.commands() if c.endswith("up -d")]) == 2  # the new, then the old again
    if case == "up fails":
        assert not fake.ran("healthz/readiness")  # no wait for a stack that did not start
    assert fake.index("<ignore interrupts>") == 0 and not os.path.exists(path)
    assert_no_secret_in_argv(fake)
    assert not any(secret in out.out + out.err for secret in SECRETS)


def test_the_new_password_refused_rolls_back(tmp_path, host, fake, capsys):
    s, env, pw = host
    pg = Postgres(fake, env)
    fake.on("docker run --rm --network n8n_backend", rc=2)  # no password works from the network
    assert rotate(fake, s, values_file(tmp_path, POSTGRES_PASSWORD=NEW_PG)) == 1
    err = capsys.readouterr().err
    assert "FAILED postgres: the new password does not work; the old password is back in force" in err
    assert pg.password == OLD_PG and env.read_text() == ENV


def test_a_role_that_cannot_be_changed_changes_nothing(tmp_path, host, fake, capsys):
    s, env, pw = host
    Postgres(fake, env, fail_set=True)
    assert rotate(fake, s, values_file(tmp_path, POSTGRES_PASSWORD=NEW_PG)) == 1
    err = capsys.readouterr().err
    assert "FAILED postgres: the new password could not be set on the role: nothing was changed" in err
    assert env.read_text() == ENV and not (env.parent / ".env.before-rotation").exists()
    assert not fake.ran("up -d")


# --- restic ----------------------------------------------------------------------------------------
def test_restic_rotation_adds_checks_switches_then_removes_the_old_keys(tmp_path, host, fake, capsys):
    s, env, pw = host
    r = Restic(fake, {LOCAL: old_keys(), VAULT: old_keys(), BUCKET: old_keys()})
    assert rotate(fake, s, values_file(tmp_path, RESTIC_PASSWORD=NEW_RESTIC)) == 0
    out = capsys.readouterr()
    assert out.out == "restic: password rotated in 3 repositories" + KEPT_IN_VAULT
    for url in (LOCAL, BUCKET):
        assert r.passwords(url) == [NEW_RESTIC], url
    # the append-only vault: the new key added, the old one left for the vault's prune
    assert r.passwords(VAULT) == [OLD_RESTIC, NEW_RESTIC]
    assert pw.read_text() == NEW_RESTIC + "\n"
    assert oct(pw.stat().st_mode & 0o777) == "0o600"
    assert sorted(os.listdir(pw.parent)) == ["restic-password", "vault-password"]  # the temporary file is gone
    # every repository opened with the old password before any key is added
    cmds = fake.commands()
    first_add = fake.index("key add")
    opened_first = [repo_of(fake.calls[i].kw) for i, c in enumerate(cmds[:first_add])
                    if "cat config" in c]
    assert set(opened_first) >= {LOCAL, VAULT, BUCKET}
    assert fake.index("key add") < fake.index("key list") and cmds.count("restic key remove old00001") == 2
    assert_no_secret_in_argv(fake)
    assert not any(secret in out.out + out.err for secret in SECRETS)


def test_an_unreachable_repository_stops_the_rotation_before_anything_changes(tmp_path, host, fake, capsys):
    s, env, pw = host
    r = Restic(fake, {LOCAL: old_keys(), VAULT: "down", BUCKET: old_keys()})
    path = values_file(tmp_path, RESTIC_PASSWORD=NEW_RESTIC)
    assert rotate(fake, s, path) == 1
    assert capsys.readouterr().err == (
        f"n8n-rotate-secrets: FAILED restic: cannot open {VAULT} ({DOWN.strip()}): nothing was rotated, "
        "the old password stays in force\n")
    assert pw.read_text() == OLD_RESTIC + "\n"
    assert r.passwords(LOCAL) == [OLD_RESTIC] and r.passwords(BUCKET) == [OLD_RESTIC]
    assert not fake.ran("key add") and not fake.ran("key remove")
    assert not os.path.exists(path)


def test_a_wrong_password_is_not_skipped_either(tmp_path, host, fake, capsys):
    s, env, pw = host
    Restic(fake, {LOCAL: old_keys(), VAULT: [{"id": "other001", "password": "someone else's"}], BUCKET: old_keys()})
    assert rotate(fake, s, values_file(tmp_path, RESTIC_PASSWORD=NEW_RESTIC)) == 1
    assert f"restic: cannot open {VAULT} (Fatal: wrong password or no key found)" in capsys.readouterr().err
    assert pw.read_text() == OLD_RESTIC + "\n"


def test_a_repository_not_created_yet_is_skipped(tmp_path, host, fake, capsys):
    s, env, pw = host
    r = Restic(fake, {LOCAL: old_keys(), VAULT: "missing", BUCKET: old_keys()})
    assert rotate(fake, s, values_file(tmp_path, RESTIC_PASSWORD=NEW_RESTIC)) == 0
    assert capsys.readouterr().out == "restic: password rotated in 2 repositories, the old key removed\n"
    assert r.passwords(LOCAL) == [NEW_RESTIC] and r.passwords(BUCKET) == [NEW_RESTIC]
    assert pw.read_text() == NEW_RESTIC + "\n"
    assert not any(repo_of(c.kw) == VAULT for c in fake.calls if "key" in c.argv)


def test_a_rerun_after_an_interrupted_rotation_does_not_add_the_key_twice(tmp_path, host, fake, capsys):
    s, env, pw = host
    # an earlier run added the new key to the local repository, then stopped
    r = Restic(fake, {LOCAL: old_keys() + [{"id": "new00000", "password": NEW_RESTIC}], VAULT: old_keys(),
                      BUCKET: old_keys()})
    assert rotate(fake, s, values_file(tmp_path, RESTIC_PASSWORD=NEW_RESTIC)) == 0
    assert "restic: password rotated in 3 repositories" in capsys.readouterr().out
    adds = [repo_of(c.kw) for c in fake.calls if "key add" in c.cmd]
    assert LOCAL not in adds and set(adds) == {VAULT, BUCKET}
    for url in (LOCAL, BUCKET):
        assert r.passwords(url) == [NEW_RESTIC]
    assert r.passwords(VAULT) == [OLD_RESTIC, NEW_RESTIC]


def test_restic_already_rotated(tmp_path, host, fake, capsys):
    s, env, pw = host
    Restic(fake, {LOCAL: old_keys(), VAULT: old_keys(), BUCKET: old_keys()})
    pw.write_text(NEW_RESTIC + "\n")
    assert rotate(fake, s, values_file(tmp_path, RESTIC_PASSWORD=NEW_RESTIC)) == 0
    assert capsys.readouterr().out == "restic: already rotated\n"
    assert not fake.ran("restic")


def test_an_old_key_that_cannot_be_removed_is_reported(tmp_path, host, fake, capsys):
    s, env, pw = host
    Restic(fake, {LOCAL: old_keys(), VAULT: old_keys(), BUCKET: old_keys()})
    fake.on(lambda cmd: cmd.startswith("restic") and "key remove" in cmd,
            call=lambda argv, kw: (1, "", "Fatal: permission denied\n") if repo_of(kw) == BUCKET else None)
    assert rotate(fake, s, values_file(tmp_path, RESTIC_PASSWORD=NEW_RESTIC)) == 1
    err = capsys.readouterr().err
    assert f"restic: the new password is in force, but an old key could not be removed from {BUCKET}" in err
    assert pw.read_text() == NEW_RESTIC + "\n"


def test_postgres_then_restic_in_one_run(tmp_path, host, fake, capsys):
    s, env, pw = host
    Postgres(fake, env)
    Restic(fake, {LOCAL: old_keys(), VAULT: old_keys(), BUCKET: "missing"})
    path = values_file(tmp_path, POSTGRES_PASSWORD=NEW_PG, RESTIC_PASSWORD=NEW_RESTIC)
    assert rotate(fake, s, path) == 0
    assert capsys.readouterr().out == ("postgres: password rotated, n8n ready, the old password is refused\n"
                                       "restic: password rotated in 2 repositories" + KEPT_IN_VAULT)
    assert fake.index("exec -T postgres psql") < fake.index("restic")
    assert envfile.read(str(env))["POSTGRES_PASSWORD"] == NEW_PG and pw.read_text() == NEW_RESTIC + "\n"
    assert not os.path.exists(path)
    assert_no_secret_in_argv(fake)


def test_the_rotated_values_start_their_90_days_today_and_the_monitor_hears_it(tmp_path, host, fake, capsys):
    s, env, pw = host
    secret_age.refresh(s, dt.datetime.now(dt.UTC) - dt.timedelta(days=85))  # the values in force are 85 days old
    s = dataclasses.replace(s, reports=settings.Reports(secrets_url="https://status.test/ping/secrets-n1?token=t"))
    Postgres(fake, env)
    Restic(fake, {LOCAL: old_keys(), VAULT: old_keys(), BUCKET: "missing"})
    assert rotate(fake, s, values_file(tmp_path, POSTGRES_PASSWORD=NEW_PG, RESTIC_PASSWORD=NEW_RESTIC)) == 0
    today = dt.datetime.now(dt.UTC).date()
    assert secret_age.refresh(s) == {"POSTGRES_PASSWORD": today, "RESTIC_PASSWORD": today}
    report = [c for c in fake.calls if c.argv[0] == "curl" and "ping/secrets" in (c.kw.get("input") or "")]
    assert len(report) == 1 and posted(report[0]) == "0"


def test_a_failed_postgres_rotation_leaves_restic_alone(tmp_path, host, fake, capsys):
    s, env, pw = host
    Postgres(fake, env, trust=True)
    Restic(fake, {LOCAL: old_keys(), VAULT: old_keys(), BUCKET: old_keys()})
    path = values_file(tmp_path, POSTGRES_PASSWORD=NEW_PG, RESTIC_PASSWORD=NEW_RESTIC)
    assert rotate(fake, s, path) == 1
    assert not fake.ran("restic") and pw.read_text() == OLD_RESTIC + "\n"
    assert not os.path.exists(path)


def test_a_damaged_age_record_never_fails_a_rotation_that_is_done(tmp_path, host, fake, capsys):
    s, env, pw = host
    os.makedirs(os.path.dirname(s.secret_ages))
    with open(s.secret_ages, "w") as f:
        f.write('["damaged"]')
    Postgres(fake, env)
    assert rotate(fake, s, values_file(tmp_path, POSTGRES_PASSWORD=NEW_PG)) == 0
    assert "secret ages not recorded now" in capsys.readouterr().out
