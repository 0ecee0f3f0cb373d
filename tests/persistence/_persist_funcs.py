"""Module-level task functions for tests/persistence/test_persistence.py and the crash child."""

from __future__ import annotations

import os
import threading

from bgtasks import current_task
from bgtasks.persistence import persistable

#: Calls seen in this process: (function name, args) in call order.
calls: list[tuple[str, tuple]] = []
_calls_lock = threading.Lock()
#: Events a test sets to let ``wait_for`` tasks go on, by name.
gates: dict[str, threading.Event] = {}
started: dict[str, threading.Event] = {}


def _seen(name: str, *args: object) -> None:
    with _calls_lock:
        calls.append((name, args))


@persistable
def add(a: int, b: int) -> int:
    _seen("add", a, b)
    return a + b


@persistable
def make_dict(key: str, value: object) -> dict:
    _seen("make_dict", key, value)
    return {key: value}


@persistable
def join(**kwargs: object) -> dict:
    _seen("join", tuple(sorted(kwargs.items())))
    return dict(kwargs)


@persistable
def fail(message: str) -> None:
    _seen("fail", message)
    raise ValueError(message)


@persistable
def wait_for(name: str) -> str:
    """Signal ``started[name]``, then wait for ``gates[name]`` (or a stop)."""
    _seen("wait_for", name)
    started.setdefault(name, threading.Event()).set()
    gate = gates.setdefault(name, threading.Event())
    ctx = current_task()
    while not gate.wait(0.01):
        if ctx.cancelled:
            _seen("wait_for stopped", name)
            ctx.raise_if_cancelled()
    return name


@persistable
def not_json() -> object:
    return {"a": {1, 2}}


def append_line(path: str, line: str) -> None:
    """Append ``line`` to ``path`` and fsync (used by the crash child)."""
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())


class Holder:
    @staticmethod
    @persistable
    def nested(x: int) -> int:
        return x * 2


#: Set by the crash child: called as hook(stage, key) at "start" and "append".
hook = None


@persistable
def crash_step(results: str, key: str, after: str | None = None) -> dict:
    """One task of the crash child's queue: append "<key> <after>" (fsync) and return."""
    if hook is not None:
        hook("start", key)
    append_line(results, f"{key} {after}")
    if hook is not None:
        hook("append", key)
    return {"after": key}
