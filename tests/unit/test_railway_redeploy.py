"""`mottivme railway-redeploy` (runbooks/railway_redeploy.py) against a loopback stand-in that
speaks Railway's public GraphQL API as documented (POST, `Authorization: Bearer`, GraphQL's `data`
and `errors`; `deployments` and `serviceInstanceRedeploy`). The stand-in parses, validates and
executes each query against a schema of those fields (graphql-core): a misspelt field, a wrong
argument or type is answered with GraphQL's `errors`, as Railway would. Railway itself is
unreachable here."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from graphql import GraphQLError, build_schema, graphql_sync

from runbooks import railway_redeploy as rr

TOKEN = "0f0e0d0c-0b0a-4909-8807-060504030201"
SERVICE = "11111111-2222-4333-8444-555555555555"
ENVIRONMENT = "66666666-7777-4888-8999-aaaaaaaaaaaa"
# the part of Railway's public API (backboard.railway.com/graphql/v2) the runbook uses, as its
# documentation describes it
SCHEMA = build_schema("""
scalar DateTime
enum DeploymentStatus { BUILDING CRASHED DEPLOYING FAILED INITIALIZING NEEDS_APPROVAL QUEUED REMOVED REMOVING
                        SKIPPED SLEEPING SUCCESS WAITING }
type Deployment { id: ID! status: DeploymentStatus! createdAt: DateTime! }
type DeploymentEdge { node: Deployment! }
type QueryDeploymentsConnection { edges: [DeploymentEdge!]! }
input DeploymentListInput { projectId: String serviceId: String environmentId: String }
type Query { deployments(first: Int, input: DeploymentListInput!): QueryDeploymentsConnection! }
type Mutation { serviceInstanceRedeploy(environmentId: String!, serviceId: String!): Boolean! }
""")


class Railway(BaseHTTPRequestHandler):
    """Deployments of one service; a redeploy adds one that moves a step per poll along `path`."""

    path_after_redeploy = ("BUILDING", "DEPLOYING", "SUCCESS")
    history: list = []  # its deployments, newest first
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

    @classmethod
    def ours(cls, service, environment):
        if (service, environment) != (SERVICE, ENVIRONMENT):
            raise GraphQLError("Service not found")

    # the resolvers of the schema's root fields (graphql-core calls them with info and the arguments)
    def deployments(self, info, input, first=None):
        self.ours(input.get("serviceId"), input.get("environmentId"))
        if not self.history:
            return {"edges": []}
        d = self.history[0]
        status = d["steps"][0] if len(d["steps"]) == 1 else d["steps"].pop(0)
        return {"edges": [{"node": {"id": d["id"], "status": status, "createdAt": d["createdAt"]}}][:first]}

    def serviceInstanceRedeploy(self, info, environmentId, serviceId):
        self.ours(serviceId, environmentId)
        self.history.insert(0, {"id": f"dep-{len(self.history) + 1}", "steps": list(self.path_after_redeploy),
                                     "createdAt": "2026-12-03T10:00:00Z"})
        return True

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.asked.append(req)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.answer({"errors": [{"message": "Not Authorized"}], "data": None})
        result = graphql_sync(SCHEMA, req["query"], root_value=self, variable_values=req.get("variables"))
        body = {"data": result.data}
        if result.errors:
            body["errors"] = [{"message": e.message} for e in result.errors]
        return self.answer(body)


@pytest.fixture
def railway(monkeypatch, tmp_path):
    Railway.history = [{"id": "dep-1", "steps": ["CRASHED"], "createdAt": "2026-12-03T09:00:00Z"}]
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


def test_a_query_railway_would_not_take_is_refused_by_the_stand_in_too(railway, monkeypatch, capsys):
    """The stand-in checks the runbook's queries against the schema: a misspelt field fails."""
    monkeypatch.setattr(rr, "REDEPLOY", rr.REDEPLOY.replace("serviceInstanceRedeploy(", "serviceInstanceRedeplo("))
    assert rr.main([], poll=0) == 3
    assert "railway-redeploy: FAILED Railway refused it: Cannot query field 'serviceInstanceRedeplo'" in \
        capsys.readouterr().err
    assert len(railway.history) == 1  # nothing was redeployed


class Health(BaseHTTPRequestHandler):
    status = 200

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.mark.parametrize("status", [200, 503])
def test_after_the_deployment_the_health_url_must_answer_200(railway, monkeypatch, capsys, status):
    Health.status = status
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/healthz"
    monkeypatch.setenv("RAILWAY_HEALTH_URL", url)
    try:
        code = rr.main(["--timeout", "1"], poll=0)
    finally:
        server.shutdown()
    out, err = capsys.readouterr()
    if status == 200:
        assert code == 0 and out.splitlines()[-1].endswith(f", {url} answers 200"), out + err
    else:
        assert code == 1 and f"railway-redeploy: FAILED deployed, but {url} does not answer 200" in err, out + err
