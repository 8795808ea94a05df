"""Exactly-once output across a kill: the alert store as the output's write-ahead log.

The states a SIGKILL can leave are made here for real (a real SQLite store, a real output file,
a process that really kills itself between two steps) and a fresh :class:`Delivery`, as a
restarted ``watch`` makes it, must bring the output to every alert exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import orjson
import pytest

from auditeql.alerts.store import AlertStore
from auditeql.watch.delivery import Delivery
from auditeql.watch.runner import alert_line


def group(shell: str, n: int = 2) -> list[dict]:
    common = {"kibana.alert.rule.rule_id": "r1", "kibana.alert.rule.name": "Rule one", "kibana.alert.severity": "low",
              "kibana.alert.original_time": "2026-11-29T14:08:00.000Z", "@timestamp": "2026-11-29T14:10:00.000Z",
              "host": {"name": "h1"}, "process": {"pid": 7, "name": "sh"}}
    head = dict(common, **{"kibana.alert.uuid": shell, "kibana.alert.group.id": shell, "kibana.alert.depth": 2})
    return [head] + [dict(common, **{"kibana.alert.uuid": f"{shell}{i:02d}", "kibana.alert.group.id": shell,
                                     "kibana.alert.group.index": i, "kibana.alert.depth": 1,
                                     "kibana.alert.building_block_type": "default"}) for i in range(n)]


def ndjson(alerts) -> bytes:
    return b"".join(orjson.dumps(a) + b"\n" for a in alerts)


def text(alerts) -> bytes:
    return alert_line(alerts).encode() + b"\n"


def delivery(out, store, fmt: str = "ndjson", errors: list | None = None) -> Delivery:
    return Delivery(out, fmt, store, render=ndjson if fmt == "ndjson" else text,
                    on_error=(errors if errors is not None else []).append)


def uuids(path: Path) -> list[str]:
    return [orjson.loads(line)["kibana.alert.uuid"] for line in path.read_bytes().splitlines()]


def test_a_torn_write_is_cut_and_written_again_whole(tmp_path: Path) -> None:
    out_path, db = tmp_path / "alerts.ndjson", str(tmp_path / "alerts.db")
    g = {name: group(name * 12) for name in "abcd"}
    with AlertStore(db) as store, open(out_path, "ab") as out:
        d = delivery(out, store)
        for name in "ab":  # a: settled by b's commit; b: settled by c's commit
            assert d.begin(g[name])
            d.write(g[name])
        assert d.begin(g["c"])  # stored; the write torn in the middle of its second line
        out.write(ndjson(g["c"])[: len(ndjson(g["c"][:1])) + 40])
        out.flush()
    with AlertStore(db) as store:
        assert [p.uuid for p in store.pending()] == [a["kibana.alert.uuid"] for a in g["c"]]
    sent: list[str] = []
    with AlertStore(db) as store, open(out_path, "ab") as out:  # the restarted process
        d = delivery(out, store)
        got = d.recover(lambda head: sent.append(head["kibana.alert.uuid"]))
        assert (got.found, got.replayed, got.truncated) == (0, 1, 40)
        assert sent == ["c" * 12]
        assert store.pending() == []
        assert not d.begin(g["c"])  # re-detected after the restart: a duplicate
        assert d.begin(g["d"])
        d.write(g["d"])
        d.settle()
        assert store.pending() == []
    got_ids = uuids(out_path)  # every line parses: the torn line is gone
    assert got_ids == [a["kibana.alert.uuid"] for name in "abcd" for a in g[name]]


def test_text_output_is_recovered_by_the_alert_id_it_shows(tmp_path: Path) -> None:
    out_path, db = tmp_path / "alerts.txt", str(tmp_path / "alerts.db")
    g1, g2 = group("1" * 64), group("2" * 64)
    with AlertStore(db) as store, open(out_path, "ab") as out:
        d = delivery(out, store, "text")
        for g in (g1, g2):
            assert d.begin(g)
        d.write(g1)  # g1 written (pending), g2 never
    with AlertStore(db) as store, open(out_path, "ab") as out:
        got = delivery(out, store, "text").recover(lambda head: None)
        assert (got.found, got.replayed) == (1, 1)
    lines = out_path.read_text().splitlines()
    assert len(lines) == 2 and "alert=111111111111" in lines[0] and "alert=222222222222" in lines[1]


def test_an_output_that_cannot_be_read_back_gets_every_pending_group(tmp_path: Path) -> None:
    db = str(tmp_path / "alerts.db")
    with AlertStore(db) as store:
        store.add(group("x" * 12), pending=True)
    r, w = os.pipe()
    with AlertStore(db) as store, os.fdopen(w, "wb") as out:
        got = delivery(out, store).recover(lambda head: None)
        assert (got.found, got.replayed) == (0, 1)
        assert store.pending() == []
    with os.fdopen(r, "rb") as fh:
        assert [orjson.loads(x)["kibana.alert.uuid"] for x in fh.read().splitlines()] == \
            [a["kibana.alert.uuid"] for a in group("x" * 12)]


def test_a_broken_store_still_lets_alerts_out(tmp_path: Path) -> None:
    class Full:
        def add(self, *a, **k):
            raise OSError("database or disk is full")

        def settle(self, uuids):
            raise OSError("database or disk is full")

    errors: list[str] = []
    out_path = tmp_path / "o.ndjson"
    with open(out_path, "ab") as out:
        d = delivery(out, Full(), errors=errors)
        assert d.begin(group("f" * 12))
        d.write(group("f" * 12))
        d.settle()
    assert len(uuids(out_path)) == 3 and d.errors == 2 and "disk is full" in errors[0]


_KILLED_CHILD = textwrap.dedent("""
    import os, signal, sys
    sys.path[:0] = {paths!r}
    from auditeql.alerts.store import AlertStore
    from test_delivery import delivery, group
    store = AlertStore(sys.argv[1])
    out = open(sys.argv[2], "ab")
    d = delivery(out, store)
    for i in range(5):
        g = group(f"{{i:012d}}")
        d.begin(g)
        if i == 4 and sys.argv[3] == "after-store":
            os.kill(os.getpid(), signal.SIGKILL)  # after the store's commit, before the write
        d.write(g)
    os.kill(os.getpid(), signal.SIGKILL)  # after the write, before it is settled
""")


@pytest.mark.parametrize(("moment", "written", "recovery"), [("after-store", 12, (0, 1)), ("after-write", 15, (1, 0))])
def test_a_process_killed_between_the_steps_loses_and_repeats_nothing(
        tmp_path: Path, moment: str, written: int, recovery: tuple[int, int]) -> None:
    db, out_path = tmp_path / "alerts.db", tmp_path / "alerts.ndjson"
    script = tmp_path / "child.py"
    script.write_text(_KILLED_CHILD.format(paths=[str(Path(__file__).parent), *sys.path]))
    proc = subprocess.run([sys.executable, str(script), str(db), str(out_path), moment],
                          capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()
    assert len(uuids(out_path)) == written
    with AlertStore(str(db)) as store:
        assert len(store.pending()) == 3  # the last group, stored and not settled
    with AlertStore(str(db)) as store, open(out_path, "ab") as out:
        got = delivery(out, store).recover(lambda head: None)
    assert (got.found, got.replayed) == recovery
    assert Counter(uuids(out_path)) == Counter(a["kibana.alert.uuid"] for i in range(5) for a in group(f"{i:012d}"))
