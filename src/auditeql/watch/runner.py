"""The live detection loop: input → documents → one streaming engine per rule → alerts → outputs.

Each rule gets a :class:`~auditeql.engine.StreamingEngine` whose window is the rule's look-back
(``from = "now-9m"`` → 9 minutes), so a ``sample`` fires the moment its last event arrives
instead of at the next 5-minute run. What Kibana does per run is done per *interval bucket*
here: at most ``max_signals`` alert groups per rule per ``interval``; alert ids are Kibana's
deterministic ones, and a group whose id was already emitted (in memory, or in the alert
store from an earlier run) is dropped, as Kibana drops existing ids.
Alerts reach the output through :class:`~auditeql.watch.delivery.Delivery`: the store is the
output's write-ahead log, so a SIGKILL between storing and writing loses nothing.

The loop never blocks longer than one tick (:data:`TICK`): timers run even when the machine
is idle — ``engine.advance(now)`` (``now`` on the stream's clock, :meth:`LiveRunner.stream_now_ms`) evicts expired state and settles sequences, the reassembler
times out incomplete events, the health line and the checkpoint are written, and signal flags
(stop, reload, health) are acted upon. Every alert line is flushed as soon as it is written.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

import orjson

from auditeql.alerts.build import build_alerts
from auditeql.alerts.context import ProcessContext
from auditeql.engine import StreamingEngine
from auditeql.engine.ordering import timestamp_ms
from auditeql.eql.plan import EventPlan
from auditeql.fields import first
from auditeql.rules.model import Rule
from auditeql.rules.replay import query_options
from auditeql.watch.delivery import Delivery
from auditeql.watch.health import HealthReporter
from auditeql.watch.signals import SignalFlags

#: Longest the loop waits for input before running its timers (seconds).
TICK = 0.1
#: How many emitted alert-group ids are remembered to drop duplicates without a store.
_SEEN_MAX = 100_000


class Sink:
    """What the runner needs from an extra output (webhook, syslog): ``write`` and ``close``."""

    def write(self, alert: Mapping[str, Any]) -> None: ...  # pragma: no cover

    def close(self) -> None: ...  # pragma: no cover


@dataclass
class RuleState:
    rule: Rule
    engine: StreamingEngine
    bucket: int = -1
    in_bucket: int = 0
    capped: int = 0
    groups: int = 0
    signature: tuple[Any, ...] = ()


def rule_signature(rule: Rule) -> tuple[Any, ...]:
    """What must be unchanged for a reloaded rule to keep its engine state."""
    return (rule.rule_id, rule.query, rule.version, rule.from_, rule.interval, rule.max_signals,
            rule.timestamp_override, rule.event_category_override, rule.tiebreaker_field)


@dataclass
class WatchConfig:
    fmt: str = "table"  # "table" | "ndjson"
    reorder_ms: int = 500
    #: a saved read position also trails the newest event read by this much event time, so that
    #: after a restart the partial matches of quick rules (the seed rule's execve, socket and
    #: connect come within milliseconds) are read again and completed; 0 turns it off
    resume_margin_ms: int = 500
    health_interval: float = 60.0
    alert_out: IO[bytes] | None = None  # default: stdout
    stderr: TextIO | None = None


@dataclass
class Counters:
    alerts: int = 0  # alert groups emitted
    alert_documents: int = 0
    duplicates: int = 0
    capped: int = 0
    sink_errors: int = 0
    reloads: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class LiveRunner:
    """Wire an input, rules, the store and the outputs; :meth:`run` until EOF or a stop signal."""

    def __init__(
        self,
        source: Any,
        rules: Sequence[Rule],
        *,
        config: WatchConfig,
        store: Any = None,
        sinks: Sequence[Sink] = (),
        kernel_status: Callable[[], Any] | None = None,
        reload_rules: Callable[[], Sequence[Rule]] | None = None,
        on_rules: Callable[[Sequence[Rule]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.config = config
        self.store = store
        self.sinks = list(sinks)
        self.reload_rules = reload_rules
        self.on_rules = on_rules
        self.clock = clock
        self.err = config.stderr if config.stderr is not None else sys.stderr
        self.out: IO[bytes] = config.alert_out if config.alert_out is not None else sys.stdout.buffer
        self.context = ProcessContext(max_pids=65_536)
        self.counters = Counters()
        self.health = HealthReporter(stderr=self.err, kernel_status=kernel_status)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._stream_ms = -1
        self._stream_at: float | None = None
        self.delivery = Delivery(self.out, config.fmt, store, render=self._render, on_error=self._say)
        self.states: list[RuleState] = []
        self._set_rules(rules)

    # ------------------------------------------------------------------ rules

    def _set_rules(self, rules: Sequence[Rule]) -> None:
        old = {s.signature: s for s in self.states}
        states = []
        for rule in rules:
            sig = rule_signature(rule)
            if sig in old:
                states.append(old[sig])
                continue
            window = rule.from_offset_ms - rule.to_offset_ms
            engine = StreamingEngine(rule.plan, query_options(rule), window_ms=max(window, 1),
                                     reorder_ms=self.config.reorder_ms)
            states.append(RuleState(rule, engine, signature=sig))
        self.states = states
        if self.on_rules is not None:
            self.on_rules(rules)

    def reload(self) -> None:
        if self.reload_rules is None:
            return
        try:
            rules = self.reload_rules()
        except Exception as exc:  # noqa: BLE001 - a bad rule file must not stop detection
            self._say(f"rule reload failed, the previous {len(self.states)} rule(s) keep running: {exc}")
            return
        if not rules:
            self._say("rule reload found no rules; the previous rules keep running")
            return
        self._set_rules(rules)
        self.counters.reloads += 1
        self._say(f"reloaded {len(rules)} rule(s)")

    # ------------------------------------------------------------------ main loop

    def run(self, signals: SignalFlags | None = None, *, max_seconds: float | None = None) -> int:
        """Process until the input ends, a stop signal arrives or ``max_seconds`` pass. Returns 0."""
        self._recover()
        started = time.monotonic()
        next_tick = next_health = started
        if self.config.health_interval > 0:
            next_health = started + self.config.health_interval
        while True:
            docs = self.source.read(TICK)
            if docs:
                self._process(docs)
            now_mono = time.monotonic()
            if now_mono >= next_tick:
                next_tick = now_mono + TICK
                self._process(self.source.maintain())
                self._advance()
                self.delivery.settle()
                newest_ms, released_ms = self.held_ms()
                self.source.checkpoint(newest_ms=newest_ms, released_ms=released_ms)
            if signals is not None:
                if signals.take_health():
                    self.report_health()
                if signals.take_reload():
                    self.reload()
                if signals.stop:
                    break
            if self.config.health_interval > 0 and now_mono >= next_health:
                next_health = now_mono + self.config.health_interval
                self.report_health()
            if self.source.eof:
                break
            if max_seconds is not None and now_mono - started >= max_seconds:
                break
        self.finish()
        return 0

    def finish(self) -> None:
        """Flush everything pending, write it out, save the checkpoint, close the outputs."""
        self._process(self.source.flush())
        for state in self.states:
            for match in state.engine.flush():
                self._emit(state, match)
        self.delivery.settle()
        self.source.checkpoint(force=True)
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001
                self._say(f"closing an output failed: {exc}")
        self._flush_out()

    # ------------------------------------------------------------------ documents → alerts

    def _process(self, docs: Sequence[dict[str, Any]]) -> None:
        if not docs:
            return
        observe = self.context.observe
        states = self.states
        newest = self._stream_ms
        for doc in docs:
            ts = first(doc, "@timestamp")
            try:
                ms = int(timestamp_ms(ts)) if ts is not None else None
            except (TypeError, ValueError):
                ms = None
            observe(doc, ms)
            if ms is not None and ms > newest:
                newest = ms
            for state in states:
                for match in state.engine.push(doc):
                    self._emit(state, match)
        if newest > self._stream_ms:
            self._stream_ms = newest
            self._stream_at = time.monotonic()

    def stream_now_ms(self) -> float:
        """The stream's clock: the newest event time, plus the wall time elapsed since it came.

        For live data this is the wall clock (audit timestamps are "now"); for a replayed
        recording piped into ``watch --source -`` it stays in the recording's time, so idle
        timers do not expire state the recording still needs.
        """
        if self._stream_at is None:
            return self.clock() * 1000.0
        return self._stream_ms + (time.monotonic() - self._stream_at) * 1000.0

    def held_ms(self) -> tuple[float, float]:
        """(newest, released) for the input's checkpoint, from the engines' reorder buffers.

        ``newest``: no event pushed so far entered a buffer with a time above it; ``released``:
        no event older than it waits in any buffer (``inf`` when none waits). A read position
        taken when ``newest`` was N is safe once ``released`` > N. On top of the buffers, a
        position trails the newest event read by ``resume_margin_ms`` of event time (partial
        matches are not saved with it; a restart reads the margin again). That margin used to be
        ``--reorder-ms``, and it was the *only* condition, computed after the buffers had moved
        on; on a log whose events are packed tighter than real time (the soak squeezes 80 s into
        80 ms) it is many copies of reading, so tests of the buffer logic set it to 0."""
        newest, released = float("-inf"), float("inf")
        for state in self.states:
            oldest, top = state.engine.held_ms()
            released = min(released, oldest)
            newest = max(newest, top)
        margin = self.config.resume_margin_ms
        if margin > 0 and self._stream_at is not None:
            # and trail every event read by the margin (partial samples and sequences are not
            # saved with the position; those spanning less than the margin are read again)
            newest = max(newest, self._stream_ms)
            released = min(released, self.stream_now_ms() - margin)
        return newest, released

    def _advance(self) -> None:
        now_ms = self.stream_now_ms()
        for state in self.states:
            for match in state.engine.advance(now_ms):
                self._emit(state, match)

    def _emit(self, state: RuleState, match: Any) -> None:
        now_ms = int(self.clock() * 1000)
        rule = state.rule
        bucket = now_ms // max(rule.interval_ms, 1)
        if bucket != state.bucket:
            if state.capped:
                self._say(f"rule {rule.name!r}: max_signals ({rule.max_signals}) reached in one interval; "
                          f"{state.capped} alert group(s) were not created")
            state.bucket, state.in_bucket, state.capped = bucket, 0, 0
        if state.in_bucket >= rule.max_signals:
            state.capped += 1
            self.counters.capped += 1
            return
        if isinstance(rule.plan, EventPlan):  # an event query's alert is built from the event itself
            match = next((e for e in match.events if e is not None), None)
            if match is None:
                return
        alerts = build_alerts(rule, match, run_time_ms=now_ms, context=self.context)
        if not alerts:
            return
        head = alerts[0]
        uuid = str(head.get("kibana.alert.uuid"))
        if uuid in self._seen:
            self.counters.duplicates += 1
            return
        self._seen[uuid] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)
        if not self.delivery.begin(alerts):
            self.counters.duplicates += 1  # found before, by an earlier run
            return
        state.in_bucket += 1
        state.groups += 1
        self.counters.alerts += 1
        self.counters.alert_documents += len(alerts)
        self._to_sinks(head)
        self.delivery.write(alerts)

    def _to_sinks(self, head: Mapping[str, Any]) -> None:
        # before the output: an alert found in the output after a kill was handed to the sinks
        for sink in self.sinks:
            try:
                sink.write(head)
            except Exception as exc:  # noqa: BLE001
                self.counters.sink_errors += 1
                self._say(f"output {type(sink).__name__}: {exc}")

    def _render(self, alerts: Sequence[Mapping[str, Any]]) -> bytes:
        if self.config.fmt == "ndjson":
            return b"".join(orjson.dumps(alert, default=str) + b"\n" for alert in alerts)
        return alert_line(alerts).encode("utf-8", "replace") + b"\n"

    def _recover(self) -> None:
        got = self.delivery.recover(self._to_sinks)
        if got.found or got.replayed:
            self._say(f"after an unclean stop: {got.replayed} pending alert group(s) written again, "
                      f"{got.found} found already written" + (f", a torn last line of {got.truncated} byte(s) cut"
                                                              if got.truncated else ""))

    def _flush_out(self) -> None:
        try:
            self.out.flush()
        except (OSError, ValueError):
            pass

    # ------------------------------------------------------------------ health

    def snapshot(self) -> dict[str, Any]:
        norm = self.source.normalizer
        nstats = norm.stats
        state = 0
        late = 0
        for s in self.states:
            st = s.engine.stats()
            state += int(st.get("keys", 0)) + int(st.get("pending", 0)) + int(st.get("buffered", 0))
            late += int(st.get("late_dropped", 0))
        snap: dict[str, Any] = {
            "records": nstats["records"],
            "events": nstats["events"],
            "alerts": self.counters.alerts,
            "reassembly_timeouts": nstats["reassembly_timeouts"],
            "in_flight": norm.reassembler.in_flight,
            "dropped_by_pushdown": nstats["dropped_by_keep"],
            "engine_state": state,
            "late_dropped": late,
            "rules": len(self.states),
        }
        snap.update(self.source.stats())
        # serial numbers never seen, less the events push-down skipped on purpose (those leave
        # gaps too); the kernel's own ``lost`` counter is the authoritative loss figure
        snap["serial_gaps"] = max(0, nstats["lost_serials"] - nstats["dropped_by_keep"] - snap.get("prefiltered", 0))
        if self.counters.duplicates:
            snap["duplicates"] = self.counters.duplicates
        if self.counters.capped:
            snap["capped"] = self.counters.capped
        if self.counters.sink_errors or self.delivery.errors:
            snap["output_errors"] = self.counters.sink_errors + self.delivery.errors
        for sink in self.sinks:
            stats = getattr(sink, "stats", None)
            if stats is not None:
                name = type(sink).__name__.replace("Sink", "").lower()
                snap[name] = "/".join(f"{k}:{v}" for k, v in stats().items())
        return snap

    def report_health(self) -> str:
        return self.health.report(self.snapshot())

    def _say(self, message: str) -> None:
        try:
            print(f"auditeql: {message}", file=self.err, flush=True)
        except (OSError, ValueError):
            pass


def alert_line(alerts: Sequence[Mapping[str, Any]]) -> str:
    """One human line per alert group (the table format of ``watch``)."""
    from auditeql.alerts.sinks import group_alerts, group_row

    groups = group_alerts(alerts)
    if not groups:
        return ""
    head, members = groups[0]
    r = group_row(head, members)
    parts = [
        r.time, f"[{r.severity}]", r.rule, f"host={r.host}", f"process={r.process}({r.pid}/{r.ppid})",
        f"user={r.user}" if r.user else "", f"dest={r.destination}" if r.destination else "",
        f"cmd={r.command_line!r}" if r.command_line else "", f"alert={r.uuid[:12]}",
    ]
    return "  ".join(p for p in parts if p)
