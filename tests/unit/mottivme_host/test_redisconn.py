"""mottivme_host/redisconn.py: the worker server's way to n8n's Redis (RESP over the tunnel's
local end, the password from the stack's .env) against a socket that answers as Redis does;
the real Redis answers it in the integration tier (test_scaling: a worker server's restart)."""

from __future__ import annotations

import socket
import threading

import pytest

from mottivme_host import redisconn, settings


def serve(replies: list[bytes]):
    """A listening socket on 127.0.0.1 that reads one command per reply and answers it; returns
    (port, the commands it got, as lists of bytes)."""
    srv = socket.create_server(("127.0.0.1", 0))
    got: list[list[bytes]] = []

    def run():
        conn, _ = srv.accept()
        buf = b""
        with conn:
            for reply in replies:
                while True:  # one whole command: *N then N bulk strings
                    lines = buf.split(b"\r\n")
                    if lines[0].startswith(b"*") and len(lines) > 2 * int(lines[0][1:]) + 1:
                        n = int(lines[0][1:])
                        got.append(lines[2:2 + 2 * n:2])
                        buf = b"\r\n".join(lines[1 + 2 * n:])
                        break
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                conn.sendall(reply)
        srv.close()

    threading.Thread(target=run, daemon=True).start()
    return srv.getsockname()[1], got


def test_auth_first_then_the_command_and_its_answer_as_text(tmp_path):
    port, got = serve([b"+OK\r\n", b"$6\r\npaused\r\n", b"*2\r\n$1\r\n7\r\n:3\r\n"])
    (tmp_path / ".env").write_text("N8N_VERSION=2.41.1\nQUEUE_BULL_REDIS_PASSWORD=s3cr3t pass\n")
    s = settings.from_dict({"stack_dir": str(tmp_path), "services": ["n8n-worker-1"], "n8n_host": "n8n.test",
                            "queue_redis": f"127.0.0.1:{port}"})
    r = redisconn.connect(s)
    assert isinstance(r, redisconn.Resp)
    assert r.call("EVAL", "return 'paused'", "0") == "paused"
    assert r.call("LRANGE", "bull:jobs:active", "0", "-1") == "7\n3"
    r.close()
    assert got == [[b"AUTH", b"s3cr3t pass"], [b"EVAL", b"return 'paused'", b"0"],
                   [b"LRANGE", b"bull:jobs:active", b"0", b"-1"]]


def test_an_error_answer_and_a_refused_connection_are_redis_down_and_never_show_the_password(tmp_path):
    port, _ = serve([b"-WRONGPASS invalid username-password pair\r\n"])
    r = redisconn.Resp("127.0.0.1", port, "wrong-pass-123")
    with pytest.raises(redisconn.RedisDown, match="Redis answered: WRONGPASS") as e:
        r.call("PING")
    assert "wrong-pass-123" not in str(e.value) and r.sock is None
    port, _ = serve([b"+QUEUED\r\n"])  # not OK: the password was not taken
    with pytest.raises(redisconn.RedisDown, match="did not accept the password") as e:
        redisconn.Resp("127.0.0.1", port, "wrong-pass-123").call("PING")
    assert "wrong-pass-123" not in str(e.value)
    with socket.create_server(("127.0.0.1", 0)) as srv:
        closed = srv.getsockname()[1]
    with pytest.raises(redisconn.RedisDown, match=rf"no answer from Redis at 127.0.0.1:{closed} .*n8n-tunnel"):
        redisconn.Resp("127.0.0.1", closed, "x").call("PING")


def test_no_queue_no_connection_and_the_main_server_uses_its_redis_container(tmp_path):
    base = {"stack_dir": str(tmp_path), "services": ["n8n"], "n8n_host": "n8n.test"}
    assert redisconn.connect(settings.from_dict(base)) is None
    assert isinstance(redisconn.connect(settings.from_dict({**base, "queue_redis": "container"})), redisconn.RedisCli)
