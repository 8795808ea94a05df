"""Feeding real pipes to real `python -m auditeql.cli` processes: stdin, a FIFO path, bash's `<(…)`."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import orjson

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1"
SEED = Path(__file__).resolve().parents[1] / "fixtures" / "spec" / "seed-rule.md"
#: the pipe kinds a user reaches for
KINDS = ("stdin-pipe", "fifo", "procsub")
TIMEOUT = 180


def seed_query() -> str:
    return SEED.read_text().split("```")[1].strip()


def make_inputs(d: Path) -> dict[str, Path]:
    """The real recording as the four inputs: raw audit and ECS NDJSON (host fields added, so the
    seed rule can match), each plain and gzip-compressed."""
    raw = gzip.decompress((FIXTURES / "audit.log.gz").read_bytes())
    lines = gzip.decompress((FIXTURES / "auditbeat_oracle.ndjson.gz").read_bytes()).splitlines()
    out = []
    for line in lines:
        doc = orjson.loads(line)
        doc["host"] = {"id": "h1", "os": {"type": "linux"}}
        out.append(orjson.dumps(doc) + b"\n")
    nd = b"".join(out)
    paths = {"audit": d / "audit.log", "audit.gz": d / "audit.log.gz", "ndjson": d / "ecs.ndjson", "ndjson.gz": d / "ecs.ndjson.gz"}
    paths["audit"].write_bytes(raw)
    paths["audit.gz"].write_bytes(gzip.compress(raw, 6))
    paths["ndjson"].write_bytes(nd)
    paths["ndjson.gz"].write_bytes(gzip.compress(nd, 6))
    return paths


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e.update(extra)
    return e


def run_file(args: list[str], path: Path, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditeql.cli", *args, str(path)], check=False, capture_output=True,
                          timeout=TIMEOUT, env=environ or env())


def run_piped(kind: str, args: list[str], data: Path, environ: dict[str, str] | None = None,
              preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    """``args`` with the bytes of ``data`` given through a pipe of ``kind``; the name used for the
    input is in ``.input_name`` of the result."""
    environ = environ or env()
    cli = [sys.executable, "-m", "auditeql.cli", *args]
    if kind == "stdin-pipe":
        res = subprocess.run([*cli, "-"], input=data.read_bytes(), check=False, capture_output=True, timeout=TIMEOUT,
                             env=environ, preexec_fn=preexec)
        res.input_name = "<stdin>"  # type: ignore[attr-defined]
        return res
    if kind == "stdin-file":
        with data.open("rb") as fh:
            res = subprocess.run([*cli, "-"], stdin=fh, check=False, capture_output=True, timeout=TIMEOUT, env=environ,
                                 preexec_fn=preexec)
        res.input_name = "<stdin>"  # type: ignore[attr-defined]
        return res
    if kind == "procsub":
        script = '"$0" "$@" <(cat "$AEQ_SRC")'
        res = subprocess.run(["bash", "-c", script, *cli], check=False, capture_output=True, timeout=TIMEOUT,
                             env={**environ, "AEQ_SRC": str(data)}, preexec_fn=preexec)
        res.input_name = "/dev/fd/"  # type: ignore[attr-defined]  (bash picks the number)
        return res
    if kind == "fifo":
        with tempfile.TemporaryDirectory() as d:
            fifo = Path(d) / "input.fifo"
            os.mkfifo(fifo)
            writer = subprocess.Popen(["sh", "-c", 'exec cat "$1" > "$2"', "sh", str(data), str(fifo)])
            try:
                res = subprocess.run([*cli, str(fifo)], check=False, capture_output=True, timeout=TIMEOUT, env=environ,
                                     preexec_fn=preexec)
                writer.wait(timeout=30)
                assert writer.returncode == 0, "the writer did not get to write everything"
            finally:
                if writer.poll() is None:
                    writer.kill()
                    writer.wait()
        res.input_name = str(fifo)  # type: ignore[attr-defined]
        return res
    raise ValueError(kind)


def normalize_names(text: bytes, name: str, file: Path) -> bytes:
    """Messages with the input's name replaced by a placeholder, to compare a pipe's with a file's."""
    import re

    text = text.replace(str(file).encode(), b"<INPUT>")
    if name == "/dev/fd/":
        return re.sub(rb"/dev/fd/\d+", b"<INPUT>", text)
    return text.replace(name.encode(), b"<INPUT>") if name else text
