"""The recording shipped in examples/ (the README's first command) gives what examples/README.md says."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from auditeql.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "udp-shells.audit.log.gz"


def test_example_is_small_and_alerts_three_times(tmp_path):
    assert EXAMPLE.exists() and EXAMPLE.stat().st_size < 200_000
    result = CliRunner().invoke(main, ["scan", "--format", "ndjson", "--store", str(tmp_path / "a.db"), str(EXAMPLE)])
    assert result.exit_code == 1, result.output
    alerts = [orjson.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    shells = [a for a in alerts if a["kibana.alert.depth"] == 2]
    assert len(shells) == 3 and len(alerts) == 12
    assert all(a["kibana.alert.rule.name"] == "Potential Reverse Shell via UDP" for a in alerts)
    assert any("/dev/udp/203.0.113.2/53001" in str(s.get("auditeql.ancestry")) + s.get("auditeql.command_line", "") for s in shells)
