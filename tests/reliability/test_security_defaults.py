"""Safe by default: owner-only files, verified TLS, secrets never printed.

* the alert store (and its directory) and the follow checkpoint are created mode 0600 (0700 dirs),
  whatever the umask;
* the webhook verifies TLS certificates unless ``--webhook-insecure`` is given, and the token in a
  ``--webhook-header`` never appears in any output. The HTTPS server runs inside a network
  namespace of its own (``unshare --net``, only its loopback up): no packet leaves it.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1" / "audit.log.gz"
AUDITEQL = [sys.executable, "-m", "auditeql.cli"]


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _corpus(tmp: Path) -> Path:
    if not CORPUS.exists():
        pytest.skip(f"LOUD SKIP: the recording {CORPUS} is absent")
    p = tmp / "audit.log"
    p.write_bytes(gzip.decompress(CORPUS.read_bytes()))
    return p


def test_store_and_checkpoint_are_owner_only_even_with_a_loose_umask(tmp_path: Path) -> None:
    log = _corpus(tmp_path)
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    script = "import os, sys, runpy; os.umask(0); sys.argv = ['auditeql', *sys.argv[1:]]; runpy.run_module('auditeql.cli', run_name='__main__')"
    res = subprocess.run([sys.executable, "-c", script, "scan", "-q", "--host-id", "h", str(log)], env=env,
                         capture_output=True, timeout=300)
    assert res.returncode == 1, res.stderr
    db = tmp_path / "state" / "auditeql" / "alerts.db"
    assert db.exists()
    assert _mode(db) == 0o600
    assert _mode(db.parent) == 0o700
    cp = tmp_path / "cp" / "follow.json"
    res = subprocess.run([sys.executable, "-c", script, "watch", "--source", f"file:{log}", "--from-start",
                          "--checkpoint", str(cp), "--no-store", "--duration", "3", "--health-interval", "0",
                          "--host-id", "h", "--format", "ndjson"], env=env, capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert cp.exists() and _mode(cp) == 0o600


SERVER = textwrap.dedent(
    r"""
    import http.server, ssl, subprocess, sys, threading, os, json
    cert, key, port_file, log_file = sys.argv[1:5]
    hits = []
    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", 0)); self.rfile.read(n)
            hits.append(self.headers.get("Authorization"))
            self.send_response(200); self.end_headers()
        def log_message(self, *a): pass
    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{srv.server_address[1]}/hook"
    results = {}
    for mode in ("default", "insecure"):
        hits.clear()
        args = [sys.executable, "-m", "auditeql.cli", "watch", "--source", "-", "--no-store", "--format", "ndjson",
                "--health-interval", "0", "--host-id", "h", "--webhook", url,
                "--webhook-header", "Authorization: Bearer TOPSECRET-4242"]
        if mode == "insecure":
            args.append("--webhook-insecure")
        p = subprocess.run(args, input=open(log_file, "rb").read(), capture_output=True, timeout=240)
        results[mode] = {"rc": p.returncode, "hits": list(hits), "stdout": p.stdout.decode(errors="replace"),
                         "stderr": p.stderr.decode(errors="replace")}
    print(json.dumps(results))
    """
)


def test_webhook_verifies_tls_by_default_and_never_prints_the_token(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("openssl"):
        pytest.skip("LOUD SKIP: needs root, unshare and openssl to run a private HTTPS server in its own netns")
    log = _corpus(tmp_path)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    (tmp_path / "server.py").write_text(SERVER)
    res = subprocess.run(
        ["unshare", "--net", "sh", "-c", f'ip link set lo up && exec "$0" "$@"', sys.executable,
         str(tmp_path / "server.py"), str(cert), str(key), "-", str(log)],
        capture_output=True, timeout=600, cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg")},
    )
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    import json

    out = json.loads(res.stdout.decode().strip().splitlines()[-1])
    default, insecure = out["default"], out["insecure"]
    assert default["stdout"].count("\n") > 0  # detection went on
    assert default["hits"] == [], "a self-signed certificate must be refused by default"
    assert "certificate verification failed" in default["stderr"]
    assert insecure["hits"] and all(h == "Bearer TOPSECRET-4242" for h in insecure["hits"])
    for run in (default, insecure):
        assert "TOPSECRET-4242" not in run["stdout"] + run["stderr"]
