"""A worker process's output: what it writes to file descriptors 1 and 2, as lines.

Each descriptor is replaced by a pipe; an ``Output`` reads it, splits it
into lines (``LineSplitter``, linear in what it reads, a line longer than
``MAX_LINE`` in pieces) and sends each line to the parent tagged with the
running task's uid.  The parent logs them (``bgtasks.processes``).
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core._validate import check_count

if TYPE_CHECKING:
    from ._process_context import Channel


#: The longest line forwarded as one message, in bytes: a longer one (a progress bar
#: redrawn with ``\r``, binary data) is forwarded in pieces of at most this size, so a
#: worker never holds more than this per stream and nothing written is dropped.
MAX_LINE = 1 << 20


class LineSplitter:
    """Splits a byte stream into lines, in time and memory linear in what it is fed.

    ``feed`` returns the complete lines in a chunk (without their ``\n``); only
    the new chunk is searched for newlines, and the unfinished line is kept in one
    ``bytearray``.  A line longer than ``limit`` bytes comes out in pieces of at most
    ``limit`` bytes, cut before a UTF-8 sequence rather than inside it, as soon as
    that much is pending.  ``flush`` returns the unfinished rest.
    """

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = check_count("limit", limit, minimum=4)  # bytes: one UTF-8 sequence at least
        self.pending = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        pending, start = self.pending, 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if pending:
                pending += memoryview(data)[start:end]
                self._cut(lines, 0)
                lines.append(bytes(pending))
                pending.clear()
            else:
                self._pieces(lines, data, start, end)
            start = end + 1
        if start < len(data):
            pending += memoryview(data)[start:]
            self._cut(lines, self.limit)
        return lines

    def flush(self) -> list[bytes]:
        """The unfinished line, if any (as pieces of at most ``limit`` bytes)."""
        lines: list[bytes] = []
        if self.pending:
            self._cut(lines, 0)
            lines.append(bytes(self.pending))
            self.pending.clear()
        return lines

    def _boundary(self, buffer: Any, start: int) -> int:
        """Where to end a piece that starts at ``start``: at most ``limit`` bytes on,
        not inside a UTF-8 sequence (unless the bytes are not UTF-8)."""
        cut = start + self.limit
        for _ in range(3):
            if buffer[cut] & 0xC0 != 0x80:  # not a continuation byte: a sequence starts
                return cut
            cut -= 1
        return cut if buffer[cut] & 0xC0 != 0x80 else start + self.limit

    def _pieces(self, lines: list[bytes], data: bytes, start: int, end: int) -> None:
        """Append ``data[start:end]`` (a whole line) as pieces of at most ``limit`` bytes."""
        while end - start > self.limit:
            cut = self._boundary(data, start)
            lines.append(data[start:cut])
            start = cut
        lines.append(data[start:end])

    def _cut(self, lines: list[bytes], keep: int) -> None:
        """Move full pieces out of ``pending`` while more than ``max(keep, limit)`` bytes
        stay (``keep=0``: until at most ``limit`` bytes stay)."""
        pending = self.pending
        keep = max(keep, self.limit)
        if len(pending) <= keep:
            return
        start = 0
        while len(pending) - start > keep:
            cut = self._boundary(pending, start)
            lines.append(bytes(pending[start:cut]))
            start = cut
        del pending[:start]  # once per call: pending stays within limit + one chunk


class Output:
    """Sends each line written to a file descriptor to the parent, tagged with the task's uid.

    A pump thread forwards lines while the task runs; at the task's end the
    main thread drains what is left itself (under the same lock), so the last
    lines always precede the result and a quiet task pays two system calls.
    Lines longer than ``MAX_LINE`` bytes are forwarded in pieces.
    """

    def __init__(self, fd: int, stream: str, channel: Channel, task_uid: Callable[[], Any]):
        self.stream = stream
        self.channel = channel
        self.task_uid = task_uid
        self.lock = threading.Lock()
        self.splitter = LineSplitter()
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.dup2(write_fd, fd)
        os.close(write_fd)
        self.read_fd = read_fd
        self.poller = select.poll()
        self.poller.register(read_fd, select.POLLIN)
        threading.Thread(target=self._pump, name=f"bgtasks-{stream}", daemon=True).start()

    def _pump(self) -> None:
        while True:
            self.poller.poll()
            with self.lock:
                if not self._read(final=False):
                    return

    def _read(self, final: bool) -> bool:
        """Forward the complete lines available now (all of it if ``final``); False at EOF."""
        alive = True
        while True:
            try:
                chunk = os.read(self.read_fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                alive = False
                break
            if not chunk:
                alive = False
                break
            self._send(self.splitter.feed(chunk))
        if final:
            self._send(self.splitter.flush())
        return alive

    def _send(self, lines: list[bytes]) -> None:
        if not lines:
            return
        uid = self.task_uid()
        for line in lines:
            text = line.decode("utf-8", "replace").rstrip("\r")
            with contextlib.suppress(OSError, ValueError):
                self.channel.send(("output", uid, self.stream, text))

    def flush(self) -> None:
        """Send everything written to the descriptor so far (on the calling thread)."""
        with self.lock:
            self._read(final=True)


_libc_fflush: Any = None


def flush_stdio() -> None:
    """Flush Python's and C's stdio buffers, so what the task wrote reaches the pipes."""
    global _libc_fflush
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if _libc_fflush is None:
        try:
            import ctypes

            _libc_fflush = ctypes.CDLL(None).fflush
        except Exception:
            _libc_fflush = False
    if _libc_fflush:
        _libc_fflush(None)  # C stdio buffers of extension modules
