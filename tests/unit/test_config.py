"""Secrets and hosts are checked before pyinfra contacts any host."""

import os

import pytest

from tasks import config, groupdata, variables
from tests.helpers import GOOD_SECRETS, ROOT, clean_env, run_pyinfra, write_images_lock


def check_optional(groups, env):
    """The problems of `env` besides the always-needed variables (GOOD_SECRETS fills those)."""
    return variables.problems({**GOOD_SECRETS, **env}, groups)


def test_good_secrets_pass():
    assert variables.problems(GOOD_SECRETS, {}) == []


@pytest.mark.parametrize("name", variables.ALWAYS)
def test_missing_secret_is_named_with_its_fix(name):
    env = {k: v for k, v in GOOD_SECRETS.items() if k != name}
    errors = variables.problems(env, {})
    assert len(errors) == 1
    assert errors[0].startswith(f"{name} is not set")
    assert ".env" in errors[0]


@pytest.mark.parametrize("name,bad", [
    ("N8N_ENCRYPTION_KEY", "tooshort"),
    ("POSTGRES_PASSWORD", "short"),
    ("N8N_OWNER_EMAIL", "not-an-email"),
    ("N8N_OWNER_PASSWORD", "alllowercase1"),
    ("N8N_OWNER_PASSWORD", "NoDigitsHere"),
    ("N8N_HOST", "https://n8n.example.test/"),
])
def test_malformed_secret_is_named(name, bad):
    errors = variables.problems(dict(GOOD_SECRETS, **{name: bad}), {})
    assert len(errors) == 1 and errors[0].startswith(name)
    assert bad not in errors[0], "an error message must not repeat the secret value"


def test_encryption_key_error_says_how_to_generate_and_never_rotate():
    (err,) = variables.problems(dict(GOOD_SECRETS, N8N_ENCRYPTION_KEY="x"), {})
    assert "openssl rand -hex 32" in err and "never rotate" in err


def test_parse_hosts():
    assert config.parse_hosts("a.example.com, 10.0.0.5:2222,", "N8N_SERVERS") == [
        ("a.example.com", None), ("10.0.0.5", 2222)]
    with pytest.raises(config.ConfigError, match="N8N_SERVERS"):
        config.parse_hosts("https://bad/", "N8N_SERVERS")


def test_missing_secret_stops_before_connecting(tmp_path):
    """The real CLI: exit 2, the variable named, no connection attempted (port 9 is closed)."""
    env = clean_env(N8N_SERVERS="127.0.0.1:9", **{k: v for k, v in GOOD_SECRETS.items()
                                                   if k != "N8N_ENCRYPTION_KEY"})
    env["MOTTIVME_ENV_FILE"] = str(tmp_path / "none.env")
    r = run_pyinfra(["-y", "inventory.py", "deploy.py"], env, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "N8N_ENCRYPTION_KEY is not set" in out
    assert "nothing was contacted" in out
    assert "Connecting" not in out and "Connected" not in out


def test_no_hosts_and_no_sandbox_says_how_to_configure(tmp_path):
    env = clean_env(SBX_STATE=str(tmp_path / "no-sandbox"), MOTTIVME_ENV_FILE=str(tmp_path / "none.env"),
                    **GOOD_SECRETS)
    r = run_pyinfra(["-y", "inventory.py", "deploy.py"], env, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "N8N_SERVERS" in out and "make sandbox-up" in out


def test_bad_host_list_is_named(tmp_path):
    env = clean_env(N8N_SERVERS="https://x/", MOTTIVME_ENV_FILE=str(tmp_path / "none.env"), **GOOD_SECRETS)
    r = run_pyinfra(["-y", "inventory.py", "deploy.py"], env, timeout=120)
    assert r.returncode == 2
    assert "N8N_SERVERS" in r.stderr


@pytest.mark.parametrize("url,problem", [
    ("postgresql://postgres:pw@bfumywvwubvernvhjehk.supabase.co:5432/postgres", "Supabase's API host"),
    ("https://db.abc.supabase.co", "must look like postgresql://"),
])
def test_supabase_url_mistakes_are_named(url, problem):
    (err,) = check_optional({}, {"SUPABASE_DB_URL": url})
    assert err.startswith("SUPABASE_DB_URL") and problem in err


def test_supabase_database_host_and_pooler_are_accepted():
    for url in ("postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres",
                "postgres://postgres.abc:pw@aws-0-sa-east-1.pooler.supabase.com:6543/postgres"):
        assert check_optional({}, {"SUPABASE_DB_URL": url}) == []


@pytest.mark.parametrize("url,problem", [
    # libpq reads these differently from a plain URL split (or not at all): refused, never shown
    ("postgresql://postgres:pa%zzss@db.abc.supabase.co:5432/postgres", "not a URL libpq can read"),
    ("postgresql://postgres:pa#ss@db.abc.supabase.co:5432/postgres", "percent-encode"),
    ("postgresql://postgres:pw@db.abc.supabase.co:5432/postgres#x", "read differently"),
    ("postgresql://postgres:pw@db.abc.supabase.co:5432/postgres?host=db.other.example", "the parameter 'host' is not"),
    ("postgresql://postgres:pw@db.abc.supabase.co:5432/postgres?sslcert=/x", "the parameter 'sslcert' is not"),
    ("postgresql://postgres:pw%0A@db.abc.supabase.co:5432/postgres", "a control character"),
    ("postgresql://postgres:pw@db.abc.supabase.co:5432/", "must look like postgresql://"),
    ("postgresql://postgres:pw@db.a.supabase.co,db.b.supabase.co/postgres", "read differently"),
    ("postgresql://postgres@db.abc.supabase.co:5432/postgres", "has no password"),
])
def test_the_supabase_url_is_read_as_libpq_reads_it(url, problem):
    (err,) = check_optional({}, {"SUPABASE_DB_URL": url})
    assert err.startswith("SUPABASE_DB_URL") and problem in err
    assert "pa%zzss" not in err and "pa#ss" not in err


def test_a_percent_encoded_password_is_accepted():
    url = "postgresql://postgres:p%40ss%2Fw%25rd@db.abcdefgh.supabase.co:5432/postgres?sslmode=require"
    assert check_optional({}, {"SUPABASE_DB_URL": url}) == []
    # libpq's parameters that the servers pass on, and a host in capitals (a host name has no case)
    url = "postgresql://postgres:pw@DB.abcdefgh.supabase.co:5432/postgres?channel_binding=require&options=-c+x%3D1"
    assert check_optional({}, {"SUPABASE_DB_URL": url}) == []


def test_env_values_are_read_exactly(tmp_path, monkeypatch):
    """A $ in a password is a $: no ${VAR} expansion from .env (python-dotenv's default expands it)."""
    monkeypatch.setenv("HOME_OF_SOMETHING", "EXPANDED")
    f = tmp_path / "x.env"
    f.write_text("RESTIC_PASSWORD=abc${HOME_OF_SOMETHING}def$x1234567890\n")
    for k in variables.BY_NAME:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("MOTTIVME_ENV_FILE", str(f))
    config.load_env()
    import os
    assert os.environ["RESTIC_PASSWORD"] == "abc${HOME_OF_SOMETHING}def$x1234567890"


def test_spaces_around_a_value_are_refused():
    (err,) = check_optional({}, {"AWS_DEFAULT_REGION": " sa-east-1"})
    assert err == "AWS_DEFAULT_REGION has spaces at its start or end (inside quotes in .env?): remove them"


@pytest.mark.parametrize("value", ["mailtos://u:pa$s@smtp.example.test?to=a@b.c", "mailtos://u:pa's@smtp.example.test",
                                   "mailtos://u:pa\\s@smtp.example.test"])
def test_monitor_values_the_systemd_environment_file_cannot_hold_are_refused(value):
    (err,) = check_optional({}, {"MONITOR_EMAIL_URL": value})
    assert err.startswith("MONITOR_EMAIL_URL holds a quote, a backslash or a $") and "%24" in err
    assert value not in err


def test_the_drill_database_is_never_the_one_the_backup_comes_from():
    from tasks.groupdata import load

    sources = load("n8n_servers")["backup_sources"]
    prod = "postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres"
    env = {"SUPABASE_DB_URL": prod, "DR_DRILL_SUPABASE_URL": prod.replace(":pw@", ":other@")}
    (err,) = variables.source_problems(sources, env)
    assert err.startswith("DR_DRILL_SUPABASE_URL names the database SUPABASE_DB_URL names (backup source supabase): "
                          "the DR drill would restore over it") and "other" not in err
    env["DR_DRILL_SUPABASE_URL"] = prod.replace("/postgres", "/drill")
    assert variables.source_problems(sources, env) == [] and check_optional({}, env) == []


def test_backup_vault_needs_its_master_secret():
    groups = {"backup_vault": [("vault.example.test", {})]}
    (err,) = check_optional(groups, {})
    assert err.startswith("BACKUP_VAULT_SECRET is not set") and "openssl rand -hex 32" in err
    (err,) = check_optional(groups, {"BACKUP_VAULT_SECRET": "short"})
    assert "BACKUP_VAULT_SECRET must be at least 32 characters" in err and "short" not in err
    assert check_optional(groups, {"BACKUP_VAULT_SECRET": "ab" * 32}) == []


def test_monitor_host_needs_a_ping_token_and_the_operators_password():
    groups = {"monitors": [("mon1", {})]}
    ops, token = sorted(check_optional(groups, {}))
    assert token.startswith("MONITOR_PING_TOKEN is not set") and "openssl rand -hex 24" in token
    assert ops.startswith("MONITOR_OPS_PASSWORD is not set") and "openssl rand -hex 16" in ops
    ok = {"MONITOR_PING_TOKEN": "a" * 48, "MONITOR_OPS_PASSWORD": "b" * 32}
    assert check_optional(groups, ok) == []
    assert check_optional({"monitors": []}, {}) == []
    (err,) = check_optional(groups, {**ok, "MONITOR_OPS_PASSWORD": "short"})
    assert err.startswith("MONITOR_OPS_PASSWORD must be at least 24 letters") and "short" not in err
    # the dead man's switch that watches the monitor: a ping URL, refused without a word of it
    assert check_optional(groups, {**ok, "MONITOR_DEADMAN_URL": "https://hc-ping.com/6f1c0e1a-uuid"}) == []
    (err,) = check_optional(groups, {**ok, "MONITOR_DEADMAN_URL": "hc-ping.com/6f1c0e1a-uuid"})
    assert err.startswith("MONITOR_DEADMAN_URL must be an http(s) ping URL") and "6f1c0e1a" not in err


def test_worker_servers_need_a_tunnel_key_and_a_redis_password(tmp_path):
    groups = {"n8n_workers": [("w1", {})]}
    errors = sorted(check_optional(groups, {}))
    assert errors[0].startswith("REDIS_PASSWORD is not set but N8N_WORKER_SERVERS is") and "openssl rand -hex 24" in errors[0]
    assert errors[1].startswith("WORKER_TUNNEL_KEY_FILE is not set") and "ssh-keygen" in errors[1]
    redis, key = sorted(check_optional(groups, {"WORKER_TUNNEL_KEY_FILE": "/nonexistent/key", "REDIS_PASSWORD": "short"}))
    assert redis.startswith("REDIS_PASSWORD must be at least 16") and "short" not in redis
    assert key == ("WORKER_TUNNEL_KEY_FILE=/nonexistent/key does not exist: the worker servers reach Redis and "
                   "PostgreSQL through an SSH tunnel with this key; create it with "
                   "`ssh-keygen -t ed25519 -N '' -f ~/.ssh/mottivme-worker-tunnel`")
    key = tmp_path / "k"
    key.write_text("x")
    assert check_optional(groups, {"WORKER_TUNNEL_KEY_FILE": str(key), "REDIS_PASSWORD": "r" * 32}) == []


def test_s3_repository_needs_its_keys_and_a_restic_url():
    errors = check_optional({}, {"BACKUP_S3_REPOSITORY": "s3:https://s3.example.test/bucket/n8n"})
    assert [e.split()[0] for e in errors] == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    assert "is not set but BACKUP_S3_REPOSITORY is" in errors[0]
    keys = {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}
    for url in ("s3:https://s3.example.test/bucket/n8n", "s3:http://10.0.0.9:9000/bucket", "s3:s3.amazonaws.com/b/p"):
        assert check_optional({}, {"BACKUP_S3_REPOSITORY": url, **keys}) == []
    (err,) = check_optional({}, {"BACKUP_S3_REPOSITORY": "https://s3.example.test/bucket", **keys})
    assert "is not a restic S3 URL" in err and "s3:https://HOST/BUCKET/PATH" in err


def test_env_example_is_the_registry():
    """.env.example lists every variable the project reads, as tasks/variables.py describes them."""
    assert (ROOT / ".env.example").read_text() == variables.env_example(), \
        "regenerate it: python -m tasks.variables > .env.example"


def test_every_variable_the_code_reads_is_registered():
    """A name read from the environment anywhere in production code is in the registry."""
    import re

    read = set()
    for path in [ROOT / "inventory.py", ROOT / "inventory_sources.py", ROOT / "deploy.py", ROOT / "sandbox" / "inventory_source.py",
                 *(ROOT / "tasks").glob("*.py"), *(ROOT / "runbooks").glob("*.py")]:
        read |= set(re.findall(r"""environ(?:\.get\(|\[)["']([A-Z][A-Z0-9_]+)["']""", path.read_text()))
        read |= set(re.findall(r"""secret\(["']([A-Z][A-Z0-9_]+)["']\)""", path.read_text()))
    # (SBX_*: the sandbox's own settings, docs/sandbox.md)
    assert {n for n in read - set(variables.BY_NAME) if not n.startswith("SBX_")} == set()


EXPANDED = ["$(touch /tmp/pwned)", "${IFS}x", "$HOME", "a'b", "a\\b"]  # what a $-expanding or quoting parser reads
LITERAL = ["`touch /tmp/pwned`", "a;touch /tmp/pwned", "a|b&c"]  # only a shell would run these


@pytest.mark.parametrize("name", ["N8N_ENCRYPTION_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "MONITOR_PING_TOKEN",
                                  "MONITOR_WHATSAPP_URL", "MONITOR_EMAIL_URL", "MONITOR_PHONE_AUTH", "GHL_API_TOKEN"])
@pytest.mark.parametrize("bad", EXPANDED)
def test_a_value_a_compose_or_systemd_file_would_expand_is_refused_before_any_host(name, bad):
    """Values written into files that something parses with $-expansion or quotes (the stack's .env
    for Compose, the monitor's systemd environment file) cannot carry one: refused, never shown."""
    value = "x" * 32 + bad
    problems = check_optional({}, {name: value})
    assert [p for p in problems if p.startswith(name)] and not any(value in p for p in problems), problems


@pytest.mark.parametrize("bad", LITERAL)
def test_shell_words_in_a_monitor_value_stay_words(bad, tmp_path):
    """No shell reads the monitor's environment file (systemd, the launcher): accepted, and read back
    exactly as written."""
    from mottivme_monitor.launcher import read_env
    from tasks import monitoring

    value = "mailtos://u:p@smtp.example.test/" + bad
    assert check_optional({}, {"MONITOR_EMAIL_URL": value}) == []
    f = tmp_path / "secrets.env"
    os.environ["MONITOR_EMAIL_URL"] = value
    try:
        f.write_text(monitoring.secrets_env({"channels": [{"url": "${MONITOR_EMAIL_URL}"}]}))
    finally:
        del os.environ["MONITOR_EMAIL_URL"]
    assert read_env(str(f)) == {"MONITOR_EMAIL_URL": value}


def test_an_s3_repository_that_looks_like_a_command_stays_a_string_on_the_server():
    """Accepted by the check (it is a well-formed restic URL): it reaches restic in its environment,
    never a shell."""
    from tasks.backup import sources  # noqa: F401 - the deploy's own module loads

    bad = "s3:h.example.test/b/$(touch${IFS}/tmp/pwned)"
    assert check_optional({}, {"BACKUP_S3_REPOSITORY": bad, "AWS_ACCESS_KEY_ID": "a",
                               "AWS_SECRET_ACCESS_KEY": "b"}) == []
    from mottivme_host.restic import Repo
    from mottivme_host.settings import Backup
    from tests.helpers import FakeRunner

    fake = FakeRunner()
    Repo(bad, Backup(), fake).run("snapshots", check=False)
    (call,) = fake.calls
    assert call.argv[0] == "restic" and "sh" not in call.argv and call.kw["env"]["RESTIC_REPOSITORY"] == bad


def test_secret_values_never_in_a_problem():
    env = {"N8N_ENCRYPTION_KEY": "short-secret", "POSTGRES_PASSWORD": "p@ss word", "RESTIC_PASSWORD": "restic-short",
           "N8N_OWNER_PASSWORD": "lowercase-owner", "SUPABASE_DB_URL": "mysql://u:topsecret@h/db", "N8N_HOST": "h",
           "N8N_OWNER_EMAIL": "a@b.c", "MONITOR_PING_TOKEN": "tok$en"}
    out = "\n".join(variables.problems(env, {"monitors": [("m", {})]}))
    for v in env.values():
        if v not in ("h", "a@b.c"):
            assert v not in out


def test_backup_sources_are_checked_before_any_host():
    from tasks.groupdata import load

    assert variables.source_problems(load("n8n_servers")["backup_sources"], GOOD_SECRETS) == []
    two = [{"name": "n8n", "kind": "n8n"},
           {"name": "supabase", "kind": "postgres", "url_env": "SUPABASE_DB_URL"},
           {"name": "analytics", "kind": "postgres", "url_env": "ANALYTICS_DB_URL", "schemas": ["public", "stats"]}]
    assert variables.source_problems(two, {"ANALYTICS_DB_URL": "postgresql://u:pw@db.example.test:5432/a"}) == []
    (err,) = variables.source_problems(two, {"ANALYTICS_DB_URL": "mysql://u:s3cret@h/a"})
    assert err.startswith("ANALYTICS_DB_URL (backup source analytics) must look like postgresql://") and "s3cret" not in err
    bad = [{"name": "n8n", "kind": "n8n"}, {"name": "n8n", "kind": "postgres", "url_env": "lower"},
           {"name": "x", "kind": "mysql"}, {"name": "y", "kind": "postgres", "url_env": "Y_URL", "schemas": ["a;b"]}]
    errors = variables.source_problems(bad, {})
    assert len(errors) == 5, errors and any("unique" in e for e in errors) and any("kind must be" in e for e in errors)
    assert any("url_env must name" in e for e in errors) and any("schemas must be" in e for e in errors)
    # what the host programs would refuse is refused here, before any host
    for wrong in ({"name": "config", "kind": "postgres", "url_env": "C_URL"},
                  {"name": "x" * 41, "kind": "postgres", "url_env": "C_URL"},
                  {"name": "reports", "kind": "postgres", "url_env": "C_URL", "schemas": ["Reporting"]}):
        assert len(variables.source_problems([{"name": "n8n", "kind": "n8n"}, wrong], {})) == 1, wrong
    # schemas "all" (group_data's Supabase) with its excluded and managed schemas; those lists go with "all" only
    for wrong in ({"schemas": "everything"}, {"schemas": "all", "exclude_schemas": "graphql"},
                  {"schemas": "all", "managed_schemas": ["Auth"]}, {"schemas": ["public"], "exclude_schemas": ["x"]}):
        (err,) = variables.source_problems([{"name": "n8n", "kind": "n8n"},
                                            {"name": "s", "kind": "postgres", "url_env": "S_URL", **wrong}], {})
        assert "schemas" in err, wrong
    # the n8n source's exclude: tar patterns, never an option tar would take
    for exclude in ("n8nEventLog*.log", ["--to-command=sh"], [""], [3]):
        (err,) = variables.source_problems([{"name": "n8n", "kind": "n8n", "exclude": exclude}], {})
        assert err == ("group_data backup_sources[0] (n8n): exclude must be a list of tar patterns of files left out "
                       "of n8n's volumes, e.g. [\"n8nEventLog*.log\"]")


def test_the_demo_never_targets_the_hosts_in_env(tmp_path):
    """`make demo` (MOTTIVME_TARGET=sandbox) with a .env that lists a production server: the run
    looks for the sandbox only and never contacts that server; the .env's secrets are not read."""
    env_file = tmp_path / ".env"
    env_file.write_text("N8N_SERVERS=127.0.0.1:1\n" + "".join(f"{k}={v}\n" for k, v in GOOD_SECRETS.items()))
    env = clean_env(MOTTIVME_ENV_FILE=str(env_file), SBX_STATE=str(tmp_path / "no-sandbox"), MOTTIVME_TARGET="sandbox")
    r = run_pyinfra(["-y", "inventory.py", "deploy.py"], env, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "make sandbox-up" in out and "127.0.0.1" not in out and "Connecting" not in out


def test_make_demo_uses_the_sandbox_and_make_deploy_asks_first():
    import subprocess

    demo = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    (deploy_line,) = [line for line in demo.splitlines() if "inventory.py deploy.py" in line]
    assert deploy_line.startswith("MOTTIVME_TARGET=sandbox ")
    prod = subprocess.run(["make", "-n", "deploy"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    (prod_line,) = [line for line in prod.splitlines() if "inventory.py deploy.py" in line]
    assert " -y" not in prod_line


def test_a_sandbox_only_run_carries_no_production_value(tmp_path, monkeypatch):
    """MOTTIVME_TARGET=sandbox (make demo, a DR drill on the sandbox): production values, whether in
    .env or exported in the shell, are not used; the sandbox's own throwaway ones are."""
    import json

    from inventory_sources import choose

    state = tmp_path / "sbx"
    state.mkdir()
    (state / "hosts.json").write_text(json.dumps({"prefix": "t", "hosts": [
        {"name": "t-1", "group": "n8n_servers", "ssh_host": "127.0.0.1", "ssh_port": 1, "ssh_user": "root",
         "key": "/dev/null", "https_port": 2, "private_ip": "10.99.0.2"},
        {"name": "t-2", "group": "supabase", "ssh_host": "127.0.0.1", "ssh_port": 3, "ssh_user": "root",
         "key": "/dev/null", "https_port": 4, "private_ip": "10.99.0.3"}],
        "services": {"acme": {"url": "https://10.99.0.9:14000/dir", "root": str(state / "pebble-https-ca.pem")}}}))
    (state / "pebble-https-ca.pem").write_text("-----BEGIN CERTIFICATE-----\nsandbox\n")
    # the sandbox's lock pins the sandbox's images (group_data/sandbox.py: one Supabase major version)
    write_images_lock(state / "images.lock", groupdata.load("n8n_servers", "sandbox"))
    sandbox = {k: f"sandbox-{v}" if k != "N8N_OWNER_EMAIL" else v for k, v in GOOD_SECRETS.items()}
    sandbox["N8N_HOST"] = "n8n.sbx.test"
    (state / "secrets.env").write_text("".join(f"{k}={v}\n" for k, v in sandbox.items())
                                       + "SUPABASE_STANDIN_PASSWORD=standin\n")
    prod = tmp_path / ".env"
    prod.write_text("N8N_SERVERS=n8n.prod.example\nRESTIC_PASSWORD=PRODUCTION-restic-0123456789\n"
                    "BACKUP_S3_REPOSITORY=s3:https://s3.prod.example/b/n8n\nAWS_SECRET_ACCESS_KEY=PRODUCTION-aws\n")
    for k in [v.name for v in variables.VARIABLES]:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("MOTTIVME_ENV_FILE", str(prod))
    monkeypatch.setenv("SBX_STATE", str(state))
    monkeypatch.setenv("MOTTIVME_TARGET", "sandbox")
    monkeypatch.setattr(config, "_active", None)  # load_inventory records its source: put it back after
    monkeypatch.setenv("SUPABASE_DB_URL", "postgresql://postgres:PRODUCTION-pw@db.prod.supabase.co:5432/postgres")
    monkeypatch.setenv("N8N_ENCRYPTION_KEY", "PRODUCTION-key-0123456789abcdef0123456789")
    import os

    saved = dict(os.environ)  # load_inventory fills the environment from the sandbox's secrets
    try:
        groups = config.load_inventory(choose())
        assert [n for n, _ in groups["n8n_servers"]] == ["t-1"]
        # every server's Caddy takes its certificates from the sandbox's ACME CA (sandbox/acme.py)
        data = groups["n8n_servers"][0][1]
        assert data["caddy_acme_ca"] == "https://10.99.0.9:14000/dir"
        assert data["caddy_acme_ca_root"].startswith("-----BEGIN CERTIFICATE-----")
        carried = {k: v for k, v in os.environ.items() if "PRODUCTION" in v or "prod.example" in v}
        assert carried == {}
        assert os.environ["SUPABASE_DB_URL"] == "postgresql://postgres:standin@10.99.0.3:5432/postgres"
        assert os.environ["RESTIC_PASSWORD"] == sandbox["RESTIC_PASSWORD"]
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.parametrize("value, level", [(0, 0), (6, 6), ("9", 9), (" 0 ", 0)])
def test_the_dump_compression_is_a_pg_dump_level(value, level):
    from tasks.settings import dump_compression
    assert dump_compression(value) == level


@pytest.mark.parametrize("value", [10, -1, "fast", True, 1.5, "", "²", "٣"])
def test_a_dump_compression_that_is_no_pg_dump_level_is_refused_naming_the_setting(value):
    from tasks.settings import SettingsError, dump_compression
    with pytest.raises(SettingsError, match=r"^group_data backup_dump_compression: pg_dump's -Z level, a whole "
                                            r"number from 0 \(none: restic compresses\) to 9, not "):
        dump_compression(value)


@pytest.mark.parametrize("value", [-1, "many", True, 1.5, "", "²", 10 ** 7])
def test_a_queue_keep_that_is_no_whole_number_is_refused_naming_the_setting(value):
    from tasks.settings import SettingsError, keep_finished
    assert keep_finished(0) == 0 and keep_finished(" 1000 ") == 1000
    with pytest.raises(SettingsError, match=r"^group_data n8n_queue_keep_finished: how many finished executions "
                                            r"Redis keeps, a whole number from 0 "):
        keep_finished(value)


@pytest.mark.parametrize("name, said", [
    ("backup_dump_compression", "pg_dump's -Z level, a whole number from 0 (none: restic compresses) to 9, not 'fast'"),
    ("n8n_queue_keep_finished", "how many finished executions Redis keeps, a whole number from 0 (n8n's default: "
                                "none; docs/scaling.md) to 9999999, not 'fast'")])
def test_a_wrong_number_in_group_data_stops_the_run_before_any_host(tmp_path, monkeypatch, capsys, name, said):
    real = groupdata.load

    def with_level(*groups):
        data = real(*groups)
        data[name] = "fast"
        return data

    monkeypatch.setattr(groupdata, "load", with_level)
    for k, v in clean_env(N8N_SERVERS="127.0.0.1:9", MOTTIVME_ENV_FILE=str(tmp_path / "none.env"),
                          **GOOD_SECRETS).items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as e:
        config.load_inventory(config.EnvSource())
    err = capsys.readouterr().err
    assert e.value.code == 2 and "(nothing was contacted)" in err
    assert f"  - group_data {name}: {said}\n" in err
