"""The real Runner: a command another thread stops (`started`), as n8n-restore's early fetch is."""

from __future__ import annotations

import threading

from mottivme_host.run import Runner


def test_a_started_command_can_be_stopped_from_another_thread(tmp_path):
    log = open(tmp_path / "log", "w")
    got = []
    t = threading.Thread(target=lambda: got.append(Runner().run(
        ["sh", "-c", "echo going >&2; exec sleep 30"], stdout=log, log=log, check=False, started=running.append)))
    running: list = []
    t.start()
    for _ in range(200):  # started, and the command has written its line
        if running and (tmp_path / "log").read_text():
            break
        t.join(0.05)
    running[0].terminate()
    t.join(10)
    assert not t.is_alive(), "the command was not stopped"
    assert got[0].returncode == -15  # SIGTERM
    log.close()
    assert (tmp_path / "log").read_text() == "going\n"


def test_a_started_command_gets_its_input_and_gives_its_output():
    seen = []
    r = Runner().run(["tr", "a-z", "A-Z"], input="restic\n", started=seen.append)
    assert r.ok and r.stdout == "RESTIC\n" and len(seen) == 1
