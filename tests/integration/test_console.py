"""The on-call console on the sandbox: status, psql, logs, a runbook through it, strict input on
both forms, and a restore over Supabase named by its source (no URL, no password typed)."""

import re
import subprocess

import pytest

from sandbox.core import SANDBOX_N8N_HOST
from tests.helpers import SUPABASE_PSQL, backup_now, run_mottivme, run_pyinfra, supabase_checksums

pytestmark = pytest.mark.usefixtures("seeded")


def test_status_shows_every_n8n_server_version_containers_and_last_backup(n8n_server, sandbox_env):
    backup_now(sandbox_env, tag="console-status")
    r = run_mottivme(["status"], sandbox_env)
    out = r.stdout
    assert f"== {n8n_server.name} (n8n_servers)" in out, r.stderr[-2000:]
    assert re.search(r"^n8n 2\.41\.\d$", out, re.M) and re.search(r"^n8n: Up .*\(healthy\)$", out, re.M)
    assert re.search(r"^last backup: \S+ \(0\.\d h ago\), [0-9.]+ MB, sources n8n, supabase$", out, re.M), out
    assert r.returncode == (1 if re.search(r"^!", out, re.M) else 0)


def test_psql_on_both_databases_and_logs(n8n_server, sandbox_env):
    r = run_mottivme(["psql", "n8n", "--command", "select count(*) > 0 from workflow_entity"], sandbox_env)
    assert r.returncode == 0 and re.search(r"^ t$", r.stdout, re.M), r.stdout + r.stderr
    r = run_mottivme(["psql", "supabase", "--command", "select count(*) from rag_documents"], sandbox_env)
    assert r.returncode == 0 and re.search(r"^\s+\d+$", r.stdout, re.M), r.stdout + r.stderr
    r = run_mottivme(["psql", "nope"], sandbox_env)
    assert r.returncode == 2 and "no database 'nope' on this server: choose one of n8n, supabase" in r.stdout + r.stderr
    r = run_mottivme(["logs", "n8n", "--tail", "5"], sandbox_env)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr[-2000:]


def test_a_runbook_through_the_console_and_strict_input_on_both_forms(n8n_server, sandbox_env):
    r = run_mottivme(["backup-now", "--tag", "console"], sandbox_env)
    assert r.returncode == 0 and re.search(r"backup ok: snapshot [0-9a-f]{8}", r.stdout + r.stderr), r.stderr[-3000:]
    before = n8n_server.sh("wc -l < /var/log/n8n-backup.log")
    r = run_mottivme(["backup-now", "--tga", "x"], sandbox_env)
    assert r.returncode == 2 and "No idea what '--tga' is! Did you mean --tag?" in r.stderr
    r = run_pyinfra(["-y", "inventory.py", "runbooks/backup_now.py", "--data", "tga=x"], sandbox_env)
    assert r.returncode == 2 and "runbook: --data tga is not an option of this runbook: did you mean tag?" in r.stderr
    assert n8n_server.sh("wc -l < /var/log/n8n-backup.log") == before  # nothing ran


def test_restore_over_supabase_named_by_its_source(supabase_host, sandbox_env):
    before = supabase_checksums(supabase_host)
    backup_now(sandbox_env, tag="console-restore")
    supabase_host.sh(f"echo \"insert into agent_metrics (agent, metric, value) values ('later', 'x', 1)\" | {SUPABASE_PSQL}")
    assert supabase_checksums(supabase_host) != before
    r = run_mottivme(["restore", "--sources", "supabase", "--target", "supabase", "--confirm-overwrite", "yes",
                      "--safety-snapshot", "no"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "supabase restored" in out
    assert supabase_checksums(supabase_host) == before
    assert "postgresql://" not in out


def test_doctor_finds_what_is_wrong_with_its_fix(n8n_server, vault, sandbox_env):
    # a settled server (run alone, this test comes right after the seeding restarted n8n)
    n8n_server.sh("for i in $(seq 120); do [ -z \"$(docker ps --filter health=starting -q)\" ] && exit 0; sleep 1; done; "
                  "exit 1")
    r = run_mottivme(["doctor"], sandbox_env)
    out = r.stdout
    assert f"== {n8n_server.name} (n8n_servers)" in out, r.stderr[-2000:]
    for line in ("ok    secret rotation: none pending", "ok    compose file: valid", "ok    Caddyfile: valid",
                 "ok    firewall: table inet mottivme_fw loaded", "ok    sshd: keys only",
                 "ok    backup vault: its REST server answers with the trusted certificate"):
        assert line in out, out
    assert re.search(r"^ok    containers: caddy, n8n, n8n-runners, postgres: running and healthy$", out, re.M), out
    # the certificate the sandbox's ACME CA issued for N8N_HOST
    assert re.search(rf"^ok    certificate: {re.escape(SANDBOX_N8N_HOST)}: [0-9.]+ (h|days) left$", out, re.M), out
    assert r.returncode == (1 if "FAIL" in out else 0)
    n8n_server.sh("nft delete table inet mottivme_fw")
    try:
        r = run_mottivme(["doctor"], sandbox_env)
        assert r.returncode == 1
        assert ("FAIL  firewall: table inet mottivme_fw not loaded -- fix: systemctl restart mottivme-firewall, "
                "or mottivme deploy") in r.stdout
    finally:
        n8n_server.sh("systemctl restart mottivme-firewall")
    vault.sh("systemctl stop restic-rest-server")  # the vault's SSH answers, its REST server does not
    try:
        out = n8n_server.sh("mottivme-host doctor", check=False)
        assert re.search(r"^FAIL  backup vault: its REST server does not answer \(curl: \(7\) .+\) -- fix: on the "
                         r"vault: systemctl status restic-rest-server; then mottivme deploy$", out, re.M), out
    finally:
        vault.sh("systemctl start restic-rest-server")


def test_update_reports_what_the_registry_offers_and_each_servers_images_packages_and_reboot(n8n_server, sbx,
                                                                                              sandbox_env):
    """`mottivme update` (SOP 05's monthly update): n8n publishes a newer version (here: 2.42.0,
    pushed to the sandbox's registry, which keeps it), a kernel upgrade asks for a reboot."""
    from tasks import groupdata

    services = sbx.ssh_args(sbx.load()["services"]["server"])
    subprocess.run(services + ["skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "
                               "docker://127.0.0.1/n8nio/n8n:2.41.1 docker://127.0.0.1/n8nio/n8n:2.42.0"],
                   check=True, capture_output=True, timeout=300)
    n8n_server.sh("echo '*** System restart required ***' > /run/reboot-required && "
                  "echo linux-image-amd64 > /run/reboot-required.pkgs")
    try:
        r = run_mottivme(["update"], sandbox_env)
    finally:
        n8n_server.sh("rm -f /run/reboot-required /run/reboot-required.pkgs")
    out = r.stdout
    assert r.returncode == 0, out + r.stderr[-2000:]
    version = groupdata.load()["n8n_version"]
    assert re.search(rf"^UPDATE  n8n: group data runs {version}; the registry offers (\S+, )*2\.42\.0 -- fix: "
                     r'n8n_version = "2.42.0" in group_data/all.py', out, re.M), out
    assert f"== {n8n_server.name} (n8n_servers)" in out
    server = out.split(f"== {n8n_server.name} (n8n_servers)")[1].split("==")[0]
    assert f"ok    n8n: docker.n8n.io/n8nio/n8n:{version} as images.lock pins it" in server, server
    assert re.search(r"^ok    caddy: caddy:\S+ as images.lock pins it$", server, re.M), server
    assert "UPDATE  reboot: required (by linux-image-amd64) -- fix: in a maintenance window" in server
    assert re.search(r"^(ok    packages: none pending|UPDATE  packages: \d+ pending \(\d+ security\))", server, re.M)
    assert re.search(r"^mottivme update: \d+ update\(s\) waiting$", out, re.M)


def test_update_reboots_the_servers_that_need_it_one_at_a_time_in_a_maintenance_window(n8n_server, monitor, vault,
                                                                                          sandbox_env):
    """`mottivme update --reboot`: only the server whose upgrades asked for a reboot goes down,
    with the monitor's maintenance window open, and it is back on a new boot with its services
    before the command ends."""
    for other in (n8n_server, monitor):  # (an upgrade during the deploy may have asked too)
        other.sh("rm -f /run/reboot-required /run/reboot-required.pkgs")
    vault.sh("echo '*** System restart required ***' > /run/reboot-required && echo libc6 > /run/reboot-required.pkgs")
    pid1 = vault.sh("cut -d' ' -f22 /proc/1/stat").strip()
    r = run_mottivme(["update", "--reboot"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert f"== reboot {vault.name} (backup_vault)" in out and out.count("== reboot ") == 1, out[-4000:]
    done = re.search(rf"^ok    reboot: {vault.name} back in \d+ s, systemd running, every container that ran before "
                     "runs again$", out, re.M)
    assert done, out[-4000:]
    # the window's runbook runs (pyinfra writes to stderr): opened, then closed
    assert r.stderr.index("maintenance start (*)") < r.stderr.index("maintenance end (*)"), r.stderr[-4000:]
    assert "Traceback" not in out and "Exception" not in out, out[-4000:]  # the server down is no error
    assert vault.sh("cut -d' ' -f22 /proc/1/stat").strip() != pid1  # a new boot
    assert vault.sh("test -e /run/reboot-required && echo still || echo gone").strip() == "gone"
    assert vault.sh("systemctl is-active restic-rest-server").strip() == "active"
