"""mottivme-report-disk: disk and memory percentages to the monitor, URLs on curl's stdin only."""

import dataclasses

from mottivme_host import cli, common, report_disk, settings
from tests.helpers import FakeRunner, posted

DISK, MEM = "https://status.test/ping/tok-secret/disk-v1", "https://status.test/ping/tok-secret/memory-v1"


def make(tmp_path, **reports):
    return settings.from_dict({"reports": {"disk_path": str(tmp_path), "curl_args": ["-k"], **reports}})


def test_memory_in_use_is_what_the_kernel_cannot_hand_out_rounded_up(tmp_path):
    f = tmp_path / "meminfo"
    f.write_text("MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    4000001 kB\n")
    assert report_disk.memory_percent(str(f)) == 75
    f.write_text("MemTotal:       0 kB\n")
    assert report_disk.memory_percent(str(f)) == 0


def test_both_reports_go_to_their_own_heartbeat_with_the_url_on_stdin(tmp_path, monkeypatch):
    monkeypatch.setattr(report_disk, "memory_percent", lambda: 42)
    fake = FakeRunner()
    assert cli.main(["mottivme-report-disk"], runner=fake, settings=make(tmp_path, disk_url=DISK, memory_url=MEM)) == 0
    sent = [(c.kw["input"].splitlines()[0] + "\n", posted(c)) for c in fake.calls]
    assert sent == [(common.curl_config(DISK), str(report_disk.used_percent(str(tmp_path)))),
                    (common.curl_config(MEM), "42")]
    assert not any("tok-secret" in a for c in fake.calls for a in c.argv)


def test_a_refused_report_names_which_and_the_other_is_still_sent(tmp_path, capsys):
    fake = FakeRunner()
    fake.on(lambda cmd: True, rc=22, stderr="curl: (22) The requested URL returned error: 403\n", times=1)
    assert cli.main(["mottivme-report-disk"], runner=fake, settings=make(tmp_path, disk_url=DISK, memory_url=MEM)) != 0
    assert len(fake.calls) == 2
    assert "the monitor did not take the report (disk: curl: (22)" in capsys.readouterr().err


def test_without_a_monitor_nothing_is_sent(tmp_path):
    fake = FakeRunner()
    s = dataclasses.replace(make(tmp_path), reports=None)
    assert cli.main(["mottivme-report-disk"], runner=fake, settings=s) == 0 and fake.calls == []
