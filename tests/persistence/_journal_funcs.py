"""Task functions for tests/persistence/test_journal_*.py: some persistable, one deliberately not."""

from __future__ import annotations

from bgtasks.persistence import persistable

calls: list[tuple[str, tuple]] = []


@persistable
def record(*args: object) -> list:
    calls.append(("record", args))
    return list(args)


@persistable(name="journal-tests.renamed")
def renamed(x: int) -> int:
    calls.append(("renamed", (x,)))
    return x


def not_registered(x: int) -> int:
    calls.append(("not_registered", (x,)))
    return x
