"""Qt widgets for bgtasks: an item model of a manager's tasks, a progress-bar
delegate, a task monitor, a status-bar indicator, a close guard, a progress
dialog for a batch and a graph view.

Everything here belongs to the GUI thread (which must be the manager's thread).
"""

from __future__ import annotations

from ._close_guard import CloseChoice, CloseGuard, ask_with_message_box
from ._columns import format_elapsed
from ._delegate import ProgressDelegate
from ._graph_layout import layers
from ._graph_view import (
    STATE_COLOURS,
    GroupNodeItem,
    TaskEdgeItem,
    TaskGraphView,
    TaskNodeItem,
)
from ._indicator import TaskStatusIndicator
from ._model import TaskModel
from ._monitor import TaskMonitor, summary_text
from ._progress_batch import BatchFailure
from ._progress_dialog import TaskProgressDialog

__all__ = [
    "STATE_COLOURS",
    "BatchFailure",
    "CloseChoice",
    "CloseGuard",
    "GroupNodeItem",
    "ProgressDelegate",
    "TaskEdgeItem",
    "TaskGraphView",
    "TaskModel",
    "TaskMonitor",
    "TaskNodeItem",
    "TaskProgressDialog",
    "TaskStatusIndicator",
    "ask_with_message_box",
    "format_elapsed",
    "layers",
    "summary_text",
]
