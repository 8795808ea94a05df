"""On a busy log the saved checkpoint keeps up with the reader (the soak's "checkpoint lags seconds").

A writer process appends the real recording to ``audit.log`` without ever pausing, faster than
``watch`` reads it (so every read finds more data and ends inside an event), stamped the way the
soak stamps it (benchmarks/soak.py: each copy's 80 s squeezed into 80 ms, copies 100 ms apart or
at the wall clock, serials and pids moved). The real :class:`FileInput` and :class:`LiveRunner`
with the seed rule follow it with a real checkpoint file, like ``watch --source file:``.

Measured: for every read, how long ago the reader passed the offset the checkpoint file holds at
that moment. A SIGKILL then costs re-reading that much; under fast rotation, more than the
retention loses the checkpointed file. It used to reach 4-6 s: every position waited for
``--reorder-ms`` of *event time* to pass, although the seed rule (a ``sample``) holds nothing in a
reorder buffer, and in a log read behind its writer 500 ms of event time is seconds of reading;
and each read took up to 8 MiB (seconds of work before the loop could save a position).
"""

from __future__ import annotations

import bisect
import io
import subprocess
import sys
import time
from pathlib import Path

import pytest

from auditeql.audit.host import HostInfo
from auditeql.audit.pipeline import Normalizer
from auditeql.rules import builtin_rules
from auditeql.sources import checkpoint
from auditeql.watch.inputs import FileInput
from auditeql.watch.runner import LiveRunner, WatchConfig
from auditeql.watch.signals import SignalFlags

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "udp-shells-1" / "audit.log.gz"

#: The writer: copies of the recording, stamped like the soak's, appended in small pieces at a
#: steady ``rate`` (bytes/s) for ``seconds``; it never waits for the reader.
WRITER = r"""
import gzip, re, sys, time
corpus, log, seconds, rate = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
lines = gzip.open(corpus, "rb").readlines()
HDR = re.compile(rb"msg=audit\((\d+)\.(\d+):(\d+)\)")
PIDS = re.compile(rb" (pid|ppid)=(\d+)")
heads = [HDR.search(x) for x in lines]
t0 = min(int(m.group(1)) * 1000 + int(m.group(2)) for m in heads if m)
serials = [int(m.group(3)) for m in heads if m]
dn = max(serials) - min(serials) + 1001

def copy(k, start_ms):
    def stamp(m):
        ms = start_ms + (int(m.group(1)) * 1000 + int(m.group(2)) - t0) // 1000
        return b"msg=audit(%d.%03d:%d)" % (ms // 1000, ms % 1000, int(m.group(3)) + k * dn)
    for line in lines:
        line = HDR.sub(stamp, line, count=1)
        if line.startswith(b"type=SYSCALL "):
            body, sep, tail = line.partition(b"\x1d")
            line = PIDS.sub(lambda m: b" %s=%d" % (m.group(1), int(m.group(2)) + k * 65536), body) + sep + tail
        yield line

start = time.monotonic()
written = last_ms = 0
k = 0
with open(log, "ab") as fh:
    while time.monotonic() - start < seconds:
        last_ms = max(int(time.time() * 1000), last_ms + 100)
        piece = []
        for line in copy(k, last_ms):
            piece.append(line)
            if len(piece) == 256:
                fh.write(b"".join(piece)); fh.flush(); written += sum(map(len, piece)); piece = []
                ahead = written / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
        fh.write(b"".join(piece)); fh.flush(); written += sum(map(len, piece))
        k += 1
print(written, k, flush=True)
"""


class _Measured(FileInput):
    """The real FileInput, noting after each read where the reader is and what the checkpoint
    file holds (read back from disk), with the time."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.reads: list[tuple[float, int]] = []  # (monotonic, offset just after the lines read)
        self.saved: list[tuple[float, int]] = []  # (monotonic, offset in the checkpoint file)

    def read(self, timeout: float) -> list:
        docs = super().read(timeout)
        self.reads.append((time.monotonic(), self.follower.position.offset))
        return docs

    def checkpoint(self, force: bool = False, **kw) -> None:
        before = self.checkpoints_written
        super().checkpoint(force, **kw)
        if self.checkpoints_written != before:
            cp = checkpoint.load(self.checkpoint_path)
            assert cp is not None
            self.saved.append((time.monotonic(), cp.offset))


def _lags(src: _Measured, after: float) -> list[tuple[float, int]]:
    """For each read after ``after``: (seconds since the reader passed the offset the checkpoint
    file held then, bytes read since that offset)."""
    times = [t for t, _ in src.reads]
    offsets = [o for _, o in src.reads]
    out = []
    for t, off in src.reads:
        if t < after:
            continue
        i = bisect.bisect_right([s for s, _ in src.saved], t) - 1
        saved = src.saved[i][1] if i >= 0 else 0
        j = bisect.bisect_left(offsets, saved)  # the first read that reached the saved offset
        out.append((t - times[min(j, len(times) - 1)], off - saved))
    return out


def test_checkpoint_stays_close_behind_the_reader_on_a_log_that_never_pauses(tmp_path: Path) -> None:
    if not CORPUS.exists():
        pytest.skip(f"LOUD SKIP: the recording {CORPUS} is absent; the checkpoint lag was not measured")
    seed = [r for r in builtin_rules() if r.name.startswith("Potential Reverse Shell via UDP")]
    assert len(seed) == 1
    log, cp = tmp_path / "audit.log", tmp_path / "cp.json"
    log.touch()
    seconds, rate = 7.0, 6_000_000  # 6 MB/s: more than the reader's ~1-3 MB/s on this machine
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(CORPUS), str(log), str(seconds + 3), str(rate)],
                              stdout=subprocess.PIPE, text=True)
    try:
        src = _Measured(Normalizer("auditd-manager", HostInfo.fixed({"id": "lag-host", "os": {"type": "linux"}})), str(log), checkpoint_path=str(cp), from_start=True)
        with open(tmp_path / "alerts.ndjson", "wb") as out:
            # resume_margin_ms=0: the soak-stamped copies pack 80 s of events into 80 ms, so the
            # margin (event time) would be copies of reading; this measures the buffer logic
            runner = LiveRunner(src, seed, config=WatchConfig(fmt="ndjson", alert_out=out, health_interval=0,
                                                               resume_margin_ms=0,
                                                               stderr=io.StringIO()))
            started = time.monotonic()
            runner.run(max_seconds=seconds)
        reader_at = src.follower.position.offset
        src.close()
    finally:
        writer.kill()
        writer.wait(timeout=30)
    size = log.stat().st_size
    assert size > reader_at + 1_000_000, "the reader caught up with the writer: the log was not busy"
    assert runner.counters.alert_documents > 0, "the copies read raised no alert: the rule saw no events"
    lags = _lags(src, after=started + 2.0)
    worst_s = max(s for s, _ in lags)
    worst_b = max(b for _, b in lags)
    print(f"checkpoint lag behind the reader: worst {worst_s:.2f} s / {worst_b:,} bytes over {len(lags)} reads; "
          f"{len(src.saved)} checkpoints; reader at {reader_at:,} of {size:,} bytes written")
    assert len(src.saved) >= seconds / 2, f"only {len(src.saved)} checkpoints in {seconds} s of a busy log"
    # each read is a small batch: the loop reaches its timers and the checkpoint between batches
    steps = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(src.reads, src.reads[1:]) if a[0] >= started + 2.0]
    biggest = max(n for _, n in steps)
    assert biggest <= 1 << 20, f"one read took {biggest:,} bytes: the loop waits that long for its checkpoint"
    # one checkpoint a second (``every``) plus a read or two: a SIGKILL re-reads ~1 s of input, not
    # more; the reads' own pace is allowed for (a loaded machine makes every read slower)
    pace = sorted(t for t, _ in steps)[int(len(steps) * 0.95)]
    bound = src._every + 3 * pace + 0.5
    assert worst_s < bound, (f"the checkpoint fell {worst_s:.1f} s ({worst_b:,} bytes) behind the reader "
                             f"(bound {bound:.1f} s: 1 s interval, reads every {pace:.2f} s)")


def _sequence_of(doc: dict) -> int | None:
    for holder in (doc.get("event"), doc.get("auditd")):
        if isinstance(holder, dict) and holder.get("sequence") is not None:
            return int(holder["sequence"])
    return None


def test_no_checkpoint_passes_an_event_a_sequence_rule_still_holds(tmp_path: Path) -> None:
    """The same busy log with every built-in rule: two are sequences, whose reorder buffers hold
    events for ``--reorder-ms`` of event time. Each time a checkpoint is written, the events the
    engines hold at that moment are noted; afterwards the log is searched for where each starts:
    the saved offset must never be past one of them (a SIGKILL would lose its alerts)."""
    if not CORPUS.exists():
        pytest.skip(f"LOUD SKIP: the recording {CORPUS} is absent; checkpoint safety under load was not checked")
    import re

    rules = builtin_rules()
    log, cp = tmp_path / "audit.log", tmp_path / "cp.json"
    log.touch()
    seconds = 25.0  # at most: the run stops once enough checkpoints were written with events held
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(CORPUS), str(log), str(seconds + 3), "4000000"],
                              stdout=subprocess.PIPE, text=True)
    held_at_save: list[tuple[int, set[int]]] = []
    try:
        src = _Measured(Normalizer("auditd-manager", HostInfo.fixed({"id": "lag-host", "os": {"type": "linux"}})),
                        str(log), checkpoint_path=str(cp), from_start=True)
        with open(tmp_path / "alerts.ndjson", "wb") as out:
            runner = LiveRunner(src, rules, config=WatchConfig(fmt="ndjson", alert_out=out, health_interval=0,
                                                               resume_margin_ms=0,  # the buffers alone
                                                               stderr=io.StringIO()))
            plain = src.checkpoint

            def noting(force: bool = False, **kw) -> None:
                before = src.checkpoints_written
                plain(force, **kw)
                if src.checkpoints_written != before and not force:
                    held = {_sequence_of(entry[-1]) for s in runner.states for entry in s.engine._buffer}
                    held_at_save.append((src.saved[-1][1], {h for h in held if h is not None}))
                    if sum(1 for _, h in held_at_save if h) >= 3:
                        flags.stop = True  # as SIGTERM does: the loop ends at its next turn

            src.checkpoint = noting  # type: ignore[method-assign]
            flags = SignalFlags()
            try:
                runner.run(flags, max_seconds=seconds)
            finally:
                flags.restore()
        src.close()
    finally:
        writer.kill()
        writer.wait(timeout=30)
    wanted = set().union(*(h for _, h in held_at_save)) if held_at_save else set()
    assert sum(1 for _, h in held_at_save if h) >= 2, \
        "no checkpoint was written while a sequence rule held events: the safety rule was not exercised"
    starts: dict[int, int] = {}
    header = re.compile(rb"msg=audit\(\d+\.\d+:(\d+)\)")
    offset = 0
    with open(log, "rb") as fh:
        for line in fh:
            m = header.search(line)
            if m:
                serial = int(m.group(1))
                if serial in wanted and serial not in starts:
                    starts[serial] = offset
            offset += len(line)
    for saved, held in held_at_save:
        for serial in held:
            assert serial in starts, f"held event {serial} not found in the log"
            assert saved <= starts[serial], (
                f"checkpoint at {saved:,} is past event {serial} (starts at {starts[serial]:,}), "
                "which a sequence rule still held: a SIGKILL would lose it")


def test_checkpoint_trails_the_newest_event_by_the_resume_margin(tmp_path: Path) -> None:
    """With the default margin, every saved position lies before every event of the last
    ``resume_margin_ms`` of event time read: a partial match quicker than that (the seed rule's
    execve, socket and connect) is read again whole after a SIGKILL, since the engines' partial
    matches are not saved with the position."""
    if not CORPUS.exists():
        pytest.skip(f"LOUD SKIP: the recording {CORPUS} is absent; the resume margin was not checked")
    import re

    seed = [r for r in builtin_rules() if r.name.startswith("Potential Reverse Shell via UDP")]
    log, cp = tmp_path / "audit.log", tmp_path / "cp.json"
    log.touch()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(CORPUS), str(log), "9", "3000000"],
                              stdout=subprocess.PIPE, text=True)
    saves: list[tuple[int, float]] = []  # (saved offset, the stream clock when it was saved)
    try:
        src = _Measured(Normalizer("auditd-manager", HostInfo.fixed({"id": "lag-host", "os": {"type": "linux"}})),
                        str(log), checkpoint_path=str(cp), from_start=True)
        with open(tmp_path / "alerts.ndjson", "wb") as out:
            config = WatchConfig(fmt="ndjson", alert_out=out, health_interval=0, stderr=io.StringIO())
            assert config.resume_margin_ms == 500
            runner = LiveRunner(src, seed, config=config)
            plain = src.checkpoint

            def noting(force: bool = False, **kw) -> None:
                before = src.checkpoints_written
                plain(force, **kw)
                if src.checkpoints_written != before and not force:
                    saves.append((src.saved[-1][1], runner.stream_now_ms()))

            src.checkpoint = noting  # type: ignore[method-assign]
            runner.run(max_seconds=6.0)
        src.close()
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert len(saves) >= 2, f"only {len(saves)} checkpoints written in 6 s of a busy log"
    header = re.compile(rb"msg=audit\((\d+)\.(\d+):")
    times: list[tuple[int, int]] = []  # (offset of the line, its event time in ms)
    offset = 0
    with open(log, "rb") as fh:
        for line in fh:
            m = header.search(line)
            if m:
                times.append((offset, int(m.group(1)) * 1000 + int(m.group(2))))
            offset += len(line)
    for saved, now_ms in saves:
        newest_before = max((t for off, t in times if off < saved), default=None)
        if newest_before is None:
            continue
        assert newest_before <= now_ms - 500, (
            f"checkpoint at {saved:,} holds an event of {newest_before} ms, within 500 ms of the "
            f"newest read ({now_ms:.0f} ms): a partial match there would not be read again")
    assert any(saved > 0 for saved, _ in saves), "no position was ever saved past the start"
