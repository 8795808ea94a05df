"""Replay detection rules over recorded data the way Kibana's scheduler would have run them.

Kibana runs an EQL rule every ``interval``; each run searches the window
``[run - from, run - to]`` (inclusive, on ``timestamp_override`` with fallback to
``@timestamp``, or on ``@timestamp``), asks for at most ``max_signals`` results, and drops alerts
whose deterministic id already exists (eql-semantics.md §5.1–5.4). :class:`Replayer` does the
same over the data's time span, with runs at multiples of ``interval`` since the Unix epoch
(Kibana's phase depends on when the rule was enabled; a fixed grid makes scans reproducible).

Efficiency without changing results: an engine only ever looks at documents that match one of
the query's filters, so the input is read once, each document is tested against the filters
once, and only the matching ("candidate") documents are kept, sorted once by time. Each run's
window is then a slice of that sorted list (two bisections); runs whose window holds no
candidate, or exactly the same candidates as the previous evaluated run, are not evaluated
(they would find nothing, or only duplicates). ``tests/scan`` checks that this gives the same
alerts as evaluating every window over all documents.

Engines: :data:`ENGINES` maps ``--engine`` names to factories of a window runner
``(rule, docs, options) -> results``; the DuckDB and Spark back ends register theirs there.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from auditeql.eql.plan import QueryOptions, plan_filters
from auditeql.fields import first
from auditeql.rules.model import Rule

WindowRunner = Callable[[Rule, Sequence[Mapping[str, Any]], QueryOptions], list[Any]]

#: Kibana's warning text when a run returns max_signals results.
MAX_SIGNALS_WARNING = "This rule reached the maximum alert limit for the rule execution. Some alerts were not created."


def _python_runner() -> WindowRunner:
    from auditeql.engine import run_batch

    def run(rule: Rule, docs: Sequence[Mapping[str, Any]], options: QueryOptions) -> list[Any]:
        return list(run_batch(rule.plan, docs, options))

    return run


#: ``--engine`` name -> factory of a window runner (imported lazily; the scale back ends add theirs).
ENGINES: dict[str, Callable[[], WindowRunner]] = {"python": _python_runner}


def window_runner(engine: str) -> WindowRunner:
    """The runner for ``engine``; ValueError naming the known engines otherwise."""
    factory = ENGINES.get(engine)
    if factory is None:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(sorted(ENGINES))}")
    return factory()


def query_options(rule: Rule) -> QueryOptions:
    """The ``_eql/search`` parameters Kibana sends for a rule (size = max_signals)."""
    return QueryOptions(
        size=rule.max_signals,
        timestamp_field=rule.timestamp_field or "@timestamp",
        tiebreaker_field=rule.tiebreaker_field,
        event_category_field=rule.event_category_override or "event.category",
    )


def window_time(doc: Mapping[str, Any], rule: Rule, parse: Callable[[Any], int | None]) -> int | None:
    """The time Kibana's range filter sees: ``timestamp_override`` (fallback ``@timestamp``)."""
    if rule.timestamp_override:
        value = first(doc, rule.timestamp_override)
        if value is not None:
            return parse(value)
        if rule.timestamp_override_fallback_disabled:
            return None
    value = doc.get("@timestamp")
    if value is None or value.__class__ is list:
        value = first(doc, "@timestamp")
    return parse(value) if value is not None else None


@dataclass(frozen=True)
class Run:
    """One replayed rule execution that was evaluated."""

    rule_id: str
    time_ms: int
    start_ms: int
    end_ms: int
    candidates: int
    results: int
    capped: bool


@dataclass
class RuleReplay:
    """Per-rule state: candidates (time, arrival, doc) and the data's time span."""

    rule: Rule
    predicates: list[Callable[[Mapping[str, Any]], bool]]
    candidates: list[tuple[int, int, Mapping[str, Any]]] = field(default_factory=list)
    min_ms: int | None = None
    max_ms: int | None = None
    untimed: int = 0
    min_text: str | None = None
    max_text: str | None = None

    def see(self, ts: int) -> None:
        if self.min_ms is None or ts < self.min_ms:
            self.min_ms = ts
        if self.max_ms is None or ts > self.max_ms:
            self.max_ms = ts

    def track_span(self, doc: Mapping[str, Any]) -> None:
        """Widen the data's time span with a non-candidate document (cheaply)."""
        rule = self.rule
        if rule.timestamp_override:
            ts = window_time(doc, rule, _parse_ts)
            if ts is not None:
                self.see(ts)
            return
        value = doc.get("@timestamp")
        if value.__class__ is str and len(value) == 24 and value[10] == "T" and value[23] == "Z":
            if self.min_text is None or value < self.min_text:
                self.min_text = value
            if self.max_text is None or value > self.max_text:
                self.max_text = value
            return
        ts = window_time(doc, rule, _parse_ts)
        if ts is not None:
            self.see(ts)

    def span(self) -> tuple[int | None, int | None]:
        """(first, last) time of every timed document fed."""
        for text in (self.min_text, self.max_text):
            if text is not None:
                ts = _parse_ts(text)
                if ts is not None:
                    self.see(ts)
        return self.min_ms, self.max_ms


@dataclass
class ScanResult:
    """Alerts (deduplicated, in discovery order) and what the replay did."""

    alerts: list[dict[str, Any]]
    runs: list[Run]
    warnings: list[str]
    documents: int
    candidates: int
    scheduled_runs: int


def _parse_ts(value: Any) -> int | None:
    from auditeql.engine.ordering import timestamp_ms

    try:
        out = timestamp_ms(value)
    except (ValueError, TypeError):
        return None
    return int(out) if out is not None else None


class Replayer:
    """Feed documents (any order), then :meth:`finish` replays every rule's scheduled runs."""

    def __init__(self, rules: Iterable[Rule], *, engine: str = "python", context: Any = None) -> None:
        self.rules = [RuleReplay(r, [f.predicate for f in plan_filters(r.plan)]) for r in rules]
        self.runner = window_runner(engine)
        self.context = context
        self.documents = 0

    def feed(self, doc: Mapping[str, Any]) -> None:
        """Test one document against every rule's filters; keep it only if one matches.

        Only candidates need their time parsed; for the others only the data's time span is
        tracked, by plain string comparison when the time has Elasticsearch's canonical
        ``YYYY-MM-DDTHH:MM:SS.mmmZ`` shape (which sorts as text) and by parsing otherwise.
        """
        seq = self.documents
        self.documents += 1
        ts_at: int | None = None
        own = doc.get("kibana.alert.rule.rule_id")  # an alert document (Kibana drops its own alerts)
        for state in self.rules:
            if own is not None and own == state.rule.rule_id:
                continue
            for pred in state.predicates:
                if pred(doc):
                    break
            else:
                state.track_span(doc)
                continue
            ts = window_time(doc, state.rule, _parse_ts)
            if ts is None:
                state.untimed += 1
                continue
            ts_at = ts
            state.see(ts)
            state.candidates.append((ts, seq, doc))
        if self.context is not None:
            self.context.observe(doc, ts_at)

    def finish(self) -> ScanResult:
        """Replay every rule's runs over the fed data; alerts deduplicated by uuid."""
        from auditeql.alerts.build import alert_id, build_alerts

        alerts: list[dict[str, Any]] = []
        seen: set[str] = set()
        runs: list[Run] = []
        warnings: list[str] = []
        scheduled = 0
        for state in self.rules:
            rule = state.rule
            if state.untimed:
                warnings.append(
                    f"rule {rule.name!r}: {state.untimed} document(s) matching its filters have no usable "
                    f"{rule.primary_timestamp} and are outside every run's time window (as in Kibana)"
                )
            first_ms, last_ms = state.span()
            if first_ms is None or last_ms is None:
                continue
            times = run_range(rule, first_ms, last_ms)  # a range: a decade of 5-minute runs costs nothing
            scheduled += len(times)
            state.candidates.sort(key=lambda c: (c[0], c[1]))
            for run in self._evaluate(state, times):
                runs.append(run[0])
                if run[0].capped:
                    warnings.append(
                        f"rule {rule.name!r}, run at {_iso(run[0].time_ms)}: {MAX_SIGNALS_WARNING} "
                        f"(max_signals = {rule.max_signals})"
                    )
                for result in run[1]:
                    if alert_id(rule, result) in seen:
                        continue  # found again by an overlapping run: Kibana drops it by id too
                    for alert in build_alerts(rule, result, run_time_ms=run[0].time_ms, context=self.context):
                        uuid = alert["kibana.alert.uuid"]
                        if uuid not in seen:
                            seen.add(uuid)
                            alerts.append(alert)
        return ScanResult(
            alerts=alerts,
            runs=runs,
            warnings=warnings,
            documents=self.documents,
            candidates=sum(len(s.candidates) for s in self.rules),
            scheduled_runs=scheduled,
        )

    def _evaluate(self, state: RuleReplay, times: Sequence[int]) -> Iterable[tuple[Run, list[Any]]]:
        rule = state.rule
        options = query_options(rule)
        keys = [c[0] for c in state.candidates]
        docs = [c[2] for c in state.candidates]
        back, ahead = rule.from_offset_ms, rule.to_offset_ms
        previous: tuple[int, int] | None = None
        for t in _runs_with_candidates(rule, keys, times):
            lo = bisect.bisect_left(keys, t - back)
            hi = bisect.bisect_right(keys, t - ahead)
            if lo >= hi or (lo, hi) == previous:
                continue
            previous = (lo, hi)
            results = self.runner(rule, docs[lo:hi], options)
            yield (
                Run(rule.rule_id, t, t - back, t - ahead, hi - lo, len(results), len(results) >= rule.max_signals),
                results,
            )


def run_times(rule: Rule, min_ms: int, max_ms: int) -> list[int]:
    """Every run on the epoch-aligned ``interval`` grid whose window sees part of ``[min_ms, max_ms]``.

    The first run is the earliest whose window end (``run - to``) reaches ``min_ms``; the last is
    the latest whose window start (``run - from``) is still at or before ``max_ms`` — Kibana keeps
    running after the data ends, and those later runs see the tail of the data again.
    """
    return list(run_range(rule, min_ms, max_ms))


def run_range(rule: Rule, min_ms: int, max_ms: int) -> range:
    """:func:`run_times` as a lazy ``range``."""
    step, back, ahead = rule.interval_ms, rule.from_offset_ms, rule.to_offset_ms
    first_run = -((-(min_ms + ahead)) // step) * step
    last_run = (max_ms + back) // step * step
    return range(first_run, last_run + 1, step)


def _runs_with_candidates(rule: Rule, keys: Sequence[int], times: Sequence[int]) -> list[int]:
    """The run times whose window contains at least one candidate time (sorted, unique)."""
    if not keys or not times:
        return []
    step, back, ahead = rule.interval_ms, rule.from_offset_ms, rule.to_offset_ms
    t0, t_end = times[0], times[-1]
    out: list[int] = []
    last = None
    for ts in keys:
        # runs t with t - back <= ts <= t - ahead  <=>  ts + ahead <= t <= ts + back
        lo = max(t0, -((-(ts + ahead - t0)) // step) * step + t0)
        hi = min(t_end, (ts + back - t0) // step * step + t0)
        start = lo if last is None else max(lo, last + step)
        for t in range(start, hi + 1, step):
            out.append(t)
            last = t
    return out


def _iso(ms: int) -> str:
    from auditeql.alerts.build import iso_ms

    return iso_ms(ms)
