"""`auditeql rules list|show|validate`."""

from __future__ import annotations

from click.testing import CliRunner

from auditeql.cli import main

from rules.test_loader import MINIMAL, SEED_ID


def test_list_and_show():
    r = CliRunner().invoke(main, ["rules", "list"])
    assert r.exit_code == 0 and SEED_ID in r.output and "Potential Reverse Shell via UDP" in r.output
    r = CliRunner().invoke(main, ["rules", "show", SEED_ID[:8]])
    assert r.exit_code == 0
    assert "T1059.004 Unix Shell" in r.output and "sample by host.id, process.pid, process.parent.pid" in r.output
    assert "now-9m" in r.output and "medium / 47" in r.output
    assert CliRunner().invoke(main, ["rules", "show", "no-such-rule"]).exit_code == 2


def test_validate_reports_each_file(tmp_path):
    (tmp_path / "good.toml").write_text(MINIMAL)
    (tmp_path / "bad.toml").write_text(MINIMAL.replace('severity = "low"', 'severity = "urgent"'))
    (tmp_path / "q.toml").write_text(MINIMAL.replace('type = "eql"', 'type = "query"'))
    r = CliRunner().invoke(main, ["rules", "validate", str(tmp_path)])
    assert r.exit_code == 1
    assert "ok       " in r.output and "good.toml: Shell started" in r.output
    assert "INVALID  " in r.output and "bad.toml: rule.severity: 'urgent' is not a severity" in r.output
    assert "skip     " in r.output and "q.toml" in r.output
    r = CliRunner().invoke(main, ["rules", "validate", str(tmp_path / "good.toml")])
    assert r.exit_code == 0


def test_scan_rejects_an_invalid_explicit_rule_but_skips_bad_files_in_a_dir(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "bad.toml").write_text("not [toml")
    data = tmp_path / "x.ndjson"
    data.write_text('{"@timestamp": "2026-11-29T14:00:00Z", "event": {"category": ["process"]}, "host": {"id": "h", "os": {"type": "linux"}}}\n')
    r = CliRunner().invoke(main, ["scan", "--no-store", "--rules-dir", str(tmp_path / "d"), str(data)])
    assert r.exit_code == 0 and "rule skipped" in r.output and "not valid TOML" in r.output
