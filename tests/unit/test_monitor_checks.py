"""The check types against real local services: HTTP(S), heartbeats (and the ping server), postgres."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from mottivme_monitor import checks, clock, config, reasons, tlscert
from mottivme_monitor.store import Store
from mottivme_monitor.tokens import server_token
from sandbox.receivers import ROOT, Service, at, cli, dead_port, make_certs, write_config
from tasks import groupdata

CHANNELS = {"whatsapp": {"apprise": ""}, "email": {"apprise": ""}, "phone": {"apprise": ""}}


def check_of(**spec):
    """A check parsed by the real config loader (so defaults apply)."""
    spec.setdefault("name", "svc")
    cfg = config.parse({"db": "/unused", "www_dir": "/unused", "channels": CHANNELS, "checks": [spec]})
    return cfg.checks[0]


def http(**spec):
    spec.setdefault("timeout_seconds", 2)
    return checks.run_one(check_of(type="http", **spec))


# -- http ------------------------------------------------------------------------------

def test_http_status_and_connection_failures():
    with Service(status=200) as svc:
        result = http(url=svc.url())
        assert (result.ok, result.reason) == (True, "") and 0 <= result.ms < 2000
        svc.status = 503
        result = http(url=svc.url())
        assert (result.ok, result.reason) == (False, "HTTP 503")
        assert http(url=svc.url(), expect_status=[200, 503]).ok
    assert http(url=f"http://127.0.0.1:{dead_port()}/").reason == "connection refused"


def test_http_json_conditions():
    body = {"status": "ok", "db": {"latency_ms": 12}, "workers": [{"state": "idle"}], "version": "1.2"}
    with Service(body=body) as svc:
        url = svc.url()
        assert http(url=url, json=[{"path": "status", "equals": "ok"}, {"path": "workers.0.state", "in": ["idle", "busy"]},
                                   {"path": "db.latency_ms", "max": 20}, {"path": "db.latency_ms", "min": 1},
                                   {"path": "version", "exists": True}, {"path": "error", "exists": False}]).ok
        assert http(url=url, json=[{"path": "db.latency_ms", "max": 10}]).reason == "db.latency_ms is 12, expected <= 10"
        assert http(url=url, json=[{"path": "db.latency_ms", "min": 50}]).reason == "db.latency_ms is 12, expected >= 50"
        assert http(url=url, json=[{"path": "workers.0.state", "in": ["busy"]}]).reason == \
            "workers.0.state is 'idle', expected one of ['busy']"
        assert http(url=url, json=[{"path": "db.missing", "equals": 1}]).reason == "db.missing is missing"
        assert http(url=url, json=[{"path": "workers.3.state", "exists": True}]).reason == "workers.3.state is missing"
        svc.body = {"status": "error"}
        assert http(url=url, json=[{"path": "status", "equals": "ok"}]).reason == "status is 'error', expected 'ok'"
        svc.body = b"<html>not json</html>"
        assert http(url=url, json=[{"path": "status", "equals": "ok"}]).reason == "response is not JSON"


def railway_check(url: str):
    """group_data's railway-status check, as the deploy renders it, pointed at `url`."""
    spec = next(c for c in groupdata.load("all")["monitor_checks"] if c["name"] == "railway-status")
    assert spec["url"] == "${RAILWAY_STATUS_URL}"
    return check_of(**{**spec, "url": url, "timeout_seconds": 2})


def test_railway_status_every_component_inside_its_groups_operational():
    """SOP 05, DR scenario 1 ("check Railway's status"): the JSON behind status.railway.com, the shape
    Railway's docs point to (components, some of them groups of components; incidents). Railway
    itself is out of reach here: a loopback service serves that shape."""
    def page(builds="OPERATIONAL", group=None, inner=None):
        deployments = {"id": "g1", "name": "Deployments", "type": "group", "components": inner if inner is not None else [
            {"id": "c2", "name": "Builds", "status": builds}, {"id": "c3", "name": "Edge network", "status": "OPERATIONAL"}]}
        if group:
            deployments["status"] = group
        return {"components": [{"id": "c1", "name": "Dashboard", "status": "OPERATIONAL"}, deployments], "incidents": []}

    expected = "expected one of ['OPERATIONAL', 'operational']"
    with Service(body=page()) as svc:
        check = railway_check(svc.url())
        assert (check.severity, check.audience) == ("warning", "operators")
        assert (check.spec["max_response_ms"], check.spec["tls_min_days"]) == (None, None)  # their speed, their certificate
        assert checks.run_one(check).ok
        svc.body = page(builds="DEGRADED")   # inside a group: named by the group's name and its own
        assert checks.run_one(check).reason == f"components['Deployments']['Builds']: status is 'DEGRADED', {expected}"
        svc.body = page(group="MAJOR_OUTAGE")  # a group's own status counts where it has one
        assert checks.run_one(check).reason == f"components['Deployments']: status is 'MAJOR_OUTAGE', {expected}"
        svc.body = page(group="OPERATIONAL")
        assert checks.run_one(check).ok
        svc.body = page(inner=[])             # a group of nothing answers nothing
        assert checks.run_one(check).reason == "components['Deployments'] holds no item"
        svc.body = page(inner=[{"status": "PARTIAL_OUTAGE"}])
        assert checks.run_one(check).reason == f"components['Deployments'][0]: status is 'PARTIAL_OUTAGE', {expected}"
        svc.body = {"incidents": []}           # the shape moved (Railway documents it as-is): said, not passed
        assert checks.run_one(check).reason == "components is missing"
        svc.body = {"components": []}
        assert checks.run_one(check).reason == "components is [], expected a non-empty list"
        svc.body = {"components": [{"name": "API"}]}
        assert checks.run_one(check).reason == "components['API']: status is missing"
        # a remote name or value of any length: the reason (stored every round) stays short
        svc.body = {"components": [{"name": "N" * 5000, "status": "S" * 5000}]}
        reason = checks.run_one(check).reason
        assert len(reason) <= checks.REASON_MAX and reason.startswith("components['" + "N" * 60 + "']: status is 'SSS")
        svc.body = "[" * 100000 + "]" * 100000  # nested deeper than the parser goes
        assert checks.run_one(check).reason == "response is not JSON"
        svc.status = 502
        assert checks.run_one(check).reason == "HTTP 502"
    for reason in (f"components['Deployments']['Builds']: status is 'DEGRADED', {expected}",
                   "components['Deployments'] holds no item", "components is missing"):
        assert reasons.public(reason) == "unexpected response content", reason


def test_json_each_names_the_item_that_fails_and_is_checked_when_loaded():
    with Service(body={"workers": [{"state": "idle"}, {"state": "dead"}]}) as svc:
        each = {"path": "workers", "each": {"path": "state", "in": ["idle", "busy"]}}
        assert http(url=svc.url(), json=[each]).reason == "workers[1]: state is 'dead', expected one of ['idle', 'busy']"
        svc.body = {"workers": "none"}
        assert http(url=svc.url(), json=[each]).reason == "workers is 'none', expected a non-empty list"
    for bad, why in (({"path": "w", "each": {"path": "s", "in": "idle"}}, "json\\[0\\].each: 'in' needs a list"),
                     ({"path": "w", "each": {"state": "idle"}}, "json\\[0\\].each must be"),
                     ({"path": "w", "each": {"path": "s", "exists": True}, "descend": 1}, "'descend' must be a key"),
                     ({"path": "w", "equals": 1, "descend": "x"}, "json\\[0\\] must be")):
        with pytest.raises(config.ConfigError, match=why):
            check_of(type="http", url="http://127.0.0.1:1/", json=[bad])


def test_http_json_time_not_older_than():
    """The n8n servers watch the monitor: its status page's generated_at must be recent."""
    fresh, old = clock.iso(clock.real_now() - 30), clock.iso(clock.real_now() - 1500)
    with Service(body={"generated_at": fresh}) as svc:
        fresh_enough = [{"path": "generated_at", "max_age_seconds": 180}]
        assert http(url=svc.url(), json=fresh_enough).ok
        svc.body = {"generated_at": old}
        assert http(url=svc.url(), json=fresh_enough).reason == "generated_at is 25 min old, expected at most 3 min"
        svc.body = {"generated_at": clock.iso(clock.real_now() + 3600)}  # a clock ahead: not fresh for an hour
        assert http(url=svc.url(), json=fresh_enough).reason == "generated_at is 60 min in the future"
        svc.body = {"generated_at": "yesterday"}
        assert http(url=svc.url(), json=fresh_enough).reason == "generated_at is 'yesterday', expected an ISO 8601 time"
    with pytest.raises(config.ConfigError, match="'max_age_seconds' needs a number"):
        check_of(type="http", url="http://127.0.0.1:1/", json=[{"path": "generated_at", "max_age_seconds": "3m"}])


def test_http_response_time_limit_and_timeout():
    with Service(delay=0.15) as svc:
        result = http(url=svc.url(), max_response_ms=50)
        assert not result.ok and result.ms >= 150
        assert result.reason == f"took {result.ms} ms > 50 ms"
        assert http(url=svc.url(), max_response_ms=5000).ok
        result = http(url=svc.url(), timeout_seconds=0.1)
        assert (result.ok, result.reason) == (False, "timeout after 0.1 s")


# -- TLS -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    return {"short": make_certs(d, days=5 + 1 / 24, name="short"),
            "long": make_certs(d, days=60, name="long", hosts=("n8n.example.test",))}


def test_certificate_expiry_parser_agrees_with_cryptography(certs):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    for c in certs.values():
        cert = x509.load_pem_x509_certificate(open(c["cert"], "rb").read())
        assert tlscert.not_after(cert.public_bytes(Encoding.DER)) == cert.not_valid_after_utc.replace(microsecond=0)
    with pytest.raises(ValueError):
        tlscert.not_after(b"\x30\x03\x02\x01")


def test_tls_near_expiry_is_down_with_the_days_left(certs):
    short, long_ = certs["short"], certs["long"]
    with Service(certfile=short["cert"], keyfile=short["key"]) as svc:
        for verify in ({"tls_verify": False}, {"tls_verify": True, "ca_file": short["ca"]}):
            result = http(url=svc.url(), tls_min_days=14, **verify)
            assert (result.ok, result.reason) == (False, "certificate expires in 5 days (< 14)"), verify
        assert http(url=svc.url(), tls_min_days=3, tls_verify=False).ok
    with Service(certfile=long_["cert"], keyfile=long_["key"]) as svc:
        assert http(url=svc.url(), tls_min_days=14, tls_verify=False).ok
        assert http(url=svc.url(), tls_min_days=14, ca_file=long_["ca"]).ok
        untrusted = http(url=svc.url(), tls_min_days=14)
        assert not untrusted.ok and untrusted.reason.startswith("TLS certificate not trusted: ")
        assert http(url=svc.url(), ca_file="/nonexistent/ca.pem").reason == "ca_file not readable: /nonexistent/ca.pem"


def test_resolve_connects_to_another_address_keeping_host_sni_and_verification(certs):
    long_ = certs["long"]
    with Service(certfile=long_["cert"], keyfile=long_["key"]) as svc:
        url = f"https://n8n.example.test:{svc.port}/healthz"
        result = http(url=url, resolve="127.0.0.1", ca_file=long_["ca"], tls_min_days=14)
        assert (result.ok, result.reason) == (True, "")
        assert svc.hosts[-1] == f"n8n.example.test:{svc.port}"
    with Service() as plain:
        assert http(url=f"http://n8n.example.test:{plain.port}/", resolve="127.0.0.1").ok
        assert plain.hosts[-1] == f"n8n.example.test:{plain.port}"


# -- heartbeats -------------------------------------------------------------------------

def heartbeat(store, now, watched_since=0, **spec):
    spec.setdefault("max_age_minutes", 15)
    check = check_of(type="heartbeat", **spec)
    return checks.check_heartbeat(dict(check.spec), store.latest_ping(check.name, now), now, watched_since)


def test_a_new_heartbeat_check_gets_its_max_age_of_grace(tmp_path):
    now = clock.parse_iso(at(0))
    with Store(str(tmp_path / "s.sqlite")) as store:
        fresh = heartbeat(store, now, watched_since=None, max_age_minutes=1560)
        assert fresh.ok and fresh.reason == "no ping yet (the first is due within 26 h)"
        assert heartbeat(store, now, watched_since=now - 25 * 3600, max_age_minutes=1560).ok
        late = heartbeat(store, now, watched_since=now - 27 * 3600, max_age_minutes=1560)
        assert not late.ok and late.reason == "never pinged"


def test_heartbeat_fresh_stale_never_value_and_failure(tmp_path):
    now = clock.parse_iso(at(0))
    with Store(str(tmp_path / "s.sqlite")) as store:
        assert heartbeat(store, now).reason == "never pinged"
        store.add_ping("svc", now - 10 * 60)
        assert heartbeat(store, now).ok
        assert heartbeat(store, now, max_age_minutes=1560).ok
        assert heartbeat(store, now + 27 * 3600, max_age_minutes=1560).reason == "no ping for 27 h 10 min (max 26 h)"
        assert heartbeat(store, now + 60, max_age_minutes=5).reason == "no ping for 11 min (max 5 min)"
        store.add_ping("svc", now - 60, value=91)
        assert heartbeat(store, now, max_value=85, unit="%", value_label="disk").reason == "disk at 91 % > 85 %"
        assert heartbeat(store, now, max_value=85, unit="%").reason == "svc at 91 % > 85 %"
        store.add_ping("disk-n8n1", now - 60, value=91)
        assert heartbeat(store, now, name="disk-n8n1", max_value=85, unit="%").reason == "disk at 91 % > 85 %"
        assert heartbeat(store, now, max_value=95, unit="%").ok
        store.add_ping("svc", now - 30, failed=True, reason="restic exited 1: repository locked")
        assert heartbeat(store, now).reason == "reported failure: restic exited 1: repository locked"
        store.add_ping("svc", now - 10, value=40)
        assert heartbeat(store, now, max_value=85).ok
        # a ping after `now` (the injected clock) is not seen yet
        assert heartbeat(store, now - 20).reason == "reported failure: restic exited 1: repository locked"


@pytest.fixture
def ping_server(tmp_path):
    checks_cfg = [{"name": "backup", "type": "heartbeat", "max_age_minutes": 1560},
                  {"name": "disk-n8n1", "type": "heartbeat", "max_age_minutes": 15, "max_value": 85, "unit": "%",
                   "value_label": "disk"},
                  {"name": "site", "type": "http", "url": "http://127.0.0.1:9/"},
                  {"name": "backup-n1", "type": "heartbeat", "max_age_minutes": 1560, "sender": "n1"},
                  {"name": "disk-n2", "type": "heartbeat", "max_age_minutes": 15, "max_value": 85, "sender": "n2"}]
    cfg = write_config(tmp_path, checks_cfg, CHANNELS)
    proc = subprocess.Popen([sys.executable, "-m", "mottivme_monitor", "--config", str(cfg), "serve",
                             "--listen", "127.0.0.1:0"], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line + proc.stderr.read()
        yield cfg, line.split()[-1].rstrip("/"), proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def call(url, data=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_serve_records_pings_and_rejects_bad_requests(ping_server):
    cfg_path, base, proc = ping_server
    assert call(f"{base}/healthz") == (200, "ok\n")
    assert call(f"{base}/ping/wrong-token/backup")[0] == 403
    assert call(f"{base}/ping/test-token/nope")[0] == 404
    assert call(f"{base}/ping/test-token/site")[0] == 404, "only heartbeat checks take pings"
    assert call(f"{base}/ping/test-token/disk-n8n1", data=b"lots")[0] == 400
    assert call(f"{base}/ping/test-token/backup") == (200, "ok\n")
    assert call(f"{base}/ping/test-token/disk-n8n1", data=b"91.5") == (200, "ok\n")
    assert call(f"{base}/ping/test-token/disk-n8n1?value=42")[0] == 200
    cfg = config.load(str(cfg_path))
    now = clock.real_now()
    with Store(cfg.db) as store:
        assert store.latest_ping("backup", now + 1).value is None
        assert store.latest_ping("disk-n8n1", now + 1).value == 42
        assert [r[0] for r in store.conn.execute("SELECT value FROM pings WHERE name='disk-n8n1' ORDER BY id")] == [91.5, 42]

    code, out = cli(cfg_path, "check", "--json")
    results = {r["name"]: r for r in json.loads(out)}
    assert results["backup"]["ok"] and results["disk-n8n1"]["ok"] and code == 1   # "site" is down

    assert call(f"{base}/ping/test-token/backup/fail", data=b"x" * 500)[0] == 200
    with Store(cfg.db) as store:
        ping = store.latest_ping("backup", clock.real_now() + 1)
        assert ping.failed and ping.reason == "x" * 300
    code, out = cli(cfg_path, "check", "--json")
    assert {r["name"]: r["reason"] for r in json.loads(out)}["backup"] == "reported failure: " + "x" * 300
    assert call(f"{base}/ping/test-token/backup", data=b"")[0] == 200
    assert {r["name"]: r["ok"] for r in json.loads(cli(cfg_path, "check", "--json")[1])}["backup"]

    proc.terminate()
    proc.wait(timeout=10)
    log = proc.stderr.read()
    assert "/ping/***/backup" in log and "test-token" not in log


def test_a_server_pings_its_own_checks_only_with_its_own_token(ping_server):
    cfg_path, base, proc = ping_server
    code, out = cli(cfg_path, "token", "n1")      # what the operator reads on the monitor host
    n1, n2 = out.strip(), server_token("test-token", "n2")
    assert code == 0 and n1 == server_token("test-token", "n1") and len(n1) == 48
    assert len({n1, n2, "test-token"}) == 3

    assert call(f"{base}/ping/{n1}/backup-n1") == (200, "ok\n")
    assert call(f"{base}/ping/{n2}/disk-n2?value=40") == (200, "ok\n")
    assert call(f"{base}/ping/{n1}/disk-n2?value=99")[0] == 403, "n1's token: not n2's checks"
    assert call(f"{base}/ping/{n2}/backup-n1/fail", data=b"faked failure")[0] == 403
    assert call(f"{base}/ping/test-token/backup-n1")[0] == 403, "the master token: not a server's check"
    assert call(f"{base}/ping/test-token/backup-n1/fail", data=b"faked")[0] == 403
    assert call(f"{base}/ping/{n1}/backup")[0] == 403, "a check without sender takes the master token only"
    assert call(f"{base}/ping/test-token/backup") == (200, "ok\n")
    # a token that is nobody's (another master, a server with no checks) learns nothing about names
    for nobody in (server_token("other-master", "n1"), server_token("test-token", "n3"), n1[:-1]):
        assert [call(f"{base}/ping/{nobody}/{name}")[0] for name in ("backup-n1", "nope", "site")] == [403] * 3
    assert call(f"{base}/ping/{n1}/nope")[0] == 404

    now = clock.real_now() + 1
    with Store(config.load(str(cfg_path)).db) as store:
        assert [r[0] for r in store.conn.execute("SELECT name FROM pings ORDER BY id")] == [
            "backup-n1", "disk-n2", "backup"]
        assert not store.latest_ping("backup-n1", now).failed and store.latest_ping("disk-n2", now).value == 40
    proc.terminate()
    proc.wait(timeout=10)
    log = proc.stderr.read()
    assert "/ping/***/backup-n1" in log and n1 not in log and n2 not in log and "test-token" not in log


# -- postgres --------------------------------------------------------------------------

def test_postgres_connection_refused_is_a_clear_reason():
    port = dead_port()
    check = check_of(type="postgres", dsn=f"postgresql://monitor:s3cret-pw@127.0.0.1:{port}/postgres",
                     timeout_seconds=2)
    result = checks.run_one(check)
    assert (result.ok, result.reason) == (False, f"connection refused (127.0.0.1 port {port})")
    assert checks.run_one(check_of(type="postgres", dsn="")).reason == "dsn is empty (is its environment variable set?)"


def test_a_capacity_check_names_its_value_and_its_limit():
    """A postgres check with max_value (a capacity check: the query's one number) says what is over
    and by how much; its threshold, unit and label come from the configuration."""
    spec = dict(check_of(type="postgres", name="supabase-size", dsn="postgresql://x@127.0.0.1/db",
                         query="select 1", max_value=400, unit="MB", value_label="database size").spec)
    assert checks.over_max(spec, 399.5) == ""
    assert checks.over_max(spec, 400) == ""
    assert checks.over_max(spec, 412) == "database size at 412 MB > 400 MB"
    assert checks.over_max(spec, None) == "no value (max 400 MB)"
    plain = dict(check_of(type="postgres", name="leads-per-day", dsn="x", max_value=100).spec)
    assert checks.over_max(plain, 130) == "leads per day at 130 > 100"   # label: the check's name, in words
    assert checks.over_max(dict(check_of(type="postgres", dsn="x").spec), 10**9) == ""  # no limit: a plain check
    assert checks.over_max(plain, 1234567.0) == "leads per day at 1234567 > 100"   # never 1.23457e+06
    assert checks.over_max(spec, 412.25) == "database size at 412.2 MB > 400 MB"
    assert checks.over_max(spec, float("nan")) == "no value (max 400 MB)"          # NaN is not within a limit


def test_a_capacity_limit_must_be_a_number():
    with pytest.raises(config.ConfigError, match=r"'max_value' must be a number"):
        check_of(type="postgres", dsn="x", max_value="400")


def test_checks_run_concurrently():
    with Service(delay=1.0) as a, Service(delay=1.0) as b, Service(delay=1.0) as c:
        cks = [check_of(name=n, type="http", url=s.url()) for n, s in (("a", a), ("b", b), ("c", c))]
        start = time.monotonic()
        results = checks.run_all(cks, {}, clock.real_now())
        assert time.monotonic() - start < 2.5      # one after the other: 3 s (a margin for a busy machine)
        assert list(results) == ["a", "b", "c"] and all(r.ok for r in results.values())
