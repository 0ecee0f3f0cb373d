"""Submitting work: ``submit``, ``options``, handles, the journal hook, and the one
path every add takes.

A mixin of ``bgtasks.BackgroundTaskManager``: it reads the manager's
``_scheduler``, its executor registry (``_remote_call``, ``_mark_used``), its owners
(``_own``) and its journal.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from PySide6.QtCore import QObject

from ..core._checks import _check_name
from ..core._handle import TaskHandle
from ..core._validate import check_bool
from ..executors._contract import Executor
from ._executors import not_an_executor, unknown_executor
from ._options import (
    _ADD_TASK_NAMES,
    DEFAULT_OPTIONS,
    TaskOptions,
    TaskSubmitter,
    _check_names,
    checked,
)

if TYPE_CHECKING:
    from ..core import Scheduler
    from ..core._handle import HandleOwner
    from ..executors._contract import RemoteCall

P = ParamSpec("P")
T = TypeVar("T")


def _check_owner(owner: object) -> None:
    if owner is not None and not isinstance(owner, QObject):
        raise TypeError(f"owner must be a QObject, got {owner!r}")


class Submission:
    """``submit``, ``options``, ``handle``, ``set_journal`` and ``_add``."""

    if TYPE_CHECKING:  # what the mixin reads of BackgroundTaskManager
        _scheduler: Scheduler
        _executor_lock: threading.Lock
        _executors: dict[str, Executor]
        _journal: Any

        def _remote_call(
            self,
            fn: Callable[..., Any],
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
            executor: str | Executor,
            resources: Mapping[str, int] | None,
        ) -> tuple[RemoteCall, Executor, Mapping[str, int] | None]: ...
        def _mark_used(self, name: str) -> None: ...
        def _own(self, owner: QObject, uid: int) -> None: ...

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[T]:
        """Queue ``fn(*args, **kwargs)`` and return its ``TaskHandle``.

        Every keyword argument goes to ``fn``, whatever its name
        (``submit(fn, timeout=3)`` calls ``fn(timeout=3)``).  To give the task
        options (priority, group, retries, a timeout...), bind them first:
        ``manager.options(priority=5, retries=2).submit(fn, *args, **kwargs)``.

        Any thread may call this, a running task included.  The task's signals
        arrive on the manager's thread, as do callbacks added to the handle.

        Args:
            fn: The callable to run (positional-only).
            *args: Positional arguments for ``fn``.
            **kwargs: Keyword arguments for ``fn``.

        Returns:
            The task's handle, a ``concurrent.futures.Future`` of ``fn``'s result.

        Raises:
            TypeError: ``fn`` is not callable.
            RuntimeError: the manager is shut down.
        """
        return self._submit_with(DEFAULT_OPTIONS, fn, args, kwargs)

    def options(self, **task_options: Any) -> TaskSubmitter:
        """Bind task options: ``manager.options(priority=5).submit(fn, *args, **kwargs)``.

        The options are checked here, once; the returned ``TaskSubmitter``
        is immutable and may be kept and reused from any thread.  Its
        ``options(**more)`` returns a new one with ``more`` merged in (later wins).
        Any thread may call this.  The options (see ``TaskOptions``):

        * ``priority``, ``group``, ``upstream_task_ids``: as in ``add_task``.
        * ``name``: shown in ``info`` and graphs (default: the function's name).
        * ``key``: while a task with this key is live, a new one attaches to it
          instead of running again; each request gets its own uid, signals and
          handle, and the shared work is cancelled only when every request
          is.  With ``cache_size`` > 0 finished results are kept by key (LRU);
          failures never are.
        * ``retries``: run again up to this many times when it raises one of
          ``retry_on``, after ``backoff * 2**(attempt-1)`` seconds with ±50 %
          jitter.
        * ``timeout``: seconds from start; then it is asked to stop, and ends
          FAILED with ``TimeoutError``.
        * ``resources``: e.g. ``{"disk": 1}``; at most the limit set by
          ``set_resource_limit`` runs at once, whatever ``max_threads`` is.
        * ``on_upstream_failure``: ``"fail"`` (default, as the seed) or
          ``"cancel"``; a cancelled upstream always cancels.
        * ``exclusive``: cancel the group's older tasks that have not started
          (latest wins).
        * ``owner``: a QObject; when it is destroyed its tasks are cancelled
          and nothing more is delivered for them.
        * ``executor``: where ``fn`` runs: ``None``/``"thread"`` (the pool),
          ``"process"`` (worker processes, ``bgtasks.executors.processes.ProcessExecutor``),
          ``"dask"`` (``bgtasks.executors.dask.DaskExecutor``), another name
          given to ``set_executor``, or an ``Executor``.  Everything
          else (signals, dependencies, cancel, handles) stays the same; the
          executor refuses at ``submit`` what it cannot run (``TypeError``).
        * ``persist``: journal the task in the ``bgtasks.persistence.TaskJournal``
          given to ``set_journal``, so it survives a crash or a restart
          (``journal.options`` has more: ``enduring``, ``store_result``).
          Only ``priority``, ``group``, ``upstream_task_ids`` and ``name`` are
          journaled; other options are refused with ``persist=True``.

        ``add_task`` and ``add_pass_through_task`` take the same options as
        keywords (but ``persist``; ``priority``, ``group`` and
        ``upstream_task_ids`` are their parameters).

        Args:
            **task_options: The task options above, by name.

        Returns:
            A ``TaskSubmitter`` bound to this manager and these options.

        Raises:
            TypeError: a name that is not a task option (the message lists
                them), or a value of the wrong type (``priority="x"``, an
                unhashable ``group`` or ``key``, an ``owner`` that is not a
                QObject...); the message names the value.
            ValueError: a value out of range (``retries=-1``, ``timeout=0``,
                an unknown executor name...); the message names the value.
        """
        return self._submitter(DEFAULT_OPTIONS.merged(task_options))

    # ------------------------------------------------------------------ internals

    def _submitter(self, options: TaskOptions) -> TaskSubmitter:
        return TaskSubmitter(self, self._checked(options))

    def _checked(self, options: TaskOptions) -> TaskOptions:
        return checked(options, self._scheduler.make_options, _check_owner, self._check_executor)

    def _check_executor(self, which: object) -> None:
        """Refuse an ``executor`` option that can name no executor (ValueError, TypeError)."""
        if which is None or isinstance(which, Executor):
            return
        if not isinstance(which, str):
            raise not_an_executor(which)
        if which in ("thread", "process", "dask"):
            return
        with self._executor_lock:
            known = which in self._executors
        if not known:
            raise unknown_executor(which)

    def _submit_with(
        self,
        options: TaskOptions,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> TaskHandle[Any]:
        """Queue ``fn(*args, **kwargs)`` with ``options`` (already checked)."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        if options.persist:
            return self._submit_persistent(fn, args, kwargs, options)
        executor = options.executor
        if executor is not None and executor != "thread":
            fn, options = self._route(fn, args, kwargs, options, executor)
        handle: TaskHandle[Any] = TaskHandle(cast("HandleOwner", self))
        handle.uid = self._add(
            fn, options.priority, options.group, options.upstream_task_ids, args, kwargs,
            options, handle,
        )  # fmt: skip
        if isinstance(executor, str) and executor != "thread":
            self._mark_used(executor)
        return handle

    def _route(
        self,
        fn: Callable[..., Any],
        args: Any,
        kwargs: Any,
        options: TaskOptions,
        executor: str | Executor,
    ) -> tuple[Callable[..., Any], TaskOptions]:
        """The call that runs ``fn`` on ``options.executor``, and its options."""
        name = options.name if options.name is not None else getattr(fn, "__name__", None)
        call, _chosen, remote = self._remote_call(fn, args, kwargs, executor, options.resources)
        return call, dataclasses.replace(options, name=name, resources=remote)

    def _submit_persistent(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> TaskHandle[Any]:
        journal = self._journal
        if journal is None:
            raise RuntimeError("persist=True needs a journal: call set_journal(TaskJournal(...))")
        # options() refused every option a journal cannot record.
        submitter = journal.options(
            priority=options.priority, group=options.group,
            upstream_task_ids=options.upstream_task_ids, name=options.name,
        )  # fmt: skip
        return submitter.submit(fn, *args, **kwargs)  # type: ignore[no-any-return]

    def set_journal(self, journal: Any) -> None:
        """Journal tasks submitted with ``options(persist=True)`` in ``journal``.  Any thread.

        Args:
            journal: A ``bgtasks.persistence.TaskJournal`` of this manager.

        Raises:
            TypeError: ``journal`` is not a TaskJournal.
            ValueError: it journals another manager's tasks.
        """
        # Duck-typed: the Qt layer never imports the persistence layer above it.
        if not callable(getattr(journal, "options", None)) or not hasattr(journal, "manager"):
            raise TypeError(f"journal must be a bgtasks.persistence.TaskJournal, got {journal!r}")
        if journal.manager is not self:
            raise ValueError(f"{journal!r} journals another manager's tasks")
        self._journal = journal

    def handle(self, uid: int) -> TaskHandle[Any]:
        """A ``TaskHandle`` for a task added with ``add_task``.  Any thread.

        Take it before the task ends to get its result: a completed task's
        result is dropped once ``task_completed`` has delivered it.  Callbacks
        added to the handle run on the manager's thread.

        Args:
            uid: The task's uid.

        Returns:
            A new handle of the task's current run (done at once if it ended).

        Raises:
            TypeError: ``uid`` is not an int.
            KeyError: a uid this manager never issued, or one forgotten.
        """
        handle: TaskHandle[Any] = TaskHandle(cast("HandleOwner", self))
        handle.uid = uid
        self._scheduler.add_handle(uid, handle)
        return handle

    def _add(
        self,
        fn: Callable[..., Any] | None,
        priority: Any,
        group: Any,
        upstream: Any,
        args: Any,
        kwargs: Any,
        options: TaskOptions | Mapping[str, Any] | None,
        handle: TaskHandle[Any] | None = None,
    ) -> int:
        """Register a task (the one path of submit, add_task and add_pass_through_task)."""
        scheduler = self._scheduler
        if not options or options is DEFAULT_OPTIONS:  # the common case: no task options
            return scheduler.add(fn, priority, group, upstream, args, kwargs, handle=handle)
        if not isinstance(options, TaskOptions):  # add_task's **options
            return self._add_keywords(fn, priority, group, upstream, args, kwargs, options)
        if options.scheduled is None:
            options = self._checked(options)
        opts = options.scheduled
        assert opts is not None  # set by checked()
        owner = options.owner
        uid = scheduler.add(
            fn, priority, group, upstream, args, kwargs, opts, options.name,
            bool(options.exclusive), handle,
        )  # fmt: skip
        if owner is not None:
            self._own(owner, uid)
        return uid

    def _add_keywords(
        self,
        fn: Callable[..., Any] | None,
        priority: Any,
        group: Any,
        upstream: Any,
        args: Any,
        kwargs: Any,
        options: Mapping[str, Any],
    ) -> int:
        """add_task's keyword options, checked as ``options()`` checks them.

        On a thread (the common case) without building a ``TaskOptions``: that
        is the per-call cost of keyed work.  Naming an executor, ``fn`` runs there.
        """
        executor = options.get("executor")
        if executor is not None and executor != "thread":
            args = () if args is None else args
            kwargs = {} if kwargs is None else kwargs
            checked_options = self._checked(TaskOptions.of(options))
            assert fn is not None  # add_task has a callable
            call, checked_options = self._route(fn, args, kwargs, checked_options, executor)
            uid = self._add(call, priority, group, upstream, args, kwargs, checked_options)
            if isinstance(executor, str):
                self._mark_used(executor)
            return uid
        if not options.keys() <= _ADD_TASK_NAMES:
            _check_names(options, _ADD_TASK_NAMES)
        # add_task's own **options dict: popped in place (nobody else holds it)
        rest: dict[str, Any] = options if type(options) is dict else dict(options)
        owner = rest.pop("owner", None)
        exclusive = rest.pop("exclusive", False)
        name = rest.pop("name", None)
        rest.pop("executor", None)  # None or "thread"
        if name is not None:
            _check_name(name)
        if exclusive is not False:
            check_bool("exclusive", exclusive)
        if owner is not None:
            _check_owner(owner)
        opts = self._scheduler.make_options(**rest)
        uid = self._scheduler.add(
            fn, priority, group, upstream, args, kwargs, opts, name, exclusive, None
        )
        if owner is not None:
            self._own(owner, uid)
        return uid
