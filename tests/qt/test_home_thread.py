"""A manager is destroyed on its own thread, whichever thread drops it.

The last reference to a manager can die on any thread: the cyclic garbage
collector runs on whichever thread happens to allocate, and a worker, a Dask
thread or a timer can hold the last reference for a moment.  Qt objects must
be destroyed on their own thread: destroyed elsewhere, the ``destroyed``
signal and the drain's wake-ups are posted to the dying object itself, and
the UI thread delivering one of them at the same moment wrote through a null
pointer in ``QObject::event`` (a core dump under load, issue 11).
"""

from __future__ import annotations

import gc
import threading

from bgtasks import BackgroundTaskManager

WAIT_MS = 5000


def _record_destruction(manager: BackgroundTaskManager) -> list[int]:
    """The ident of the thread the manager's ``destroyed`` arrives on."""
    seen: list[int] = []
    manager.destroyed.connect(lambda *_: seen.append(threading.get_ident()))
    return seen


def _on_a_worker_thread(fn) -> None:
    thread = threading.Thread(target=fn)
    thread.start()
    thread.join()


def test_a_manager_collected_on_a_worker_thread_is_destroyed_on_its_own(qtbot):
    manager = BackgroundTaskManager(start_processing=True)
    manager.cycle = manager  # only the cyclic collector can free it
    with qtbot.waitSignal(manager.task_completed, timeout=WAIT_MS):
        manager.add_task(int)
    seen = _record_destruction(manager)
    del manager
    _on_a_worker_thread(gc.collect)
    qtbot.waitUntil(lambda: bool(seen), timeout=WAIT_MS)
    assert seen == [threading.get_ident()]


def test_a_manager_whose_last_reference_dies_on_a_worker_is_destroyed_on_its_own(qtbot):
    holder = [BackgroundTaskManager(start_processing=True)]
    seen = _record_destruction(holder[0])
    _on_a_worker_thread(holder.clear)
    qtbot.waitUntil(lambda: bool(seen), timeout=WAIT_MS)
    assert seen == [threading.get_ident()]


def test_a_manager_dropped_on_a_worker_while_wake_ups_are_posted_does_not_crash(qtbot):
    # The crash needed the UI thread to deliver an event posted to the dying
    # manager while another thread destroyed it: many rounds of both at once.
    for _ in range(30):
        holder = [BackgroundTaskManager(start_processing=True)]
        for _ in range(20):
            holder[0].add_task(int)
        seen = _record_destruction(holder[0])
        thread = threading.Thread(target=holder.clear)
        thread.start()
        qtbot.waitUntil(lambda seen=seen: bool(seen), timeout=WAIT_MS)
        thread.join()
        assert seen == [threading.get_ident()]
