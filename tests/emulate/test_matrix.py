"""The coverage matrix: verdicts, the union column and the three renderings (pure functions)."""

from __future__ import annotations

import html.parser

from auditeql.emulate import matrix as mx
from auditeql.emulate.check import Alert, Attribution, process_tree
from auditeql.emulate.runner import Outcome

SEED = mx.SEED_RULE
H = "UDP Reverse Shell via Socket Hand-off (auditeql)"
R = "UDP Relay Tool Connected to a Remote Host (auditeql)"


def _doc(pid: int, ppid: int, t: float, name: str = "x") -> dict:
    from datetime import datetime, timezone

    ts = datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"@timestamp": ts, "process": {"pid": pid, "parent": {"pid": ppid}, "name": name}}


def _matrix() -> mx.Matrix:
    outcomes = [
        Outcome("python_udp_dup2", "ran", "", 100.0, 101.0, 10, 0, False, True, True),
        Outcome("nc_openbsd_udp_fifo", "ran", "", 102.0, 103.0, 20, 0, False, True, False),
        Outcome("bash_udp_metrics", "ran", "", 104.0, 104.5, 30, 0, False, True, False),
        Outcome("busybox_nc_udp", "skipped", "missing: busybox nc without UDP (-u) support"),
    ]
    a_py = Alert(H, (_doc(10, 1, 100.2), _doc(11, 10, 100.3)))
    a_nc = Alert(R, (_doc(21, 20, 102.1),))
    a_fp = Alert(SEED, (_doc(30, 1, 104.1),))
    a_bg = Alert(SEED, (_doc(99, 1, 100.5, "bash"),))
    att = Attribution({("python_udp_dup2", H): [a_py], ("nc_openbsd_udp_fifo", R): [a_nc],
                       ("bash_udp_metrics", SEED): [a_fp]}, {SEED: [a_bg]})
    return mx.build(outcomes, [SEED, H, R], att, {"kernel": "test"})


def test_verdicts_and_union_column() -> None:
    m = _matrix()
    assert m.rules[-1] == mx.UNION
    assert m.cell("python_udp_dup2", SEED).verdict == mx.MISSED
    assert m.cell("python_udp_dup2", H).verdict == mx.DETECTED
    assert m.cell("nc_openbsd_udp_fifo", mx.UNION).verdict == mx.DETECTED
    assert m.cell("bash_udp_metrics", SEED).verdict == mx.FALSE_POSITIVE
    assert m.cell("bash_udp_metrics", mx.UNION).verdict == mx.QUIET
    assert m.cell("busybox_nc_udp", H).verdict == mx.SKIPPED
    s = m.summary()
    assert s[mx.UNION]["detected"] == 2 and s[mx.UNION]["real_ran"] == 2
    assert s[SEED]["false_positives"] == 1 and s[SEED]["background_alerts"] == 1
    # the recording says the seed rule does not alert on python/nc and on no look-alike: same here
    assert all(a == b for _t, a, b in m.seed_comparison())


def test_markdown_has_one_row_per_technique_and_the_summary() -> None:
    text = mx.to_markdown(_matrix())
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == ["python_udp_dup2", "nc_openbsd_udp_fifo", "bash_udp_metrics", "busybox_nc_udp"]
    assert "false positive" in rows[2] and "missing: busybox nc" in rows[3]
    assert "| Potential Reverse Shell via UDP | 0 / 2 | 1 / 1 | 1 |" in text
    assert "bash[99]" in text  # background alerts are listed, not hidden


def test_html_is_self_contained_and_well_formed() -> None:
    page = mx.to_html(_matrix())

    class Check(html.parser.HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[str] = []

        def handle_starttag(self, tag: str, attrs: list) -> None:
            self.tags.append(tag)
            for name, value in attrs:
                assert name not in ("src", "href"), (tag, name, value)

    c = Check()
    c.feed(page)
    assert "script" not in c.tags and "link" not in c.tags and "style" in c.tags
    assert page.count("<tr>") == 1 + 4 + 1 + 4  # header + techniques + summary header + 4 rules


def test_process_tree_follows_parents_in_the_window_only() -> None:
    docs = [_doc(10, 1, 100.1), _doc(11, 10, 100.2), _doc(12, 11, 100.3), _doc(13, 99, 100.3),
            _doc(14, 10, 250.0)]  # pid 14: a later, unrelated process that reused the parent pid
    assert process_tree(docs, 10, 100.0, 101.0) == {10, 11, 12}
