"""The block reader of raw audit files (``files._chunks``) loses, adds or reorders no byte and cuts
only after a newline, whatever the block size and line lengths (feed_chunks relies on whole lines)."""

from __future__ import annotations

import gzip
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from auditeql.sources.files import _chunks


@settings(max_examples=120, deadline=None)
@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
       st.booleans(), st.integers(min_value=1, max_value=64))
def test_pieces_are_whole_lines_and_nothing_else_changes(lines: list[bytes], last_newline: bool, size: int) -> None:
    data = b"\n".join(lines) + (b"\n" if last_newline and lines else b"")
    pieces = list(_chunks(io.BytesIO(data), size))
    assert b"".join(pieces) == data
    assert all(p for p in pieces)
    assert all(p.endswith(b"\n") for p in pieces[:-1])


def test_gzip_stream() -> None:
    data = b"".join(b"type=CWD msg=audit(1.000:%d): cwd=\"/\"\n" % i for i in range(5000))
    stream = gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(data)))
    pieces = list(_chunks(stream, 1000))
    assert b"".join(pieces) == data and len(pieces) > 10
    assert all(p.endswith(b"\n") for p in pieces)
