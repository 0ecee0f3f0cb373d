"""Text a person must read has a contrast of at least 4.5:1 (WCAG 2, level AA).

The monitor's state colours are checked against the view's base and alternate
row colours; the status indicator's "Idle" against its window colour.
"""

from __future__ import annotations

import threading

from _held_tasks import wait_states
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QTableView

from bgtasks import TaskState
from bgtasks.widgets import TaskModel, TaskStatusIndicator


def _luminance(c: QColor) -> float:
    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())


def contrast(fg: QColor, bg: QColor) -> float:
    light, dark = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_contrast_formula() -> None:
    assert abs(contrast(QColor("black"), QColor("white")) - 21) < 1e-9
    assert abs(contrast(QColor("#777777"), QColor("white")) - 4.48) < 0.01


def _stubborn(started: threading.Event, release: threading.Event) -> None:
    started.set()
    release.wait(10)  # ignores the stop request: stays CANCELLING until released


def _boom() -> None:
    raise ValueError("boom")


def test_state_colours_read_on_the_rows_of_a_table(qtbot, make_manager) -> None:
    m = make_manager(start_processing=True)
    started, release, gate = threading.Event(), threading.Event(), threading.Event()
    m.task_failed.connect(lambda *_: None)  # heard: not logged as unobserved
    failed = m.add_task(_boom)
    cancelled = m.add_task(gate.wait, priority=-1, task_args=(10,))
    m.stop_task(cancelled)
    stubborn = m.add_task(_stubborn, task_args=(started, release))
    assert started.wait(10)
    m.stop_task(stubborn)
    wait_states(qtbot, m, [failed], TaskState.FAILED)
    wait_states(qtbot, m, [cancelled], TaskState.CANCELLED)
    wait_states(qtbot, m, [stubborn], TaskState.CANCELLING)
    model = TaskModel(m)
    view = QTableView()
    view.setModel(model)
    view.setAlternatingRowColors(True)
    palette = view.palette()
    backgrounds = [
        palette.color(QPalette.ColorRole.Base),
        palette.color(QPalette.ColorRole.AlternateBase),
    ]

    def state_colour(uid: int) -> QColor:
        for row in range(model.rowCount()):
            index = model.index(row, 0)
            if model.data(index, TaskModel.UidRole) == uid:
                brush = model.data(index, Qt.ItemDataRole.ForegroundRole)
                assert brush is not None, f"task {uid} has no state colour"
                return brush.color()
        raise AssertionError(f"task {uid} has no row")

    qtbot.waitUntil(lambda: model.rowCount() >= 3)
    try:
        low = [
            f"{state.name}: {state_colour(uid).name()} on {bg.name()} = {contrast(state_colour(uid), bg):.2f}"
            for state, uid in (
                (TaskState.FAILED, failed),
                (TaskState.CANCELLED, cancelled),
                (TaskState.CANCELLING, stubborn),
            )
            for bg in backgrounds
            if contrast(state_colour(uid), bg) < 4.5
        ]
        assert low == []
    finally:
        release.set()
        gate.set()


def test_the_indicator_reads_idle_in_a_readable_colour(qtbot, make_manager) -> None:
    m = make_manager(start_processing=True)
    indicator = TaskStatusIndicator(m)
    qtbot.addWidget(indicator)
    indicator.show()
    qtbot.waitUntil(lambda: indicator.text() == "Idle")
    label = next(w for w in indicator.findChildren(QLabel) if w.text() == "Idle")
    group = QPalette.ColorGroup.Active if label.isEnabled() else QPalette.ColorGroup.Disabled
    fg = label.palette().color(group, label.foregroundRole())
    bg = label.palette().color(group, QPalette.ColorRole.Window)
    assert contrast(fg, bg) >= 4.5, f"{fg.name()} on {bg.name()}"
