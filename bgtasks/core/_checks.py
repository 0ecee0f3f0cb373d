"""The arguments of a task (on the caller's thread, before the lock).

The other checks are in ``_validate.py``, one place for every module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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


def _check_upstream(upstream_task_ids: object) -> tuple[int, ...]:
    if upstream_task_ids is None:
        return ()
    if isinstance(upstream_task_ids, Iterable) and not isinstance(
        upstream_task_ids, (str, bytes, Mapping)
    ):
        return tuple(upstream_task_ids)
    raise TypeError(f"upstream_task_ids must be a list of task ids, got {upstream_task_ids!r}")


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {name!r}")
    return name
