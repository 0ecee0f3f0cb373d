"""``TaskOptions``: the options of one task, as one frozen value.

The keywords of ``submit`` (and the ``**options`` of ``add_task`` and
``add_pass_through_task``) become one ``TaskOptions``; its field defaults are
the only place the options' defaults are written, and the scheduler's part is
validated once, by ``Scheduler.make_options``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PySide6.QtCore import QObject

    from ..executors._contract import Executor


@dataclasses.dataclass(frozen=True)
class TaskOptions:
    """What ``submit`` accepts besides ``fn``'s own arguments (see its docstring)."""

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

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> TaskOptions:
        """From keywords; ``TypeError`` naming the first one that is not an option."""
        unknown = sorted(set(options) - _NAMES)
        if unknown:
            raise TypeError(f"unknown task option {unknown[0]!r}")
        return cls(**options)

    def scheduler_options(self) -> dict[str, Any]:
        """The keywords of ``Scheduler.make_options``."""
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
        """The first option a journal cannot record (not at its default), or None."""
        for field in dataclasses.fields(self):
            if field.name in _JOURNALED:
                continue
            if getattr(self, field.name) != field.default:
                return field.name
        return None


_NAMES = frozenset(field.name for field in dataclasses.fields(TaskOptions))
#: What persist=True records of the options (with priority, group and upstream tasks).
_JOURNALED = frozenset({"name"})
#: Every option at its default.
DEFAULT_OPTIONS = TaskOptions()
