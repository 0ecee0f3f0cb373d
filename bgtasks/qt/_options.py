"""``TaskOptions`` and ``TaskSubmitter``: task options in a namespace of their own.

``manager.options(**task_options)`` checks the options once and returns a
``TaskSubmitter``; its ``submit(fn, /, *args, **kwargs)`` passes every
keyword to ``fn``.  The ``**options`` of ``add_task`` and
``add_pass_through_task`` become the same ``TaskOptions``.  The field
defaults below are the only place the options' defaults are written; each
value is checked by the rule of ``bgtasks.core._validate``, the
scheduler's ``make_options`` or the manager's executor registry, never here.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ..core._checks import _check_name, _check_upstream
from ..core._immutable import Immutable
from ..core._validate import check_bool, check_hashable, check_priority

if TYPE_CHECKING:
    from PySide6.QtCore import QObject

    from ..core._handle import TaskHandle
    from ..core._task import Options
    from ..executors._contract import Executor
    from ._submit import Submission

P = ParamSpec("P")
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class TaskOptions:
    """The options of one task besides ``fn``'s own arguments, as one frozen value.

    Made by ``BackgroundTaskManager.options`` (and from ``add_task``'s
    ``**options``); immutable, so any thread may read and share it.

    Attributes:
        priority: Higher runs first, FIFO among equals; ``None`` counts as 0.
        group: A group to stop or reprioritize together (any hashable value).
        upstream_task_ids: The uids of tasks that must complete first.
        name: Shown in ``info`` and graphs (default: the function's name).
        key: While a task with this key is live, a new one attaches to it
            instead of running again; each request gets its own uid, signals
            and handle, and the shared work is cancelled only when every
            request is.  With ``cache_size`` > 0 finished results are kept by
            key (LRU); failures never are.
        retries: Run again up to this many times when it raises one of
            ``retry_on``, after ``backoff * 2**(attempt-1)`` seconds with
            ±50 % jitter.
        retry_on: The exception class (or tuple of them) that ``retries`` retries.
        backoff: Seconds before the first retry (doubled each time).
        timeout: Seconds from start; then it is asked to stop, and ends
            FAILED with ``TimeoutError``.
        resources: E.g. ``{"disk": 1}``; at most the limit set by
            ``set_resource_limit`` runs at once, whatever ``max_threads`` is.
        on_upstream_failure: ``"fail"`` (default) or ``"cancel"``; a
            cancelled upstream always cancels.
        exclusive: Cancel the group's older tasks that have not started
            (latest wins).
        owner: A QObject; when it is destroyed its tasks are cancelled and
            nothing more is delivered for them.
        executor: Where ``fn`` runs: ``None``/``"thread"`` (the pool),
            ``"process"``, ``"dask"``, a name given to ``set_executor``, or an
            ``Executor``.
        persist: Journal the task in the journal given to ``set_journal``
            (only ``priority``, ``group``, ``upstream_task_ids`` and ``name``
            can be journaled with it).
        scheduled: The scheduler's part, set when the options are checked
            (None: not checked yet); not a constructor argument.
    """

    priority: float | None = None
    group: Hashable = None
    upstream_task_ids: tuple[int, ...] | None = None
    name: str | None = None
    key: Hashable = None
    retries: int = 0
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,)
    backoff: float = 0.1
    timeout: float | None = None
    resources: Mapping[str, int] | None = None
    on_upstream_failure: str | None = None
    exclusive: bool = False
    owner: QObject | None = None
    executor: str | Executor | None = None
    persist: bool = False
    scheduled: Options | None = dataclasses.field(
        default=None, init=False, compare=False, repr=False
    )

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> TaskOptions:
        """The options given as ``add_task``'s ``**options``.  Any thread.

        Args:
            options: Task options by name (not ``priority``, ``group``,
                ``upstream_task_ids`` nor ``persist``: ``add_task`` takes those
                otherwise).

        Returns:
            New options, not checked yet.

        Raises:
            TypeError: a name that is not one of these options (named).
        """
        _check_names(options, _ADD_TASK_NAMES)
        return cls(**options)

    def merged(self, more: Mapping[str, Any]) -> TaskOptions:
        """These options with ``more`` replacing them (not checked).  Any thread.

        Args:
            more: Task options by name; they win over these.

        Returns:
            New options, or these if ``more`` is empty.

        Raises:
            TypeError: a name that is not a task option (named).
        """
        _check_names(more, _NAMES)
        return dataclasses.replace(self, **more) if more else self

    def changed(self) -> dict[str, Any]:
        """The options not at their default, by name, in field order.  Any thread.

        Returns:
            A new dict.
        """
        return {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.init and getattr(self, field.name) != field.default
        }

    def scheduler_options(self) -> dict[str, Any]:
        """The keywords of ``Scheduler.make_options``.  Any thread.

        Returns:
            A new dict of the options the scheduler checks and keeps.
        """
        return {
            "key": self.key,
            "retries": self.retries,
            "retry_on": self.retry_on,
            "backoff": self.backoff,
            "timeout": self.timeout,
            "resources": self.resources,
            "on_upstream_failure": self.on_upstream_failure,
        }

    def first_not_journaled(self) -> str | None:
        """The first option a journal cannot record (not at its default).  Any thread.

        Returns:
            Its name, or None if a journal can record every option set.
        """
        for name in self.changed():
            if name not in _JOURNALED:
                return name
        return None


def _check_names(options: Mapping[str, Any], valid: frozenset[str]) -> None:
    unknown = sorted(set(options) - valid)
    if unknown:
        raise TypeError(
            f"unknown task option {unknown[0]!r}; the task options are " + ", ".join(sorted(valid))
        )


def checked(
    options: TaskOptions,
    make_options: Callable[..., Options],
    check_owner: Callable[[object], None],
    check_executor: Callable[[object], None],
) -> TaskOptions:
    """``options`` with every value checked (and ``upstream_task_ids``, ``retry_on``
    and ``resources`` made immutable), or the error of the first bad one."""
    # A value at its default is valid: only what was given is checked (add_task's
    # keyword options pass through here on every call).
    if options.priority is not None:
        check_priority("priority", options.priority)
    if options.group is not None:
        check_hashable("group", options.group)
    upstream = options.upstream_task_ids
    if upstream is not None:
        upstream = _check_upstream(upstream)
        for up in upstream:
            if type(up) is not int:
                raise TypeError(f"upstream_task_ids must be a list of task ids, got {upstream!r}")
    if options.name is not None:
        _check_name(options.name)
    if options.exclusive is not False:
        check_bool("exclusive", options.exclusive)
    if options.persist is not False:
        check_bool("persist", options.persist)
    if options.owner is not None:
        check_owner(options.owner)
    if options.executor is not None:
        check_executor(options.executor)
    scheduled = make_options(**options.scheduler_options())  # raises for a bad one
    retry_on = options.retry_on
    if isinstance(retry_on, type):
        retry_on = (retry_on,)
    resources = options.resources
    if resources is not None:
        resources = types.MappingProxyType(dict(resources))
    if options.persist:
        refused = options.first_not_journaled()
        if refused is not None:
            raise TypeError(
                f"option {refused!r} cannot be journaled: persist=True takes "
                "priority, group, upstream_task_ids and name"
            )
    if (
        upstream is options.upstream_task_ids
        and retry_on is options.retry_on
        and resources is options.resources
        and options.scheduled is None
    ):
        result = options  # nothing to make immutable: no copy (add_task's hot path)
    else:
        result = dataclasses.replace(
            options, upstream_task_ids=upstream, retry_on=retry_on, resources=resources
        )
    object.__setattr__(result, "scheduled", scheduled)
    return result


class TaskSubmitter(Immutable):
    """A manager with task options bound: ``manager.options(...).submit(fn, *args, **kwargs)``.

    Made by ``BackgroundTaskManager.options``, which checked the options;
    immutable, so one submitter can be kept and shared between threads.  Any
    thread may call its methods; the task's signals arrive on the manager's
    thread, as for ``BackgroundTaskManager.submit``.
    """

    __slots__ = ("_manager", "_options")

    _manager: Submission
    _options: TaskOptions

    def __init__(self, manager: Submission, options: TaskOptions) -> None:
        """Made by ``manager.options(...)`` (any thread).

        Args:
            manager: The manager the tasks go to.
            options: The bound options, already checked.
        """
        object.__setattr__(self, "_manager", manager)
        object.__setattr__(self, "_options", options)

    @property
    def task_options(self) -> TaskOptions:
        """The bound options (checked).  Any thread."""
        return self._options

    def options(self, **task_options: Any) -> TaskSubmitter:
        """A new submitter with ``task_options`` merged into these (later wins).  Any thread.

        Args:
            **task_options: Task options by name, as for
                ``BackgroundTaskManager.options``.

        Returns:
            A new ``TaskSubmitter``; this one is unchanged.

        Raises:
            TypeError: for a name that is not a task option, or a value of the
                wrong type (the message names it).
            ValueError: for a value out of range (the message names it).
        """
        return self._manager._submitter(self._options.merged(task_options))

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[T]:
        """Queue ``fn(*args, **kwargs)`` with the bound options; every keyword goes to ``fn``.

        Any thread, a running task included.  The task's signals arrive on the
        manager's thread; callbacks added to the handle run there too.

        Args:
            fn: The callable to run (positional-only).
            *args: Positional arguments for ``fn``.
            **kwargs: Keyword arguments for ``fn``, whatever their names.

        Returns:
            The task's ``TaskHandle``.

        Raises:
            TypeError: ``fn`` is not callable, or its executor cannot run it.
            ValueError: an upstream uid or a resource the manager does not know.
            RuntimeError: the manager is shut down; with ``persist=True``, no
                journal was set.
        """
        return self._manager._submit_with(self._options, fn, args, kwargs)

    def __repr__(self) -> str:
        bound = ", ".join(f"{k}={v!r}" for k, v in self._options.changed().items())
        return f"<TaskSubmitter of {self._manager!r}: {bound or 'default options'}>"


_NAMES = frozenset(field.name for field in dataclasses.fields(TaskOptions) if field.init)
#: The ``**options`` of add_task: priority, group and upstream_task_ids are its
#: parameters, and it returns a uid, not a journal's handle.
_ADD_TASK_NAMES = _NAMES - {"priority", "group", "upstream_task_ids", "persist"}
#: What persist=True records of the options (with priority, group and upstream tasks).
_JOURNALED = frozenset({"priority", "group", "upstream_task_ids", "name", "persist"})
#: Every option at its default.
DEFAULT_OPTIONS = TaskOptions()
