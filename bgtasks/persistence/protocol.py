"""What a journal needs from a manager: the journal protocol.

:class:`~bgtasks.persistence.TaskJournal` is typed against
:class:`JournalManager`, not against ``BackgroundTaskManager``, so the
persistence package never imports the manager (nor Qt through it):
anything with these members can back a journal.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..core._handle import TaskHandle


@runtime_checkable
class JournalManager(Protocol):
    """The members of a manager a :class:`TaskJournal` uses.

    ``submit`` queues ``fn()`` (the journal passes the task's arguments
    inside ``fn``) and returns its handle; ``stop_task`` stops a task by
    uid (``reset``); ``is_shut_down`` tells whether new tasks are refused.
    ``BackgroundTaskManager`` has them all.
    """

    @property
    def is_shut_down(self) -> bool: ...

    def submit(
        self,
        fn: Callable[..., Any],
        /,
        *,
        priority: float | None = ...,
        group: Hashable = ...,
        upstream_task_ids: Sequence[int] | None = ...,
        name: str | None = ...,
    ) -> TaskHandle: ...

    def stop_task(
        self, task_id: int, stop_upstream: bool = ..., stop_downstream: bool = ...
    ) -> None: ...
