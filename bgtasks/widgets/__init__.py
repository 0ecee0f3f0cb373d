"""Qt widgets for bgtasks: an item model of a manager's tasks, a progress-bar
delegate and a task monitor widget.

Everything here belongs to the GUI thread (which must be the manager's thread).
"""

from __future__ import annotations

from ._delegate import ProgressDelegate
from ._model import TaskModel
from ._monitor import TaskMonitor

__all__ = ["ProgressDelegate", "TaskModel", "TaskMonitor"]
