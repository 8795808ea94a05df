"""Rules are data: their regular expressions cannot hang the engine and their files cannot run code.

Regex safety is asserted with a generous subprocess timeout (60 s for work a linear matcher does in
well under a second; a backtracking matcher would need longer than the age of the universe), never
with a timed assertion.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditeql.cli import main as cli
from auditeql.rules import RuleError, load_rule

SRC = Path(__file__).resolve().parents[2] / "src" / "auditeql"

#: (operator, pattern, does it match "a" * 200000 + "c"): anchored whole-value matching, like Lucene.
PATHOLOGICAL = [
    ("regex", "(a+)+b", False),
    ("regex", "(a|aa)+c", True),
    ("regex", "(a*)*b", False),
    ("regex", "(.*a){20}", False),
    ("regex~", "(A+)+C", True),
    (":", "*a*a*a*a*a*a*a*a*a*a*b", False),
    ("like~", "*a?a*a?a*a*a*a*a*a*C", True),
]


def test_pathological_patterns_finish(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from auditeql.eql import compile_query
        value = "a" * 200_000 + "c"
        for op, pattern, expected in {PATHOLOGICAL!r}:
            pred = compile_query(f'any where f {{op}} "{{pattern}}"').filter.predicate
            assert pred({{"f": value}}) is expected, (op, pattern)
            assert pred({{"f": ["x", value]}}) is expected, (op, pattern)
        print("done")
        """
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "done"


def test_pathological_regex_in_a_scan_finishes(tmp_path: Path) -> None:
    """A rule with a catastrophic-backtracking pattern over long command lines: the scan completes."""
    rule = tmp_path / "evil.toml"
    rule.write_text(_rule('process where process.title regex "(a+)+b" or process.name regex "(x|xx)+y"'))
    lines = []
    for i in range(200):
        title = ("61" * 3000) + "63"  # proctitle "aaaa…c", hex-encoded as the kernel writes it
        lines.append(f'type=SYSCALL msg=audit(1795961274.{i:03d}:{i + 1}): arch=c000003e syscall=59 success=yes exit=0 '
                     f'a0=0 a1=0 a2=0 a3=0 items=0 ppid=1 pid={100 + i} auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 '
                     f'egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="{"x" * 15}" exe="/bin/x" key=(null)')
        lines.append(f"type=PROCTITLE msg=audit(1795961274.{i:03d}:{i + 1}): proctitle={title}")
    log = tmp_path / "audit.log"
    log.write_text("\n".join(lines) + "\n")
    res = subprocess.run(
        [sys.executable, "-m", "auditeql.cli", "scan", "--no-store", "-q", "--no-builtin", "--rule", str(rule),
         "--host-id", "h", "--format", "ndjson", str(log)],
        capture_output=True, text=True, timeout=120, env={"XDG_STATE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 0, res.stderr  # 0 = no alert: the patterns do not match
    assert "Traceback" not in res.stderr


def _rule(query: str, extra: str = "") -> str:
    return textwrap.dedent(
        f'''\
        [metadata]
        maturity = "production"
        {extra}
        [rule]
        author = ["t"]
        description = "d"
        name = "n"
        risk_score = 1
        rule_id = "00000000-0000-4000-8000-000000000001"
        severity = "low"
        type = "eql"
        language = "eql"
        index = ["auditbeat-*"]
        query = \'\'\'
        {query}
        \'\'\'
        '''
    )


@pytest.mark.parametrize(
    "query",
    [
        "__import__('os').system('touch {marker}')",
        'process where process.name == "{{{{ __import__(\\"os\\").system(\\"touch {marker}\\") }}}}"',
        "process where eval(\"open('{marker}','w')\")",
        "process where `__class__`.`__init__` == \"x\" and exec(\"touch {marker}\") == 1",
    ],
)
def test_rule_files_cannot_execute_code(tmp_path: Path, query: str) -> None:
    marker = tmp_path / "pwned"
    rule = tmp_path / "r.toml"
    rule.write_text(_rule(query.format(marker=marker)))
    try:
        loaded = load_rule(str(rule))
    except RuleError as exc:
        assert "query" in str(exc) or "EQL" in str(exc)
    else:  # a valid query: it is only data, and evaluating it must not run anything either
        for f in ([loaded.plan.filter] if hasattr(loaded.plan, "filter") else loaded.plan.filters):
            f.predicate({"process": {"name": "x"}, "__class__": {"__init__": "x"}})
    assert not marker.exists()
    # and through the CLI: a clear error, never a traceback, nothing executed
    res = CliRunner().invoke(cli, ["rules", "validate", str(rule)])
    assert "Traceback" not in (res.output or "")
    assert not marker.exists()


def test_non_toml_content_is_refused_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for name, text in [
        ("yaml.toml", f"!!python/object/apply:os.system ['touch {marker}']\n"),
        ("pickle.toml", "cos\nsystem\n(S'touch " + str(marker) + "'\ntR.\n"),
        ("py.toml", f"import os\nos.system('touch {marker}')\n"),
    ]:
        p = tmp_path / name
        p.write_text(text)
        with pytest.raises(RuleError):
            load_rule(str(p))
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "evil.py").write_text(f"open({str(marker)!r}, 'w')\n")
    res = CliRunner().invoke(cli, ["scan", "--no-store", "--no-builtin", "--rules-dir", str(tmp_path / "rules"), "/dev/null"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert not marker.exists()


def test_rule_and_query_code_never_uses_dynamic_execution() -> None:
    """No eval/exec/compile of text, pickle, marshal or unsafe YAML anywhere rules or queries go."""
    banned_calls = {"eval", "exec", "compile", "__import__"}
    banned_modules = {"pickle", "marshal", "shelve", "yaml", "dill"}
    offenders = []
    for path in [*(SRC / "eql").glob("*.py"), *(SRC / "rules").glob("*.py"), *(SRC / "engine").glob("*.py")]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in banned_calls:
                offenders.append(f"{path.name}:{node.lineno} {node.func.id}()")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for n in names:
                    if n.split(".")[0] in banned_modules:
                        offenders.append(f"{path.name}:{node.lineno} import {n}")
    assert not offenders, offenders
