"""Group names: set_group_name, group_name and group_renamed (Qt layer)."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import SIGNAL, QThread

from bgtasks import BackgroundTaskManager


def ok(x=None):
    return x


class Renames:
    """Records group_renamed with the thread each one arrived on."""

    def __init__(self, manager: BackgroundTaskManager) -> None:
        self.events: list[tuple[object, str]] = []
        self.threads: set[object] = set()
        manager.group_renamed.connect(self._renamed)

    def _renamed(self, group: object, name: str) -> None:
        self.threads.add(QThread.currentThread())
        self.events.append((group, name))


def listeners(manager: BackgroundTaskManager) -> tuple[int, int]:
    """How many slots task_added and task_removed have."""
    return (
        manager.receivers(SIGNAL("task_added(PyObject,PyObject)")),
        manager.receivers(SIGNAL("task_removed(PyObject,PyObject)")),
    )


def test_a_group_is_shown_by_its_name_else_by_str(qtbot, make_manager):
    manager = make_manager()
    renames = Renames(manager)
    assert manager.group_name(7) == "7"
    assert manager.group_name(None) == "None"
    manager.set_group_name(7, "Import photos")
    assert manager.group_name(7) == "Import photos"
    assert manager.group_names() == {7: "Import photos"}
    manager.set_group_name(7, "Import photos")  # no change: no signal
    manager.set_group_name(None, "loose tasks")
    manager.set_group_name(7, "")  # clears
    assert manager.group_name(7) == "7"
    assert manager.group_name(None) == "loose tasks"
    manager.set_group_name("never named", "")  # nothing to clear: no signal
    assert renames.events == [(7, "Import photos"), (None, "loose tasks"), (7, "")]
    assert renames.threads == {QThread.currentThread()}
    assert manager.group_name([1, 2]) == "[1, 2]"  # unhashable: never named


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["a"]])
def test_a_name_that_is_not_a_str_is_refused_and_changes_nothing(qtbot, make_manager, bad):
    manager = make_manager()
    renames = Renames(manager)
    manager.set_group_name("g", "kept")
    with pytest.raises(TypeError) as err:
        manager.set_group_name("g", bad)
    assert str(err.value) == f"name must be a str, got {bad!r}"
    assert manager.group_name("g") == "kept"
    assert renames.events == [("g", "kept")]


def test_an_unhashable_group_is_refused(qtbot, make_manager):
    manager = make_manager()
    with pytest.raises(TypeError) as err:
        manager.set_group_name(["a"], "x")
    assert str(err.value) == "group must be hashable, got ['a']"
    assert manager.group_names() == {}


def test_set_group_name_off_the_manager_thread_is_refused(qtbot, make_manager):
    manager = make_manager()
    errors: list[BaseException] = []

    def other() -> None:
        try:
            manager.set_group_name("g", "x")
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(10)
    assert len(errors) == 1
    assert str(errors[0]).startswith("set_group_name must be called on the manager's thread")
    assert manager.group_names() == {}
    # group_name may be read anywhere
    manager.set_group_name("g", "x")
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.append(manager.group_name("g")))
    reader.start()
    reader.join(10)
    assert seen == ["x"]


def test_the_name_goes_when_the_manager_forgets_the_groups_tasks(qtbot, make_manager):
    manager = make_manager(start_processing=True)
    renames = Renames(manager)
    assert listeners(manager) == (0, 0)
    for i in range(2):
        manager.add_task(ok, group="a", task_args=[i])
    manager.set_group_name("a", "first")  # the group has tasks already
    manager.set_group_name("b", "second")  # named before its tasks come
    for i in range(2):
        manager.add_task(ok, group="b", task_args=[i])
    manager.add_task(ok, group="a")
    qtbot.waitUntil(lambda: len(manager.tasks()) == 5, timeout=5000)
    qtbot.waitUntil(lambda: all(i.state.is_terminal for i in manager.tasks()), timeout=5000)
    assert manager.group_names() == {"a": "first", "b": "second"}
    assert listeners(manager) == (1, 1)
    with qtbot.waitSignal(manager.group_renamed, timeout=5000):
        manager.clear_finished()
    qtbot.waitUntil(lambda: manager.group_names() == {}, timeout=5000)
    assert sorted(renames.events[2:], key=repr) == [("a", ""), ("b", "")]
    assert manager.group_name("a") == "a"
    # no name left: the manager no longer listens to its own add/remove signals
    assert listeners(manager) == (0, 0)


def test_names_do_not_grow_without_bound(qtbot, make_manager):
    # keep_finished forgets old tasks; their groups' names go with them
    manager = make_manager(start_processing=True)
    manager.keep_finished = 10
    for round_ in range(30):
        group = manager.next_group_id()
        manager.set_group_name(group, f"batch {round_}")
        handles = [manager.options(group=group).submit(ok, i) for i in range(5)]
        qtbot.waitUntil(lambda hs=handles: all(h.done() for h in hs), timeout=5000)
    qtbot.waitUntil(lambda: len(manager.group_names()) <= 3, timeout=5000)
    groups = {info.group for info in manager.tasks()}
    assert set(manager.group_names()) <= groups  # only groups with a registered task


def test_a_name_survives_while_one_task_of_its_group_remains(qtbot, make_manager):
    manager = make_manager()
    manager.set_group_name("g", "kept")
    stays = manager.options(group="g").submit(ok)  # never started: never finishes
    other = manager.options(group="g").submit(ok)
    other.cancel()
    qtbot.waitUntil(lambda: manager.task_state(other.uid).is_terminal, timeout=5000)
    renames = Renames(manager)
    with qtbot.waitSignal(
        manager.task_removed, timeout=5000, check_params_cb=lambda uid, group: uid == other.uid
    ):
        manager.clear_finished()
    assert [i.uid for i in manager.tasks()] == [stays.uid]
    assert renames.events == []
    assert manager.group_name("g") == "kept"
