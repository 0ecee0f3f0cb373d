"""Every QObject bgtasks makes is destroyed on its own thread (issue 11).

A widget or model caught in a reference cycle is freed by the cyclic garbage
collector on whichever thread triggers it, often a worker.  Destroyed there,
Qt posts its ``destroyed`` signal to the dying object and may deliver it on
the UI thread at the same time (the crash under load), and a QWidget must
never be destroyed off the GUI thread at all.
"""

from __future__ import annotations

import gc
import threading

import pytest

from bgtasks.thumbnails import ThumbnailLoader, ThumbnailModel
from bgtasks.widgets import (
    TaskGraphView,
    TaskModel,
    TaskMonitor,
    TaskStatusIndicator,
)

MAKERS = {
    "TaskModel": lambda m: TaskModel(m),
    "grouped TaskModel": lambda m: TaskModel(m, grouped=True),
    "TaskMonitor": lambda m: TaskMonitor(m),
    "TaskStatusIndicator": lambda m: TaskStatusIndicator(m),
    "TaskGraphView": lambda m: TaskGraphView(m),
    "ThumbnailLoader": lambda m: ThumbnailLoader(m),
    "ThumbnailModel": lambda m: ThumbnailModel([], ThumbnailLoader(m)),
}


@pytest.mark.parametrize("kind", list(MAKERS))
def test_collected_on_a_worker_thread_it_is_destroyed_on_the_ui_thread(qtbot, make_manager, kind):
    manager = make_manager(start_processing=True)
    obj = MAKERS[kind](manager)
    obj.cycle = obj  # only the cyclic collector can free it
    seen: list[int] = []
    obj.destroyed.connect(lambda *_: seen.append(threading.get_ident()))
    del obj
    collector = threading.Thread(target=gc.collect)
    collector.start()
    collector.join()
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert seen == [threading.get_ident()]
