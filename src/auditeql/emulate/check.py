"""``emulate --check``: run techniques while the detection pipeline listens, then attribute alerts.

The pipeline is the real one, in-process: kernel audit records from the netlink multicast
group (:class:`~auditeql.emulate.capture.RecordCollector`) → :class:`auditeql.audit.pipeline.Normalizer`
→ one :class:`auditeql.engine.StreamingEngine` per rule. Records are processed as they arrive
(in the collector's thread), exactly as ``auditeql watch`` would.

Attribution: each technique ran in its own session with a known root pid and time window. Its
*process tree* is rebuilt from the audit documents themselves (a process belongs to the tree when
its parent does, in event order). An alert belongs to a technique when one of its events was
made by a process of that tree inside the window; alerts that belong to no technique are
*background* alerts (other activity on the machine) and are reported separately, never hidden.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from auditeql.emulate.runner import Outcome
from auditeql.fields import first

#: Seconds after a technique's end during which its events (and alerts) still count: audit
#: records of its last syscalls are delivered a little later, and a killed shell's children die late.
TAIL_SECONDS = 0.6


@dataclass(frozen=True)
class Alert:
    """One rule result: the rule's name and the events that made it."""

    rule: str
    events: tuple[Mapping[str, Any], ...]

    @property
    def pids(self) -> set[int]:
        return {p for e in self.events if (p := first(e, "process.pid")) is not None}

    @property
    def times(self) -> list[float]:
        from auditeql.engine.ordering import timestamp_ms

        out = []
        for e in self.events:
            ts = timestamp_ms(first(e, "@timestamp"))
            if ts is not None:
                out.append(ts / 1000.0)
        return out


class LivePipeline:
    """Normalizer + streaming engines fed from netlink records, in the collector's thread."""

    def __init__(self, rules: Sequence[Any], *, host: Any = None, window_ms: int = 540_000) -> None:
        from auditeql.audit.pipeline import Normalizer
        from auditeql.engine import StreamingEngine
        from auditeql.eql.plan import QueryOptions

        self.rules = list(rules)
        self.normalizer = Normalizer(host=host, clock=time.monotonic)
        self.engines = [
            StreamingEngine(r.plan, QueryOptions(size=10_000), window_ms=window_ms, reorder_ms=1500)
            for r in self.rules
        ]
        self.docs: list[dict[str, Any]] = []
        self.alerts: list[Alert] = []
        self._lock = threading.Lock()

    def feed(self, records: Iterable[tuple[int, bytes]]) -> None:
        docs: list[dict[str, Any]] = []
        for rtype, payload in records:
            docs.extend(self.normalizer.feed_netlink(rtype, payload))
        docs.extend(self.normalizer.maintain())
        self._push(docs)

    def _push(self, docs: list[dict[str, Any]], *, final: bool = False) -> None:
        with self._lock:
            self.docs.extend(docs)
            for rule, engine in zip(self.rules, self.engines):
                matches = []
                for doc in docs:
                    matches.extend(engine.push(doc))
                if final:
                    matches.extend(engine.flush())
                for m in matches:
                    self.alerts.append(Alert(rule.name, tuple(e for e in m.events if e is not None)))

    def finish(self) -> None:
        self._push(self.normalizer.flush(), final=True)


def process_tree(docs: Iterable[Mapping[str, Any]], root: int, start: float, end: float) -> set[int]:
    """Pids descending from ``root`` (root included), from the documents' pid/ppid pairs."""
    from auditeql.engine.ordering import timestamp_ms

    tree = {root}
    rows = []
    for d in docs:
        ts = timestamp_ms(first(d, "@timestamp"))
        if ts is None or not (start - 0.05 <= ts / 1000.0 <= end + TAIL_SECONDS):
            continue
        rows.append((ts, first(d, "process.pid"), first(d, "process.parent.pid")))
    rows.sort(key=lambda r: r[0])
    changed = True
    while changed:  # pid/ppid pairs may arrive out of order: repeat until stable
        changed = False
        for _ts, pid, ppid in rows:
            if pid is not None and pid not in tree and ppid in tree:
                tree.add(pid)
                changed = True
    return tree


@dataclass(frozen=True)
class Attribution:
    """Alerts per (technique, rule), plus the background alerts per rule."""

    per_technique: dict[tuple[str, str], list[Alert]]
    background: dict[str, list[Alert]] = field(default_factory=dict)


def attribute(outcomes: Sequence[Outcome], alerts: Sequence[Alert], docs: Sequence[Mapping[str, Any]]) -> Attribution:
    trees = {
        o.name: process_tree(docs, o.pid, o.start, o.end) for o in outcomes if o.status == "ran" and o.pid is not None
    }
    windows = {o.name: (o.start - 0.05, o.end + TAIL_SECONDS) for o in outcomes if o.name in trees}
    per: dict[tuple[str, str], list[Alert]] = {}
    background: dict[str, list[Alert]] = {}
    for alert in alerts:
        owner = None
        times = alert.times
        for name, tree in trees.items():
            lo, hi = windows[name]
            if alert.pids & tree and any(lo <= t <= hi for t in times):
                owner = name
                break
        if owner is None:
            background.setdefault(alert.rule, []).append(alert)
        else:
            per.setdefault((owner, alert.rule), []).append(alert)
    return Attribution(per, background)


@contextlib.contextmanager
def _signals_as_exit() -> Iterator[None]:
    """SIGTERM/SIGHUP raise SystemExit while checking, so audit rules and namespaces are removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    old = {sig: signal.signal(sig, _exit) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def run_check(
    techniques: Sequence[Any],
    rules: Sequence[Any],
    *,
    keep_going: bool = True,
    on_done: Callable[[Outcome], None] | None = None,
    record_to: Any = None,
) -> tuple[list[Outcome], LivePipeline, Attribution]:
    """Install audit rules, listen, run ``techniques`` on a test host, attribute the alerts."""
    from auditeql.audit.host import HostInfo
    from auditeql.emulate import runner
    from auditeql.emulate.capture import AuditRules, RecordCollector, specs_for_rules, write_log
    from auditeql.emulate.netns import TestHost

    pipeline = LivePipeline(rules, host=HostInfo.detect())
    raw: list[tuple[int, bytes]] = []
    with _signals_as_exit(), AuditRules(specs_for_rules(rules)):
        collector = RecordCollector(on_batch=lambda batch: (raw.extend(batch) if record_to else None,
                                                            pipeline.feed(batch)))
        collector.start()
        try:
            with TestHost() as host:
                outcomes = runner.run_all(host, techniques, keep_going=keep_going, on_done=on_done)
            time.sleep(TAIL_SECONDS + 0.4)  # the last records are still on their way
        finally:
            collector.stop()
    pipeline.finish()
    if record_to is not None:
        write_log(raw, record_to)
    return outcomes, pipeline, attribute(outcomes, pipeline.alerts, pipeline.docs)
