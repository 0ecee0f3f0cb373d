"""Qt widgets for bgtasks: an item model of a manager's tasks, a progress-bar
delegate, a task monitor, a status-bar indicator, a close guard and a graph view.

Everything here belongs to the GUI thread (which must be the manager's thread).
"""

from __future__ import annotations

from ._close_guard import CloseChoice, CloseGuard
from ._delegate import ProgressDelegate
from ._graph_view import TaskGraphView
from ._indicator import TaskStatusIndicator
from ._model import TaskModel
from ._monitor import TaskMonitor

__all__ = [
    "CloseChoice",
    "CloseGuard",
    "ProgressDelegate",
    "TaskGraphView",
    "TaskModel",
    "TaskMonitor",
    "TaskStatusIndicator",
]
