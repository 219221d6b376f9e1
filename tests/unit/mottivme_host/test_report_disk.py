"""mottivme-report-disk: disk, memory and CPU percentages (and queue mode's waiting executions) to
the monitor, URLs on curl's stdin only."""

import dataclasses
import subprocess

from mottivme_host import cli, common, report_disk, settings
from tests.helpers import FakeRunner, posted

DISK, MEM = "https://status.test/ping/tok-secret/disk-v1", "https://status.test/ping/tok-secret/memory-v1"
CPU, QUEUE = "https://status.test/ping/tok-secret/cpu-v1", "https://status.test/ping/tok-secret/queue-v1"


def make(tmp_path, **reports):
    return settings.from_dict({"reports": {"disk_path": str(tmp_path), "curl_args": ["-k"],
                                           "cpu_sample": str(tmp_path / "cpu-sample"), **reports}})


def stat(path, user, system, idle, iowait=0):  # /proc/stat with these cpu totals
    path.write_text(f"cpu  {user} 0 {system} {idle} {iowait} 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
    return str(path)


def test_cpu_is_the_time_busy_since_the_last_report(tmp_path):
    """Busy since the previous report's totals (kept in a file), I/O wait counted as idle; with no
    usable previous report (the first one, a reboot, a damaged file) no CPU figure this time:
    a one-second peak is not SOP 05's "consistently over 80 %"."""
    sample, proc = str(tmp_path / "sub" / "cpu-sample"), tmp_path / "stat"
    assert report_disk.cpu_since_last(sample, stat(proc, 150, 50, 900)) is None      # first report
    # five minutes later: 600 of 1000 jiffies busy (200 of the idle ones were I/O wait)
    assert report_disk.cpu_since_last(sample, stat(proc, 550, 250, 1100, iowait=200)) == 60
    (tmp_path / "sub" / "cpu-sample").write_text("garbage")
    assert report_disk.cpu_since_last(sample, stat(proc, 600, 300, 1200, iowait=200)) is None
    assert report_disk.cpu_since_last(sample, stat(proc, 0, 0, 10)) is None         # counters reset: a reboot
    assert report_disk.busy_percent((10, 5), (10, 5)) is None


def test_the_first_report_skips_cpu_and_an_unwritable_sample_stops_no_report(tmp_path, monkeypatch):
    monkeypatch.setattr(report_disk, "memory_percent", lambda: 42)
    # /proc/stat as two reports five minutes apart see it (the real one may not move between two calls)
    times = iter([(10000, 9000), (40000, 38700), (70000, 67400)])  # (total, idle): 1 % busy
    monkeypatch.setattr(report_disk, "cpu_times", lambda stat="/proc/stat": next(times))
    fake = FakeRunner()
    s = make(tmp_path, disk_url=DISK, memory_url=MEM, cpu_url=CPU)
    assert cli.main(["mottivme-report-disk"], runner=fake, settings=s) == 0
    assert [c.kw["input"].splitlines()[0] + "\n" for c in fake.calls] == [common.curl_config(DISK), common.curl_config(MEM)]
    assert cli.main(["mottivme-report-disk"], runner=fake, settings=s) == 0   # the next one has a sample
    cpu = [c for c in fake.calls if c.kw["input"].startswith(common.curl_config(CPU).strip())]
    assert len(cpu) == 1 and int(posted(cpu[0])) == 1
    # a disk too full to save the sample: the disk report (the one that pages) still goes
    fake = FakeRunner()
    s = make(tmp_path, disk_url=DISK, memory_url=MEM, cpu_url=CPU, cpu_sample="/proc/no-such-dir/cpu-sample")
    assert cli.main(["mottivme-report-disk"], runner=fake, settings=s) == 0
    assert len(fake.calls) == 2


def test_queue_mode_reports_the_waiting_executions_read_inside_redis(tmp_path, monkeypatch):
    monkeypatch.setattr(report_disk, "memory_percent", lambda: 42)
    fake = FakeRunner()
    fake.on("redis-cli", stdout="7\n")
    s = make(tmp_path, disk_url=DISK, memory_url=MEM, queue_url=QUEUE)
    assert cli.main(["mottivme-report-disk"], runner=fake, settings=s) == 0
    redis = next(c for c in fake.calls if "redis-cli" in c.cmd)
    assert "exec -T redis" in redis.cmd and 'REDISCLI_AUTH="$REDIS_PASSWORD"' in redis.cmd  # the container's own
    assert "LLEN bull:jobs:wait" in redis.cmd
    sent = {c.kw["input"].splitlines()[0] + "\n": posted(c) for c in fake.calls if c.argv[0] == "curl"}
    assert sent[common.curl_config(QUEUE)] == "7"


def test_an_unreadable_queue_is_named_and_the_other_reports_still_go(tmp_path, capsys):
    fake = FakeRunner()
    fake.on("redis-cli", rc=1, stderr="service \"redis\" is not running\n")
    s = make(tmp_path, disk_url=DISK, memory_url=MEM, queue_url=QUEUE)
    assert cli.main(["mottivme-report-disk"], runner=fake, settings=s) != 0
    assert sum(c.argv[0] == "curl" for c in fake.calls) == 2        # disk and memory sent
    err = capsys.readouterr().err
    assert "cannot read n8n's queue from Redis: service \"redis\" is not running" in err
    assert "mottivme-host compose ps" in err


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


def test_a_queue_that_does_not_answer_holds_no_other_report(tmp_path, capsys):
    """A hung Docker: the Redis read gives up after its timeout, the other reports go."""
    def hang(argv, kw):
        raise subprocess.TimeoutExpired(argv, report_disk.QUEUE_TIMEOUT)

    fake = FakeRunner()
    fake.on("redis-cli", call=hang)
    s = make(tmp_path, disk_url=DISK, memory_url=MEM, queue_url=QUEUE)
    assert cli.main(["mottivme-report-disk"], runner=fake, settings=s) != 0
    assert sum(c.argv[0] == "curl" for c in fake.calls) == 2
    assert f"no answer in {report_disk.QUEUE_TIMEOUT} s (is Docker answering? docker ps)" in capsys.readouterr().err
