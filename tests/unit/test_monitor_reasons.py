"""The published reasons (status page, status.json, alerts): the checks' own shapes pass as they
are; anything written freely (libpq, a response body, a server's failure text) only by its kind."""

import socket

import pytest

from mottivme_monitor import checks
from mottivme_monitor.checks import Ping
from mottivme_monitor.reasons import public

HB = {"max_age_minutes": 1560, "max_value": 82, "unit": "days", "value_label": "oldest secret"}


@pytest.mark.parametrize("reason", [
    checks._describe_error(TimeoutError(), 10),
    checks._describe_error(ConnectionRefusedError(), 10),
    checks._describe_error(ConnectionResetError(), 10),
    "HTTP 503", "response is not JSON", "took 5100 ms > 5000 ms", "timeout after 10 s (check hung)",
    "certificate expires in 9 days (< 14)", "certificate expired 3 days ago", "certificate expired today",
    "password authentication failed", "timeout connecting to the database",
    checks.check_heartbeat(HB, Ping(1000, 85, False, ""), 1060).reason,
    checks.check_heartbeat({**HB, "max_value": 85, "unit": "%", "value_label": "disk"}, Ping(1000, 91, False, ""),
                           1060).reason,
    checks.check_heartbeat(HB, Ping(1000, None, False, ""), 1060 + 94000).reason,
    checks.check_heartbeat(HB, None, 5000, 1000).reason,
    checks.check_heartbeat(HB, None, 10 ** 6, 1).reason,
    checks.check_heartbeat(HB, Ping(1000, None, False, ""), 1060).reason,
    # capacity (SQL values, the queue): numbers and the configured label/unit
    checks.over_max({"max_value": 400, "unit": "MB", "value_label": "database size"}, 412.3),
    checks.over_max({"max_value": 100, "unit": "leads", "value_label": "leads per day"}, 157),
    checks.over_max({"max_value": 100, "unit": "executions", "value_label": "queue"}, 130),
    checks.over_max({"max_value": 2, "unit": "queries", "value_label": "slow queries"}, None),
])
def test_the_checks_own_shapes_are_published_as_they_are(reason):
    assert reason and public(reason) == reason


@pytest.mark.parametrize("reason,kind", [
    ("TLS certificate not trusted: self-signed certificate in chain for db.internal", "TLS certificate not trusted"),
    ("TLS error: [SSL] wrong version number at 10.0.0.5", "TLS error"),
    (checks._describe_error(socket.gaierror(-2, "Name or service not known"), 10), "DNS lookup failed"),
    (checks._pg_reason(Exception('connection to server at "10.1.2.3", port 5432 failed: Connection refused')),
     "connection refused"),
    (checks._pg_reason(Exception('invalid dsn: missing "=" after "p%40ss" in connection info string')),
     "check failed"),
    (checks.check_heartbeat(HB, Ping(1000, None, True, "n8n-backup on n8n1 failed: disk /var full"), 1060).reason,
     "reported failure"),
    (checks.json_condition_failure({"status": "db token xyz"}, {"path": "status", "in": ["ok"]}),
     "unexpected response content"),
    ("dsn is empty (is its environment variable set?)", "not configured"),
    ("monitor error: KeyError: 'x'", "monitor error"),
    ("the query gave 'db.internal:5432', not a number (max 100)", "capacity query error"),
    ("", ""),
])
def test_free_text_is_published_by_its_kind_only(reason, kind):
    assert public(reason) == kind


def test_the_operators_page_hides_urls_passwords_tokens_and_authorization_values():
    from mottivme_monitor.reasons import scrub

    assert scrub("connection to postgresql://postgres:hunter22@db:5432/p failed: password=hunter22") == \
        "connection to <url> failed: password=<hidden>"
    assert scrub("access_token=abc123 client_secret=xyz MONITOR_PING_TOKEN=tok") == \
        "access_token=<hidden> client_secret=<hidden> MONITOR_PING_TOKEN=<hidden>"
    assert scrub("Authorization: Bearer eyJabc.def") == "Authorization: <hidden>"
    assert scrub("sent Bearer eyJabc.def") == "sent Bearer <hidden>"
    assert scrub('X-Api-Key: k123 next; password="a b" rest') == "X-Api-Key=<hidden> next; password=<hidden> rest"
    assert scrub("HTTP 503: token expired") == "HTTP 503: token expired"  # words alone are not values
