"""Loading detection rules: one TOML file, a directory of them, or the built-ins.

Files follow Elastic's detection-rules layout (``[metadata]`` and ``[rule]`` tables,
``[[rule.threat]]`` arrays). Every problem becomes a :class:`RuleError` naming the file and the
field, so ``auditeql rules validate`` and ``scan --rule`` can say exactly what to fix. A
directory may hold rules of types auditeql cannot run (``query``, ``threshold``…, as the
detection-rules repository does): those are reported and skipped, never fatal.
"""

from __future__ import annotations

import difflib
import glob
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from auditeql.rules.model import (
    DEFAULT_FROM,
    DEFAULT_INTERVAL,
    DEFAULT_MAX_SIGNALS,
    DEFAULT_TO,
    KNOWN_TYPES,
    SEVERITIES,
    AttackRef,
    Rule,
    RuleError,
    Technique,
    Threat,
    UnsupportedRule,
    parse_date_math,
    parse_duration,
)

#: [rule] keys that exist in detection-rules / Kibana but do not change how auditeql runs a rule.
_IGNORED_RULE_KEYS = frozenset(
    {
        "actions", "alert_suppression", "enabled", "exceptions_list", "filters", "investigation_fields",
        "meta", "output_index", "related_integrations", "required_fields", "risk_score_mapping",
        "rule_name_override", "severity_mapping", "throttle", "timeline_id", "timeline_title",
        "namespace", "outcome", "alias_purpose", "alias_target_id", "max_signals_comment",
        "concurrent_searches", "items_per_search", "data_view_id", "saved_id", "response_actions",
        "threshold", "new_terms", "threat_query", "threat_mapping", "threat_index", "threat_filters",
        "threat_indicator_path", "threat_language", "anomaly_threshold", "machine_learning_job_id",
        "history_window_start", "query_language",
    }
)
_KEYS_WITH_EFFECT_WARNING = {
    "exceptions_list": "exception lists are not applied (auditeql has no Kibana exception lists)",
    "filters": "Kibana query filters are not applied",
    "alert_suppression": "alert suppression is not applied",
}
_RULE_KEYS = frozenset(
    {
        "rule_id", "name", "description", "type", "language", "query", "risk_score", "severity", "index",
        "interval", "from", "to", "max_signals", "timestamp_override", "timestamp_override_fallback_disabled",
        "event_category_override", "tiebreaker_field", "timestamp_field", "tags", "references", "author",
        "license", "version", "threat", "building_block_type", "note", "setup", "false_positives",
    }
)
_TOP_KEYS = frozenset({"metadata", "rule", "transform", "hunt"})


@dataclass
class LoadReport:
    """What :func:`load_rules` found besides the rules: skipped files and per-file errors."""

    errors: list[RuleError] = field(default_factory=list)
    unsupported: list[UnsupportedRule] = field(default_factory=list)
    deprecated: list[str] = field(default_factory=list)


def load_rule(path: str, *, compile: bool = True) -> Rule:
    """Read and validate one TOML rule file (errors name the file and the field)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise RuleError(path, None, f"cannot read the rule file: {exc.strerror or exc}") from None
    return parse_rule(raw, path, compile=compile)


def parse_rule(raw: bytes | str, path: str = "<rule>", *, compile: bool = True, builtin: bool = False) -> Rule:
    """Validate the text of one rule file; ``path`` is only used in messages."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RuleError(path, None, f"not UTF-8 text (byte {exc.start}); save the rule as UTF-8") from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(path, None, f"not valid TOML: {exc}; fix the syntax (detection-rules files are TOML)") from None
    return rule_from_mapping(data, path, compile=compile, builtin=builtin)


def rule_from_mapping(data: Mapping[str, Any], path: str, *, compile: bool = True, builtin: bool = False) -> Rule:
    """Validate an already-parsed detection-rules document."""
    v = _Validator(path)
    rule = data.get("rule")
    if not isinstance(rule, Mapping):
        raise RuleError(path, "rule", "missing [rule] table; a detection-rules file has [metadata] and [rule] tables")
    metadata = data.get("metadata", {})
    if not isinstance(metadata, Mapping):
        raise RuleError(path, "metadata", "must be a table ([metadata])")
    for key in data:
        if key not in _TOP_KEYS:
            v.warn(f"unknown top-level table [{key}] ignored")

    rtype = v.string(rule, "type")
    if rtype != "eql":
        known = "" if rtype in KNOWN_TYPES else f" (known types: {', '.join(KNOWN_TYPES)})"
        raise UnsupportedRule(path, "rule.type", f"type {rtype!r} cannot run in auditeql; only type = \"eql\" rules can{known}")
    language = v.string(rule, "language")
    if language != "eql":
        raise RuleError(path, "rule.language", f"an eql rule needs language = \"eql\", not {language!r}")

    for key in rule:
        if key in _RULE_KEYS:
            continue
        if key in _IGNORED_RULE_KEYS:
            if key in _KEYS_WITH_EFFECT_WARNING:
                v.warn(f"rule.{key}: {_KEYS_WITH_EFFECT_WARNING[key]}")
            continue
        close = difflib.get_close_matches(key, sorted(_RULE_KEYS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        v.warn(f"rule.{key}: unknown field ignored{hint}")

    risk = v.integer(rule, "risk_score", lo=0, hi=100)
    severity = v.string(rule, "severity")
    if severity not in SEVERITIES:
        raise RuleError(path, "rule.severity", f"{severity!r} is not a severity; use one of {', '.join(SEVERITIES)}")
    interval = v.string(rule, "interval", default=DEFAULT_INTERVAL)
    v.check(lambda: parse_duration(interval), "rule.interval")
    from_ = v.string(rule, "from", default=DEFAULT_FROM)
    v.check(lambda: parse_date_math(from_), "rule.from")
    to = v.string(rule, "to", default=DEFAULT_TO)
    v.check(lambda: parse_date_math(to), "rule.to")
    if parse_date_math(to) >= parse_date_math(from_):
        raise RuleError(path, "rule.from", f"the window from {from_!r} to {to!r} is empty; 'from' must lie before 'to'")
    lookback = parse_date_math(from_) - parse_date_math(to)
    if lookback < parse_duration(interval):
        v.warn(f"rule.from: the look-back ({from_} to {to}) is shorter than the interval ({interval}); runs leave gaps, as in Kibana")
    building_block = v.opt_string(rule, "building_block_type")
    if building_block is not None and building_block != "default":
        raise RuleError(path, "rule.building_block_type", "the only building-block type is \"default\"")

    out = Rule(
        rule_id=v.rule_id(rule),
        name=v.string(rule, "name"),
        description=v.string(rule, "description"),
        type=rtype,
        language=language,
        query=v.string(rule, "query"),
        risk_score=risk,
        severity=severity,
        index=v.strings(rule, "index"),
        interval=interval,
        from_=from_,
        to=to,
        max_signals=v.integer(rule, "max_signals", lo=1, hi=100_000, default=DEFAULT_MAX_SIGNALS),
        timestamp_override=v.opt_string(rule, "timestamp_override"),
        timestamp_override_fallback_disabled=v.boolean(rule, "timestamp_override_fallback_disabled", default=False),
        event_category_override=v.opt_string(rule, "event_category_override"),
        tiebreaker_field=v.opt_string(rule, "tiebreaker_field"),
        timestamp_field=v.opt_string(rule, "timestamp_field"),
        tags=v.strings(rule, "tags"),
        references=v.strings(rule, "references"),
        author=v.strings(rule, "author"),
        license=v.opt_string(rule, "license"),
        version=v.integer(rule, "version", lo=1, hi=1_000_000, default=1),
        threat=_threats(v, rule.get("threat")),
        building_block_type=building_block,
        note=v.opt_string(rule, "note"),
        setup=v.opt_string(rule, "setup"),
        false_positives=v.strings(rule, "false_positives"),
        metadata=dict(metadata),
        path=path,
        builtin=builtin,
        warnings=tuple(v.warnings),
    )
    if compile:
        out = compile_rule(out)
    return out


def compile_rule(rule: Rule) -> Rule:
    """Return ``rule`` with its EQL query compiled (errors point at the query's line and column)."""
    from dataclasses import replace

    from auditeql.eql import EqlError, compile_query

    try:
        plan = compile_query(rule.query, event_category_field=rule.event_category_override or "event.category")
    except EqlError as exc:
        raise RuleError(rule.path, "rule.query", f"invalid EQL at {exc}; fix the query (line:column are within the query text)") from None
    return replace(rule, plan=plan)


def builtin_rules(*, compile: bool = True, include_development: bool = True) -> list[Rule]:
    """The rules shipped in ``auditeql/rules/builtin/*.toml``, in file-name order.

    With ``include_development=False`` only those whose ``[metadata] maturity`` is
    ``production`` (Elastic's seed rule): the default set of ``scan``. auditeql's own rules
    (maturity ``development``) are opt-in, so that a default scan answers exactly as Elastic would.
    """
    out: list[Rule] = []
    base = resources.files("auditeql.rules").joinpath("builtin")
    for entry in sorted(base.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            rule = parse_rule(entry.read_bytes(), f"builtin:{entry.name}", compile=False, builtin=True)
            if include_development or is_default_enabled(rule):
                out.append(compile_rule(rule) if compile else rule)
    return out


def is_default_enabled(rule: Rule) -> bool:
    """A built-in rule runs by default when its maturity is ``production``."""
    return str(rule.metadata.get("maturity", "production")).lower() == "production"


def rule_files_in(directory: str) -> list[str]:
    """All ``*.toml`` files under ``directory`` (recursively, sorted), as detection-rules lays them out."""
    if not os.path.isdir(directory):
        raise RuleError(directory, None, "not a directory; --rules-dir takes a folder of .toml rule files")
    return sorted(glob.glob(os.path.join(directory, "**", "*.toml"), recursive=True))


def load_rules(
    files: Iterable[str] = (),
    dirs: Iterable[str] = (),
    builtin: bool | str = True,
    *,
    report: LoadReport | None = None,
    compile: bool = True,
) -> list[Rule]:
    """Built-ins, then ``files``, then every rule under ``dirs``.

    ``builtin``: ``True`` = the default built-ins (maturity production: Elastic's seed rule),
    ``"all"`` = every built-in (auditeql's own rules too), ``False`` = none.

    A bad explicit file raises :class:`RuleError`. Inside a directory, invalid files are added to
    ``report.errors`` and skipped, unsupported types to ``report.unsupported``, rules whose
    ``[metadata] maturity`` is ``deprecated`` to ``report.deprecated``; the rest still load.
    A later rule with an already-loaded ``rule_id`` replaces the earlier one (a user's copy of
    a built-in rule wins).
    """
    report = report if report is not None else LoadReport()
    by_id: dict[str, Rule] = {}
    if builtin:
        for r in builtin_rules(compile=compile, include_development=builtin == "all"):
            by_id[r.rule_id] = r
    for path in files:
        r = load_rule(path, compile=compile)
        by_id[r.rule_id] = r
    for directory in dirs:
        for path in rule_files_in(directory):
            try:
                r = load_rule(path, compile=compile)
            except UnsupportedRule as exc:
                report.unsupported.append(exc)
                continue
            except RuleError as exc:
                report.errors.append(exc)
                continue
            if str(r.metadata.get("maturity", "")).lower() == "deprecated":
                report.deprecated.append(path)
                continue
            by_id[r.rule_id] = r
    return list(by_id.values())


class _Validator:
    """Field checks that raise RuleError with the file, the field and what to write instead."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def fail(self, key: str, message: str) -> RuleError:
        return RuleError(self.path, f"rule.{key}" if "." not in key else key, message)

    def check(self, fn: Any, key: str) -> None:
        try:
            fn()
        except ValueError as exc:
            raise RuleError(self.path, key, str(exc)) from None

    def string(self, rule: Mapping[str, Any], key: str, default: str | None = None) -> str:
        if key not in rule:
            if default is not None:
                return default
            raise self.fail(key, f"required field missing; add {key} = \"…\" under [rule]")
        value = rule[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {_show(value)}")
        return value

    def opt_string(self, rule: Mapping[str, Any], key: str) -> str | None:
        if key not in rule:
            return None
        return self.string(rule, key)

    def strings(self, rule: Mapping[str, Any], key: str) -> tuple[str, ...]:
        value = rule.get(key, [])
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise self.fail(key, f"must be a list of strings, e.g. {key} = [\"a\", \"b\"]; got {_show(value)}")
        return tuple(value)

    def integer(self, rule: Mapping[str, Any], key: str, *, lo: int, hi: int, default: int | None = None) -> int:
        if key not in rule:
            if default is not None:
                return default
            raise self.fail(key, f"required field missing; add {key} = <integer {lo}..{hi}> under [rule]")
        value = rule[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer {lo}..{hi} (no quotes), got {_show(value)}")
        if not lo <= value <= hi:
            raise self.fail(key, f"must be between {lo} and {hi}, got {value}")
        return value

    def boolean(self, rule: Mapping[str, Any], key: str, *, default: bool) -> bool:
        value = rule.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {_show(value)}")
        return value

    def rule_id(self, rule: Mapping[str, Any]) -> str:
        value = self.string(rule, "rule_id")
        if not all(c.isalnum() or c in "-_." for c in value):
            raise self.fail("rule_id", f"{value!r} may only hold letters, digits, '-', '_' and '.' (detection-rules uses a UUID)")
        return value


def _threats(v: _Validator, value: Any) -> tuple[Threat, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RuleError(v.path, "rule.threat", "must be an array of tables: write [[rule.threat]] sections")
    out = []
    for i, item in enumerate(value):
        where = f"rule.threat[{i}]"
        if not isinstance(item, Mapping):
            raise RuleError(v.path, where, "must be a table ([[rule.threat]])")
        framework = item.get("framework")
        if not isinstance(framework, str) or not framework:
            raise RuleError(v.path, f"{where}.framework", "required; write framework = \"MITRE ATT&CK\"")
        tactic = _attack(v, item.get("tactic"), f"{where}.tactic")
        techniques = item.get("technique", [])
        if not isinstance(techniques, list):
            raise RuleError(v.path, f"{where}.technique", "must be an array of tables ([[rule.threat.technique]])")
        techs = []
        for j, t in enumerate(techniques):
            tw = f"{where}.technique[{j}]"
            ref = _attack(v, t, tw)
            subs = t.get("subtechnique", []) if isinstance(t, Mapping) else []
            if not isinstance(subs, list):
                raise RuleError(v.path, f"{tw}.subtechnique", "must be an array of tables ([[rule.threat.technique.subtechnique]])")
            techs.append(Technique(ref, tuple(_attack(v, s, f"{tw}.subtechnique[{k}]") for k, s in enumerate(subs))))
        out.append(Threat(framework, tactic, tuple(techs)))
    return tuple(out)


def _attack(v: _Validator, value: Any, where: str) -> AttackRef:
    if not isinstance(value, Mapping):
        raise RuleError(v.path, where, "must be a table with id, name and reference")
    parts = []
    for key in ("id", "name", "reference"):
        x = value.get(key)
        if not isinstance(x, str) or not x:
            raise RuleError(v.path, f"{where}.{key}", f"required string missing, e.g. {key} = \"…\"")
        parts.append(x)
    return AttackRef(*parts)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
