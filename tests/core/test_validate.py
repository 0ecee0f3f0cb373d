"""bgtasks.core._validate: one rule per check, one message format."""

from __future__ import annotations

import math
import threading

import pytest

from bgtasks.core._validate import (
    callable_name,
    check_bool,
    check_callable,
    check_count,
    check_hashable,
    check_priority,
    check_seconds,
    check_text,
    importable_name,
    qualified_name,
)

BIG = f"{threading.TIMEOUT_MAX:.0f}"


def raised(fn, *args, **kwargs):
    with pytest.raises((TypeError, ValueError)) as info:
        fn(*args, **kwargs)
    return type(info.value), str(info.value)


def test_counts():
    assert check_count("n", 0) == 0
    assert check_count("n", None, optional=True) is None
    assert check_count("max_threads", 5, minimum=1, maximum=5) == 5
    assert raised(check_count, "n", -1) == (ValueError, "n must be a non-negative integer, got -1")
    assert raised(check_count, "n", True) == (
        ValueError,
        "n must be a non-negative integer, got True",
    )
    assert raised(check_count, "n", 0, minimum=1) == (
        ValueError,
        "n must be a positive integer, got 0",
    )
    assert raised(check_count, "n", 1.0, minimum=1, optional=True) == (
        ValueError,
        "n must be a positive integer or None, got 1.0",
    )
    assert raised(check_count, "limit", 3, minimum=4) == (
        ValueError,
        "limit must be an integer of at least 4, got 3",
    )
    assert raised(check_count, "max_threads", 6, minimum=1, maximum=5) == (
        ValueError,
        "max_threads must be at most 5, got 6",
    )


def test_seconds():
    assert check_seconds("timeout", 0) == 0
    assert check_seconds("timeout", 2.5, positive=True) == 2.5
    assert check_seconds("timeout", threading.TIMEOUT_MAX) == threading.TIMEOUT_MAX
    assert check_seconds("seconds", math.inf, infinite=True) == math.inf
    for bad in (-1, math.nan, "1", True, None):
        assert raised(check_seconds, "timeout", bad) == (
            ValueError,
            f"timeout must be a non-negative number of seconds, got {bad!r}",
        )
    assert raised(check_seconds, "timeout", 0, positive=True) == (
        ValueError,
        "timeout must be a positive number of seconds, got 0",
    )
    assert raised(check_seconds, "timeout", math.inf) == (
        ValueError,
        f"timeout must be a finite number of seconds of at most {BIG}, got inf",
    )
    assert raised(check_seconds, "seconds", math.nan, infinite=True) == (
        ValueError,
        "seconds must be a non-negative number, got nan",
    )


def test_priorities():
    assert check_priority("priority", None) == 0
    assert check_priority("priority", -3) == -3
    assert check_priority("priority", math.inf) == math.inf
    assert check_priority("priority", -math.inf) == -math.inf
    for bad in (math.nan, "high", True):
        assert raised(check_priority, "priority", bad) == (
            TypeError,
            f"priority must be a number or None, got {bad!r}",
        )


def test_hashables_bools_callables_and_texts():
    assert check_hashable("group", ("a", 1)) == ("a", 1)
    assert raised(check_hashable, "group", []) == (TypeError, "group must be hashable, got []")
    from decimal import Decimal

    for nan in (float("nan"), Decimal("NaN"), complex(0, float("nan"))):
        assert raised(check_hashable, "group", nan) == (
            ValueError,
            f"group must equal itself to be found again, got {nan!r} (NaN never does)",
        )
    assert check_hashable("group", float("inf")) == float("inf")  # inf equals itself

    class Touchy:  # a comparison that raises is refused where it is made, not here
        def __hash__(self):
            return 1

        def __eq__(self, other):
            raise RuntimeError("no comparing")

    touchy = Touchy()
    assert check_hashable("group", touchy) is touchy
    assert check_bool("check", False) is False
    assert raised(check_bool, "check", 1) == (TypeError, "check must be True or False, got 1")
    assert check_callable("clock", len) is len
    assert raised(check_callable, "clock", 3) == (TypeError, "clock must be callable, got 3")
    assert check_text("name", "x") == "x"
    assert check_text("name", None, optional=True) is None
    assert raised(check_text, "name", "") == (TypeError, "name must be a non-empty string, got ''")
    assert raised(check_text, "name", 3, optional=True) == (
        TypeError,
        "name must be a non-empty string or None, got 3",
    )


class _Callable:
    def __call__(self) -> None:
        pass

    def method(self) -> None:
        pass


def test_names_of_callables():
    def local() -> None:
        pass

    assert callable_name(math.sqrt) == "sqrt"
    assert callable_name(_Callable.method) == "_Callable.method"
    assert callable_name(_Callable()) == "_Callable"
    assert qualified_name(math.sqrt) == "math:sqrt"
    assert qualified_name(3) == "3"
    assert importable_name(_Callable.method) == f"{__name__}:_Callable.method"
    assert importable_name(local) is None
    assert importable_name(lambda: 1) is None
    assert importable_name(_Callable()) is None
