"""`auditeql emulate` option handling (no namespaces are created by these tests)."""

from click.testing import CliRunner

from auditeql.cli import main


def test_list_shows_every_technique_and_its_state() -> None:
    res = CliRunner().invoke(main, ["emulate", "--list"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert any(line.startswith("bash_dev_udp ") and "UDP shell" in line for line in lines)
    assert any(line.startswith("python_dns_query_external ") and "look-alike" in line for line in lines)
    assert all(("runnable" in line) or ("skipped (missing:" in line) for line in lines)


def test_unknown_technique_is_a_clear_error() -> None:
    res = CliRunner().invoke(main, ["emulate", "-t", "nope_udp"])
    assert res.exit_code == 2
    assert "unknown technique(s): nope_udp" in res.output and "--list" in res.output


def test_outputs_need_check() -> None:
    res = CliRunner().invoke(main, ["emulate", "--markdown", "x.md"])
    assert res.exit_code == 2 and "need --check" in res.output


def test_not_root_gets_a_clear_message(monkeypatch) -> None:
    import os

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    res = CliRunner().invoke(main, ["emulate", "-t", "bash_dev_udp"])
    assert res.exit_code == 2
    assert "needs root" in res.output and "sudo" in res.output
