"""TaskModel: structure (QAbstractItemModelTester), contents against the
manager, batching limits, and a flood of short tasks."""

from __future__ import annotations

from time import perf_counter

import pytest
from PySide6.QtCore import QModelIndex, Qt, QTimer, qInstallMessageHandler
from PySide6.QtTest import QAbstractItemModelTester

from bgtasks import TaskState, current_task
from bgtasks.widgets import TaskModel, format_elapsed

NAME, GROUP, STATE = TaskModel.NameColumn, TaskModel.GroupColumn, TaskModel.StateColumn
PROGRESS, ELAPSED, ERROR = TaskModel.ProgressColumn, TaskModel.ElapsedColumn, TaskModel.ErrorColumn


def model_rows(model: TaskModel) -> dict[int, tuple]:
    """uid -> (state, name, group, error) as the model shows them, checking the tree shape."""
    rows: dict[int, tuple] = {}

    def task_row(row: int, parent: QModelIndex) -> None:
        index = model.index(row, 0, parent)
        uid = index.data(TaskModel.UidRole)
        assert uid is not None and uid not in rows
        state = model.index(row, STATE, parent).data(TaskModel.StateRole)
        assert model.index(row, STATE, parent).data() == state.value
        rows[uid] = (
            state,
            index.data(),
            model.index(row, GROUP, parent).data(TaskModel.GroupRole),
            model.index(row, ERROR, parent).data(),
        )

    top = QModelIndex()
    for row in range(model.rowCount(top)):
        if model.grouped:
            group_index = model.index(row, 0, top)
            assert group_index.data(TaskModel.UidRole) is None
            key = group_index.data(TaskModel.GroupRole)
            assert model.rowCount(group_index) > 0
            for child in range(model.rowCount(group_index)):
                task_row(child, group_index)
                assert model.index(child, 0, group_index).data(TaskModel.GroupRole) == key
        else:
            task_row(row, top)
    return rows


def manager_rows(manager) -> dict[int, tuple]:
    return {
        i.uid: (i.state, i.name, i.group, i.error.splitlines()[0] if i.error else "")
        for i in manager.tasks()
    }


def matches(model: TaskModel, manager) -> bool:
    # the rows, and the per-state counts the model keeps as rows change
    return (
        not model.has_pending()
        and model_rows(model) == manager_rows(manager)
        and model.state_counts() == manager.state_counts()
    )


@pytest.fixture
def model_failures():
    """Messages of QAbstractItemModelTester (Warning mode) that report a failure."""
    failures: list[str] = []

    def handler(mode, context, message):
        if "FAIL" in message or "Inconsistent" in message or context.category == "qt.modeltest":
            failures.append(message)

    previous = qInstallMessageHandler(handler)
    yield failures
    qInstallMessageHandler(previous)


def ok(x):
    current_task().report_progress(1, 2, f"half of {x}")
    return x


def boom():
    raise ValueError("boom went the task")


def block():
    current_task().sleep(30)  # until cancelled


@pytest.mark.parametrize("grouped", [False, True], ids=["flat", "grouped"])
def test_model_follows_the_manager(qtbot, model_failures, make_manager, grouped):
    manager = make_manager(max_threads=4)
    before = [manager.options(name=f"early{i}", group="early").submit(ok, i) for i in range(3)]
    model = TaskModel(manager, grouped=grouped)
    tester = QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Warning)
    assert model_rows(model) == manager_rows(manager)  # read at construction

    handles = [manager.options(name=f"ok{i}", group=f"g{i % 3}").submit(ok, i) for i in range(30)]
    failing = [manager.options(name=f"boom{i}", group="bad").submit(boom) for i in range(3)]
    blocking = [manager.options(name=f"block{i}", group=None).submit(block) for i in range(2)]
    queued = manager.options(name="queued", group="g0", upstream_task_ids=[blocking[0].uid]).submit(
        ok, "never"
    )
    manager.start_processing()
    qtbot.waitUntil(lambda: all(h.done() for h in before + handles + failing), timeout=5000)
    qtbot.waitUntil(lambda: all(h.running() for h in blocking), timeout=5000)
    qtbot.waitUntil(lambda: matches(model, manager), timeout=5000)

    counts = model.state_counts()
    assert (counts[TaskState.FAILED], counts[TaskState.RUNNING], counts[TaskState.PENDING]) == (
        3,
        2,
        1,
    )
    assert counts[TaskState.COMPLETED] == 33
    # the cells
    for h in failing:
        index = model.index_of(h.uid, ERROR)
        assert index.data() == "boom went the task"
        assert "ValueError: boom went the task" in index.data(TaskModel.TracebackRole)
        assert index.data(TaskModel.StateRole) is TaskState.FAILED
    done = model.index_of(handles[0].uid, PROGRESS)
    assert done.data(TaskModel.ProgressRole) == 1.0
    assert done.data() == "100%"
    assert model.index_of(handles[0].uid, 4).data() == "half of 0"  # the message column
    assert model.index_of(blocking[0].uid, ELAPSED).data().endswith(" s")
    assert model.index_of(queued.uid, ELAPSED).data() == ""

    # cancel a running task: it and its downstream end cancelled
    manager.stop_task(blocking[0].uid)
    qtbot.waitUntil(lambda: queued.done() and blocking[0].done(), timeout=5000)
    qtbot.waitUntil(lambda: matches(model, manager), timeout=5000)
    assert model.task_info(queued.uid).state is TaskState.CANCELLED

    # clear the finished: only the running one stays
    assert manager.clear_finished() > 0
    qtbot.waitUntil(lambda: matches(model, manager), timeout=5000)
    assert model.uids() == [blocking[1].uid]
    if grouped:
        assert model.rowCount() == 1 and model.groups() == [None]
    manager.stop_task(blocking[1].uid)
    qtbot.waitUntil(lambda: blocking[1].done(), timeout=5000)

    # new tasks after the clear, in new groups, and a retry
    more = [manager.options(group="late").submit(ok, i) for i in range(5)]
    bad = manager.options(group="late bad").submit(boom)
    qtbot.waitUntil(lambda: all(h.done() for h in more + [bad]), timeout=5000)
    qtbot.waitUntil(lambda: matches(model, manager), timeout=5000)
    manager.retry(bad.uid)
    qtbot.waitUntil(lambda: manager.info(bad.uid).attempts == 2, timeout=5000)
    qtbot.waitUntil(lambda: manager.task_state(bad.uid) is TaskState.FAILED, timeout=5000)
    # The rows match as soon as the model holds the first failure (same state):
    # wait for the second run's end to reach it too.
    qtbot.waitUntil(
        lambda: matches(model, manager) and model.task_info(bad.uid).attempts == 2, timeout=5000
    )
    manager.clear_finished()
    qtbot.waitUntil(lambda: matches(model, manager) and model.rowCount() == 0, timeout=5000)
    assert not model_failures
    del tester


def test_headers_and_roles(qtbot, make_manager):
    manager = make_manager()
    uid = manager.add_task(ok, task_args=(1,), name="one", group=7)
    model = TaskModel(manager)
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers == ["Name", "Group", "State", "Progress", "Message", "Elapsed", "Error"]
    index = model.index(0, NAME)
    assert index.data(TaskModel.UidRole) == uid
    assert index.data() == "one"
    assert model.index(0, GROUP).data() == "7"
    assert model.index(0, STATE).data() == "queued"
    assert model.index(0, PROGRESS).data(TaskModel.ProgressRole) == 0.0
    assert model.index(0, PROGRESS).data() == ""
    assert index.data(TaskModel.InfoRole).uid == uid
    assert model.index_of(uid + 1000).isValid() is False
    assert format_elapsed(0.25) == "0.2 s" or format_elapsed(0.25) == "0.3 s"
    assert format_elapsed(187) == "3:07"
    assert format_elapsed(3723) == "1:02:03"


def test_signals_only_queue_work(qtbot, make_manager):
    """Rows appear at the next pass, not in the signal."""
    manager = make_manager()
    model = TaskModel(manager)
    model.refresh_interval = 10_000  # no pass by itself in this test
    manager.submit(ok, 1)
    qtbot.waitUntil(model.has_pending, timeout=5000)
    assert model.rowCount() == 0
    model.flush()
    assert model.rowCount() == 1 and not model.has_pending()


@pytest.mark.parametrize("grouped", [False, True], ids=["flat", "grouped"])
def test_flood_of_short_tasks(qtbot, make_manager, grouped):
    n = 20_000
    manager = make_manager(max_threads=4)
    manager.keep_finished = n  # nothing forgotten: every task must reach the model
    model = TaskModel(manager, grouped=grouped)
    model.max_items_per_pass = 1500
    gaps = [0.0]
    last = [perf_counter()]

    def tick():
        now = perf_counter()
        gaps[0] = max(gaps[0], now - last[0])
        last[0] = now

    for i in range(n):
        manager.add_task(int, group=i % 5, task_args=(i,), name="t")
    manager.start_processing()
    ticker = QTimer()  # measures the UI thread's stalls from here on (not asserted)
    ticker.setInterval(1)
    ticker.timeout.connect(tick)
    last[0] = perf_counter()
    ticker.start()
    qtbot.waitUntil(
        lambda: (
            len(model.uids()) == n
            and not model.has_pending()
            and all(i.state is TaskState.COMPLETED for i in manager.tasks())
        ),
        timeout=15_000,
    )
    ticker.stop()
    model.flush()
    expected = {uid: TaskState.COMPLETED for uid in (i.uid for i in manager.tasks())}
    assert {uid: model.task_info(uid).state for uid in model.uids()} == expected
    assert model.largest_pass_items <= model.max_items_per_pass
    print(
        f"\n{'grouped' if grouped else 'flat'}: {model.pass_count} passes, largest "
        f"{model.largest_pass_items} tasks / {model.largest_pass_seconds * 1000:.1f} ms, "
        f"largest 1 ms timer gap {gaps[0] * 1000:.1f} ms"
    )
    # clearing them is batched too
    model.largest_pass_items = 0
    manager.clear_finished()
    qtbot.waitUntil(lambda: model.rowCount() == 0 and not model.has_pending(), timeout=10_000)
    assert model.largest_pass_items <= model.max_items_per_pass


def test_tasks_forgotten_before_a_pass(qtbot, model_failures, make_manager):
    """Added and removed between two passes: never a row, nothing pending."""
    manager = make_manager()
    model = TaskModel(manager, grouped=True)
    model.refresh_interval = 60_000  # no pass comes by itself in this test
    tester = QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Warning)
    handles = [manager.options(group=i % 2).submit(ok, i) for i in range(50)]
    manager.start_processing()
    qtbot.waitUntil(lambda: all(h.done() for h in handles), timeout=5000)
    qtbot.waitUntil(model.has_pending, timeout=5000)
    assert model.rowCount() == 0
    assert manager.clear_finished() == 50
    qtbot.waitUntil(lambda: not model.has_pending(), timeout=5000)  # the removals cancel the adds
    assert model.rowCount() == 0 and manager.tasks() == []
    model.flush()
    assert model.rowCount() == 0
    assert not model_failures
    del tester


def test_elapsed_ticks_while_running(qtbot, make_manager):
    manager = make_manager(start_processing=True)
    handle = manager.options(name="long").submit(block)
    model = TaskModel(manager)
    qtbot.waitUntil(lambda: model.task_info(handle.uid) is not None, timeout=5000)
    qtbot.waitUntil(lambda: model.task_info(handle.uid).state is TaskState.RUNNING, timeout=5000)
    first = model.index_of(handle.uid, ELAPSED).data()
    with qtbot.waitSignal(
        model.dataChanged,
        check_params_cb=lambda top, bottom, roles=(): top.column() <= ELAPSED <= bottom.column(),
        timeout=2000,
    ):
        pass
    qtbot.waitUntil(lambda: model.index_of(handle.uid, ELAPSED).data() != first, timeout=5000)
    handle.cancel()
    qtbot.waitUntil(lambda: handle.done() and matches(model, manager), timeout=5000)
    # a finished task's elapsed time no longer moves, and the timer stops
    qtbot.waitUntil(lambda: "pass" not in model.running_timers(), timeout=5000)


def test_group_rows(qtbot, make_manager):
    manager = make_manager()
    for i in range(3):
        manager.options(group="pics").submit(ok, i)
    manager.options(group=None).submit(ok, 9)
    model = TaskModel(manager, grouped=True)
    assert model.groups() == ["pics", None]
    pics, none = model.index(0, NAME), model.index(1, NAME)
    assert (pics.data(), none.data()) == ("pics", "(no group)")
    assert model.index(0, GROUP).data() == "3 tasks"
    assert model.index(0, STATE).data() == "3 queued"
    assert model.index(0, PROGRESS).data() == "0/3"
    assert pics.data(TaskModel.UidRole) is None and pics.data(TaskModel.GroupRole) == "pics"
    assert model.rowCount(pics) == 3 and model.rowCount(model.index(0, 1)) == 0
    # a group's row found by its key (the monitor keeps its rows across views by it)
    assert model.group_index("pics") == pics and model.group_index(None) == none
    assert model.group_index("pics", STATE) == model.index(0, STATE)
    assert not model.group_index("nothing").isValid()
    flat = TaskModel(manager)
    assert not flat.group_index("pics").isValid()  # a flat model has no group rows
    manager.start_processing()
    # the group row's totals follow its task rows in the next batch
    qtbot.waitUntil(
        lambda: matches(model, manager) and model.index(0, PROGRESS).data() == "3/3", timeout=5000
    )
    assert model.index(0, PROGRESS).data(TaskModel.ProgressRole) == 1.0


@pytest.mark.parametrize("grouped", [False, True], ids=["flat", "grouped"])
def test_a_pass_fetches_its_snapshots_with_one_infos_call(qtbot, make_manager, grouped):
    """Inserts and updates of a pass share one ``infos()`` call (one lock wait);
    ``info(uid)`` is never called per task."""
    manager = make_manager()
    model = TaskModel(manager, grouped=grouped)
    model.refresh_interval = 60_000  # passes only when the test asks
    calls: list[list[int]] = []
    real_infos = manager.infos

    def infos(uids):
        uids = list(uids)
        calls.append(uids)
        return real_infos(uids)

    def no_info(uid):
        raise AssertionError("the model fetched one snapshot with info(uid)")

    manager.infos = infos
    manager.info = no_info
    first = [manager.add_task(int, group=i % 3, name=f"a{i}") for i in range(300)]
    qtbot.waitUntil(lambda: len(model.pending().to_add) == 300, timeout=5000)
    model.flush()
    assert len(calls) == 1 and sorted(calls[0]) == first
    assert sorted(model.uids()) == first

    # a forgotten uid is left out by infos(): no row, no error
    calls.clear()
    more = [manager.add_task(int, group=i % 3, name=f"b{i}") for i in range(100)]
    manager.stop_task(first[0])  # dirty: an update in the same pass
    gone = more[-1]
    qtbot.waitUntil(
        lambda: len(model.pending().to_add) == 100 and first[0] in model.pending().to_refresh,
        timeout=5000,
    )
    manager.task_added.emit(10**9, None)  # never registered: infos() leaves it out
    assert 10**9 in model.pending().to_add
    model.flush()
    assert len(calls) == 1
    assert set(calls[0]) >= set(more) | {first[0], 10**9}
    assert model.task_info(first[0]).state is TaskState.CANCELLED
    assert model.task_info(gone) is not None and model.task_info(10**9) is None
    assert not model.has_pending()

    # a budgeted pass still takes at most max_items_per_pass, in one call
    calls.clear()
    model.max_items_per_pass = 50
    for i in range(120):
        manager.add_task(int, name=f"c{i}")
    qtbot.waitUntil(lambda: len(model.pending().to_add) == 120, timeout=5000)
    model.apply_pass()
    assert len(calls) == 1 and len(calls[0]) <= 50
    model.flush()
    assert len(model.uids()) == 520 and not model.has_pending()


@pytest.mark.parametrize("grouped", [False, True], ids=["flat", "grouped"])
def test_multi_data_answers_what_data_answers_and_views_use_it(qtbot, make_manager, grouped):
    from PySide6.QtCore import QModelRoleData, QModelRoleDataSpan
    from PySide6.QtWidgets import QTreeView

    manager = make_manager(start_processing=True)
    done = manager.options(name="done", group="g").submit(ok, 1)
    bad = manager.options(name="bad", group="g").submit(boom)
    qtbot.waitUntil(lambda: done.done() and bad.done(), timeout=5000)
    manager.pause_processing()
    manager.options(name="queued", group=None).submit(ok, 2)
    model = TaskModel(manager, grouped=grouped)
    roles = [int(r) for r in Qt.ItemDataRole if r < Qt.ItemDataRole.UserRole]
    roles += [TaskModel.UidRole, TaskModel.StateRole, TaskModel.ProgressRole,
              TaskModel.TracebackRole, TaskModel.InfoRole, TaskModel.GroupRole,
              TaskModel.SortRole]  # fmt: skip
    indexes = []
    parents = [QModelIndex()]
    while parents:
        parent = parents.pop()
        for row in range(model.rowCount(parent)):
            for col in range(model.columnCount(parent)):
                indexes.append(model.index(row, col, parent))
            parents.append(model.index(row, 0, parent))
    assert len(indexes) == (7 * 5 if grouped else 7 * 3)
    answered = 0
    for index in indexes:
        for role in roles:
            slot = QModelRoleData(role)
            model.multiData(index, QModelRoleDataSpan(slot))
            expected = model.data(index, role)
            assert slot.data() == expected, (index.row(), index.column(), role)
            answered += expected is not None
    assert answered > 60
    # one span reused from cell to cell, as a delegate may: no value carries over
    # (a failed row's red foreground coloured the rows painted after it)
    for role in roles:
        slot = QModelRoleData(role)
        span = QModelRoleDataSpan(slot)
        for index in indexes + indexes[::-1]:
            model.multiData(index, span)
            assert slot.data() == model.data(index, role), (index.row(), index.column(), role)
    slot = QModelRoleData(int(Qt.ItemDataRole.DisplayRole))
    slot.setData("left over")
    model.multiData(QModelIndex(), QModelRoleDataSpan(slot))
    assert slot.data() is None

    # a paint asks once per cell, never once per role
    view = QTreeView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.expandAll()
    view.resize(900, 300)
    view.grab()
    data_calls = []
    data = model.data
    model.data = lambda *args: (data_calls.append(args[1:]), data(*args))[1]
    image = view.grab().toImage()
    assert not image.isNull()
    assert data_calls == []


def _settings(manager):
    from bgtasks.widgets import TaskGraphView, TaskMonitor, TaskStatusIndicator

    return {
        "model": TaskModel(manager),
        "indicator": TaskStatusIndicator(manager),
        "graph": TaskGraphView(manager),
        "monitor": TaskMonitor(manager, grouped=True),
    }


@pytest.mark.parametrize(
    "widget, name, value, message",
    [
        ("model", "pass_budget", float("nan"), "pass_budget must be a non-negative number of seconds, got nan"),
        ("model", "pass_budget", float("inf"), "pass_budget must be a finite number of seconds"),
        ("model", "max_items_per_pass", 0, "max_items_per_pass must be a positive integer, got 0"),
        ("model", "refresh_interval", -5, "refresh_interval must be a positive integer, got -5"),
        ("model", "refresh_interval", 2.5, "refresh_interval must be a positive integer, got 2.5"),
        ("indicator", "refresh_interval", float("nan"), "refresh_interval must be a positive integer, got nan"),
        ("graph", "refresh_interval", 0, "refresh_interval must be a positive integer, got 0"),
        ("model", "shutdown_poll_limit", -1, "shutdown_poll_limit must be a non-negative number of seconds, got -1"),
        # a NaN frame budget never ended a graph refresh's slice; a string
        # limit raised in the monitor's slot at every inserted group
        ("graph", "frame_budget", float("nan"), "frame_budget must be a positive number of seconds, got nan"),
        ("graph", "frame_budget", 0, "frame_budget must be a positive number of seconds, got 0"),
        ("graph", "frame_budget", float("inf"), "frame_budget must be a finite number of seconds"),
        ("graph", "shutdown_poll_limit", float("nan"), "shutdown_poll_limit must be a non-negative number of seconds, got nan"),
        ("indicator", "shutdown_poll_limit", -1, "shutdown_poll_limit must be a non-negative number of seconds, got -1"),
        ("monitor", "auto_expand_limit", "300", "auto_expand_limit must be a non-negative integer, got '300'"),
        ("monitor", "auto_expand_limit", -1, "auto_expand_limit must be a non-negative integer, got -1"),
    ],
)  # fmt: skip
def test_settings_refuse_values_that_would_stall_or_stop_them(
    qtbot, make_manager, widget, name, value, message
):
    """A NaN pass budget was taken: no time is past NaN, so a pass never
    stopped (the UI froze for a whole flood); ``max_items_per_pass = 0`` made
    passes that did nothing, so the model never caught up."""
    obj = _settings(make_manager())[widget]
    before = getattr(obj, name)
    with pytest.raises(ValueError, match=f"^{message}"):
        setattr(obj, name, value)
    assert getattr(obj, name) == before


def test_huge_texts_are_cut_for_cells_and_tooltips_not_for_the_info(qtbot, make_manager):
    """Qt measures and elides a cell's whole text at every paint: 20 rows named
    by 1 MB strings took 5 s a paint (now ~6 ms).  Cells show 500 characters,
    tooltips 5,000; the task's info keeps every character."""
    from bgtasks.widgets._columns import CELL_TEXT, ERROR, GROUP, NAME, TIP_TEXT

    m = make_manager(start_processing=True)
    model = TaskModel(m)
    huge = "n" * 1_000_000

    def task():
        raise ValueError("e" * 1_000_000)

    handle = m.options(name=huge, group="g" * 1_000_000).submit(task)
    assert isinstance(handle.exception(timeout=10), ValueError)  # consulted: not logged
    uid = handle.uid

    def shown_failed():
        info = model.task_info(uid)
        return info is not None and info.state is TaskState.FAILED

    qtbot.waitUntil(shown_failed, timeout=10000)
    row = model.index_of(uid, NAME).row()
    cell = {col: model.index(row, col).data() for col in (NAME, GROUP, ERROR)}
    assert {col: len(text) for col, text in cell.items()} == dict.fromkeys(cell, CELL_TEXT)
    assert all(text.endswith("\u2026") for text in cell.values())
    assert cell[NAME] == "n" * (CELL_TEXT - 1) + "\u2026"
    assert len(model.index(row, ERROR).data(Qt.ItemDataRole.ToolTipRole)) == TIP_TEXT
    info = model.task_info(uid)
    assert info.name == huge and len(info.error) == 1_000_000
    # the sort key (a cache keeps its keys): the first 500 characters count
    from bgtasks.widgets._columns import natural_key

    assert natural_key(huge) == "n" * CELL_TEXT
