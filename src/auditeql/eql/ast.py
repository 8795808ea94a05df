"""The EQL abstract syntax tree (Elasticsearch dialect): frozen dataclasses, nothing else.

Every node carries ``line``/``column`` (1-based, 0 when built by hand). Positions are excluded
from equality and ``repr`` so that ``parse(to_text(q)) == q`` is a meaningful identity.
The parser produces these nodes, the printer turns them back into text, the verifier checks
them, the compiler and the SQL back ends read them. Keep names stable: add, don't rename.

Normal forms the parser guarantees (and the printer relies on):

* ``-`` applied directly to a number literal is folded into a negative :class:`Literal`;
  :class:`Negate` never wraps a numeric literal.
* Function names are kept as written (``cidrmatch`` / ``cidrMatch``); compare with
  :attr:`FunctionCall.canonical`.
* ``any`` as an event category is ``category=None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True, kw_only=True)
class Node:
    """Base class: source position of the node's first token."""

    line: int = field(default=0, compare=False, repr=False)
    column: int = field(default=0, compare=False, repr=False)


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Literal(Node):
    """A string (plain or triple-quoted raw), ``42``, ``4.2``, ``true``, ``false``, ``null``.

    ``value`` is ``str``, ``int`` (Java int or long, by magnitude), ``float``, ``bool`` or ``None``.
    """

    value: str | int | float | bool | None


@dataclass(frozen=True)
class Field(Node):
    """A field reference; ``name`` is the dotted path as Elasticsearch sees it.

    ``optional`` marks ``?name`` (a field that may be mapped nowhere).
    """

    name: str
    optional: bool = False


@dataclass(frozen=True)
class Comparison(Node):
    """``left op right`` with ``op`` in ``== != < <= > >=``."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class StringMatch(Node):
    """``left : v``, ``left like v``, ``like~``, ``regex``, ``regex~``; ``values`` has ≥1 item.

    ``op`` is one of ``":"``, ``"like"``, ``"like~"``, ``"regex"``, ``"regex~"``.
    ``list_form`` records whether the values were written in parentheses (printing only).
    """

    op: str
    left: Expr
    values: tuple[Expr, ...]
    list_form: bool = False


@dataclass(frozen=True)
class InSet(Node):
    """``left in (v…)``, ``in~``, ``not in``, ``not in~``."""

    left: Expr
    values: tuple[Expr, ...]
    negated: bool = False
    case_insensitive: bool = False


@dataclass(frozen=True)
class And(Node):
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or(Node):
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not(Node):
    expr: Expr


@dataclass(frozen=True)
class Arithmetic(Node):
    """``left op right`` with ``op`` in ``+ - * / %``."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Negate(Node):
    """Unary minus on a non-literal expression."""

    expr: Expr


@dataclass(frozen=True)
class FunctionCall(Node):
    """``name(args…)`` or ``name~(args…)`` (``case_insensitive``)."""

    name: str
    args: tuple[Expr, ...]
    case_insensitive: bool = False

    @property
    def canonical(self) -> str:
        """The lower-cased name: Elasticsearch resolves function names case-insensitively."""
        return self.name.lower()


Expr = Union[Literal, Field, Comparison, StringMatch, InSet, And, Or, Not, Arithmetic, Negate, FunctionCall]


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class EventFilter(Node):
    """``category where condition``; ``category`` is ``None`` for ``any``."""

    category: str | None
    condition: Expr


@dataclass(frozen=True)
class SubQuery(Node):
    """One ``[filter] by k… with runs=N`` stage of a sample or sequence.

    ``missing`` marks ``![filter]`` (sequences only); ``runs`` is ``None`` when not written.
    """

    filter: EventFilter
    by: tuple[Field, ...] = ()
    missing: bool = False
    runs: int | None = None


@dataclass(frozen=True)
class TimeSpan(Node):
    """``maxspan=value unit``; ``unit`` in ``ms s m h d``."""

    value: int
    unit: str

    @property
    def millis(self) -> int:
        return self.value * _UNIT_MS[self.unit]


_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
TIME_UNITS = tuple(_UNIT_MS)


@dataclass(frozen=True)
class Pipe(Node):
    """``| head N`` or ``| tail N``; ``kind`` keeps the name as written, lower-cased."""

    kind: str
    count: int


@dataclass(frozen=True)
class EventQuery(Node):
    filter: EventFilter
    pipes: tuple[Pipe, ...] = ()


@dataclass(frozen=True)
class SampleQuery(Node):
    """``sample [by k…] [f] by … [f] by …``; ``pipes`` is kept so the verifier can reject them."""

    by: tuple[Field, ...]
    subqueries: tuple[SubQuery, ...]
    pipes: tuple[Pipe, ...] = ()


@dataclass(frozen=True)
class SequenceQuery(Node):
    by: tuple[Field, ...]
    subqueries: tuple[SubQuery, ...]
    maxspan: TimeSpan | None = None
    until: SubQuery | None = None
    pipes: tuple[Pipe, ...] = ()


Query = Union[EventQuery, SampleQuery, SequenceQuery]
