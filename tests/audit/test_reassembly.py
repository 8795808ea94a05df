"""Grouping records into events: go-libaudit's completion, eviction, ordering and rollover rules."""

from __future__ import annotations

from auditeql.audit.reassembly import Reassembler
from auditeql.audit.records import AuditRecord


def rec(serial: int, rtype: int = 1300, ms: int = 0, sec: int = 1700000000) -> AuditRecord:
    return AuditRecord(rtype, sec, ms, serial, f"r{serial}-{rtype}")


def serials(groups: list[list[AuditRecord]]) -> list[list[tuple[int, int]]]:
    return [[(r.serial, r.type) for r in g] for g in groups]


def test_proctitle_completes_a_syscall_event() -> None:
    r = Reassembler()
    assert r.push(rec(1, 1300)) == []
    assert r.push(rec(1, 1307)) == []
    out = r.push(rec(1, 1327))
    assert serials(out) == [[(1, 1300), (1, 1307), (1, 1327)]]
    assert r.stats.completed == 1 and r.in_flight == 0


def test_eoe_completes_and_is_not_kept() -> None:
    r = Reassembler()
    r.push(rec(5, 1300))
    r.push(rec(5, 1306))
    out = r.push(rec(5, 1320))
    assert serials(out) == [[(5, 1300), (5, 1306)]]
    assert r.push(rec(99, 1320)) == [] and r.stats.orphan_eoe == 1


def test_single_record_types_complete_immediately() -> None:
    r = Reassembler()
    assert serials(r.push(rec(1, 1105))) == [[(1, 1105)]]  # USER_START (<= 1299)
    assert serials(r.push(rec(2, 2100))) == [[(2, 2100)]]  # ANOM_LOGIN_FAILURES (>= 2100)
    assert r.push(rec(3, 1701)) == []  # ANOM_ABEND: 1300..2099 without EOE waits


def test_interleaved_events_come_out_whole_and_in_serial_order() -> None:
    r = Reassembler()
    out = []
    for serial, rtype in [(10, 1300), (11, 1300), (10, 1309), (11, 1306), (11, 1327), (10, 1307), (10, 1327)]:
        out += r.push(rec(serial, rtype))
    assert serials(out) == [[(10, 1300), (10, 1309), (10, 1307), (10, 1327)], [(11, 1300), (11, 1306), (11, 1327)]]


def test_complete_event_waits_for_an_older_incomplete_one() -> None:
    r = Reassembler()
    r.push(rec(20, 1300))
    assert r.push(rec(21, 1300)) == []
    assert r.push(rec(21, 1327)) == []  # 21 complete but 20 is the head
    out = r.push(rec(20, 1327))
    assert [g[0].serial for g in out] == [20, 21]


def test_in_flight_limit_evicts_the_oldest() -> None:
    r = Reassembler(max_in_flight=3)
    out = []
    for s in range(1, 6):
        out += r.push(rec(s, 1300))
    assert [g[0].serial for g in out] == [1, 2]
    assert r.stats.evicted_in_flight == 2 and r.in_flight == 3


def test_no_timeout_without_a_clock_even_across_time_gaps() -> None:
    """Files: record timestamps are not a clock (a blocking accept() is stamped at entry)."""
    r = Reassembler(timeout_ms=2000)
    r.push(rec(1, 1300, ms=0))  # e.g. accept() that blocked 10 s: stamped at entry
    assert r.push(rec(2, 1105, sec=1700000010)) == []  # later events do not expire it
    out = r.push(rec(1, 1306)) + r.push(rec(1, 1327))
    assert serials(out) == [[(1, 1300), (1, 1306), (1, 1327)], [(2, 1105)]]
    assert r.stats.timed_out == 0


def test_timeout_by_wall_clock_for_live_sources() -> None:
    now = [100.0]
    r = Reassembler(timeout_ms=2000, clock=lambda: now[0])
    r.push(rec(1, 1300))
    assert r.maintain() == []
    now[0] = 102.5
    assert [g[0].serial for g in r.maintain()] == [1]


def test_serial_rollover_keeps_order() -> None:
    r = Reassembler()
    out = []
    for s in (4294967294, 4294967295, 0, 1):
        out += r.push(rec(s, 1300))
    out += r.push(rec(1, 1327))
    out += r.push(rec(0, 1327))
    assert out == []  # the head (4294967294) is still open
    out += r.push(rec(4294967294, 1327))
    out += r.push(rec(4294967295, 1327))
    assert [g[0].serial for g in out] == [4294967294, 4294967295, 0, 1]
    assert r.stats.lost == 0


def test_gaps_are_counted_as_lost() -> None:
    r = Reassembler()
    for s in (1, 2, 5):
        r.push(rec(s, 1105))
    assert r.stats.lost == 2


def test_record_after_completion_starts_a_new_group() -> None:
    # LOGIN (1006) completes its serial at once; the SYSCALL of the same serial comes after it
    r = Reassembler()
    first = r.push(rec(7, 1006))
    r.push(rec(7, 1300))
    second = r.push(rec(7, 1327))
    assert serials(first) == [[(7, 1006)]] and serials(second) == [[(7, 1300), (7, 1327)]]


def test_flush_and_discard() -> None:
    r = Reassembler()
    r.push(rec(1, 1300))
    r.push(rec(2, 1300))
    assert r.discard(1) and not r.discard(42)
    assert [g[0].serial for g in r.flush()] == [2]
    assert r.in_flight == 0 and r.stats.discarded == 1


def test_record_after_emission_never_joins_the_emitted_event() -> None:
    r = Reassembler(max_in_flight=1)
    out = r.push(rec(1, 1300)) + r.push(rec(2, 1300))  # 1 evicted by the in-flight limit
    assert serials(out) == [[(1, 1300)]]
    out += r.push(rec(2, 1307)) + r.push(rec(2, 1327))
    out += r.push(rec(2, 1302))  # after 2 was emitted: a new group
    out += r.flush()
    assert serials(out) == [[(1, 1300)], [(2, 1300), (2, 1307), (2, 1327)], [(2, 1302)]]
