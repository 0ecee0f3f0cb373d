"""The window of finished rows (``finished_rows``): a flood costs the views a bounded
number of rows, and every count says what it counts."""

from __future__ import annotations

import pytest
from _held_tasks import hold

from bgtasks import TaskState
from bgtasks.widgets import TaskModel, TaskMonitor, summary_text


def ok(x=None):
    return x


def boom():
    raise ValueError("it broke")


def test_summary_says_how_many_finished_tasks_the_rows_show():
    counts = dict.fromkeys(TaskState, 0)
    counts.update({TaskState.RUNNING: 2, TaskState.COMPLETED: 3017, TaskState.FAILED: 8})
    assert summary_text(counts) == "2 running · 3017 completed · 8 failed"
    assert (
        summary_text(counts, hidden=2025)
        == "2 running · 3017 completed · 8 failed (1000 of 3025 finished shown)"
    )
    assert summary_text(counts, True, 25) == (
        "Shut down · 2 running · 3017 completed · 8 failed (3000 of 3025 finished shown)"
    )


@pytest.mark.parametrize("grouped", [False, True], ids=["flat", "grouped"])
def test_only_the_latest_finished_rows_stay_and_every_task_is_counted(
    qtbot, make_manager, gate, grouped
):
    manager = make_manager(max_threads=1)
    widget = TaskMonitor(manager, grouped=grouped, finished_rows=5)
    qtbot.addWidget(widget)
    model = widget.model
    done = [manager.options(name=f"d{i}", group=i % 3).submit(ok, i) for i in range(20)]
    manager.start_processing()
    qtbot.waitUntil(lambda: all(h.done() for h in done), timeout=5000)
    held = manager.options(name="held", group="live").submit(hold, gate)
    queued = manager.options(name="queued", group="live").submit(ok)
    qtbot.waitUntil(
        lambda: (
            not model.has_pending()
            and model.task_info(held.uid) is not None
            and model.task_info(held.uid).state is TaskState.RUNNING
        ),
        timeout=5000,
    )
    # the 5 that finished last (one thread: in uid order), and every live task
    assert sorted(model.uids()) == sorted([h.uid for h in done[-5:]] + [held.uid, queued.uid])
    assert model.hidden_count() == 15
    assert model.state_counts()[TaskState.COMPLETED] == 5  # rows
    assert model.task_counts()[TaskState.COMPLETED] == 20  # tasks
    qtbot.waitUntil(
        lambda: (
            widget.summary_label.text()
            == "1 running · 1 queued · 20 completed (5 of 20 finished shown)"
        ),
        timeout=5000,
    )
    gate.set()
    qtbot.waitUntil(lambda: queued.done() and not model.has_pending(), timeout=5000)
    qtbot.waitUntil(lambda: model.task_count() == 5 and model.hidden_count() == 17, timeout=5000)
    assert sorted(model.uids()) == sorted([h.uid for h in done[-3:]] + [held.uid, queued.uid])
    # forgotten by the manager: no longer counted
    manager.clear_finished()
    qtbot.waitUntil(lambda: widget.summary_label.text() == "No tasks", timeout=5000)
    assert model.task_count() == 0 and model.hidden_count() == 0
    assert model.task_counts() == dict.fromkeys(TaskState, 0)


def test_a_retried_task_without_a_row_gets_it_back(qtbot, make_manager):
    manager = make_manager(max_threads=1)
    model = TaskModel(manager, finished_rows=2)
    bad = manager.options(name="bad").submit(boom)
    manager.start_processing()
    qtbot.waitUntil(bad.done, timeout=5000)
    assert str(bad.exception()) == "it broke"
    later = [manager.submit(ok, i) for i in range(3)]
    qtbot.waitUntil(lambda: all(h.done() for h in later) and not model.has_pending(), timeout=5000)
    model.flush()
    assert model.task_info(bad.uid) is None and model.hidden_count() == 2
    assert model.task_counts()[TaskState.FAILED] == 1
    again = manager.retry(bad.uid)
    qtbot.waitUntil(lambda: model.task_info(bad.uid) is not None, timeout=5000)
    qtbot.waitUntil(again.done, timeout=5000)
    assert str(again.exception()) == "it broke"
    qtbot.waitUntil(lambda: not model.has_pending(), timeout=5000)
    model.flush()
    # it finished last: it keeps its row, an older one leaves
    assert model.task_info(bad.uid).attempts == 2
    assert model.task_count() == 2 and bad.uid in model.uids()
    assert sum(model.task_counts().values()) == 4


def test_finished_tasks_that_would_leave_at_once_never_get_a_row(qtbot, make_manager):
    manager = make_manager(max_threads=2)
    model = TaskModel(manager, finished_rows=50)
    model.refresh_interval = 60_000  # passes only when the test asks
    inserted: list[int] = []
    removed: list[int] = []
    model.rowsInserted.connect(lambda parent, first, last: inserted.append(last - first + 1))
    model.rowsRemoved.connect(lambda parent, first, last: removed.append(last - first + 1))
    fetched: list[int] = []
    infos = manager.infos
    manager.infos = lambda uids: fetched.extend(uids) or infos(uids)
    handles = [manager.submit(ok, i) for i in range(300)]
    manager.start_processing()
    with qtbot.waitSignal(manager.task_group_finished, timeout=5000):
        pass  # every task ended, and the drain delivered every state change before it
    assert all(h.done() for h in handles)
    assert len(model.pending().to_add) == 300
    model.flush()
    assert sum(inserted) == 50 and removed == []
    # the states came with the signals: the 250 that leave at once were never read
    assert sorted(fetched) == [h.uid for h in handles[-50:]]
    assert model.uids() == [h.uid for h in handles[-50:]]
    assert model.hidden_count() == 250
    assert model.task_counts()[TaskState.COMPLETED] == 300


def test_finished_rows_is_checked_and_a_refused_value_changes_nothing(qtbot, make_manager):
    manager = make_manager()
    with pytest.raises(ValueError) as err:
        TaskModel(manager, finished_rows=-1)
    assert str(err.value) == "finished_rows must be a non-negative integer or None, got -1"
    model = TaskModel(manager, finished_rows=10)
    for bad in (-5, 2.5, "10", True):
        with pytest.raises(ValueError) as err:
            model.finished_rows = bad
        assert str(err.value) == (
            f"finished_rows must be a non-negative integer or None, got {bad!r}"
        )
        assert model.finished_rows == 10
    model.finished_rows = None
    assert model.finished_rows is None
    with pytest.raises(ValueError):
        TaskMonitor(manager, finished_rows=-1)


def test_a_smaller_window_trims_at_the_next_pass(qtbot, make_manager):
    manager = make_manager()
    model = TaskModel(manager)  # every row, as before
    handles = [manager.submit(ok, i) for i in range(30)]
    manager.start_processing()
    qtbot.waitUntil(lambda: all(h.done() for h in handles), timeout=5000)
    qtbot.waitUntil(lambda: model.task_count() == 30 and not model.has_pending(), timeout=5000)
    model.finished_rows = 4
    qtbot.waitUntil(lambda: model.task_count() == 4 and not model.has_pending(), timeout=5000)
    assert model.hidden_count() == 26
    assert model.uids() == [h.uid for h in handles[-4:]]
