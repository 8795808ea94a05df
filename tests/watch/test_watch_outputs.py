"""`watch` outputs wired end to end: table file, webhook (token from the environment), syslog."""

from __future__ import annotations

import gzip
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1" / "audit.log.gz"
SEED_ALERTS = 9  # the recording's README: the seed rule alerts on 9 scenarios


def test_table_webhook_and_syslog_outputs(tmp_path: Path) -> None:
    if not CORPUS.exists():
        pytest.skip(f"the recording {CORPUS} is not available")
    posts: list[tuple[dict[str, str], dict[str, Any]]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append((dict(self.headers), json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    log_sock = str(tmp_path / "log.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(log_sock)
    rx.settimeout(5)
    out = tmp_path / "alerts.txt"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "auditeql.cli", "watch", "--source", "-", "--no-store", "--host-id", "h1",
             "--format", "table", "--output", str(out), "--health-interval", "0",
             "--webhook", f"http://127.0.0.1:{httpd.server_address[1]}/hook",
             "--syslog", "--syslog-socket", log_sock, "--syslog-facility", "local3"],
            input=gzip.open(CORPUS, "rb").read(), capture_output=True, timeout=120,
            env={**os.environ, "AUDITEQL_WEBHOOK_TOKEN": "s3cr3t-token"},
        )
        assert proc.returncode == 0, proc.stderr.decode()
        datagrams = [rx.recv(65536).decode() for _ in range(SEED_ALERTS)]
    finally:
        rx.close()
        httpd.shutdown()
        httpd.server_close()
    lines = out.read_text().splitlines()
    assert len(lines) == SEED_ALERTS and all("Potential Reverse Shell via UDP" in line for line in lines)
    assert len(posts) == SEED_ALERTS  # all delivered before exit (close drains the queue)
    assert all(h["Authorization"] == "Bearer s3cr3t-token" for h, _ in posts)
    assert {b["kibana.alert.rule.name"] for _, b in posts} == {"Potential Reverse Shell via UDP"}
    assert all(b["kibana.alert.depth"] == 2 for _, b in posts)  # the shell alert of each group
    assert all(d.startswith("<156>1 ") for d in datagrams)  # local3 (19) * 8 + warning (4)
    assert "s3cr3t-token" not in proc.stderr.decode()
