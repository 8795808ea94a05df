"""Shared fixtures for the scale tests: one SparkSession per test session, the recording."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from scale_helpers import CORPUS


@pytest.fixture(scope="session")
def spark() -> Any:
    """A local SparkSession shared by every Spark test (UI off, 127.0.0.1, 2 shuffle partitions)."""
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install 'auditeql[spark]'")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark tests need Java (apt-get install default-jre-headless)")
    from auditeql.scale.spark import session

    s = session("local[2]", conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
    yield s
    s.stop()


@pytest.fixture(scope="session")
def oracle_docs() -> list[dict[str, Any]]:
    """The recording's Auditbeat oracle documents, with host.id/host.os.type filled in."""
    path = CORPUS / "auditbeat_oracle.ndjson.gz"
    if not path.exists():
        pytest.skip(f"the recording is not at {CORPUS} (set AUDITEQL_CORPUS)")
    docs = []
    for line in gzip.open(path):
        d = orjson.loads(line)
        d.setdefault("host", {})["id"] = "corpus-host"
        d["host"]["os"] = {"type": "linux"}
        docs.append(d)
    return docs


@pytest.fixture(scope="session")
def normalized_docs() -> list[dict[str, Any]]:
    """The raw audit.log of the recording through auditeql's own normalizer (Auditd Manager shape)."""
    path = CORPUS / "audit.log.gz"
    if not path.exists():
        pytest.skip(f"the recording is not at {CORPUS} (set AUDITEQL_CORPUS)")
    from auditeql.audit.host import HostInfo
    from auditeql.sources.files import read_documents

    host = HostInfo.detect(host_id="corpus-host", host_name="corpus")
    return [orjson.loads(orjson.dumps(d)) for d in read_documents([str(path)], flavor="auditd-manager", host=host)]
