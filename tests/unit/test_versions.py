"""A running server's n8n version and secrets in use change only on purpose (tasks/versions.py)."""

import subprocess

import pytest

from mottivme_host.stack_state import fingerprint
from tasks import versions
from tasks.facts import StackState

ENV = {"N8N_ENCRYPTION_KEY": "k" * 64, "POSTGRES_PASSWORD": "pg-password-123456", "REDIS_PASSWORD": "redis-pw-1234567",
       "RESTIC_PASSWORD": "restic-pw-1234567"}


def stack_state(tmp_path, env_text: str, restic: str | None) -> dict:
    """The StackState fact as a server answers it: its command run by a shell here."""
    (tmp_path / ".env").write_text(env_text)
    pw = tmp_path / "restic-password"
    if restic is not None:
        pw.write_text(restic)
    cmd = StackState().command(str(tmp_path / ".env"), str(pw), versions.SALT)
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=True).stdout
    return StackState().process(out.splitlines())


def server_env(version="2.41.1", **over) -> str:
    values = {**ENV, **over}
    return (f"# Managed by mottivme-infra\nN8N_VERSION={version}\nN8N_ENCRYPTION_KEY={values['N8N_ENCRYPTION_KEY']}\n"
            f"POSTGRES_PASSWORD={values['POSTGRES_PASSWORD']}\nDB_POSTGRESDB_PASSWORD={values['POSTGRES_PASSWORD']}\n"
            f"REDIS_PASSWORD={values['REDIS_PASSWORD']}\n")


def test_the_fact_gives_the_version_and_fingerprints_never_values(tmp_path):
    now = stack_state(tmp_path, server_env() + "# drift\n", ENV["RESTIC_PASSWORD"] + "\n# drift\n")
    assert now == {"N8N_VERSION": "2.41.1", "STATE": "ok", **{k: fingerprint(v, versions.SALT) for k, v in ENV.items()}}
    assert not any(v in str(now) for v in ENV.values())
    assert versions.problems(now, "2.41.1", ENV, "/opt/n8n") == []


def test_a_server_without_a_stack_has_nothing_to_compare(tmp_path):
    cmd = StackState().command(str(tmp_path / "none" / ".env"), str(tmp_path / "pw"), "s")
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True).stdout
    assert StackState().process(out.splitlines()) == {"STATE": "none"}
    assert versions.problems({"STATE": "none"}, "2.41.1", ENV, "/opt/n8n") == []


def test_a_stack_whose_state_cannot_be_read_stops_the_run(tmp_path, monkeypatch, capsys):
    """No python3 on a server that has a stack: nothing can be decided about its version or
    secrets, so nothing is done (a worker server would otherwise render group_data's version)."""
    import types

    (tmp_path / ".env").write_text(server_env())
    cmd = StackState().command(str(tmp_path / ".env"), str(tmp_path / "pw"), "s")
    r = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True, env={"PATH": "/nonexistent"})
    assert r.returncode != 0 and "STATE=" not in r.stdout  # what pyinfra gets: a failed fact

    server = types.SimpleNamespace(name="n1", groups=["n8n_servers"], data={},
                                   get_fact=lambda *a, **k: StackState().process(r.stdout.splitlines()))
    monkeypatch.setattr(versions.settings.Stack, "from_data", lambda d: types.SimpleNamespace(dir="/opt/n8n"))
    with pytest.raises(SystemExit) as e:
        versions.state(server)
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("mottivme-infra: n1: cannot read what its n8n stack runs (/opt/n8n/.env")


def test_a_version_that_is_not_a_release_number_is_refused():
    (problem,) = versions.problems({"STATE": "ok", "N8N_VERSION": "2.41.1"}, "2.42.0-rc.1", ENV, "/opt/n8n")
    assert problem == "n8n_version '2.42.0-rc.1' is not a release number X.Y.Z (e.g. 2.41.1)"
    assert versions.problems({"STATE": "ok", "N8N_VERSION": "2.41.1"}, None, ENV, "/opt/n8n") == []  # a worker


@pytest.mark.parametrize("name", ["N8N_ENCRYPTION_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "RESTIC_PASSWORD"])
def test_a_secret_in_use_that_differs_from_env_is_refused_with_its_fix(tmp_path, name):
    local = {**ENV, name: "another-value-0123456789abcdef"}
    now = stack_state(tmp_path, server_env(), ENV["RESTIC_PASSWORD"] + "\n")
    (problem,) = versions.problems(now, "2.41.1", local, "/opt/n8n")
    assert problem.startswith(f"{name} in .env is not the one this server uses: ")
    assert (f"{name} in /opt/n8n/.env there" in problem) == (name in ("N8N_ENCRYPTION_KEY", "REDIS_PASSWORD"))
    assert ("rotate_secrets.py" in problem) == (name in ("POSTGRES_PASSWORD", "RESTIC_PASSWORD"))
    assert not any(v in problem for v in [*ENV.values(), local[name]])


@pytest.mark.parametrize("running,wanted,refused", [
    ("2.41.1", "2.41.0", True), ("2.41.10", "2.41.9", True), ("3.0.0", "2.99.99", True),
    ("2.41.1", "2.41.1", False), ("2.41.0", "2.41.1", False), ("2.41.9", "2.41.10", False),
])
def test_deploy_py_never_goes_back_to_an_older_n8n(running, wanted, refused):
    problems = versions.problems({"N8N_VERSION": running}, wanted, ENV, "/opt/n8n")
    assert bool(problems) == refused
    if refused:
        assert problems[0].startswith(f"n8n here runs {running} (its database migrated to it) and n8n_version says "
                                      f"{wanted}: deploy.py never goes back.")
        assert f"runbooks/emergency_deploy.py --data n8n_version={wanted}" in problems[0]
