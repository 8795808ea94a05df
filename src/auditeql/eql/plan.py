"""The compiled form of an EQL query: the contract between the language and the engines.

``auditeql.eql.compile_query(ast_query)`` returns one of the three plan types below. The
engines (``auditeql.engine``), push-down (``auditeql.rules.pushdown``) and the SQL back ends
(``auditeql.scale``) consume only these classes, never the parser's internals. Each plan keeps
the AST it came from (``source``) for explanations and for compilers to other targets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: A compiled filter condition: document -> does it match (event category test included).
Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class KeyField:
    """One join key of one filter: a dotted field path; ``optional`` for ``?field`` keys."""

    path: str
    optional: bool = False


@dataclass(frozen=True)
class Pipe:
    """``| head N`` or ``| tail N``."""

    kind: str  # "head" | "tail"
    count: int


@dataclass(frozen=True)
class CompiledFilter:
    """One ``[cat where cond] by k…`` stage, ready to run.

    ``keys`` holds the full positional key list (the query's ``sample by``/``sequence by`` keys
    followed by the filter's own ``by`` keys). ``missing`` marks a sequence's ``![…]`` stage.
    ``literals`` is a conservative push-down hint: strings of which at least one must occur
    (as a substring of the raw JSON text, case-sensitively) in any document this filter can
    match, or ``None`` when no such set is known. The strings assume the JSON writer escapes
    only what it must: a line containing ``\\u`` or ``\\/`` escapes can spell a literal
    differently, so never skip such a line — use :func:`line_may_match`, which applies this rule.
    """

    predicate: Predicate
    keys: tuple[KeyField, ...] = ()
    missing: bool = False
    category: str | None = None  # None for ``any``
    literals: frozenset[str] | None = None
    source: Any = None  # the AST node
    #: Exact raw-line test (bytes -> may this line's document match?), covering the whole
    #: condition incl. case-insensitive parts; ``None`` = no test. See auditeql.eql.prefilter.
    line_filter: Callable[[bytes], bool] | None = None
    #: Alternative necessary term sets for block scanning: every raw line this filter can
    #: match holds at least one term of *each* group. A term is ``(text, ci)``; ``ci`` terms
    #: are lower-case and match ASCII-case-insensitively. Same escape rule as ``literals``.
    #: Empty = nothing known. See auditeql.eql.prefilter.need_groups.
    line_groups: tuple[tuple[tuple[str, bool], ...], ...] = ()


@dataclass(frozen=True)
class EventPlan:
    """A single-event query ``cat where cond | head N``."""

    filter: CompiledFilter
    pipes: tuple[Pipe, ...] = ()
    source: Any = None


@dataclass(frozen=True)
class SamplePlan:
    """``sample by k… [f1] [f2] …`` (no pipes, no maxspan: Elasticsearch rejects them)."""

    filters: tuple[CompiledFilter, ...]
    source: Any = None


@dataclass(frozen=True)
class SequencePlan:
    """``sequence [by k…] [with maxspan=…] [f1] … [until [f]]``; ``with runs=N`` already expanded."""

    filters: tuple[CompiledFilter, ...]
    maxspan_ms: int | None = None
    until: CompiledFilter | None = None
    pipes: tuple[Pipe, ...] = ()
    source: Any = None


Plan = EventPlan | SamplePlan | SequencePlan


def plan_filters(plan: Plan) -> list[CompiledFilter]:
    """Every filter an engine evaluates for ``plan``: the event filter, the sample or sequence
    stages (missing ones included) and a sequence's ``until``."""
    if isinstance(plan, EventPlan):
        return [plan.filter]
    if isinstance(plan, SamplePlan):
        return list(plan.filters)
    if isinstance(plan, SequencePlan):
        return [*plan.filters, *([plan.until] if plan.until is not None else [])]
    raise TypeError(f"not a compiled plan: {type(plan).__name__}")

#: A raw line containing one of these escapes may spell a literal differently (``\u0061``, ``\/``).
LITERAL_GUARDS: tuple[bytes, ...] = (b"\\u", b"\\/")


def literal_needles(literals: frozenset[str] | None) -> tuple[bytes, ...] | None:
    """``CompiledFilter.literals`` as UTF-8 byte strings for :func:`line_may_match`."""
    if literals is None:
        return None
    return tuple(sorted((lit.encode("utf-8") for lit in literals), key=len, reverse=True))


def line_may_match(line: bytes, needles: tuple[bytes, ...] | None) -> bool:
    """False only when a filter with these needles provably cannot match the JSON ``line``."""
    if needles is None:
        return True
    for needle in needles:
        if needle in line:
            return True
    for guard in LITERAL_GUARDS:
        if guard in line:
            return True
    return False


@dataclass(frozen=True)
class QueryOptions:
    """Request parameters, named as Elasticsearch's ``_eql/search`` names them."""

    size: int = 10
    max_samples_per_key: int = 1
    timestamp_field: str = "@timestamp"
    tiebreaker_field: str | None = None
    event_category_field: str = "event.category"
    extra: dict[str, Any] = field(default_factory=dict)
