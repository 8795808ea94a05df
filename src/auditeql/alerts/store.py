"""The embedded alert store: SQLite, one row per alert document, the alert uuid as primary key.

Kibana avoids duplicate alerts by deterministic ids plus "create only if absent" (§5.4); the
store does the same with ``INSERT OR IGNORE`` on ``kibana.alert.uuid``, so re-scanning a log or
overlapping runs never store an alert twice. The file can hold what attackers did and which
commands ran, so it is created owner-only (file 0600, new directories 0700).

A live ``watch`` also uses it as the write-ahead log of its output: an alert group is stored as
*pending* (with the output's byte offset) before it is written, and settled once written. A
SIGKILL between the two would otherwise lose the alert from the output for good, because the
restarted watcher finds its id in the store and drops it as a duplicate; instead the restart
replays what is still pending (``watch/delivery.py``). Rows of stores made before this column
existed count as delivered.

Default path: ``$XDG_STATE_HOME/auditeql/alerts.db`` or ``~/.local/state/auditeql/alerts.db``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from auditeql.fields import first

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    uuid TEXT PRIMARY KEY,
    group_id TEXT,
    group_index INTEGER,
    is_building_block INTEGER NOT NULL,
    rule_id TEXT NOT NULL,
    rule_name TEXT NOT NULL,
    severity TEXT,
    risk_score INTEGER,
    original_time TEXT,
    created TEXT,
    host TEXT,
    reason TEXT,
    doc BLOB NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 1,
    out_offset INTEGER
);
CREATE INDEX IF NOT EXISTS alerts_group ON alerts(group_id);
CREATE INDEX IF NOT EXISTS alerts_time ON alerts(original_time);
"""

#: Columns added after version 1, with their definitions (``ALTER TABLE`` on older stores).
_ADDED_COLUMNS = (
    ("delivered", "INTEGER NOT NULL DEFAULT 1"),
    ("out_offset", "INTEGER"),
)
_PENDING_INDEX = "CREATE INDEX IF NOT EXISTS alerts_pending ON alerts(delivered) WHERE delivered = 0"


class StoreError(Exception):
    """The store cannot be opened or written; the message says which file and what to do."""


def default_path() -> str:
    """``$XDG_STATE_HOME/auditeql/alerts.db`` (falling back to ``~/.local/state``)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "auditeql", "alerts.db")


@dataclass(frozen=True)
class StoredAlert:
    """One row: the summary columns and the whole alert document."""

    uuid: str
    group_id: str | None
    is_building_block: bool
    rule_id: str
    rule_name: str
    severity: str | None
    risk_score: int | None
    original_time: str | None
    created: str | None
    host: str | None
    reason: str | None
    doc: dict[str, Any]


@dataclass(frozen=True)
class PendingAlert:
    """An alert stored as pending: its id, where the output ended before its write, the document."""

    uuid: str
    out_offset: int | None
    doc: dict[str, Any]


class AlertStore:
    """Alerts kept across runs without duplicates. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or default_path()
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory, mode=0o700, exist_ok=True)
            if not os.path.exists(self.path):
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            self._db = sqlite3.connect(self.path)
            self._db.executescript(_SCHEMA)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(alerts)")}
            for name, definition in _ADDED_COLUMNS:
                if name not in have:
                    self._db.execute(f"ALTER TABLE alerts ADD COLUMN {name} {definition}")
            self._db.execute(_PENDING_INDEX)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the alert store {self.path}: {exc}; pass --store PATH to use another file or --no-store"
            ) from None

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def add(
        self,
        alerts: Iterable[Mapping[str, Any]],
        *,
        pending: bool = False,
        out_offset: int | None = None,
        settle: Sequence[str] = (),
    ) -> int:
        """Store alerts whose uuid is new; returns how many were new.

        ``pending=True`` stores them as not yet written to the output (``out_offset``: where the
        output file ended before the write). ``settle`` marks earlier pending uuids delivered in
        the same transaction, so a live watcher pays one commit per alert group, not two.
        """
        tail = (0 if pending else 1, out_offset)
        rows = [_row(a) + tail for a in alerts]
        try:
            with self._db:
                if settle:
                    self._settle(settle)
                before = self._db.total_changes
                self._db.executemany(
                    "INSERT OR IGNORE INTO alerts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows
                )
                return self._db.total_changes - before
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to the alert store {self.path}: {exc}") from None

    def settle(self, uuids: Sequence[str]) -> None:
        """Mark pending alerts delivered (they reached the output)."""
        if not uuids:
            return
        try:
            with self._db:
                self._settle(uuids)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to the alert store {self.path}: {exc}") from None

    def _settle(self, uuids: Sequence[str]) -> None:
        self._db.executemany("UPDATE alerts SET delivered = 1 WHERE uuid = ? AND delivered = 0",
                             [(u,) for u in uuids])

    def pending(self) -> list[PendingAlert]:
        """Alerts stored but maybe not written to the output, in the order they were stored."""
        rows = self._db.execute(
            "SELECT uuid, out_offset, doc FROM alerts WHERE delivered = 0 ORDER BY rowid"
        ).fetchall()
        return [PendingAlert(uuid=r[0], out_offset=r[1], doc=orjson.loads(r[2])) for r in rows]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM alerts").fetchone()[0])

    def groups(self, *, rule_id: str | None = None, limit: int | None = None) -> list[StoredAlert]:
        """Alerts a person looks at: shells and single-event alerts (not building blocks), newest first."""
        sql = "SELECT * FROM alerts WHERE is_building_block = 0"
        args: list[Any] = []
        if rule_id:
            sql += " AND rule_id = ?"
            args.append(rule_id)
        sql += " ORDER BY original_time DESC, uuid"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [_stored(r) for r in self._db.execute(sql, args)]

    def find(self, uuid_prefix: str) -> list[StoredAlert]:
        """Alerts whose uuid starts with ``uuid_prefix`` (an exact uuid finds just that one)."""
        exact = self._db.execute("SELECT * FROM alerts WHERE uuid = ?", (uuid_prefix,)).fetchall()
        if exact:
            return [_stored(r) for r in exact]
        rows = self._db.execute(
            "SELECT * FROM alerts WHERE substr(uuid, 1, ?) = ? ORDER BY uuid", (len(uuid_prefix), uuid_prefix)
        ).fetchall()
        return [_stored(r) for r in rows]

    def group(self, uuid: str) -> list[StoredAlert]:
        """The alert ``uuid`` followed, when it is a shell, by its building blocks in group order."""
        head = self._db.execute("SELECT * FROM alerts WHERE uuid = ?", (uuid,)).fetchall()
        if not head:
            return []
        members = self._db.execute(
            "SELECT * FROM alerts WHERE group_id = ? AND is_building_block = 1 ORDER BY group_index", (uuid,)
        ).fetchall()
        return [_stored(head[0])] + [_stored(r) for r in members]


def _row(alert: Mapping[str, Any]) -> tuple[Any, ...]:
    uuid = alert.get("kibana.alert.uuid")
    if not uuid:
        raise StoreError("an alert without kibana.alert.uuid cannot be stored (this is a bug in auditeql)")
    bb = alert.get("kibana.alert.building_block_type") is not None and alert.get("kibana.alert.depth", 1) == 1 and "kibana.alert.group.id" in alert
    return (
        uuid,
        alert.get("kibana.alert.group.id"),
        alert.get("kibana.alert.group.index"),
        1 if bb else 0,
        alert.get("kibana.alert.rule.rule_id", ""),
        alert.get("kibana.alert.rule.name", ""),
        alert.get("kibana.alert.severity"),
        alert.get("kibana.alert.risk_score"),
        alert.get("kibana.alert.original_time"),
        alert.get("@timestamp"),
        first(alert, "host.name") or first(alert, "host.id"),
        alert.get("kibana.alert.reason"),
        orjson.dumps(alert),
    )


def _stored(row: tuple[Any, ...]) -> StoredAlert:
    return StoredAlert(
        uuid=row[0],
        group_id=row[1],
        is_building_block=bool(row[3]),
        rule_id=row[4],
        rule_name=row[5],
        severity=row[6],
        risk_score=row[7],
        original_time=row[8],
        created=row[9],
        host=row[10],
        reason=row[11],
        doc=orjson.loads(row[12]),
    )
