"""The pending file of a secret rotation: new values survive an interrupted or failed run, the
next run uses the same ones, and deploy.py refuses to put old values back meanwhile."""

import pytest

from tasks import config, rotation


@pytest.fixture
def env_file(tmp_path, monkeypatch):
    f = tmp_path / ".env"
    f.write_text("POSTGRES_PASSWORD=old-pg\nRESTIC_PASSWORD=old-restic\n")
    monkeypatch.setenv("MOTTIVME_ENV_FILE", str(f))
    monkeypatch.setenv("SBX_STATE", str(tmp_path / "no-sandbox"))
    monkeypatch.setattr(rotation, "_new", {})
    for name in ("POSTGRES_PASSWORD", "RESTIC_PASSWORD"):  # persist_secret sets them: put them back after
        monkeypatch.delenv(name, raising=False)
    return f


def test_values_are_kept_before_any_host_is_touched_and_reused(env_file):
    first = rotation.new_values(["postgres"])
    f = config.rotation_pending_file()
    assert f == env_file.with_name(".rotation-pending.env")
    assert oct(f.stat().st_mode & 0o777) == "0o600"
    assert rotation.pending() == first
    rotation._new.clear()  # a new run of the runbook
    again = rotation.new_values(["postgres", "restic"])
    assert again["POSTGRES_PASSWORD"] == first["POSTGRES_PASSWORD"]
    assert again["RESTIC_PASSWORD"] not in ("old-restic", first["POSTGRES_PASSWORD"])


def test_deploy_refuses_while_a_rotation_is_pending(env_file, capsys):
    rotation.new_values(["postgres"])
    with pytest.raises(SystemExit) as e:
        rotation.refuse_deploy_if_pending()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "a secret rotation has not finished (POSTGRES_PASSWORD" in err and "--data secrets=postgres" in err


def test_written_back_values_leave_the_pending_file(env_file, monkeypatch):
    from pyinfra.api import HiddenValue

    values = rotation.new_values(["postgres", "restic"])
    logged = []
    fake_host = type("H", (), {"log_styled": lambda self, msg, **kw: logged.append(msg)})()
    state = type("S", (), {"failed_hosts": set()})()
    assert rotation._persist(state, fake_host, {"POSTGRES_PASSWORD": HiddenValue(values["POSTGRES_PASSWORD"])})
    assert f"POSTGRES_PASSWORD={values['POSTGRES_PASSWORD']}" in env_file.read_text()
    assert set(rotation.pending()) == {"RESTIC_PASSWORD"}  # not written yet: still pending
    monkeypatch.setenv("RESTIC_PASSWORD", values["RESTIC_PASSWORD"])  # the operator set it by hand
    rotation.refuse_deploy_if_pending()  # nothing left to finish: no refusal, the file goes
    assert not config.rotation_pending_file().exists()


def test_a_failed_host_keeps_the_values_pending(env_file):
    from pyinfra.api import HiddenValue

    values = rotation.new_values(["postgres"])
    logged = []
    fake_host = type("H", (), {"log_styled": lambda self, msg, **kw: logged.append(msg)})()
    state = type("S", (), {"failed_hosts": {type("F", (), {"name": "n8n-2"})()}})()
    assert not rotation._persist(state, fake_host, {"POSTGRES_PASSWORD": HiddenValue(values["POSTGRES_PASSWORD"])})
    assert "old-pg" in env_file.read_text() and rotation.pending() == values
    assert "rotation failed on n8n-2" in logged[0] and "run this runbook again" in logged[0]
