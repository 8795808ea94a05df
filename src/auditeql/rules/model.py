"""The detection-rule model: Elastic detection-rules TOML, validated, plus its compiled query.

A rule file is data (TOML read with :mod:`tomllib`): nothing in it can execute code. The model
keeps the fields Kibana copies into alerts (``kibana.alert.rule.*``) and the ones its scheduler
uses (``interval``, ``from``, ``to``, ``max_signals``, ``timestamp_override``). Validation
errors are :class:`RuleError`, which always names the file and the field and says what to do,
because users write these files by hand.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Kibana's defaults for fields a rule may leave out (Kibana rule API / detection-rules).
DEFAULT_INTERVAL = "5m"
DEFAULT_FROM = "now-6m"
DEFAULT_TO = "now"
DEFAULT_MAX_SIGNALS = 100

SEVERITIES = ("low", "medium", "high", "critical")

#: rule types that exist in detection-rules; only ``eql`` can run here.
KNOWN_TYPES = ("eql", "query", "threshold", "esql", "new_terms", "machine_learning", "threat_match", "saved_query")

#: date-math units Kibana accepts in ``interval`` / ``from`` / ``to`` -> milliseconds.
_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "H": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^(\d+)([smhHdw])$")
_DATE_MATH = re.compile(r"^now(?:-(\d+)([smhHdw]))?$")


class RuleError(Exception):
    """An invalid rule file: ``file``, ``field`` (dotted, e.g. ``rule.severity``) and a message."""

    def __init__(self, file: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.file = file
        self.field = field
        self.message = message

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        if self.field:
            where += f"{self.field}: "
        return f"{where}{self.message}"


class UnsupportedRule(RuleError):
    """A valid detection rule of a type auditeql does not run (e.g. ``type = "query"``)."""


@dataclass(frozen=True)
class AttackRef:
    """One MITRE ATT&CK tactic, technique or sub-technique: id, name, reference URL."""

    id: str
    name: str
    reference: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "reference": self.reference}


@dataclass(frozen=True)
class Technique:
    """A technique with its sub-techniques (``[[rule.threat.technique]]``)."""

    ref: AttackRef
    subtechnique: tuple[AttackRef, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = self.ref.to_dict()
        if self.subtechnique:
            out["subtechnique"] = [s.to_dict() for s in self.subtechnique]
        return out


@dataclass(frozen=True)
class Threat:
    """One ``[[rule.threat]]`` entry, in the shape Kibana stores in ``kibana.alert.rule.threat``."""

    framework: str
    tactic: AttackRef
    technique: tuple[Technique, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"framework": self.framework, "tactic": self.tactic.to_dict()}
        if self.technique:
            out["technique"] = [t.to_dict() for t in self.technique]
        return out


@dataclass(frozen=True)
class Rule:
    """A detection rule: the detection-rules TOML fields, Kibana's defaults filled in, and the plan.

    ``from_`` is the TOML ``from`` (a Python keyword). ``plan`` is the compiled EQL query
    (:mod:`auditeql.eql.plan`); ``None`` only for a rule built by hand without compiling.
    ``path`` is where it was loaded from (``builtin:<name>`` for the built-ins).
    """

    rule_id: str
    name: str
    description: str
    type: str
    language: str
    query: str
    risk_score: int
    severity: str
    index: tuple[str, ...] = ()
    interval: str = DEFAULT_INTERVAL
    from_: str = DEFAULT_FROM
    to: str = DEFAULT_TO
    max_signals: int = DEFAULT_MAX_SIGNALS
    timestamp_override: str | None = None
    timestamp_override_fallback_disabled: bool = False
    event_category_override: str | None = None
    tiebreaker_field: str | None = None
    timestamp_field: str | None = None
    tags: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    author: tuple[str, ...] = ()
    license: str | None = None
    version: int = 1
    threat: tuple[Threat, ...] = ()
    building_block_type: str | None = None
    note: str | None = None
    setup: str | None = None
    false_positives: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)
    path: str = ""
    builtin: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)
    plan: Any = field(default=None, compare=False, repr=False)

    @property
    def interval_ms(self) -> int:
        return parse_duration(self.interval)

    @property
    def from_offset_ms(self) -> int:
        """How far before the run time the window starts (``now-9m`` -> 540000)."""
        return parse_date_math(self.from_)

    @property
    def to_offset_ms(self) -> int:
        """How far before the run time the window ends (``now`` -> 0)."""
        return parse_date_math(self.to)

    @property
    def primary_timestamp(self) -> str:
        """The field the run's time window filters on (Kibana's ``primary_ts``)."""
        return self.timestamp_override or "@timestamp"

    def threat_dicts(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.threat]


def parse_duration(text: str) -> int:
    """``"5m"`` -> 300000. Raises ValueError with the accepted shape."""
    m = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration; write a positive number and a unit s, m, h or d, e.g. \"5m\"")
    return int(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_date_math(text: str) -> int:
    """``"now-9m"`` -> 540000 (an offset back from the run time); ``"now"`` -> 0."""
    m = _DATE_MATH.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError(
            f"{text!r} is not a supported date-math expression; write \"now\" or \"now-<N><unit>\" "
            "with unit s, m, h or d, e.g. \"now-9m\" (rounding like /m is not supported)"
        )
    return int(m.group(1)) * _UNITS_MS[m.group(2)] if m.group(1) else 0
