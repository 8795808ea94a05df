"""The soak test (slow; excluded from CI): 10 million real events through ``watch`` with rotation and
a SIGKILL restart in the middle; every expected alert must arrive exactly once (benchmarks/soak.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


@pytest.mark.slow
def test_ten_million_events_with_rotation_and_restart(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, str(SOAK), "--events", "10000000", "--work", str(tmp_path / "soak")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "every expected alert arrived exactly once" in res.stdout
