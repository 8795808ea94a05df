"""The audisp / stdin stream reader over real pipes: string format, binary frames, NDJSON."""

from __future__ import annotations

import os
import struct

from auditeql.sources.audisp import StreamReader

LINE = b'type=SYSCALL msg=audit(1700000000.104:1002): arch=c000003e syscall=42 success=yes exit=0'


def _frame(rtype: int, payload: bytes, ver: int = 0) -> bytes:
    return struct.pack("=IIII", ver, 16, rtype, len(payload)) + payload


def _read_all(reader: StreamReader) -> list[tuple[int | None, bytes]]:
    items: list[tuple[int | None, bytes]] = []
    while not reader.eof:
        items += reader.read(timeout=1.0)
    return items


def test_string_format_lines_and_partial_writes() -> None:
    r, w = os.pipe()
    reader = StreamReader(r)
    os.write(w, LINE[:20])
    assert reader.read(timeout=0.5) == []  # half a line: nothing yet
    os.write(w, LINE[20:] + b"\n" + b'{"event": {"category": ["process"]}}\n' + b"node=h1 " + LINE)
    os.close(w)
    items = _read_all(reader)
    assert items == [(None, LINE), (None, b'{"event": {"category": ["process"]}}'), (None, b"node=h1 " + LINE)]
    os.close(r)


def test_binary_frames_split_across_reads() -> None:
    payload = LINE.split(b"msg=", 1)[1]
    data = _frame(1300, payload + b"\x00") + _frame(1320, b"audit(1700000000.104:1002): ")
    r, w = os.pipe()
    reader = StreamReader(r)
    os.write(w, data[:10])
    assert reader.read(timeout=0.5) == []
    os.write(w, data[10:])
    os.close(w)
    assert _read_all(reader) == [(1300, payload), (1320, b"audit(1700000000.104:1002): ")]
    os.close(r)


def test_garbage_binary_header_stops_with_a_message(capfd) -> None:  # type: ignore[no-untyped-def]
    r, w = os.pipe()
    reader = StreamReader(r)
    os.write(w, struct.pack("=IIII", 0, 9999, 1300, 5) + b"xxxxx")
    os.close(w)
    assert _read_all(reader) == []
    assert reader.errors == 1
    assert "format = string" in capfd.readouterr().err
    os.close(r)
