"""`mottivme-host doctor`: each finding with its fix; FAIL makes the exit status 1."""

import datetime as dt

from mottivme_host import cli, doctor, settings
from tests.helpers import FakeRunner

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
GOOD_SSHD = "passwordauthentication no\nkbdinteractiveauthentication no\npermitrootlogin prohibit-password\n"


VAULT = "rest:https://n8n-1@vault.example.test:8000/n8n-1/"


def make(tmp_path):
    (tmp_path / "vault-password").write_text("pw\n")
    return settings.from_dict({"stack_dir": str(tmp_path), "n8n_host": "n8n.example.test",
                               "compose": ["docker", "compose", "-p", "n8n"],
                               "backup": {"dir": str(tmp_path), "log": str(tmp_path / "backup.log"),
                                          "offsite_repositories": [VAULT], "append_only_repositories": [VAULT],
                                          "vault_password_file": str(tmp_path / "vault-password"),
                                          "vault_cert_file": "/etc/mottivme/vault-cert.pem"}})


def healthy(tmp_path, cert="notBefore=Nov 20 12:00:00 2026 GMT\nnotAfter=Feb 18 12:00:00 2027 GMT\n"):
    (tmp_path / "last-success").write_text("2026-12-01T03:17:00-03:00\n")
    (tmp_path / "last-check").write_text("2026-11-29T03:20:00-03:00\n")
    fake = FakeRunner()
    fake.on("docker ps", stdout="caddy\tUp 3 hours\nn8n\tUp 3 hours (healthy)\npostgres\tUp 3 hours (healthy)\n")
    fake.on("openssl s_client", stdout="-----BEGIN CERTIFICATE-----\nMII...\n-----END CERTIFICATE-----\n")
    fake.on("openssl x509", stdout=cert)
    fake.on("sshd -T", stdout=GOOD_SSHD)
    return fake


def test_a_healthy_server_is_all_ok(tmp_path):
    found = doctor.check(make(tmp_path), healthy(tmp_path), NOW, root=str(tmp_path))
    levels = {check: level for level, check, *_ in found}
    assert {k: v for k, v in levels.items() if k not in ("disk /", "memory")} == {
        "containers": "ok", "compose file": "ok", "Caddyfile": "ok", "certificate": "ok", "last backup": "ok",
        "repository check": "ok", "backup vault": "ok", "firewall": "ok", "sshd": "ok"}
    assert "ok    certificate: n8n.example.test: 79 days left" in found.lines()


def test_each_problem_is_named_with_its_fix(tmp_path):
    fake = healthy(tmp_path, cert="notBefore=Nov 1 12:00:00 2026 GMT\nnotAfter=Dec 15 12:00:00 2026 GMT\n")
    fake.on("docker ps", stdout="caddy\tUp 3 hours\nn8n\tRestarting (1) 4 seconds ago\npostgres\tUp 3 hours (healthy)\n")
    fake.on("caddy validate", rc=1, stderr="Error: adapting config using caddyfile: unknown directive: revers_proxy\n")
    fake.on("nft list", rc=1, stderr="Error: No such file or directory\n")
    fake.on("sshd -T", stdout="passwordauthentication yes\npermitrootlogin yes\n")
    fake.on("curl", rc=7, stderr="curl: (7) Failed to connect to vault.example.test port 8000: Connection refused\n")
    (tmp_path / "last-success").write_text("2026-11-28T03:17:00-03:00\n")
    (tmp_path / "var/run").mkdir(parents=True)
    (tmp_path / "var/run/reboot-required").write_text("*** System restart required ***\n")
    found = doctor.check(make(tmp_path), fake, NOW, root=str(tmp_path))
    lines = found.lines()
    assert found.failed
    assert "FAIL  containers: n8n (Restarting (1) 4 seconds ago) -- fix: mottivme logs n8n, then mottivme restart-n8n" in lines
    assert ("FAIL  Caddyfile: Error: adapting config using caddyfile: unknown directive: revers_proxy -- fix: "
            "mottivme deploy") in lines
    assert ("FAIL  certificate: n8n.example.test: 14 days left, past its renewal point -- fix: mottivme logs caddy: "
            "renewal is failing (DNS of N8N_HOST, ports 80/443)") in lines
    assert any(x.startswith("FAIL  last backup: 78 h ago -- fix: mottivme backup-now") for x in lines)
    assert "WARN  reboot: required (a kernel or library update) -- fix: reboot in a maintenance window" in lines
    assert any(x.startswith("FAIL  firewall: table inet mottivme_fw not loaded") for x in lines)
    assert ("FAIL  backup vault: its REST server does not answer (curl: (7) Failed to connect to vault.example.test "
            "port 8000: Connection refused) -- fix: on the vault: systemctl status restic-rest-server; then "
            "mottivme deploy") in lines
    assert ("FAIL  sshd: allows passwordauthentication, permitrootlogin yes -- fix: mottivme deploy "
            "(templates/sshd-hardening.conf.j2)") in lines


def test_the_exit_status_is_1_only_for_a_failure(tmp_path, capsys):
    fake = healthy(tmp_path)
    assert cli.main(["mottivme-host", "doctor"], runner=fake, settings=make(tmp_path)) in (0, 1)
    out = capsys.readouterr().out
    assert "ok    containers: caddy, n8n, postgres: running and healthy" in out
    fake.on("docker ps", stdout="")
    assert cli.main(["mottivme-host", "doctor"], runner=fake, settings=make(tmp_path)) == 1
    assert "FAIL  containers: none of the stack exists -- fix: mottivme deploy" in capsys.readouterr().out


def test_a_secret_within_a_week_of_90_days_is_a_warning_with_its_fix(tmp_path):
    from mottivme_host import secret_age

    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=pg-value-123\n")
    s = settings.from_dict({"stack_dir": str(tmp_path), "secret_ages": str(tmp_path / "lib" / "ages.json")})
    secret_age.refresh(s, NOW - dt.timedelta(days=84))
    found = doctor.check(s, healthy(tmp_path), NOW, root=str(tmp_path))
    assert ("WARN  secret age: POSTGRES_PASSWORD 84 days old (SOP 05: rotate every 90) -- fix: mottivme "
            "rotate-secrets") in found.lines()
    assert not found.failed  # a warning, not a failure
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=rotated-value-456\n")  # rotated
    secret_age.refresh(s, NOW)
    assert "ok    secret age: POSTGRES_PASSWORD 0 days old (SOP 05: rotate every 90)" in \
        doctor.check(s, healthy(tmp_path), NOW, root=str(tmp_path)).lines()
