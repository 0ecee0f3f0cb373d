"""Noticing that a manager was shut down: every widget polls for it.

A shut-down manager emits nothing more, so the widgets look at it
themselves: a slow watch while live tasks are shown, then a few reads a
second of the tasks still stopping.  GUI thread only.
"""

from __future__ import annotations

import shiboken6

from ..qt._manager import BackgroundTaskManager

#: Milliseconds between two looks at ``manager.is_shut_down`` while live rows
#: are shown and no pass runs (only queued or pending tasks: nothing ticks).
WATCH_INTERVAL = 500
#: Milliseconds between two reads of the tasks still stopping after a shut-down.
SHUTDOWN_POLL_INTERVAL = 250


def manager_is_shut_down(manager: BackgroundTaskManager) -> bool:
    """Whether ``manager`` was shut down, or its QObject deleted: either way it emits nothing more.

    Polled, not signalled: a shut-down manager emits nothing, and a slot on
    its ``destroyed`` can outlive the widget that connected it (PySide6 6.12
    crashed calling one after the widget had been deleted)."""
    return bool(manager.is_shut_down) or not shiboken6.isValid(manager)
