"""The on-call console `mottivme`: every runbook listed with its purpose, per-command help, strict
options, values passed exactly as typed; and the pyinfra form's own strictness (runbooks/_args.py)."""

import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Context

from mottivme_console import catalog, program
from runbooks import _args
from tasks import groupdata
from tasks.groupdata import Data
from tests.helpers import ROOT, images_lock, run_runbook

RUNBOOK_FILES = sorted(p.stem for p in (ROOT / "runbooks").glob("*.py") if not p.name.startswith("_"))


def mottivme(*args):
    return subprocess.run([sys.executable, "-m", "mottivme_console.program", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_mottivme_alone_lists_every_runbook_with_its_purpose():
    r = mottivme()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for name in RUNBOOK_FILES:
        line = next((x for x in lines if x.split()[:1] == [name.replace("_", "-")]), None)
        assert line, f"runbooks/{name}.py is not listed:\n{r.stdout}"
        assert len(line.split()) > 2, f"no purpose for {name}: {line!r}"
    assert any(x.split()[:1] == ["deploy"] for x in lines)


def test_help_of_a_runbook_shows_its_options_with_defaults_and_an_example():
    r = mottivme("restore", "--help")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "--snapshot=STRING latest, a snapshot id" in text and "(default: latest)" in text
    assert "--from=STRING auto (local, then off-host), local or offsite (default: auto)" in text
    assert "Example: mottivme restore --snapshot latest" in text


@pytest.mark.parametrize("args,expected", [
    (["restore", "--snaphsot", "latest"], "No idea what '--snaphsot' is! Did you mean --snapshot? "
                                          "`mottivme restore --help` lists its options"),
    (["restor"], "No idea what 'restor' is! Did you mean restore?"),
    (["restore", "--snapshot", "x;rm -rf /"], "mottivme restore: --snapshot 'x;rm -rf /' is not valid: latest, a snapshot id"),
    (["maintenance", "--minutes", "0"], "mottivme maintenance: --minutes '0' is not valid: minutes, 1-9999"),
    (["update", "--n8n", "2.42"], "mottivme update: --n8n '2.42' is not valid: an n8n version like 2.42.0"),
    (["update", "--n8n", "2.42.0"], "mottivme update: --n8n moves n8n only with --apply (the report alone: "
                                    "mottivme update)"),
])
def test_unknown_options_and_malformed_values_are_one_line_and_nothing_runs(args, expected):
    r = mottivme(*args)
    assert r.returncode != 0
    assert expected in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert "inventory:" not in r.stderr  # refused before pyinfra or the inventory ran


def test_values_reach_the_runbook_exactly_as_typed(monkeypatch):
    ran = []
    monkeypatch.setattr(program, "run", ran.append)
    ns, c = program.namespace(), Context()
    ns["restore"](c, snapshot="3e123456", from_="offsite", limit="n8n_servers")
    assert ran[-1] == [sys.executable, "-m", "pyinfra", "-y", "inventory.py", "runbooks/restore.py",
                       "--limit", "n8n_servers", "--data", "snapshot=3e123456", "--data", "from=offsite"]
    ns["dr-drill"](c, rebuild="wipe", i_know_this_is_production=True)
    assert ran[-1] == [sys.executable, "-m", "runbooks.dr_drill", "--rebuild", "wipe", "--i-know-this-is-production"]
    ns["deploy"](c, dry=True)
    assert ran[-1] == [sys.executable, "-m", "pyinfra", "inventory.py", "deploy.py", "--dry"]


def test_every_runbook_declares_literal_options_and_a_purpose():
    books = {rb.name: rb for rb in catalog.runbooks()}
    assert sorted(books) == RUNBOOK_FILES
    for rb in books.values():
        assert rb.summary and not rb.summary.startswith("`")
        for name, (default, pattern, explain) in rb.options.items():
            assert explain
            if default not in (False, ""):  # "" that fails the pattern: an option the runbook needs
                assert _args.re.fullmatch(pattern, default), f"{rb.name}: default of {name} fails its pattern"


def test_the_pyinfra_form_reads_values_as_typed():
    argv = ["pyinfra", "inventory.py", "runbooks/restore.py", "--data", "snapshot=3e123456", "--data=from=offsite",
            "--data", "tag=01234567"]
    assert _args.given(argv) == {"snapshot": "3e123456", "from": "offsite", "tag": "01234567"}
    spec = catalog.read(ROOT / "runbooks" / "restore.py").options
    assert _args.options(spec, argv[:6])["snapshot"] == "3e123456"  # pyinfra's host.data has inf here


def test_the_pyinfra_form_refuses_a_misspelled_key(capsys):
    spec = catalog.read(ROOT / "runbooks" / "restore.py").options
    with pytest.raises(SystemExit) as e:
        _args.options(spec, ["pyinfra", "--data", "snaphsot=2024-01-01"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("runbook: --data snaphsot is not an option of this runbook: did you mean snapshot?")
    # pyinfra's own host data keys stay allowed: group_data settings and connection keys
    assert _args.options(spec, ["pyinfra", "--data", "n8n_ready_timeout=60", "--data", "ssh_port=2222"])


def test_rotate_secrets_names_every_rotatable_secret():
    from tasks import rotation

    explain = catalog.read(ROOT / "runbooks" / "rotate_secrets.py").options["secrets"][2]
    assert all(name in explain for name in rotation.ROTATABLE)


def test_a_runbook_runs_on_its_groups_and_a_silent_monitor_is_a_warning(monkeypatch, capsys):
    from mottivme_console import remote

    inv = {"n8n_servers": [("n8n1", {})], "n8n_workers": [("w1", {}), ("w2", {})], "monitors": [("mon", {})],
           "backup_vault": [("vault", {})]}
    monkeypatch.setattr(remote, "inventory", lambda: inv)
    monkeypatch.setattr(remote, "answers", lambda name, data: "TimeoutError: timed out")
    ran = []
    monkeypatch.setattr(program, "run", ran.append)
    program.namespace()["restart-n8n"](Context())
    limits = [ran[-1][i + 1] for i, a in enumerate(ran[-1]) if a == "--limit"]
    assert limits == ["n8n1", "w1", "w2"]  # not the vault; the monitor did not answer
    assert "warning: the monitor mon does not answer (TimeoutError: timed out): no maintenance window" in \
        capsys.readouterr().err
    # a runbook of the monitor alone keeps it (its own failure says why)
    program.namespace()["health-check"](Context())
    assert [ran[-1][i + 1] for i, a in enumerate(ran[-1]) if a == "--limit"] == ["mon"]
    monkeypatch.setattr(remote, "answers", lambda name, data: None)
    program.namespace()["restart-n8n"](Context())
    assert [ran[-1][i + 1] for i, a in enumerate(ran[-1]) if a == "--limit"] == ["n8n1", "w1", "w2", "mon"]


@pytest.mark.parametrize("args,expected", [
    (["ssh", "n8n1", "restore"], "mottivme: one command at a time, not ssh and restore"),
    (["restore", "--snapshot", "latest", "backup-now"], "mottivme: one command at a time, not restore and backup-now"),
    (["--dry", "restore"], "mottivme: --dry is not an option of mottivme itself"),
    (["-e", "restart-n8n"], "mottivme: -e is not an option of mottivme itself"),
])
def test_nothing_runs_from_a_stray_word_or_one_of_invokes_own_flags(args, expected):
    r = mottivme(*args)
    assert r.returncode != 0 and expected in r.stderr, r.stderr
    assert "inventory:" not in r.stderr


def test_a_bare_word_is_the_commands_one_argument_and_an_option_value_may_look_like_a_flag(monkeypatch):
    calls = []
    monkeypatch.setattr(program.remote, "ssh", lambda server, command: calls.append(("ssh", server, command)))
    monkeypatch.setattr(program.remote, "logs", lambda *a: calls.append(("logs", *a)))
    for argv in (["mottivme", "ssh"], ["mottivme", "ssh", "n8n1"], ["mottivme", "ssh", "--command", "-- x"],
                 ["mottivme", "logs", "caddy", "--follow"], ["mottivme", "logs"]):
        program.main(argv)
    assert calls == [("ssh", None, None), ("ssh", "n8n1", None), ("ssh", None, "-- x"),
                     ("logs", "caddy", True, "100", None), ("logs", "n8n", False, "100", None)]


def test_a_refused_url_never_shows_its_password():
    r = mottivme("restore", "--target", "postgresql://postgres:s3cr3t pass@db.example.test/postgres")
    assert r.returncode == 2 and "s3cr3t" not in r.stderr and "postgresql://postgres:***@" in r.stderr


def test_host_keys_follow_openssh_and_the_known_hosts_file_is_only_appended(tmp_path):
    import paramiko

    from mottivme_console import remote

    known = tmp_path / "known_hosts"
    known.write_text("# kept\n@cert-authority *.example.test ssh-ed25519 AAAAC3Nza\n")
    key = paramiko.RSAKey.generate(1024)
    remote._policy("accept-new", str(known)).missing_host_key(paramiko.SSHClient(), "[n8n1.example.test]:2222", key)
    assert known.read_text().splitlines()[:2] == ["# kept", "@cert-authority *.example.test ssh-ed25519 AAAAC3Nza"]
    assert known.read_text().splitlines()[2] == f"[n8n1.example.test]:2222 ssh-rsa {key.get_base64()}"
    assert isinstance(remote._policy("yes", str(known)), paramiko.RejectPolicy)  # an unknown host is refused


def test_servers_are_picked_by_name_from_an_inventory_like_the_sandboxs():
    """The sandbox source also lists a `sandbox` group by names alone (for group_data/sandbox.py)."""
    from invoke.exceptions import Exit

    from mottivme_console import remote

    inv = {"n8n_servers": [("sbx-1", {"ssh_port": 2201})], "monitors": [("sbx-2", {})], "sandbox": ["sbx-1", "sbx-2"]}
    assert remote.pick(inv, None) == ("sbx-1", {"ssh_port": 2201})
    assert remote.pick(inv, "sbx-2") == ("sbx-2", {})
    with pytest.raises(Exit) as e:
        remote.pick(inv, "sbx-9")
    assert e.value.message == "mottivme: no server 'sbx-9' in the inventory: choose one of sbx-1, sbx-2"


def test_the_installed_console_script_works_from_any_directory(tmp_path):
    """`make venv` installs `mottivme` next to this interpreter; it finds the project from anywhere."""
    script = Path(sys.executable).parent / "mottivme"
    assert script.exists(), "run `make venv` (pip install -e .): it installs the console script"
    r = subprocess.run([str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "restore-drill" in r.stdout, r.stderr[-2000:]


def test_emergency_deploy_without_a_version_goes_to_group_datas(monkeypatch):
    """The pyinfra form with no --data n8n_version deploys the declared version (back after an emergency)."""
    group_data = Data(groupdata.load(), n8n_version="2.41.1", n8n_other_versions=["2.41.0"], n8n_ready_timeout=300)
    lock = group_data["images_lock"] = images_lock(group_data)
    ran = [op["command"] for op in run_runbook(monkeypatch, "emergency_deploy", {}, group_data)]
    # the host program pulls the images (n8n's, its runners') by the digests images.lock holds
    assert ran == [f"n8n-deploy-version 2.41.1 --digest {lock['docker.n8n.io/n8nio/n8n:2.41.1']} "
                   f"--runners-digest {lock['n8nio/runners:2.41.1']} --timeout 300"]
    ran = run_runbook(monkeypatch, "emergency_deploy", {"n8n_version": "2.41.0", "timeout": "60"}, group_data)
    assert [op["command"] for op in ran] == [
        f"n8n-deploy-version 2.41.0 --digest {lock['docker.n8n.io/n8nio/n8n:2.41.0']} "
        f"--runners-digest {lock['n8nio/runners:2.41.0']} --timeout 60"]


def test_emergency_deploy_to_a_version_the_lock_lacks_stops_before_anything(monkeypatch, capsys):
    group_data = Data(groupdata.load(), n8n_version="2.41.1", n8n_ready_timeout=300)
    group_data["images_lock"] = images_lock(group_data)
    with pytest.raises(SystemExit) as e:
        run_runbook(monkeypatch, "emergency_deploy", {"n8n_version": "2.42.0"}, group_data)
    assert e.value.code == 2
    assert capsys.readouterr().err == (
        "mottivme-infra: n8n1.example.test: docker.n8n.io/n8nio/n8n:2.42.0 has no digest in images.lock: add its "
        "version to n8n_other_versions in group_data/all.py, `make images-add`, then run again. Nothing was changed.\n")


def test_the_pyinfra_form_refuses_bad_input_in_one_line_before_any_host(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("SBX_STATE", "MOTTIVME_TARGET")}
    env.update(MOTTIVME_ENV_FILE=str(tmp_path / "none.env"), SBX_STATE=str(tmp_path / "no-sandbox"))
    for data, expected in ((["--data", "tga=x"], "runbook: --data tga is not an option of this runbook: did you mean tag?"),
                           (["--data", "tag=Not Valid"], "runbook: --data tag='Not Valid' is not valid: a short lowercase tag")):
        r = subprocess.run([sys.executable, "-m", "pyinfra", "-y", "inventory.py", "runbooks/backup_now.py", *data],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2
        assert sum(x.startswith("runbook:") for x in r.stderr.splitlines()) == 1 and expected in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and "Connecting to hosts" not in r.stderr


def test_a_server_that_is_rebooting_is_waited_for_quietly(tmp_path):
    """While `mottivme update --reboot` waits for a server, a connection it drops is `None`, with
    nothing on the terminal (paramiko logs a traceback for each one otherwise)."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def drop():  # sshd going down: the connection is accepted and closed before any banner
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=drop, daemon=True).start()
    data = {"ssh_hostname": "127.0.0.1", "ssh_port": listener.getsockname()[1], "ssh_known_hosts_file": "/dev/null",
            "ssh_key": str(tmp_path / "none")}
    code = ("import sys, time; from mottivme_console import remote; "
            f"print(remote._boot_mark('n8n1', {data!r}, quiet=True)); time.sleep(0.5)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    listener.close()
    assert (r.returncode, r.stdout, r.stderr) == (0, "None\n", "")
