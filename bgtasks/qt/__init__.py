"""The Qt layer: the ``BackgroundTaskManager`` QObject over the Qt-free core.

It adds signals, a private thread pool whose workers run the core's worker
loop, the drain that turns the core's events into signals on the manager's
thread, owners, executors, and lifetime (shut down, application quit,
interpreter exit).
"""

from __future__ import annotations

from ._manager import BackgroundTaskManager

__all__ = ["BackgroundTaskManager"]
