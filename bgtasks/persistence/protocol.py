"""What a journal needs from a manager: the journal protocol.

``TaskJournal`` is typed against
``JournalManager``, not against ``BackgroundTaskManager``, so the
persistence package never imports the manager (nor Qt through it):
anything with these members can back a journal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..core._handle import TaskHandle


class OptionsSubmitter(Protocol):
    """What ``JournalManager.options`` returns: ``submit(fn)`` queues ``fn()``."""

    def submit(self, fn: Callable[[], Any], /) -> TaskHandle[Any]: ...


@runtime_checkable
class JournalManager(Protocol):
    """The members of a manager a ``TaskJournal`` uses.

    ``options(priority=..., group=..., upstream_task_ids=..., name=...)``
    returns an object whose ``submit(fn)`` queues ``fn()`` (the journal
    passes the task's arguments inside ``fn``) and returns its handle;
    ``stop_task`` stops a task by uid (``reset``); ``is_shut_down`` tells
    whether new tasks are refused.  ``BackgroundTaskManager`` has them all.
    """

    @property
    def is_shut_down(self) -> bool: ...

    def options(self, **task_options: Any) -> OptionsSubmitter: ...

    def stop_task(
        self, task_id: int, stop_upstream: bool = ..., stop_downstream: bool = ...
    ) -> None: ...
