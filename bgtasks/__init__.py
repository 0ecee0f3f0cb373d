"""bgtasks: background tasks for Qt (PySide6) desktop applications.

Public names are re-exported here; the modules behind them are private.
They are imported on first use, so a process worker that needs only
``current_task`` does not load Qt.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core._context import TaskContext, TaskContextProtocol, current_task
    from .core._errors import BgTasksError, TaskCancelled, UpstreamFailed
    from .core._handle import TaskHandle
    from .core._state import IllegalTransition, TaskInfo, TaskState
    from .executors._contract import Executor
    from .qt._futures import ManagerExecutor
    from .qt._manager import BackgroundTaskManager
    from .qt._options import TaskOptions, TaskSubmitter

_WHERE = {
    "BackgroundTaskManager": ".qt._manager",
    "BgTasksError": ".core._errors",
    "Executor": ".executors._contract",
    "IllegalTransition": ".core._state",
    "ManagerExecutor": ".qt._futures",
    "TaskCancelled": ".core._errors",
    "TaskContext": ".core._context",
    "TaskContextProtocol": ".core._context",
    "TaskHandle": ".core._handle",
    "TaskInfo": ".core._state",
    "TaskOptions": ".qt._options",
    "TaskState": ".core._state",
    "TaskSubmitter": ".qt._options",
    "UpstreamFailed": ".core._errors",
    "current_task": ".core._context",
}

__all__ = [
    "BackgroundTaskManager",
    "BgTasksError",
    "Executor",
    "IllegalTransition",
    "ManagerExecutor",
    "TaskCancelled",
    "TaskContext",
    "TaskContextProtocol",
    "TaskHandle",
    "TaskInfo",
    "TaskOptions",
    "TaskState",
    "TaskSubmitter",
    "UpstreamFailed",
    "current_task",
]
from ._version import __version__ as __version__  # noqa: E402


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bgtasks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
