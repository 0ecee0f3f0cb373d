"""Validation of the scheduler's arguments (on the caller's thread, before the lock)."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ._fields import MAX_WORKERS


def _check_priority(priority: object, what: str = "priority") -> float:
    if priority is None:
        return 0
    if isinstance(priority, (int, float)) and not (
        isinstance(priority, float) and math.isnan(priority)
    ):
        return priority
    raise TypeError(f"{what} must be a number or None, got {priority!r}")


def _check_args(task_args: object) -> tuple[Any, ...]:
    if task_args is None:
        return ()
    if type(task_args) is tuple:
        return task_args
    if type(task_args) is list or (
        isinstance(task_args, Sequence) and not isinstance(task_args, (str, bytes))
    ):
        return tuple(task_args)
    raise TypeError(f"task_args must be a list or tuple of arguments, got {task_args!r}")


def _check_kwargs(task_kwargs: object) -> dict[str, Any]:
    if task_kwargs is None:
        return {}
    if not isinstance(task_kwargs, Mapping):
        raise TypeError(f"task_kwargs must be a mapping of names to values, got {task_kwargs!r}")
    kwargs = dict(task_kwargs)
    for key in kwargs:
        if type(key) is not str:
            raise TypeError(f"task_kwargs keys must be strings, got {key!r}")
    return kwargs


def _check_hashable(value: object, what: str) -> None:
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"{what} must be hashable, got {value!r}") from None


def _check_seconds(what: str, value: object, positive: bool = False) -> float:
    """A non-negative (or positive) number of seconds that a timer can wait for."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (value > 0 if positive else value >= 0)
    ):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{what} must be a {kind} number of seconds, got {value!r}")
    if not value <= threading.TIMEOUT_MAX:  # inf, or beyond what a thread can wait
        raise ValueError(
            f"{what} must be a finite number of seconds of at most "
            f"{threading.TIMEOUT_MAX:.0f}, got {value!r}"
        )
    return value


def check_max_threads(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_threads must be a positive integer, got {value!r}")
    if value > MAX_WORKERS:
        raise ValueError(f"max_threads must be at most {MAX_WORKERS}, got {value!r}")
    return value
