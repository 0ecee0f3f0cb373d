"""A process worker's output: lines are split in linear time, and a line longer than
MAX_LINE bytes is forwarded in pieces (nothing dropped, memory bounded)."""

from __future__ import annotations

import logging

import _process_funcs as f
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgtasks.executors._process_output import MAX_LINE, LineSplitter
from bgtasks.processes import ProcessExecutor

CHUNK = 65536  # what the worker reads at a time


def test_lines_are_split_across_chunks_and_the_rest_comes_with_flush():
    splitter = LineSplitter()
    assert splitter.feed(b"ab") == []
    assert splitter.feed(b"c\nde\n\nf") == [b"abc", b"de", b""]
    assert splitter.feed(b"g\r\n") == [b"fg\r"]  # the caller strips the \r
    assert splitter.feed(b"tail") == []
    assert splitter.flush() == [b"tail"]
    assert splitter.flush() == []
    assert splitter.feed(b"") == []


def test_a_line_longer_than_the_limit_comes_out_in_pieces_nothing_dropped():
    splitter = LineSplitter(8)
    assert splitter.feed(b"x" * 20) == [b"x" * 8, b"x" * 8]
    assert splitter.pending == b"x" * 4
    assert splitter.feed(b"x" * 5 + b"\n" + b"y" * 17 + b"\nz") == [
        b"x" * 8,
        b"x",
        b"y" * 8,
        b"y" * 8,
        b"y",
    ]
    assert splitter.flush() == [b"z"]


def test_pieces_are_cut_before_a_utf8_sequence_not_inside_it():
    splitter = LineSplitter(8)
    text = "aaaaaaa€bbbbbb😀c"  # € is 3 bytes (cut at 8 would fall inside), 😀 4 bytes
    pieces = splitter.feed(text.encode() + b"\n")
    assert [p.decode() for p in pieces] == ["aaaaaaa", "€bbbbb", "b😀c"]
    # bytes that are not UTF-8 are cut at the limit
    assert LineSplitter(4).feed(b"\x80" * 9 + b"\n") == [b"\x80" * 4, b"\x80" * 4, b"\x80"]


def test_the_limit_is_checked():
    with pytest.raises(ValueError, match=r"^limit must be an integer of at least 4, got 3$"):
        LineSplitter(3)


def test_16_mib_without_newline_keeps_at_most_limit_bytes_pending():
    # The work of a feed is proportional to its chunk plus what is pending; pending
    # never exceeds the limit, so the whole split is linear in the input (the old
    # reader re-joined and re-split the whole unfinished line at every read: 64 MiB
    # took 34 s).
    splitter = LineSplitter(MAX_LINE)
    chunk = b"x" * CHUNK
    pieces, most = [], 0
    for _ in range((16 << 20) // CHUNK):
        pieces += splitter.feed(chunk)
        most = max(most, len(splitter.pending))
    pieces += splitter.flush()
    assert most <= MAX_LINE
    assert [len(p) for p in pieces] == [MAX_LINE] * 16
    assert b"".join(pieces) == b"x" * (16 << 20)


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"")),
    cuts=st.lists(st.integers(0, 300), max_size=10),
    limit=st.integers(4, 40),
)
def test_any_chunking_gives_the_same_lines_and_pieces(data, cuts, limit):
    chunks, start = [], 0
    for cut in sorted(cuts):
        chunks.append(data[start:cut])
        start = max(start, cut)
    chunks.append(data[start:])
    expected = data.split(b"\n")
    if expected[-1] == b"":  # a final newline (or nothing at all) leaves no unfinished line
        expected.pop()
    whole = LineSplitter(1 << 30)
    assert [p for chunk in chunks for p in whole.feed(chunk)] + whole.flush() == expected
    small = LineSplitter(limit)
    pieces = [p for chunk in chunks for p in small.feed(chunk)] + small.flush()
    assert all(len(p) <= limit for p in pieces)
    assert b"".join(pieces) == data.replace(b"\n", b"")


def test_a_worker_writing_16_mib_without_newline_is_logged_in_1_mib_pieces(
    qtbot, make_manager, caplog
):
    caplog.set_level(logging.INFO, logger="bgtasks.processes")
    manager = make_manager(start_processing=True)
    ex = ProcessExecutor(1)
    handle = manager.options(executor=ex).submit(f.write_long_line, 16 << 20)
    assert handle.result(timeout=60) == ex.worker_pids()[0]
    messages = [r.getMessage() for r in caplog.records if r.name == "bgtasks.processes"]
    tag = f"[task {handle.uid}] "
    assert [len(m) for m in messages] == [len(tag) + MAX_LINE] * 16
    assert all(m == tag + "x" * MAX_LINE for m in messages)
