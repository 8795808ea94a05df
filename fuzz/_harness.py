"""Shared atheris entry point: ``run(check)`` instruments auditeql and fuzzes ``check``.

Usage of every harness (libFuzzer flags pass through):

    .venv/bin/python fuzz/fuzz_records.py fuzz/corpus/records -max_total_time=600
    .venv/bin/python fuzz/fuzz_eql.py -runs=20000 fuzz/corpus/eql

A seed corpus is built from the real recording by ``fuzz/seeds.py`` (run it once).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def run(check_name: str) -> None:
    import atheris

    with atheris.instrument_imports(include=["auditeql", "targets"]):
        import targets

        import auditeql.audit.coalesce  # noqa: F401  (instrument the whole pipeline up front)
        import auditeql.audit.ecs  # noqa: F401
        import auditeql.audit.pipeline  # noqa: F401
        import auditeql.eql.compiler  # noqa: F401
        import auditeql.eql.parser  # noqa: F401
        import auditeql.eql.printer  # noqa: F401
        import auditeql.eql.verifier  # noqa: F401
    check: Callable[[bytes], None] = getattr(targets, check_name)
    targets.warm_up()
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()
