"""Write seed corpora for the fuzzers from the real recording and the test fixtures.

    .venv/bin/python fuzz/seeds.py            # -> fuzz/corpus/{records,normalizer,pushdown,netlink,eql}/

Seeds are real lines and real queries, so the fuzzer starts from the shapes that matter
(ENRICHED tails, hex-encoded fields, multi-record events, the built-in rules' EQL).
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS = Path("/work/shared/corpus/udp-shells-1/audit.log.gz")


def _write(target: str, blobs: list[bytes]) -> int:
    out = HERE / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    for blob in blobs:
        (out / hashlib.sha1(blob).hexdigest()).write_bytes(blob)
    return len(blobs)


def audit_lines() -> list[bytes]:
    lines: list[bytes] = []
    if CORPUS.exists():
        with gzip.open(CORPUS, "rb") as fh:
            lines.extend(fh.read().splitlines())
    for p in sorted((ROOT / "tests" / "fixtures" / "audit").glob("*.log")):
        lines.extend(p.read_bytes().splitlines())
    return lines


def queries() -> list[bytes]:
    import re

    out = []
    for p in sorted((ROOT / "src" / "auditeql" / "rules" / "builtin").glob("*.toml")):
        m = re.search(r"query = '''(.*?)'''", p.read_text(), re.S)
        if m:
            out.append(m.group(1).strip().encode())
    out += [
        b'process where process.name : "ba*" and not process.args in ("-c", "x")',
        b"sequence by host.id with maxspan=1m [process where true] by process.pid ![network where true] until [any where false]",
        b'sample by a [any where a regex~ "(a+)+b"] [any where length(b) > 3 and b like~ "x?y*"]',
        b'any where cidrMatch(ip, "10.0.0.0/8") and number(x, 16) % 3 == 1 | head 5',
        b'file where ?file.path == """c:\\x""" and startsWith~(file.name, "A") | tail 2',
    ]
    return out


def main() -> None:
    lines = audit_lines()
    # whole events (consecutive lines) for the normalizer, single lines for the parser
    events = [b"\n".join(lines[i : i + 12]) for i in range(0, min(len(lines), 3000), 12)]
    print("records", _write("records", lines[:400]))
    print("normalizer", _write("normalizer", events))
    print("pushdown", _write("pushdown", events))
    print("netlink", _write("netlink", [b"\x00" + e.replace(b"\n", b"\n\x00") for e in events[:100]]))
    print("eql", _write("eql", queries()))


if __name__ == "__main__":
    main()
