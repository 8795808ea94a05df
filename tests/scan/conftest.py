"""Fixtures of the scan tests: the shared corpus (skipped loudly when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scan.scan_docs import CORPUS


@pytest.fixture
def corpus() -> Path:
    if not (CORPUS / "audit.log.gz").exists():
        pytest.skip(f"LOUD SKIP: the shared corpus {CORPUS} is absent on this machine; the end-to-end check did not run")
    return CORPUS


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path, monkeypatch):
    """Never touch the real user's alert store from tests."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
