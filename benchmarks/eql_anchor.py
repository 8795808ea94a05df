"""The anchor for `auditeql query`: the `eql` package's PythonEngine on the same NDJSON file.

    .venv/bin/python benchmarks/eql_anchor.py FILE [QUERY_FILE]

Reads the file line by line (orjson, the same parser auditeql uses, so JSON cost is equal on
both sides), wraps each document as an ``eql.Event`` (category = ``event.category``; single-valued
``event.category``/``event.type`` arrays become scalars, which eql needs to compare them with a
string), and runs the seed rule with Elasticsearch syntax and samples
enabled. Two edits are needed for eql 1.0.1 to accept the rule (rule-and-peers.md, [M5]):
``cidrmatch`` -> ``cidrMatch`` and ``"::1"`` -> ``"::1/128"``. Prints the number of results.
The `eql` package is AGPL-3.0: it is used here, in a benchmark, never in src/.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent


def seed_query() -> str:
    text = (HERE.parent / "tests" / "fixtures" / "spec" / "seed-rule.md").read_text()
    block = text[text.index("## Query (verbatim)"):].split("```")[1]
    return block.strip()


def adapt(query: str) -> str:
    return query.replace("cidrmatch(", "cidrMatch(").replace('"::1")', '"::1/128")')


def main() -> None:
    import eql
    from eql.events import Event

    path = sys.argv[1]
    query = adapt(Path(sys.argv[2]).read_text() if len(sys.argv) > 2 else seed_query())
    with eql.parser.elasticsearch_syntax, eql.parser.allow_sample, eql.parser.ignore_missing_functions:
        parsed = eql.parse_query(query)
    engine = eql.PythonEngine()
    results = []
    engine.add_output_hook(results.append)
    engine.add_query(parsed)
    loads = orjson.loads
    with open(path, "rb") as fh:
        for line in fh:
            doc = loads(line)
            event = doc.get("event")
            cat = None
            if isinstance(event, dict):
                # eql 1.0.1 compares a list to a string as unequal (no ES any-value semantics):
                # single-valued ECS arrays become scalars so the rule can match at all
                for key in ("category", "type"):
                    v = event.get(key)
                    if isinstance(v, list) and len(v) == 1:
                        event[key] = v[0]
                cat = event.get("category")
            engine.stream_event(Event(cat if isinstance(cat, str) else "any", doc.get("@timestamp"), doc))
    engine.finalize()
    print(len(results))


if __name__ == "__main__":
    main()
