"""Type-checked, never run: what mypy infers for ``submit`` (tests/test_typing.py).

Each ``# type: ignore[...]`` marks a call that must stay a type error: mypy runs
with ``--warn-unused-ignores``, so an error that is no longer reported fails too.
"""

from __future__ import annotations

from typing_extensions import assert_type

from bgtasks import BackgroundTaskManager, TaskHandle
from bgtasks.persistence import TaskJournal


def add(a: int, b: int = 0) -> int:
    return a + b


def greet(name: str, *, timeout: float) -> str:
    return f"{name} {timeout}"


def check(manager: BackgroundTaskManager, journal: TaskJournal) -> None:
    handle = manager.submit(add, 1)
    assert_type(handle, TaskHandle[int])
    assert_type(handle.result(), int)
    assert_type(manager.submit(add, 1, b=2).result(timeout=1), int)
    # Keywords named like task options are the function's own.
    assert_type(manager.submit(greet, "a", timeout=2.0), TaskHandle[str])

    submitter = manager.options(priority=3, retries=2)
    assert_type(submitter.submit(add, 1, 2), TaskHandle[int])
    assert_type(submitter.options(name="n").submit(greet, "b", timeout=1.0).result(), str)
    assert_type(journal.submit(add, 1), TaskHandle[int])
    assert_type(journal.options(enduring=True).submit(greet, "c", timeout=0.5), TaskHandle[str])

    manager.submit(add, "one")  # type: ignore[arg-type]
    manager.submit(add)  # type: ignore[call-arg]
    manager.submit(greet, "a")  # type: ignore[call-arg]
    manager.submit(add, 1, c=3)  # type: ignore[call-arg]
    submitter.submit(add, "one")  # type: ignore[arg-type]
    submitter.submit(add)  # type: ignore[call-arg]
    journal.submit(add, "one")  # type: ignore[arg-type]
    journal.options(group="g").submit(greet)  # type: ignore[call-arg]
