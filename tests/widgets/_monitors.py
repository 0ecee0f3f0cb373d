"""TaskMonitors the widget tests show, and whether one shows what its manager has."""

from __future__ import annotations

from bgtasks.widgets import TaskMonitor


def shown_monitor(qtbot, manager) -> TaskMonitor:
    """A TaskMonitor of ``manager``, 900x500 and shown; closed with the test."""
    widget = TaskMonitor(manager)
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    return widget


def synced(monitor: TaskMonitor) -> bool:
    """True when the monitor's model has nothing pending and shows every task's state."""
    model, manager = monitor.model, monitor.model.manager
    if model.has_pending():
        return False
    shown = {uid: model.task_info(uid).state for uid in model.uids()}
    return shown == {i.uid: i.state for i in manager.tasks()}
