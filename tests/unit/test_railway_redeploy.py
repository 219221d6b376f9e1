"""`mottivme railway-redeploy` (runbooks/railway_redeploy.py) against a loopback stand-in that
speaks Railway's public GraphQL API as documented (POST, `Authorization: Bearer`, GraphQL's `data`
and `errors`; `deployments` and `serviceInstanceRedeploy`). Railway itself is unreachable here."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runbooks import railway_redeploy as rr

TOKEN = "0f0e0d0c-0b0a-4909-8807-060504030201"
SERVICE = "11111111-2222-4333-8444-555555555555"
ENVIRONMENT = "66666666-7777-4888-8999-aaaaaaaaaaaa"


class Railway(BaseHTTPRequestHandler):
    """Deployments of one service; a redeploy adds one that moves a step per poll along `path`."""

    path_after_redeploy = ("BUILDING", "DEPLOYING", "SUCCESS")
    deployments: list = []
    asked: list = []

    def log_message(self, *a):
        pass

    def answer(self, body: dict, status: int = 200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.asked.append(req)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.answer({"errors": [{"message": "Not Authorized"}], "data": None})
        if req["variables"] != {"serviceId": SERVICE, "environmentId": ENVIRONMENT}:
            return self.answer({"errors": [{"message": "Service not found"}], "data": None})
        if "serviceInstanceRedeploy" in req["query"]:
            self.deployments.insert(0, {"id": f"dep-{len(self.deployments) + 1}", "steps": list(self.path_after_redeploy),
                                        "createdAt": "2026-12-03T10:00:00Z"})
            return self.answer({"data": {"serviceInstanceRedeploy": True}})
        if "deployments(" in req["query"]:
            edges = []
            if self.deployments:
                d = self.deployments[0]
                status = d["steps"][0] if len(d["steps"]) == 1 else d["steps"].pop(0)
                edges = [{"node": {"id": d["id"], "status": status, "createdAt": d["createdAt"]}}]
            return self.answer({"data": {"deployments": {"edges": edges}}})
        return self.answer({"errors": [{"message": "Cannot query field"}]}, 400)


@pytest.fixture
def railway(monkeypatch, tmp_path):
    Railway.deployments = [{"id": "dep-1", "steps": ["CRASHED"], "createdAt": "2026-12-03T09:00:00Z"}]
    Railway.asked = []
    Railway.path_after_redeploy = ("BUILDING", "DEPLOYING", "SUCCESS")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Railway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MOTTIVME_ENV_FILE", str(tmp_path / "none.env"))
    for k, v in {"RAILWAY_TOKEN": TOKEN, "RAILWAY_SERVICE_ID": SERVICE, "RAILWAY_ENVIRONMENT_ID": ENVIRONMENT,
                 "RAILWAY_API_URL": f"http://127.0.0.1:{server.server_port}/graphql/v2"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("RAILWAY_HEALTH_URL", raising=False)
    yield Railway
    server.shutdown()


def test_a_crashed_service_is_redeployed_and_followed_until_it_succeeds(railway, capsys):
    assert rr.main([], poll=0) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "railway-redeploy: latest deployment dep-1: CRASHED"
    assert lines[1] == "railway-redeploy: redeploy asked (serviceInstanceRedeploy)"
    assert [x.split(" (")[0] for x in lines[2:5]] == ["railway-redeploy: deployment dep-2: BUILDING",
                                                    "railway-redeploy: deployment dep-2: DEPLOYING",
                                                    "railway-redeploy: deployment dep-2: SUCCESS"]
    assert lines[-1].startswith("railway-redeploy: ok: running again in ")
    assert sum("serviceInstanceRedeploy" in q["query"] for q in railway.asked) == 1
    assert TOKEN not in out + err


def test_a_deployment_that_fails_exits_1_naming_it(railway, capsys):
    railway.path_after_redeploy = ("BUILDING", "FAILED")
    assert rr.main([], poll=0) == 1
    assert ("railway-redeploy: FAILED deployment dep-2 ended FAILED: its build and deploy logs are in Railway's "
            "dashboard") in capsys.readouterr().err


def test_a_deployment_that_never_finishes_exits_1_at_the_timeout(railway, capsys):
    railway.path_after_redeploy = ("BUILDING",)
    assert rr.main(["--timeout", "1"], poll=0.2) == 1
    assert "FAILED deployment dep-2 did not finish within 1 s (still BUILDING)" in capsys.readouterr().err


def test_a_token_railway_refuses_exits_3_and_is_never_printed(railway, monkeypatch, capsys):
    wrong = "99999999-9999-4999-8999-999999999999"
    monkeypatch.setenv("RAILWAY_TOKEN", wrong)
    assert rr.main([], poll=0) == 3
    out, err = capsys.readouterr()
    assert "railway-redeploy: FAILED Railway refused it: Not Authorized" in err
    assert wrong not in out + err
    assert not any("serviceInstanceRedeploy" in q["query"] for q in railway.asked)


@pytest.mark.parametrize("unset, bad, expected", [
    ("RAILWAY_TOKEN", None, "RAILWAY_TOKEN is not set: create one at railway.com"),
    (None, ("RAILWAY_SERVICE_ID", "my-service"), "RAILWAY_SERVICE_ID must be the service's id (a UUID)"),
])
def test_a_missing_or_malformed_variable_stops_it_before_railway_is_asked(railway, monkeypatch, capsys, unset, bad,
                                                                          expected):
    if unset:
        monkeypatch.delenv(unset)
    if bad:
        monkeypatch.setenv(*bad)
    assert rr.main([], poll=0) == 2
    err = capsys.readouterr().err
    assert "railway-redeploy: cannot start, nothing was asked of Railway:" in err and expected in err, err
    assert railway.asked == []
