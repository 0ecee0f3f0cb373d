"""bgtasks: background tasks for Qt (PySide6) desktop applications.

Public names are re-exported here; the modules behind them are private.
"""

from __future__ import annotations

import sys
import warnings

import PySide6

if sys.version_info < (3, 12) and PySide6.__version__.startswith("6.12.0"):
    # Each Signal.emit in PySide6 6.12.0 drops a reference to True; before
    # Python 3.12 made True immortal that aborts the process after ~1000 emits.
    warnings.warn(
        f"PySide6 {PySide6.__version__} crashes on Python {sys.version.split()[0]} after about "
        "a thousand signal emits; install PySide6-Essentials<6.12 or use Python 3.12+",
        RuntimeWarning,
        stacklevel=2,
    )

from ._context import TaskContext, current_task  # noqa: E402
from ._errors import BgTasksError, TaskCancelled, UpstreamFailed  # noqa: E402
from ._executor import Executor  # noqa: E402
from ._handle import TaskHandle  # noqa: E402
from ._manager import BackgroundTaskManager  # noqa: E402
from ._state import IllegalTransition, TaskInfo, TaskState  # noqa: E402

__all__ = [
    "BackgroundTaskManager",
    "BgTasksError",
    "Executor",
    "IllegalTransition",
    "TaskCancelled",
    "TaskContext",
    "TaskHandle",
    "TaskInfo",
    "TaskState",
    "UpstreamFailed",
    "current_task",
]
__version__ = "0.1.0"
