"""The arguments of a task (on the caller's thread, before the lock).

The other checks are in ``_validate.py``, one place for every module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


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
