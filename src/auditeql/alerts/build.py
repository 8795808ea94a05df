"""Alert documents shaped as Kibana's detection engine writes them (eql-semantics.md §5.3).

An event-query hit becomes one alert. A sample or sequence becomes a *group*: one
building-block alert per event (depth 1, ``kibana.alert.group.index`` = position) and one shell
alert (depth 2) whose source is the field-wise intersection of the events. Every id is a
SHA-256 of the source events' ids and the rule, so finding the same events again (an
overlapping run, a second scan of the same log) yields the same ids and the store drops the
duplicate, which is how Kibana avoids duplicates too.

Source event ids (Kibana takes ``_id`` from Elasticsearch; raw audit data has none), defined by
:func:`source_id`:

1. the document's own ``_id`` when it has one (an Elasticsearch export);
2. otherwise, for audit events, ``sha256("<host.id>|<@timestamp in ms>|<audit serial>")`` — an
   audit event is unique per host by its timestamp and serial (``auditd.sequence`` in
   Auditbeat documents, ``event.sequence`` in Auditd Manager ones), and this survives
   re-normalizing the same log with a newer auditeql;
3. otherwise ``sha256`` of the document's canonical JSON (sorted keys).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson

from auditeql.fields import first
from auditeql.rules.model import Rule

#: Kibana space the alerts are written "in"; part of single-event ids, as in Kibana.
SPACE_ID = "default"
#: index name used for source events that carry no ``_index`` and no ``data_stream.*``.
DEFAULT_INDEX = "auditeql"

_META_KEYS = ("_id", "_index", "_version")


def source_id(doc: Mapping[str, Any]) -> str:
    """The deterministic ``_id`` of a source event (see the module docstring)."""
    explicit = doc.get("_id")
    if isinstance(explicit, str) and explicit:
        return explicit
    serial = first(doc, "auditd.sequence")
    if serial is None:
        serial = first(doc, "event.sequence")
    ts = first(doc, "@timestamp")
    if serial is not None and ts is not None:
        host = first(doc, "host.id") or first(doc, "host.name") or ""
        try:
            when: Any = timestamp_ms(ts)
        except ValueError:
            when = ts  # not a date: the value itself still identifies the event
        key = f"{host}|{when}|{serial}"
    else:
        key = orjson.dumps(_strip_meta(doc), option=orjson.OPT_SORT_KEYS).decode()
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def source_index(doc: Mapping[str, Any]) -> str:
    """The index the event would live in: its ``_index``, its data stream, or ``auditeql``."""
    explicit = doc.get("_index")
    if isinstance(explicit, str) and explicit:
        return explicit
    ds_type = first(doc, "data_stream.type")
    ds_name = first(doc, "data_stream.dataset")
    if ds_type and ds_name:
        return f"{ds_type}-{ds_name}-{first(doc, 'data_stream.namespace') or 'default'}"
    return DEFAULT_INDEX


def timestamp_ms(value: Any) -> int:
    """Epoch milliseconds of an ``@timestamp`` value (engine's parser, shared by every layer)."""
    from auditeql.engine.ordering import timestamp_ms as parse

    out = parse(value)
    if out is None:
        raise ValueError(f"unparseable timestamp {value!r}")
    return int(out)


def iso_ms(ms: int) -> str:
    """``1795961275523`` -> ``"2026-11-30T...Z"`` with milliseconds, as Elasticsearch prints dates."""
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def rule_uuid(rule: Rule) -> str:
    """Stand-in for Kibana's rule saved-object id: the rule_id (stable across runs and machines)."""
    return rule.rule_id


def build_alerts(
    rule: Rule,
    match_or_doc: Any,
    *,
    run_time_ms: int,
    context: Any = None,
) -> list[dict[str, Any]]:
    """Alert documents for one engine result: ``[alert]`` for an event, ``[shell, bb0, bb1…]`` for a group.

    ``run_time_ms`` is the (replayed) execution time of the rule run that found it: the alerts'
    ``@timestamp``. ``context`` (an :class:`auditeql.alerts.context.ProcessContext`) adds the
    command line and ancestry under ``auditeql.*``.
    """
    if isinstance(match_or_doc, Mapping):
        return [_single_alert(rule, match_or_doc, run_time_ms, context)]
    events = [e for e in getattr(match_or_doc, "events", ()) if e is not None]
    if not events:
        return []
    return _group_alerts(rule, events, run_time_ms, context)


def alert_id(rule: Rule, match_or_doc: Any) -> str | None:
    """The ``kibana.alert.uuid`` of the head alert (shell or single) :func:`build_alerts` would make.

    Cheap (hashes only): lets a caller skip building documents it already has.
    """
    if isinstance(match_or_doc, Mapping):
        sid, index = source_id(match_or_doc), source_index(match_or_doc)
        return _sha(f"{index}{sid}undefined{SPACE_ID}:{rule_uuid(rule)}")
    events = [e for e in getattr(match_or_doc, "events", ()) if e is not None]
    if not events:
        return None
    refs = [(source_id(e), source_index(e)) for e in events]
    return _shell_id(rule, refs, _bb_ids(rule, refs))


def _bb_ids(rule: Rule, refs: Sequence[tuple[str, str]]) -> list[str]:
    base = "".join(f"{sid}{idx}" for sid, idx in refs) + rule_uuid(rule)
    return [_sha(f"{base}{i}") for i in range(len(refs))]


def _ancestors(rule: Rule, refs: Sequence[tuple[str, str]], bb_ids: Sequence[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for (sid, idx), bb in zip(refs, bb_ids):
        out.append({"id": sid, "index": idx, "type": "event", "depth": 0})
        out.append({"id": bb, "index": "", "type": "signal", "depth": 1, "rule": rule_uuid(rule)})
    return out


def _shell_id(rule: Rule, refs: Sequence[tuple[str, str]], bb_ids: Sequence[str]) -> str:
    return _sha("".join(f"{a['id']}{a['index']}" for a in _ancestors(rule, refs, bb_ids)) + rule_uuid(rule))


def rule_fields(rule: Rule) -> dict[str, Any]:
    """The ``kibana.alert.rule.*`` fields (dotted keys, as Kibana writes alert documents)."""
    params = {
        "description": rule.description,
        "risk_score": rule.risk_score,
        "severity": rule.severity,
        "license": rule.license,
        "author": list(rule.author),
        "false_positives": list(rule.false_positives),
        "from": rule.from_,
        "rule_id": rule.rule_id,
        "max_signals": rule.max_signals,
        "risk_score_mapping": [],
        "severity_mapping": [],
        "threat": rule.threat_dicts(),
        "to": rule.to,
        "references": list(rule.references),
        "version": rule.version,
        "exceptions_list": [],
        "immutable": rule.builtin,
        "type": rule.type,
        "language": rule.language,
        "index": list(rule.index),
        "query": rule.query,
        "timestamp_override": rule.timestamp_override,
        "note": rule.note,
        "setup": rule.setup,
        "building_block_type": rule.building_block_type,
    }
    out: dict[str, Any] = {
        "kibana.alert.rule.parameters": {k: v for k, v in params.items() if v is not None},
        "kibana.alert.rule.author": list(rule.author),
        "kibana.alert.rule.category": "Event Correlation Rule",
        "kibana.alert.rule.consumer": "siem",
        "kibana.alert.rule.producer": "siem",
        "kibana.alert.rule.rule_type_id": "siem.eqlRule",
        "kibana.alert.rule.description": rule.description,
        "kibana.alert.rule.enabled": True,
        "kibana.alert.rule.exceptions_list": [],
        "kibana.alert.rule.false_positives": list(rule.false_positives),
        "kibana.alert.rule.from": rule.from_,
        "kibana.alert.rule.immutable": rule.builtin,
        "kibana.alert.rule.interval": rule.interval,
        "kibana.alert.rule.indices": list(rule.index),
        "kibana.alert.rule.license": rule.license,
        "kibana.alert.rule.max_signals": rule.max_signals,
        "kibana.alert.rule.name": rule.name,
        "kibana.alert.rule.references": list(rule.references),
        "kibana.alert.rule.risk_score": rule.risk_score,
        "kibana.alert.rule.risk_score_mapping": [],
        "kibana.alert.rule.rule_id": rule.rule_id,
        "kibana.alert.rule.severity": rule.severity,
        "kibana.alert.rule.severity_mapping": [],
        "kibana.alert.rule.tags": list(rule.tags),
        "kibana.alert.rule.threat": rule.threat_dicts(),
        "kibana.alert.rule.timestamp_override": rule.timestamp_override,
        "kibana.alert.rule.to": rule.to,
        "kibana.alert.rule.type": rule.type,
        "kibana.alert.rule.uuid": rule_uuid(rule),
        "kibana.alert.rule.version": rule.version,
        "kibana.alert.rule.execution.type": "scheduled",
    }
    if rule.note is not None:
        out["kibana.alert.rule.note"] = rule.note
    return {k: v for k, v in out.items() if v is not None}


#: rule_fields per rule object (a scan builds hundreds of groups for the same few rules); each
#: use gets its own deep copy, so no alert shares a list or dict with another
_RULE_FIELDS: dict[int, tuple[Rule, bytes]] = {}


def _rule_fields_copy(rule: Rule) -> dict[str, Any]:
    held = _RULE_FIELDS.get(id(rule))
    if held is None or held[0] is not rule:
        fields = rule_fields(rule)
        try:
            encoded = orjson.dumps(fields)
        except TypeError:
            return fields  # (not JSON: no caching)
        if len(_RULE_FIELDS) > 256:
            _RULE_FIELDS.clear()
        held = _RULE_FIELDS[id(rule)] = (rule, encoded)
    return orjson.loads(held[1])


def _common(rule: Rule, run_time_ms: int) -> dict[str, Any]:
    stamp = iso_ms(run_time_ms)
    out: dict[str, Any] = {
        "@timestamp": stamp,
        "kibana.alert.intended_timestamp": stamp,
        "kibana.space_ids": [SPACE_ID],
        "kibana.alert.status": "active",
        "kibana.alert.workflow_status": "open",
        "kibana.alert.workflow_tags": [],
        "kibana.alert.workflow_assignee_ids": [],
        "kibana.alert.severity": rule.severity,
        "kibana.alert.risk_score": rule.risk_score,
    }
    out.update(_rule_fields_copy(rule))
    return out


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _single_alert(rule: Rule, doc: Mapping[str, Any], run_time_ms: int, context: Any) -> dict[str, Any]:
    sid, index = source_id(doc), source_index(doc)
    alert = _event_part(doc)
    alert.update(_common(rule, run_time_ms))
    alert["kibana.alert.original_time"] = first(doc, "@timestamp")
    alert["kibana.alert.ancestors"] = [{"id": sid, "index": index, "type": "event", "depth": 0}]
    alert["kibana.alert.depth"] = 1
    if rule.building_block_type:
        alert["kibana.alert.building_block_type"] = rule.building_block_type
    alert["kibana.alert.reason"] = reason(alert, rule)
    _add_context(alert, doc, context)
    # Kibana: sha256(index + _id + String(_version) + "<space>:<rule id>"); EQL hits carry no _version.
    alert["kibana.alert.uuid"] = _sha(f"{index}{sid}undefined{SPACE_ID}:{rule_uuid(rule)}")
    return alert


def _group_alerts(rule: Rule, events: Sequence[Mapping[str, Any]], run_time_ms: int, context: Any) -> list[dict[str, Any]]:
    common = _common(rule, run_time_ms)
    refs = [(source_id(e), source_index(e)) for e in events]
    bb_ids = _bb_ids(rule, refs)

    parts = [_event_part(e) for e in events]
    shell: dict[str, Any] = _intersection(parts)
    shell.update(common)
    ancestors = _ancestors(rule, refs, bb_ids)
    shell_id = _shell_id(rule, refs, bb_ids)
    shell["kibana.alert.original_time"] = first(events[0], "@timestamp")
    shell["kibana.alert.ancestors"] = ancestors
    shell["kibana.alert.depth"] = 2
    if rule.building_block_type:
        shell["kibana.alert.building_block_type"] = rule.building_block_type
    shell["kibana.alert.group.id"] = shell_id
    shell["kibana.alert.reason"] = reason(shell, rule)
    if context is not None:
        _add_group_context(shell, events, context)
    shell["kibana.alert.uuid"] = shell_id

    out = [shell]
    for i, (event, part, (sid, idx), bb) in enumerate(zip(events, parts, refs, bb_ids)):
        alert = part
        alert.update(common)
        alert["kibana.alert.original_time"] = first(event, "@timestamp")
        alert["kibana.alert.ancestors"] = [{"id": sid, "index": idx, "type": "event", "depth": 0}]
        alert["kibana.alert.depth"] = 1
        alert["kibana.alert.building_block_type"] = "default"
        alert["kibana.alert.group.id"] = shell_id
        alert["kibana.alert.group.index"] = i
        alert["kibana.alert.reason"] = reason(alert, rule)
        _add_context(alert, event, context)
        alert["kibana.alert.uuid"] = bb
        out.append(alert)
    return out


def _strip_meta(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in _META_KEYS}


def _event_part(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The source fields of an alert: the event, ``event.kind`` = signal, ``original_event.*``."""
    src = _copy(_strip_meta(doc))
    original: dict[str, Any] = {}
    ev = src.get("event")
    if isinstance(ev, Mapping):
        for key, value in _flatten(ev).items():
            original[f"kibana.alert.original_event.{key}"] = value
    for key in [k for k in src if k.startswith("event.")]:  # dotted-key documents
        original[f"kibana.alert.original_event.{key[6:]}"] = src[key]
        if key == "event.kind":
            del src[key]
    if not isinstance(ev, dict):
        ev = {}
        src["event"] = ev
    ev["kind"] = "signal"
    src.update(original)
    return src


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    """A deep copy; through orjson (JSON documents, much faster than copy.deepcopy) when possible."""
    try:
        return orjson.loads(orjson.dumps(doc))
    except TypeError:
        return copy.deepcopy(doc)


def _flatten(node: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _intersection(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Kibana's shell source: only field values common to every building block (arrays intersected).

    Objects are intersected key by key, recursively; arrays keep the elements present in every
    building block (in the first one's order); other values are kept when all are equal. The
    dotted ``kibana.alert.original_event.*`` keys at the top level are compared as they are.
    """
    out = _common_value(list(parts))
    return out if isinstance(out, dict) else {}


def _is_mapping(value: Any) -> bool:
    """``isinstance(value, Mapping)``, quick for the usual dicts and scalars (the ABC check is slow)."""
    t = type(value)
    if t is dict:
        return True
    if t is str or t is int or t is float or t is bool or t is list or value is None:
        return False
    return isinstance(value, Mapping)


def _common_value(vals: list[Any]) -> Any:
    head = vals[0]
    if _is_mapping(head):
        if not all(_is_mapping(v) for v in vals[1:]):
            return _ABSENT
        out: dict[str, Any] = {}
        for key, value in head.items():
            others = [v.get(key, _ABSENT) for v in vals[1:]]
            if any(o is _ABSENT for o in others):
                continue
            common = _common_value([value, *others])
            if common is not _ABSENT:
                out[key] = common
        return out if out or not head else _ABSENT
    if isinstance(head, list):
        if not all(isinstance(v, list) for v in vals[1:]):
            return _ABSENT
        keep = [x for x in head if all(x in o for o in vals[1:])]
        return copy.deepcopy(keep) if keep else _ABSENT
    if all(v == head for v in vals[1:]):
        return head
    return _ABSENT


_ABSENT = object()


def reason(alert: Mapping[str, Any], rule: Rule) -> str:
    """Kibana's reason sentence: what happened, to which process, where, and which alert it made."""
    category = first(alert, "event.category")
    text = f"{category} event" if category else "event"
    process = first(alert, "process.name")
    if process:
        text += f" with process {process},"
    parent = first(alert, "process.parent.name")
    if parent:
        text += f" parent process {parent},"
    file_name = first(alert, "file.name")
    if file_name:
        text += f" file {file_name},"
    src_ip = first(alert, "source.ip")
    if src_ip:
        text += f" source {src_ip}:{first(alert, 'source.port')},"
    dst_ip = first(alert, "destination.ip")
    if dst_ip:
        text += f" destination {dst_ip}:{first(alert, 'destination.port')},"
    user = first(alert, "user.name")
    if user:
        text += f" by {user}"
    host = first(alert, "host.name")
    if host:
        text += f" on {host}"
    text = text.rstrip(",")
    return f"{text} created {rule.severity} alert {rule.name}."


def _add_context(alert: dict[str, Any], event: Mapping[str, Any], context: Any) -> None:
    if context is None:
        return
    info = context.describe(event)
    if info:
        alert.update(info)


def _add_group_context(shell: dict[str, Any], events: Sequence[Mapping[str, Any]], context: Any) -> None:
    info = context.describe_group(events)
    if info:
        shell.update(info)
