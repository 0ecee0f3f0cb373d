"""Submitting work: ``submit``, handles, the journal hook, and the one path every add takes.

A mixin of :class:`bgtasks.BackgroundTaskManager`: it reads the manager's
``_scheduler``, its executor registry (``_remote_call``, ``_mark_used``), its owners
(``_own``) and its journal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

from ..core._handle import TaskHandle
from ._options import TaskOptions

if TYPE_CHECKING:
    from ..executors._contract import Executor


class Submission:
    """``submit``, ``handle``, ``set_journal`` and ``_add``."""

    def submit(
        self,
        fn: Callable[..., Any],
        /,
        *args: Any,
        priority: float | None = None,
        group: Hashable = None,
        upstream_task_ids: Sequence[int] | None = None,
        name: str | None = None,
        key: Hashable = None,
        retries: int = 0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        backoff: float = 0.1,
        timeout: float | None = None,
        resources: Mapping[str, int] | None = None,
        on_upstream_failure: str | None = None,
        exclusive: bool = False,
        owner: QObject | None = None,
        executor: str | Executor | None = None,
        persist: bool = False,
        **kwargs: Any,
    ) -> TaskHandle:
        """Queue ``fn(*args, **kwargs)`` and return its :class:`TaskHandle`.  Any thread.

        The keyword names below are task options (as with Dask's ``submit``),
        not arguments for ``fn``; to pass one of them to ``fn``, use
        ``functools.partial`` or ``add_task``.  The options apply to
        ``add_task`` and ``add_pass_through_task`` too.

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
          :meth:`set_resource_limit` runs at once, whatever ``max_threads`` is.
        * ``on_upstream_failure``: ``"fail"`` (default, as the seed) or
          ``"cancel"``; a cancelled upstream always cancels.
        * ``exclusive``: cancel the group's older tasks that have not started
          (latest wins).
        * ``owner``: a QObject; when it is destroyed its tasks are cancelled
          and nothing more is delivered for them.
        * ``executor``: where ``fn`` runs: ``None``/``"thread"`` (the pool),
          ``"process"`` (worker processes, :class:`bgtasks.executors.processes.ProcessExecutor`),
          ``"dask"`` (:class:`bgtasks.executors.dask.DaskExecutor`), another name
          given to :meth:`set_executor`, or an :class:`Executor`.  Everything
          else (signals, dependencies, cancel, handles) stays the same; the
          executor refuses at this call what it cannot run (``TypeError``).
        * ``persist``: journal the task in the :class:`bgtasks.persistence.TaskJournal`
          given to :meth:`set_journal`, so it survives a crash or a restart
          (``journal.submit`` has more options: ``enduring``, ``store_result``).
          Only ``priority``, ``group``, ``upstream_task_ids`` and ``name`` are
          journaled; other options are refused with ``persist=True``.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        options = TaskOptions(
            name=name, key=key, retries=retries, retry_on=retry_on, backoff=backoff,
            timeout=timeout, resources=resources, on_upstream_failure=on_upstream_failure,
            exclusive=exclusive, owner=owner, executor=executor,
        )  # fmt: skip
        if persist:
            return self._submit_persistent(
                fn, args, kwargs, priority, group, upstream_task_ids, options
            )
        if executor is not None and executor != "thread":
            fn, options = self._route(fn, args, kwargs, options)
        handle = TaskHandle(self)
        handle.uid = self._add(
            fn, priority, group, upstream_task_ids, args, kwargs, options, handle
        )
        if isinstance(executor, str) and executor != "thread":
            self._mark_used(executor)
        return handle

    def _route(
        self, fn: Callable[..., Any], args: Any, kwargs: Any, options: TaskOptions
    ) -> tuple[Callable[..., Any], TaskOptions]:
        """The call that runs ``fn`` on ``options.executor``, and its options."""
        name = options.name if options.name is not None else getattr(fn, "__name__", None)
        call, _chosen, remote = self._remote_call(
            fn, args, kwargs, options.executor, options.resources
        )
        return call, dataclasses.replace(options, name=name, resources=remote)

    def _submit_persistent(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        priority: float | None,
        group: Hashable,
        upstream_task_ids: Sequence[int] | None,
        options: TaskOptions,
    ) -> TaskHandle:
        journal = self._journal
        if journal is None:
            raise RuntimeError("persist=True needs a journal: call set_journal(TaskJournal(...))")
        refused = options.first_not_journaled()
        if refused is not None:
            raise TypeError(
                f"option {refused!r} cannot be journaled: persist=True takes "
                "priority, group, upstream_task_ids and name"
            )
        return journal.submit(  # type: ignore[no-any-return]
            fn, *args, priority=priority, group=group,
            upstream_task_ids=upstream_task_ids, name=options.name, **kwargs,
        )  # fmt: skip

    def set_journal(self, journal: Any) -> None:
        """Journal tasks submitted with ``persist=True`` in ``journal``, a
        :class:`bgtasks.persistence.TaskJournal` of this manager.  Any thread."""
        # Duck-typed: the Qt layer never imports the persistence layer above it.
        if not callable(getattr(journal, "submit", None)) or not hasattr(journal, "manager"):
            raise TypeError(f"journal must be a bgtasks.persistence.TaskJournal, got {journal!r}")
        if journal.manager is not self:
            raise ValueError(f"{journal!r} journals another manager's tasks")
        self._journal = journal

    def handle(self, uid: int) -> TaskHandle:
        """A :class:`TaskHandle` for a task added with ``add_task``.  Any thread.

        Take it before the task ends to get its result: a completed task's
        result is dropped once ``task_completed`` has delivered it.
        """
        handle = TaskHandle(self)
        handle.uid = uid
        self._scheduler.add_handle(uid, handle)
        return handle

    # ------------------------------------------------------------------ internals

    def _add(
        self,
        fn: Callable[..., Any] | None,
        priority: Any,
        group: Any,
        upstream: Any,
        args: Any,
        kwargs: Any,
        options: TaskOptions | Mapping[str, Any] | None,
        handle: TaskHandle | None = None,
    ) -> int:
        scheduler = self._scheduler
        if not options:  # the common case: no task options
            return scheduler.add(fn, priority, group, upstream, args, kwargs, handle=handle)
        if not isinstance(options, TaskOptions):
            options = TaskOptions.of(options)
        owner = options.owner
        if owner is not None and not isinstance(owner, QObject):
            raise TypeError(f"owner must be a QObject, got {owner!r}")
        opts = scheduler.make_options(**options.scheduler_options())
        uid = scheduler.add(
            fn, priority, group, upstream, args, kwargs, opts, options.name,
            bool(options.exclusive), handle,
        )  # fmt: skip
        if owner is not None:
            self._own(owner, uid)
        return uid
