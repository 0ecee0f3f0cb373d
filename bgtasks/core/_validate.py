"""The argument checks bgtasks repeats across modules: one place per rule.

Each ``check_*`` returns the value it accepts (so a caller can write
``self.grace = check_seconds("grace", grace)``) and raises with the message
format of the whole package: ``"<what> must be <rule>, got <value!r>"``.

Qt-free and free of the rest of bgtasks, so a process worker can import it.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Literal, TypeVar, overload

T = TypeVar("T")

#: The longest wait, in seconds, a thread can ask for at once.
TIMEOUT_MAX = threading.TIMEOUT_MAX


def _is_number(value: object) -> bool:
    """An int or a float, and not a bool (True is not a count, a time or a priority)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@overload
def check_count(
    what: str,
    value: object,
    *,
    minimum: int = 0,
    maximum: int | None = None,
    optional: Literal[False] = False,
) -> int: ...
@overload
def check_count(
    what: str, value: object, *, minimum: int = 0, maximum: int | None = None, optional: bool
) -> int | None: ...
def check_count(
    what: str,
    value: object,
    *,
    minimum: int = 0,
    maximum: int | None = None,
    optional: bool = False,
) -> int | None:
    """An int (not a bool) of at least ``minimum`` and at most ``maximum``; None if ``optional``.

    ``ValueError`` either way (a wrong type included):
    ``"workers must be a positive integer, got 0"``,
    ``"max_threads must be at most 2147483647, got 1099511627776"``.
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        if minimum == 0:
            rule = "a non-negative integer"
        elif minimum == 1:
            rule = "a positive integer"
        else:
            rule = f"an integer of at least {minimum}"
        raise ValueError(f"{what} must be {rule}{' or None' if optional else ''}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{what} must be at most {maximum}, got {value!r}")
    return value


def check_seconds(
    what: str, value: object, *, positive: bool = False, infinite: bool = False
) -> float:
    """A non-negative (or ``positive``) number of seconds; NaN is refused.

    Unless ``infinite``, also at most ``threading.TIMEOUT_MAX`` (so never
    inf): what a timer or ``Event.wait`` can wait for.  With ``infinite`` any
    larger value, inf included, is allowed (``sleep(inf)``: until stopped); the
    caller then waits in pieces of at most ``TIMEOUT_MAX``.

    ``ValueError`` either way: ``"timeout must be a positive number of seconds,
    got 0"`` (``"seconds must be a non-negative number, got nan"`` for the
    argument called ``seconds``).
    """
    if not _is_number(value) or not (value > 0 if positive else value >= 0):  # type: ignore[operator]
        kind = "positive" if positive else "non-negative"
        unit = "" if what == "seconds" else " of seconds"
        raise ValueError(f"{what} must be a {kind} number{unit}, got {value!r}")
    if not infinite and not value <= TIMEOUT_MAX:  # type: ignore[operator]
        raise ValueError(
            f"{what} must be a finite number of seconds of at most {TIMEOUT_MAX:.0f}, got {value!r}"
        )
    return value  # type: ignore[return-value]


def check_priority(what: str, value: object) -> float:
    """A priority: an int or a float (not a bool), ±inf allowed, NaN refused; None means 0.

    ``TypeError``: ``"priority must be a number or None, got nan"``;
    ``ValueError`` for an int no float can hold (``10**400``).
    """
    if value is None:
        return 0
    if not _is_number(value):
        raise TypeError(f"{what} must be a number or None, got {value!r}")
    if isinstance(value, int):
        try:  # the ready queue and every view compare it with floats
            float(value)
        except OverflowError:
            raise ValueError(
                f"{what} must fit in a float, got an int of {value.bit_length()} bits"
            ) from None
    elif math.isnan(value):  # type: ignore[arg-type]
        raise TypeError(f"{what} must be a number or None, got {value!r}")
    return value  # type: ignore[return-value]


def check_hashable(what: str, value: T) -> T:
    """``value`` if it can be a dict key: ``TypeError`` ``"group must be hashable, got []"``.

    A NaN (float, complex or ``Decimal``) never equals itself, so as a group
    or a key it could never be found again (every task its own group, a stop
    of the group a no-op): ``ValueError``.  A value whose comparison raises
    is refused where a comparison is made.
    """
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"{what} must be hashable, got {value!r}") from None
    try:
        unequal = value != value
    except Exception:  # noqa: BLE001 - a comparison that raises is refused where it is made
        unequal = False
    if unequal is True:
        raise ValueError(
            f"{what} must equal itself to be found again, got {value!r} (NaN never does)"
        )
    return value


def check_bool(what: str, value: object) -> bool:
    """True or False exactly (not 1, not None): ``TypeError``."""
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return value


def check_callable(what: str, value: T) -> T:
    """``value`` if it is callable: ``TypeError`` ``"clock must be callable, got 3"``."""
    if not callable(value):
        raise TypeError(f"{what} must be callable, got {value!r}")
    return value


@overload
def check_text(what: str, value: object, *, optional: Literal[False] = False) -> str: ...
@overload
def check_text(what: str, value: object, *, optional: bool) -> str | None: ...
def check_text(what: str, value: object, *, optional: bool = False) -> str | None:
    """A non-empty str (None too if ``optional``): ``TypeError``
    ``"a persistable name must be a non-empty string, got ''"``."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        rule = "a non-empty string or None" if optional else "a non-empty string"
        raise TypeError(f"{what} must be {rule}, got {value!r}")
    return value


# ------------------------------------------------------------ names of callables


def callable_name(fn: Any) -> str:
    """The short name of ``fn`` for messages and task names: its ``__qualname__``
    (or ``__name__``), else its type's name (a callable object, a partial)."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


def qualified_name(fn: Any) -> str:
    """``module:qualname`` of ``fn``, or its repr if it has no such name."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}:{qualname}"
    return repr(fn)


def importable_name(fn: Any) -> str | None:
    """``module:qualname`` if ``fn`` can be found again by that name (a module-level
    function or a method of a module-level class), else None (a lambda, a local
    function, an object without a qualified name)."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not (isinstance(module, str) and module and isinstance(qualname, str) and qualname):
        return None
    if "<" in qualname:  # <lambda>, <locals>
        return None
    return f"{module}:{qualname}"


__all__ = [
    "TIMEOUT_MAX",
    "callable_name",
    "check_bool",
    "check_callable",
    "check_count",
    "check_hashable",
    "check_priority",
    "check_seconds",
    "check_text",
    "importable_name",
    "qualified_name",
]
