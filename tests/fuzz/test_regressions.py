"""Every input a fuzzer ever failed on, replayed through its property (tests/fuzz/crashes/<target>-<what>).

* ``pushdown-duplicate-syscall-serial`` (atheris, check_pushdown, 10-minute run): a second SYSCALL
  record with the serial of a skipped event (the first one with an unknown arch) went the full way
  and became a document of its own, while without push-down it joins the first record's event.
  Fixed in rules/pushdown.py: every later record of a skipped, still incomplete event joins it.
* ``pushdown-syscall-after-completed-event`` (atheris, check_pushdown, 10-minute run): a skipped
  event with no completing record (no PROCTITLE/EOE) was handed on as a *complete* stand-in, so a
  later event (serial 23816) that completed behind it left at once; its SYSCALL record, arriving
  afterwards, then started a new event of its own. Without push-down the incomplete event holds
  the later one in flight and the SYSCALL joins it. Fixed in rules/pushdown.py and
  audit/pipeline.py: a stand-in stays in flight in the normalizer exactly as long as its records
  would (incomplete = open), records with its serial that arrive meanwhile join it (absorbed into
  its document), and a SYSCALL line is only skipped as a new event when no event with its serial
  is in flight.
* ``pushdown-lone-cr-in-line`` (atheris, check_pushdown, 10-minute run, third session; the input
  was rebuilt by hand, the run left no artifact): a line holding a lone ``\r`` (here inside the
  ENRICHED tail of a SYSCALL record). Reading a file gives it as one line (unusable after the
  ``\x1d``), but push-down cut blocks with ``bytes.splitlines``, which also cuts at ``\r``, so
  the text after it became a record of its own in some stand-ins. Fixed in rules/pushdown.py:
  lines are cut after ``\n`` only (``_lines``), as iterating a file does.
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


_SYS = ("type=SYSCALL msg=audit(1795961275.677:{serial}): arch=c000003e syscall={nr} success=yes exit=0 a0=0 a1=0 "
        "a2=0 a3=0 items=0 ppid=1 pid={pid} auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 "
        "tty=(none) ses=1 comm=\"{comm}\" exe=\"/bin/{comm}\" key=(null)")


def _event_lines(*lines: str) -> bytes:
    return "\n".join(lines).encode() + b"\n"


def test_incomplete_skipped_event_holds_back_a_later_one() -> None:
    """A skipped event without its PROCTITLE keeps a later complete event in flight, so that event's
    late SYSCALL record joins it (full path) instead of becoming a new candidate event."""
    data = _event_lines(
        _SYS.format(serial=9, nr=1, pid=5, comm="cat"),  # skipped (write), never completed
        "type=CWD msg=audit(1795961275.677:10): cwd=\"/tmp\"",
        "type=PROCTITLE msg=audit(1795961275.677:10): proctitle=\"bash\"",
        _SYS.format(serial=10, nr=59, pid=6, comm="bash"),  # late: joins event 10 without push-down
        "type=PROCTITLE msg=audit(1795961275.677:11): proctitle=\"x\"",
    )
    targets.warm_up()
    targets.check_pushdown(data)


def test_records_joining_an_in_flight_stand_in_are_part_of_its_document() -> None:
    """Records of a skipped event that arrive after other events' records (its serial still in
    flight) are in its stand-in's document, in arrival order, as in the full path."""
    data = _event_lines(
        _SYS.format(serial=20, nr=1, pid=5, comm="cat"),
        _SYS.format(serial=21, nr=1, pid=7, comm="cat"),
        "type=CWD msg=audit(1795961275.677:20): cwd=\"/srv\"",
        "type=PATH msg=audit(1795961275.680:20): item=0 name=\"/srv/x\" inode=1 dev=fe:00 mode=0100644 ouid=0 "
        "ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0",
        "type=PROCTITLE msg=audit(1795961275.677:21): proctitle=\"cat\"",
        "type=PROCTITLE msg=audit(1795961275.677:20): proctitle=\"cat\"",
    )
    targets.warm_up()
    targets.check_pushdown(data)
    from auditeql.audit.pipeline import Normalizer
    from auditeql.rules.pushdown import Deferred

    pd, _ = targets._pushdown()
    feeder = pd.line_feeder(Normalizer("auditd-manager", targets._HOST, pd.normalizer_keep))
    items = list(feeder.feed_chunks([data])) + feeder.flush()
    stand_ins = [i for i in items if isinstance(i, Deferred)]
    assert [d.document()["event"]["sequence"] for d in stand_ins] == [20, 21]
    assert stand_ins[0].document()["process"]["working_directory"] == "/srv"


def test_lone_carriage_return_is_not_a_line_break_for_pushdown(tmp_path: Path) -> None:
    """Through the real reader (read_documents, blocks and the chunk path): with and without
    push-down the same documents, a stand-in's document included, when lines hold a lone \r."""
    from auditeql.rules.pushdown import Deferred
    from auditeql.sources.files import read_documents

    tail = b"\x1dARCH=x86_64\rtype=CWD msg=audit(1795961275.677:{s}): cwd=\"/srv\""
    lines = []
    for serial in (9, 10, 11):
        lines.append(_SYS.format(serial=serial, nr=1, pid=5, comm="cat").encode() + tail.replace(b"{s}", str(serial).encode()))
        if serial != 10:  # one event of a single line, the others with a record hiding a \r
            lines.append(f'type=CWD msg=audit(1795961275.677:{serial}): cwd="/a"\rtype=PATH msg=audit(1795961275.677:{serial}): item=0 name="/x"'.encode())
            lines.append(f'type=PROCTITLE msg=audit(1795961275.677:{serial}): proctitle="cat"'.encode())
    path = tmp_path / "audit.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    targets.warm_up()
    pd, _ = targets._pushdown()
    full = list(read_documents([str(path)], host=targets._HOST))
    fast = list(read_documents([str(path)], host=targets._HOST, pushdown=pd))
    assert any(isinstance(d, Deferred) for d in fast), "nothing was skipped: the comparison would prove nothing"
    assert [d.document() if isinstance(d, Deferred) else d for d in fast] == full
