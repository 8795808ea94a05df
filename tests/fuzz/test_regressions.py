"""Every input a fuzzer ever failed on, replayed through its property (tests/fuzz/crashes/<target>-<what>).

* ``pushdown-duplicate-syscall-serial`` (atheris, check_pushdown, 10-minute run): a second SYSCALL
  record with the serial of a skipped event (the first one with an unknown arch) went the full way
  and became a document of its own, while without push-down it joins the first record's event.
  Fixed in rules/pushdown.py: every later record of a skipped, still incomplete event joins it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "fuzz"))

import targets  # noqa: E402

CRASHES = sorted((HERE / "crashes").iterdir())


@pytest.mark.parametrize("path", CRASHES, ids=lambda p: p.name)
def test_crash_input_now_passes(path: Path) -> None:
    check = getattr(targets, "check_" + path.name.split("-", 1)[0])
    check(path.read_bytes())


def test_late_records_of_a_complete_skipped_event_start_a_new_event() -> None:
    """After its PROCTITLE a skipped event is complete: a record with its serial is a new event."""
    head = b"type=SYSCALL msg=audit(1795961275.677:9): arch=c000003e syscall=1 success=yes exit=0 a0=0 a1=0 a2=0 a3=0 items=0 ppid=1 pid=5 comm=\"cat\" exe=\"/bin/cat\""
    lines = [head, b"type=PROCTITLE msg=audit(1795961275.677:9): proctitle=\"cat\"",
             b"type=SYSCALL msg=audit(1795961275.677:10): arch=c000003e syscall=59 success=yes exit=0 a0=0 a1=0 a2=0 a3=0 items=0 ppid=1 pid=6 comm=\"bash\" exe=\"/bin/bash\"",
             head.replace(b"syscall=1 ", b"syscall=59 ").replace(b'comm="cat"', b'comm="bash"'),
             b"type=PROCTITLE msg=audit(1795961275.677:10): proctitle=\"bash\""]
    targets.warm_up()
    targets.check_pushdown(b"\n".join(lines))
