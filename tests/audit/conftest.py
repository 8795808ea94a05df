from __future__ import annotations

import gzip
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditeql.audit.host import HostInfo
from auditeql.audit.pipeline import Normalizer

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audit"

# recorder.py lives next to this file; make it importable without a package path
sys.path.insert(0, str(Path(__file__).parent))


def normalize_lines(lines: list[bytes], flavor: str = "auditbeat", host: HostInfo | None = None, **kw: Any) -> list[dict[str, Any]]:
    n = Normalizer(flavor, host, **kw)
    out: list[dict[str, Any]] = []
    for line in lines:
        out.extend(n.feed_line(line))
    out.extend(n.flush())
    return out


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(flatten(value, prefix + key + "."))
        else:
            out[prefix + key] = value
    return out


@pytest.fixture(scope="session")
def corpus_lines() -> list[bytes]:
    if not (CORPUS / "audit.log.gz").exists():
        pytest.skip(f"corpus {CORPUS} not present")
    with gzip.open(CORPUS / "audit.log.gz", "rb") as fh:
        return fh.readlines()


@pytest.fixture(scope="session")
def oracle_docs() -> list[dict[str, Any]]:
    with gzip.open(CORPUS / "auditbeat_oracle.ndjson.gz", "rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="session")
def local_host() -> HostInfo:
    return HostInfo.detect()


@pytest.fixture(scope="session")
def corpus_auditbeat(corpus_lines: list[bytes], local_host: HostInfo) -> list[dict[str, Any]]:
    return normalize_lines(corpus_lines, "auditbeat", local_host)


@pytest.fixture(scope="session")
def corpus_am(corpus_lines: list[bytes], local_host: HostInfo) -> list[dict[str, Any]]:
    return normalize_lines(corpus_lines, "auditd-manager", local_host)
