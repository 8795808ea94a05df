"""Helpers shared by the scale tests (imported by module name: tests/ has no packages)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

CORPUS = Path(os.environ.get("AUDITEQL_CORPUS", Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1"))
SEED_RULE_ID = "a5eb21b7-13cc-4b94-9fe2-29bb2914e037"


def seed_query() -> str:
    """The seed rule's query, from the built-in rule."""
    from auditeql.rules.loader import builtin_rules

    for rule in builtin_rules():
        if rule.rule_id == SEED_RULE_ID:
            return rule.query
    raise AssertionError("the built-in seed rule is missing")


def write_ndjson(path: Path, docs: list[dict[str, Any]]) -> Path:
    with open(path, "wb") as fh:
        for d in docs:
            fh.write(orjson.dumps(d) + b"\n")
    return path
