"""The manager's executors: where a task runs (``options(executor=...)``), by name.

``"thread"`` is the manager's own pool; ``"process"`` and ``"dask"`` are made on
first use; ``set_executor`` names others.  An
executor's slots become a resource limit of the scheduler, so surplus tasks wait
in the manager's priority queue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..core import Scheduler
from ..executors._contract import Executor, RemoteCall


class Executors:
    """The manager's executor registry (a mixin of BackgroundTaskManager)."""

    _scheduler: Scheduler
    _shut_down: bool

    def _init_executors(self) -> None:
        self._executors: dict[str, Executor] = {}  # name -> backend, made on first use
        self._executors_used: set[str] = set()
        self._executor_limits: set[str] = set()  # resources named for executors' slots
        self._executor_lock = threading.Lock()  # the three above

    def _executors_to_shut_down(self) -> list[Executor]:
        with self._executor_lock:
            return list(self._executors.values())

    def _remote_call(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        executor: str | Executor,
        resources: Mapping[str, int] | None,
    ) -> tuple[RemoteCall, Executor, Mapping[str, int] | None]:
        """``fn`` as a call on ``executor`` (refused at once if it cannot run there),
        and the resources the task needs: one of the executor's slots."""
        chosen = self._executor(executor)
        chosen.check(fn, args, kwargs)
        if chosen.slots is not None:
            resource = f"executor:{id(chosen)}"
            with self._executor_lock:  # the limit exists before any task names it
                if resource not in self._executor_limits:
                    self._scheduler.set_resource_limit(resource, chosen.slots)
                    self._executor_limits.add(resource)
            resources = {**(resources or {}), resource: 1}
        return RemoteCall(chosen, fn), chosen, resources

    def _mark_used(self, name: str) -> None:
        with self._executor_lock:
            self._executors_used.add(name)  # from now on set_executor refuses it

    def set_executor(self, name: str, executor: Executor) -> None:
        """Run tasks submitted with ``executor=name`` on ``executor``.  Manager's thread.

        Replaces the default of ``"process"`` or ``"dask"`` (e.g. to size the
        process pool).  The manager shuts the executor down with itself.

        Args:
            name: The name tasks give as ``options(executor=name)``.
            executor: The ``Executor`` that runs them.

        Raises:
            ValueError: ``name`` is not a non-empty string other than
                ``"thread"``, or a task already used the name.
            TypeError: ``executor`` is not a ``Executor``.
        """
        if not isinstance(name, str) or not name or name == "thread":
            raise ValueError(
                f"executor name must be a non-empty string other than 'thread', got {name!r}"
            )
        if not isinstance(executor, Executor):
            raise TypeError(f"executor must be a bgtasks.Executor, got {executor!r}")
        with self._executor_lock:
            if name in self._executors_used:
                raise ValueError(f"executor {name!r} is already in use; set it before submitting")
            replaced = self._executors.get(name)
            self._executors[name] = executor
        if replaced is not None:  # a default made for a submit that was refused: never used
            replaced.shut_down(0.0)

    def _executor(self, which: str | Executor) -> Executor:
        if isinstance(which, Executor):
            with self._executor_lock:
                self._executors.setdefault(f"<{id(which)}>", which)
            return which
        if not isinstance(which, str):
            raise not_an_executor(which)
        if self._shut_down:
            raise RuntimeError("the manager is shut down; it accepts no new tasks")
        with self._executor_lock:
            executor = self._executors.get(which)
        if executor is None:
            made = _default_executor(which)  # may import dask: not under a lock
            with self._executor_lock:
                executor = self._executors.setdefault(which, made)
            if executor is not made:  # another thread made one first
                made.shut_down(0.0)
        return executor


def _default_executor(name: str) -> Executor:
    if name == "process":
        from ..executors.processes import ProcessExecutor

        return ProcessExecutor()
    if name == "dask":
        from ..executors.dask import DaskExecutor

        return DaskExecutor()  # ImportError saying what to install without the dask extra
    raise unknown_executor(name)


def not_an_executor(which: object) -> TypeError:
    """The error for an ``executor`` option that is neither a name nor an Executor."""
    return TypeError(f"executor must be a name or a bgtasks.Executor, got {which!r}")


def unknown_executor(name: str) -> ValueError:
    """The error for an executor name that is not built in nor given to set_executor."""
    return ValueError(
        f"unknown executor {name!r}: use 'thread', 'process', 'dask' or a name given to set_executor"
    )
