"""The SQLite alert store: owner-only files, no duplicates across runs, groups kept together."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from auditeql.alerts.store import AlertStore, StoreError, default_path


def group(shell_id: str, n: int = 2, time: str = "2026-11-29T14:08:00.000Z") -> list[dict]:
    common = {"kibana.alert.rule.rule_id": "r1", "kibana.alert.rule.name": "Rule one", "kibana.alert.severity": "medium",
              "kibana.alert.risk_score": 47, "kibana.alert.original_time": time, "@timestamp": "2026-11-29T14:10:00.000Z",
              "host": {"name": "h1"}}
    shell = dict(common, **{"kibana.alert.uuid": shell_id, "kibana.alert.group.id": shell_id, "kibana.alert.depth": 2})
    bbs = [dict(common, **{"kibana.alert.uuid": f"{shell_id}-bb{i}", "kibana.alert.group.id": shell_id,
                           "kibana.alert.group.index": i, "kibana.alert.depth": 1,
                           "kibana.alert.building_block_type": "default"}) for i in range(n)]
    return [shell, *bbs]


def test_file_and_directory_are_owner_only(tmp_path):
    path = tmp_path / "state" / "auditeql" / "alerts.db"
    with AlertStore(str(path)) as store:
        store.add(group("a" * 64))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_default_path_follows_xdg_state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_path() == str(tmp_path / "xdg" / "auditeql" / "alerts.db")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_path() == str(tmp_path / "home" / ".local" / "state" / "auditeql" / "alerts.db")


def test_dedup_across_runs_and_reopen(tmp_path):
    path = str(tmp_path / "alerts.db")
    with AlertStore(path) as store:
        assert store.add(group("s1")) == 3
        assert store.add(group("s1")) == 0  # same ids again: nothing new
        assert store.add(group("s1") + group("s2")) == 3
    with AlertStore(path) as store:  # a later process
        assert store.add(group("s2")) == 0
        assert store.count() == 6
        heads = store.groups()
        assert sorted(h.uuid for h in heads) == ["s1", "s2"]
        g = store.group("s1")
        assert [a.uuid for a in g] == ["s1", "s1-bb0", "s1-bb1"]
        assert g[1].is_building_block and not g[0].is_building_block
        assert g[0].doc["kibana.alert.rule.name"] == "Rule one"
    # the primary key really is the uuid (a second row with the same uuid is impossible)
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO alerts (uuid, is_building_block, rule_id, rule_name, doc) VALUES ('s1', 0, 'r', 'n', x'00')")
    db.close()


def test_find_by_prefix_and_filters(tmp_path):
    with AlertStore(str(tmp_path / "a.db")) as store:
        store.add(group("abc1", time="2026-11-29T14:00:00.000Z") + group("abd2", time="2026-11-29T15:00:00.000Z"))
        assert [a.uuid for a in store.find("abc1-bb0")] == ["abc1-bb0"]
        assert [a.uuid for a in store.find("abc")] == ["abc1", "abc1-bb0", "abc1-bb1"]
        assert [a.uuid for a in store.find("abc1")] == ["abc1"]  # an exact uuid wins over prefixes
        assert len(store.find("ab")) == 6  # shells and building blocks share the prefix here
        assert [h.uuid for h in store.groups()] == ["abd2", "abc1"]  # newest first
        assert [h.uuid for h in store.groups(limit=1)] == ["abd2"]
        assert store.groups(rule_id="other") == []


def test_unwritable_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError) as info:
        AlertStore(str(blocker / "alerts.db"))
    assert "--store PATH" in str(info.value)


def test_not_a_database_is_a_clear_error(tmp_path):
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as info:
        AlertStore(str(bogus))
    assert str(bogus) in str(info.value)


def test_pending_alerts_are_settled_in_the_next_commit(tmp_path):
    with AlertStore(str(tmp_path / "a.db")) as store:
        assert store.add(group("p1"), pending=True, out_offset=0) == 3
        assert [p.uuid for p in store.pending()] == ["p1", "p1-bb0", "p1-bb1"]
        assert store.pending()[0].out_offset == 0 and store.pending()[2].doc["kibana.alert.group.index"] == 1
        # the next group's commit settles the first
        assert store.add(group("p2"), pending=True, out_offset=123, settle=["p1", "p1-bb0", "p1-bb1"]) == 3
        assert [(p.uuid, p.out_offset) for p in store.pending()] == [("p2", 123), ("p2-bb0", 123), ("p2-bb1", 123)]
        # a pending id is still an id the store has: no duplicate
        assert store.add(group("p2"), pending=True) == 0
        store.settle(["p2", "p2-bb0", "p2-bb1"])
        assert store.pending() == []
        assert store.count() == 6
        assert store.add(group("p3")) == 3 and store.pending() == []  # scan stores delivered rows


def test_a_version_1_store_is_upgraded_and_its_rows_count_as_delivered(tmp_path):
    path = str(tmp_path / "old.db")
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE alerts (uuid TEXT PRIMARY KEY, group_id TEXT, group_index INTEGER, is_building_block INTEGER NOT NULL,
            rule_id TEXT NOT NULL, rule_name TEXT NOT NULL, severity TEXT, risk_score INTEGER, original_time TEXT,
            created TEXT, host TEXT, reason TEXT, doc BLOB NOT NULL);
        INSERT INTO alerts VALUES ('old1', NULL, NULL, 0, 'r', 'n', 'low', 1, 't', 't', 'h', 'why', '{"a":1}');
        PRAGMA user_version = 1;
    """)
    db.close()
    with AlertStore(path) as store:
        assert store.pending() == []
        assert store.add(group("new"), pending=True, out_offset=5) == 3
        assert {p.uuid for p in store.pending()} == {"new", "new-bb0", "new-bb1"}
        assert store.find("old1")[0].reason == "why"
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    db.close()
