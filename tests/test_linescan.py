"""The Hyperscan block scanner is exact: it never drops a line a query could match.

Reference: a line is a candidate iff, for some filter, one term of the chosen group occurs
(``ci`` terms after ASCII-only lower-casing, i.e. ``bytes.lower()``), or an escape occurs.
Because the chosen group is picked from data, the check here is the weaker, choice-free one:
every line holding a term of *every* group of some filter, or an escape, must be yielded.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import orjson
import pytest

from auditeql.sources import linescan, ndjson

pytestmark = pytest.mark.skipif(linescan._hs is None, reason="hyperscan not installed (pip install 'auditeql[fast]')")

CORPUS = Path(__file__).resolve().parents[0] / "fixtures" / "udp-shells-1" / "auditbeat_oracle.ndjson.gz"
GROUPS = [
    [(('"executed"', False),), (('"bash"', True), ('"sh"', True), ('"python', True))],
    [(('"socket"', False),), (('"nc"', True),)],
]


def _must_yield(line: bytes) -> bool:
    low = line.lower()
    if b"\\u" in line:
        return True
    for groups in GROUPS:
        if all(any((t.encode() in low) if ci else (t.encode() in line) for t, ci in g) for g in groups):
            return True
    return False


def _random_line(rng: random.Random) -> bytes:
    words = ["bash", "BaSh", "sh", "SH", "python3", "PYTHON", "executed", "socket", "nc", "NC", "id",
             "\u212ash", "\u017fh", "x\\u0073h", "timeout", "Sh"]
    doc = {f"k{i}": rng.choice(words) for i in range(rng.randint(1, 5))}
    return orjson.dumps(doc).replace(b"\\\\u", b"\\u") + b"\n"


def test_scanner_keeps_every_line_that_can_match(tmp_path, monkeypatch):
    monkeypatch.setattr(ndjson, "CHUNK_BYTES", 4096)  # many blocks, many lines split across two
    rng = random.Random(7)
    lines = [_random_line(rng) for _ in range(5000)]
    f = tmp_path / "x.ndjson"
    f.write_bytes(b"".join(lines))
    scanner = linescan.block_scanner(GROUPS)
    assert scanner is not None
    got = {n: line for _p, n, line in ndjson.iter_candidate_lines([str(f)], (), scanner=scanner)}
    must = {i for i, line in enumerate(lines, 1) if _must_yield(line)}
    assert must, "the generator must produce matching lines"
    assert must <= set(got), sorted(must - set(got))[:10]
    for n, line in got.items():  # line numbers and contents are right
        assert lines[n - 1] == line
    assert len(got) < len(lines), "the scanner must skip something"


def test_no_unicode_case_folding():
    scanner = linescan.block_scanner([[(('"sh"', True),)]])
    assert scanner is not None
    assert scanner.may_match(b'{"a":"SH"}\n')
    assert scanner.may_match(b'{"a":"sH"}\n')
    assert not scanner.may_match('{"a":"\u017fh"}\n'.encode())  # long s: not ASCII "s"
    assert scanner.may_match(b'{"a":"\\u0073h"}\n')  # an escape: may spell "sh"


def test_damaged_lines_are_still_reported(tmp_path):
    f = tmp_path / "x.ndjson"
    f.write_bytes(b'{"a":"id"}\n{"a":"id"\n\n{"a":"bash","b":"executed"}\n')
    scanner = linescan.block_scanner(GROUPS)
    msgs: list[str] = []
    docs = list(ndjson.read_ndjson_raw([str(f)], scanner=scanner, report=msgs.append))
    assert "bash" in [d["a"] for d, _ in docs]  # a damaged block is read line by line
    assert any(":2:" in m for m in msgs), msgs


@pytest.mark.skipif(not CORPUS.exists(), reason="corpus missing")
def test_seed_rule_output_identical_without_hyperscan(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from auditeql.cli import main

    host = {"id": "h1", "os": {"type": "linux"}}
    with gzip.open(CORPUS, "rb") as fh:
        body = b"".join(orjson.dumps({**orjson.loads(l), "host": host}) + b"\n" for l in fh if l.strip())
    f = tmp_path / "c.ndjson"
    f.write_bytes(body)
    text = (Path(__file__).resolve().parent / "fixtures" / "spec" / "seed-rule.md").read_text()
    query = text[text.index("## Query (verbatim)"):].split("```")[1]
    fast = CliRunner().invoke(main, ["query", "--size", "1000", query, str(f)])
    monkeypatch.setattr(linescan, "_hs", None)
    slow = CliRunner().invoke(main, ["query", "--size", "1000", query, str(f)])
    assert fast.exit_code == slow.exit_code == 0
    assert fast.stdout_bytes == slow.stdout_bytes
    assert fast.stdout_bytes.count(b"\n") == 9  # the corpus README's 9 alerts
