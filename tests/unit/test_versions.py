"""A running server's n8n version and secrets in use change only on purpose (tasks/versions.py)."""

import subprocess

import pytest

from tasks import versions
from tasks.facts import StackState, fingerprint

ENV = {"N8N_ENCRYPTION_KEY": "k" * 64, "POSTGRES_PASSWORD": "pg-password-123456", "RESTIC_PASSWORD": "restic-pw-1234567"}


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
            f"POSTGRES_PASSWORD={values['POSTGRES_PASSWORD']}\nDB_POSTGRESDB_PASSWORD={values['POSTGRES_PASSWORD']}\n")


def test_the_fact_gives_the_version_and_fingerprints_never_values(tmp_path):
    now = stack_state(tmp_path, server_env() + "# drift\n", ENV["RESTIC_PASSWORD"] + "\n# drift\n")
    assert now == {"N8N_VERSION": "2.41.1", **{k: fingerprint(v, versions.SALT) for k, v in ENV.items()}}
    assert not any(v in str(now) for v in ENV.values())
    assert versions.problems(now, "2.41.1", ENV, "/opt/n8n") == []


def test_a_server_without_a_stack_has_nothing_to_compare(tmp_path):
    cmd = StackState().command(str(tmp_path / "none" / ".env"), str(tmp_path / "pw"), "s")
    assert subprocess.run(["sh", "-c", cmd], capture_output=True, text=True).stdout == ""
    assert versions.problems({}, "2.41.1", ENV, "/opt/n8n") == []


@pytest.mark.parametrize("name", ["N8N_ENCRYPTION_KEY", "POSTGRES_PASSWORD", "RESTIC_PASSWORD"])
def test_a_secret_in_use_that_differs_from_env_is_refused_with_its_fix(tmp_path, name):
    local = {**ENV, name: "another-value-0123456789abcdef"}
    now = stack_state(tmp_path, server_env(), ENV["RESTIC_PASSWORD"] + "\n")
    (problem,) = versions.problems(now, "2.41.1", local, "/opt/n8n")
    assert problem.startswith(f"{name} in .env is not the one this server uses: ")
    assert ("N8N_ENCRYPTION_KEY in /opt/n8n/.env there" in problem) == (name == "N8N_ENCRYPTION_KEY")
    assert ("rotate_secrets.py" in problem) == (name != "N8N_ENCRYPTION_KEY")
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
