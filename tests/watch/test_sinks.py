"""Webhook and syslog outputs against real local endpoints (127.0.0.1 HTTP, a unix socket)."""

from __future__ import annotations

import http.server
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditeql.alerts.syslog import SyslogSink, format_message
from auditeql.alerts.webhook import WebhookSink, parse_header, redact_url

ALERT = {
    "@timestamp": "2026-11-29T16:00:00.000Z",
    "kibana": {"alert": {"uuid": "abc123", "severity": "medium", "reason": "process event with process bash",
                         "rule": {"name": "Potential Reverse Shell via UDP", "rule_id": "a5eb21b7"}}},
    "host": {"name": "box"},
    "process": {"pid": 42},
}


class _Server:
    """A real HTTP server on 127.0.0.1 whose behaviour the test scripts per request."""

    def __init__(self, behaviour: list[str]) -> None:
        self.behaviour = behaviour  # per request: "ok", "500", "hang", "400"
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                n = len(outer.headers)
                outer.headers.append(dict(self.headers))
                what = outer.behaviour[n] if n < len(outer.behaviour) else "ok"
                if what == "hang":
                    outer.release.wait(10)
                    return
                if what == "ok":
                    outer.bodies.append(json.loads(body))
                code = {"ok": 200, "500": 500, "400": 400}[what]
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook?token=SECRETQ"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[_Server]:
    srv = _Server(getattr(request, "param", []))
    yield srv
    srv.close()


def _wait(cond: Any, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


@pytest.mark.parametrize("server", [["500", "500", "ok"]], indirect=True)
def test_webhook_retries_with_backoff_then_delivers(server: _Server) -> None:
    err = io.StringIO()
    sink = WebhookSink(server.url, headers={"Authorization": "Bearer TOPSECRET"}, backoff=0.05, stderr=err)
    sink.write(ALERT)
    assert _wait(lambda: sink.sent == 1)
    sink.close()
    assert sink.retries == 2 and sink.failed == 0
    assert server.bodies == [ALERT]
    assert server.headers[-1]["Authorization"] == "Bearer TOPSECRET"
    assert server.headers[-1]["Content-Type"] == "application/json"


@pytest.mark.parametrize("server", [["400"]], indirect=True)
def test_webhook_client_error_not_retried_and_secrets_not_logged(server: _Server) -> None:
    err = io.StringIO()
    sink = WebhookSink(server.url, headers={"Authorization": "Bearer TOPSECRET"}, backoff=0.05, stderr=err)
    sink.write(ALERT)
    assert _wait(lambda: sink.failed == 1)
    sink.close()
    assert len(server.headers) == 1 and sink.retries == 0
    text = err.getvalue()
    assert "HTTP 400" in text
    assert "TOPSECRET" not in text and "SECRETQ" not in text


@pytest.mark.parametrize("server", [["hang"] * 3], indirect=True)
def test_hanging_webhook_never_blocks_detection(server: _Server) -> None:
    sink = WebhookSink(server.url, timeout=0.5, backoff=0.05, queue_size=10, stderr=io.StringIO())
    start = time.monotonic()
    for i in range(500):  # the detection thread keeps producing alerts
        sink.write({**ALERT, "n": i})
    elapsed = time.monotonic() - start
    assert elapsed < 0.5, f"write() blocked for {elapsed:.2f}s"
    assert sink.dropped >= 480  # bounded queue: the oldest were dropped, counted
    assert _wait(lambda: len(server.headers) >= 1)
    server.release.set()  # the endpoint recovers
    assert _wait(lambda: sink.sent >= 5, timeout=10)
    sink.close(timeout=10)
    assert server.bodies[-1]["n"] == 499  # the newest alert survived the overflow


def test_webhook_unreachable_endpoint_gives_up(tmp_path: Path) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: connection refused
    err = io.StringIO()
    sink = WebhookSink(f"http://127.0.0.1:{port}/x", max_attempts=3, backoff=0.01, stderr=err)
    sink.write(ALERT)
    assert _wait(lambda: sink.failed == 1)
    sink.close()
    assert sink.retries == 2 and "after 3 attempt(s)" in err.getvalue()


def test_webhook_rejects_bad_url_and_header() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        WebhookSink("ftp://example.invalid/x")
    with pytest.raises(ValueError, match="Name: value"):
        parse_header("no-colon-here")
    assert parse_header("Authorization: Bearer x:y") == ("Authorization", "Bearer x:y")
    assert redact_url("https://user:pw@h.example:8443/p?t=1") == "https://h.example:8443/p"


def test_syslog_sink_writes_rfc5424_to_a_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "log.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    rx.settimeout(2)
    try:
        sink = SyslogSink(path, facility="auth")
        sink.write(ALERT)
        msg = rx.recv(65536).decode()
        sink.close()
    finally:
        rx.close()
    # auth (4) * 8 + warning (4) for "medium"
    assert msg.startswith("<36>1 ")
    head, sd, text = msg.partition("[auditeql@32473 ")
    assert head.split()[3:6] == ["auditeql", str(__import__("os").getpid()), "alert"]
    assert 'id="abc123"' in text and 'rule="Potential Reverse Shell via UDP"' in text
    assert text.endswith("] process event with process bash")


def test_syslog_missing_socket_is_reported_once_not_raised(tmp_path: Path) -> None:
    err = io.StringIO()
    sink = SyslogSink(str(tmp_path / "nope.sock"), stderr=err)
    sink.write(ALERT)
    sink.write(ALERT)
    assert sink.failed == 2 and sink.sent == 0
    assert err.getvalue().count("cannot write to syslog") == 1


def test_syslog_escapes_structured_data() -> None:
    alert = {"kibana.alert.rule.name": 'a"b]c\\', "kibana.alert.severity": "critical"}
    line = format_message(alert, facility=16, hostname="h", pid=1).decode()
    assert line.startswith("<130>1 ")
    assert 'rule="a\\"b\\]c\\\\"' in line
