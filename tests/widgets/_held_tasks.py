"""Tasks the widget tests hold running, and a wait on task states."""

from __future__ import annotations

import threading

from bgtasks import current_task


def hold(gate: threading.Event, progress: float | None = None) -> str:
    """A task that runs until ``gate`` is set (or it is asked to stop)."""
    ctx = current_task()
    if progress is not None:
        ctx.report_progress(progress)
    while not gate.wait(0.005):
        ctx.raise_if_cancelled()
    return "done"


def quick() -> int:
    return 1


def wait_states(qtbot, manager, uids, state, timeout=10000):
    qtbot.waitUntil(lambda: all(manager.task_state(uid) is state for uid in uids), timeout=timeout)
