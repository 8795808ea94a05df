"""The followed file's checkpoint never passes events still waiting in an engine's reorder buffer.

A SIGKILL right after such a checkpoint would lose those events' alerts (sequence rules buffer
events for ``--reorder-ms``): the restart would resume after them. Here the rule is checked
directly on a real FileInput over a real file and a real checkpoint file.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from auditeql.audit.pipeline import Normalizer
from auditeql.sources import checkpoint
from auditeql.watch.inputs import FileInput

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1" / "audit.log.gz"


def _input(tmp_path: Path) -> tuple[FileInput, Path]:
    lines = gzip.decompress(CORPUS.read_bytes()).splitlines(keepends=True)[:200]
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(lines))
    cp = tmp_path / "cp.json"
    src = FileInput(Normalizer("auditd-manager", None), str(log), checkpoint_path=str(cp), from_start=True, every=0.0)
    docs = src.read(0.5) + src.flush()  # the cut at line 200 may leave an event half-read
    assert docs, "the recording gave no events"
    assert src.normalizer.reassembler.in_flight == 0
    return src, cp


def test_position_waits_until_its_events_left_the_reorder_buffers(tmp_path: Path) -> None:
    src, cp = _input(tmp_path)
    newest = 1_795_961_300_000.0
    src.checkpoint(newest_ms=newest, released_ms=newest - 500)  # events up to `newest` still buffered
    assert not cp.exists(), "a position was saved before its events were released"
    src.checkpoint(newest_ms=newest, released_ms=newest + 1)  # everything read so far is released
    assert cp.exists()
    assert checkpoint.load(str(cp)) == src.follower.position


def test_forced_checkpoint_at_shutdown_is_the_current_position(tmp_path: Path) -> None:
    src, cp = _input(tmp_path)
    src.checkpoint(newest_ms=1.0, released_ms=0.0)
    assert not cp.exists()
    src.checkpoint(force=True)
    assert checkpoint.load(str(cp)) == src.follower.position


def _docs_key(docs: list) -> list:
    return [(d.get("@timestamp"), (d.get("auditd") or {}).get("sequence")) for d in docs]


def test_a_busy_log_still_gets_checkpoints_at_event_boundaries_and_resumes_exactly(tmp_path: Path) -> None:
    """A log that is always mid-event when a tick comes (every read ends inside an event) used to
    get no checkpoint until the writer paused: a soak with fast rotation restarted from a file
    auditd had deleted. Positions are now taken at the last event boundary inside each read."""
    lines = gzip.decompress(CORPUS.read_bytes()).splitlines(keepends=True)[:3000]
    log = tmp_path / "audit.log"
    cp = tmp_path / "cp.json"
    every = [d for d in _whole(lines)]
    # cut the log inside an event: the reader ends each read with an event half-read
    cut = next(i for i in range(1500, 3000) if b"type=SYSCALL" in lines[i]) + 1
    log.write_bytes(b"".join(lines[:cut]) + b"\n")
    src = FileInput(Normalizer("auditd-manager", None), str(log), checkpoint_path=str(cp), from_start=True, every=0.0)
    first: list = []
    while src.follower.position.offset < log.stat().st_size:  # reads are at most READ_BYTES each
        got = src.read(0.5)
        assert got or src.normalizer.reassembler.in_flight, "a read returned nothing before the end"
        first += got
    assert src.normalizer.reassembler.in_flight > 0, "the test needs a read that ends inside an event"
    src.checkpoint(newest_ms=0.0, released_ms=1.0)  # everything read is released; one event half-read
    saved = checkpoint.load(str(cp))
    assert saved is not None, "no checkpoint although event boundaries were read"
    assert 0 < saved.offset < log.stat().st_size
    assert log.read_bytes()[saved.offset - 1:saved.offset] == b"\n"
    src.close()
    # a SIGKILL now; the writer finishes the file; the restart resumes at the boundary
    with open(log, "ab") as fh:
        fh.write(b"".join(lines[cut:]))
    again = FileInput(Normalizer("auditd-manager", None), str(log), checkpoint_path=str(cp), every=0.0)
    rest: list = []
    while again.follower.position.offset < log.stat().st_size:
        rest += again.read(0.5)
    rest += again.read(0.1) + again.flush()
    emitted_before = [d for d in first]
    # every event is seen; those emitted before the kill may be seen again (the store drops them), none is lost
    assert set(_docs_key(every)) <= set(_docs_key(emitted_before)) | set(_docs_key(rest))
    assert len(rest) < len(every), "the restart read everything again: the checkpoint did not help"


def _whole(lines: list[bytes]) -> list:
    n = Normalizer("auditd-manager", None)
    docs = []
    for line in lines:
        docs.extend(n.feed_line(line.rstrip(b"\n")))
    return docs + n.flush()


def test_engines_report_what_their_reorder_buffers_hold() -> None:
    """The runner's checkpoint gate reads ``held_ms`` from each engine: a sequence rule's buffer
    holds events until event time passes them by the reorder delay; a sample holds none."""
    from auditeql.audit.host import HostInfo
    from auditeql.engine import StreamingEngine
    from auditeql.engine.ordering import timestamp_ms
    from auditeql.rules import builtin_rules
    from auditeql.rules.replay import query_options

    rules = builtin_rules()
    seq = next(r for r in rules if r.query.lstrip().startswith("sequence"))
    sample = next(r for r in rules if r.query.lstrip().startswith("sample"))
    engines = {r.rule_id: StreamingEngine(r.plan, query_options(r), window_ms=540_000, reorder_ms=500)
               for r in (seq, sample)}
    norm = Normalizer("auditd-manager", HostInfo.fixed({"id": "h", "os": {"type": "linux"}}))
    held_seen = 0
    for line in gzip.decompress(CORPUS.read_bytes()).splitlines():
        for doc in norm.feed_line(line):
            for e in engines.values():
                e.push(doc)
            oldest, newest = engines[seq.rule_id].held_ms()
            buffered = engines[seq.rule_id]._buffer
            if buffered:
                held_seen += 1
                assert oldest == min(b[0] for b in buffered) / 1e6
                assert oldest <= newest
            else:
                assert oldest == float("inf")
            assert engines[sample.rule_id].held_ms() == (float("inf"), float("-inf"))
        if held_seen > 50:
            break
    assert held_seen > 50, "the sequence rule never buffered an event of the recording"
    last = timestamp_ms(doc["@timestamp"])
    engines[seq.rule_id].advance(last + 10_000)  # event time moves on: everything is released
    assert engines[seq.rule_id].held_ms()[0] == float("inf")
