"""The Pipeline tab's widgets and how they show a ``Run`` (no task logic here).

Laid out for a window 1280 px wide with the task monitor docked beside it
(about 760 px): the controls on one row, the run's status on the next, the
groups table and the chain one above the other, the event log and the
failures in tabs below.  Every count says what it counts: the bar and the
status line count the *pipeline's* tasks, the groups table each group's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .run import Run
from .workload import CHAIN_LENGTH, GROUPS, TaskSpec, build_workload, expected_chain_result

MAX_LOG_ROWS = 400

#: Background colours of the chain's boxes, by what we know of the task.
STATE_COLOURS = {
    "waiting": "#e0e0e0",
    "running": "#9ecbff",
    "completed": "#8fd19e",
    "failed": "#f28b82",
    "stopped": "#9e9e9e",
}
#: Text colours; each has a contrast of at least 4.5:1 on the window and on a table.
FAILED_TEXT = QColor("#b3261e")
CASCADE_TEXT = QColor("#8a5a00")  # failed because an upstream task failed
FINISHED_TEXT = QColor("#1b5e20")
GROUP_HEADERS = (
    "Group",
    "Tasks",
    "Waiting",
    "Running",
    "Completed",
    "Failed",
    "Stopped",
    "Progress",
    "Status",
)


@dataclass
class GroupRow:
    """The widgets of one line of the groups table."""

    tasks: QLabel
    waiting: QLabel
    running: QLabel
    completed: QLabel
    failed: QLabel
    stopped: QLabel
    progress: QProgressBar
    status: QLabel


def set_text_colour(label: QLabel, colour: QColor | None) -> None:
    """Colour a label's text through its palette (None: the default colour)."""
    palette = label.parentWidget().palette() if label.parentWidget() else QPalette()
    if colour is not None:
        palette.setColor(QPalette.ColorRole.WindowText, colour)
    label.setPalette(palette)


class PipelineTab(QWidget):
    """The controls, counts, chain, event log and failures of the pipeline."""

    def __init__(self, seed: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        root = QVBoxLayout(self)
        root.addLayout(self._build_controls())
        self.status_label = QLabel()
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.status_label.setAccessibleName("Pipeline run status")
        root.addWidget(self.status_label)
        self.overall = QProgressBar()
        self.overall.setFormat("%v / %m pipeline tasks ended")
        self.overall.setAccessibleName("Pipeline tasks ended")
        root.addWidget(self.overall)
        root.addWidget(self._build_groups_box())
        root.addWidget(self._build_chain_box(seed))
        self.bottom_tabs = QTabWidget()
        self.log_table = _table(("t (s)", "Task", "Group", "Event"))
        self.failures_table = _table(("Task", "Cause", "Error"))
        self.bottom_tabs.addTab(self.log_table, "Recent events (newest first)")
        self.bottom_tabs.addTab(self.failures_table, "Failed pipeline tasks (0)")
        root.addWidget(self.bottom_tabs, 1)

    # ------------------------------------------------------------------ building

    # Mnemonics (Alt+letter): none of the dock's monitor's (G, S, F, C, R, L, Y, T).
    def _build_controls(self) -> QHBoxLayout:
        controls = QHBoxLayout()
        self.pause_button = QPushButton("Pa&use")
        self.group_combo = QComboBox()
        self.group_combo.addItems(GROUPS)
        self.group_combo.setAccessibleName("Group to stop")
        self.stop_button = QPushButton("Stop gr&oup")
        self.restart_button = QPushButton("R&estart")
        self.retry_button = QPushButton("Retry fa&iled")
        self.retry_button.setToolTip("Run the failed tasks of this run again")
        for widget in (self.pause_button, self.group_combo, self.stop_button):
            controls.addWidget(widget)
        controls.addSpacing(12)
        controls.addWidget(self.restart_button)
        controls.addWidget(self.retry_button)
        controls.addStretch(1)
        return controls

    def _build_groups_box(self) -> QGroupBox:
        box = QGroupBox("Pipeline groups (tasks of this run)")
        grid = QGridLayout(box)
        for col, text in enumerate(GROUP_HEADERS):
            label = QLabel(text)
            font = label.font()
            font.setBold(True)
            label.setFont(font)
            grid.addWidget(label, 0, col)
        self.rows: dict[str, GroupRow] = {}
        for r, name in enumerate(GROUPS, start=1):
            grid.addWidget(QLabel(name), r, 0)
            labels = [QLabel("0") for _ in range(6)]
            for col, label in enumerate(labels, start=1):
                label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                grid.addWidget(label, r, col)
            progress = QProgressBar()
            progress.setMinimumWidth(90)
            progress.setAccessibleName(f"{name}: tasks ended")
            status = QLabel()
            status.setMinimumWidth(status.fontMetrics().horizontalAdvance("finished") + 4)
            grid.addWidget(progress, r, 7)
            grid.addWidget(status, r, 8)
            self.rows[name] = GroupRow(*labels, progress, status)
        grid.setColumnStretch(7, 1)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(2)
        return box

    def _build_chain_box(self, seed: int) -> QGroupBox:
        box = QGroupBox(f"Chain: {CHAIN_LENGTH} steps pass a dict along, then a fan-in")
        layout = QVBoxLayout(box)
        boxes = QHBoxLayout()
        boxes.setSpacing(4)
        self.chain_boxes: dict[str, QLabel] = {}
        for spec in build_workload(seed):
            if spec.group != "chain":
                continue
            if spec.key == "chain/checksum":
                boxes.addWidget(QLabel("+"))
            if spec.key == "chain/fan-in":
                boxes.addWidget(QLabel("→"))
            label = QLabel(spec.label.replace("step ", ""))
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setMinimumSize(26, 22)
            label.setToolTip(spec.key)
            self.chain_boxes[spec.key] = label
            boxes.addWidget(label)
        boxes.addStretch(1)
        layout.addLayout(boxes)
        line = QHBoxLayout()
        self.chain_progress = QLabel()
        line.addWidget(self.chain_progress)
        line.addStretch(1)
        legend = "  ".join(
            f'<span style="background-color:{colour}">&nbsp;&nbsp;&nbsp;</span> {state}'
            for state, colour in STATE_COLOURS.items()
        )
        line.addWidget(QLabel(legend))
        layout.addLayout(line)
        self.chain_result_label = QLabel()
        self.chain_result_label.setTextFormat(Qt.TextFormat.PlainText)
        self.chain_result_label.setWordWrap(True)
        self.chain_result_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        layout.addWidget(self.chain_result_label)
        return box

    # ------------------------------------------------------------------ display

    def show_run(self, run: Run, paused: bool) -> None:
        """Every count, the status line and the chain's text."""
        for name in GROUPS:
            self.show_group(run, name, paused)
        totals = run.totals()
        self.overall.setRange(0, len(run.spec_by_uid))
        self.overall.setValue(sum(totals.values()))
        summary = " · ".join(f"{totals[o]} {o}" for o in ("completed", "failed", "stopped"))
        total = len(run.spec_by_uid)
        if run.finished_at is not None:
            state = f"all {total} pipeline tasks ended in {run.elapsed:.1f} s"
        else:
            state = f"{'paused' if paused else 'running'} for {run.elapsed:.1f} s"
        self.status_label.setText(f"Run {run.number}: {state} · {summary}")
        self._show_chain_text(run)

    def show_group(self, run: Run, name: str, paused: bool) -> None:
        """One line of the groups table."""
        row, ended, total = self.rows[name], run.ended[name], run.submitted[name]
        row.tasks.setText(str(total))
        row.completed.setText(str(ended["completed"]))
        row.failed.setText(str(ended["failed"]))
        row.stopped.setText(str(ended["stopped"]))
        set_text_colour(row.failed, FAILED_TEXT if ended["failed"] else None)
        font = row.failed.font()
        font.setBold(bool(ended["failed"]))
        row.failed.setFont(font)
        row.progress.setRange(0, total)
        row.progress.setValue(sum(ended.values()))
        if run.group_finished[name]:
            row.status.setText("finished")
        elif sum(ended.values()) == total:
            row.status.setText("stopped")
        else:
            row.status.setText("paused" if paused else "running")

    def show_waiting(self, waiting: dict[str, int], running: dict[str, int]) -> None:
        """The Waiting and Running columns."""
        for name, row in self.rows.items():
            row.waiting.setText(str(waiting.get(name, 0)))
            row.running.setText(str(running.get(name, 0)))

    def _show_chain_text(self, run: Run) -> None:
        steps = [k for k in run.uid_by_key if k.startswith("chain/step")]
        done = sum(run.outcome.get(run.uid_by_key[k]) == "completed" for k in steps)
        self.chain_progress.setText(f"Steps completed: {done} / {len(steps)}")
        result = run.chain_result
        if result is None:
            fan_in = run.outcome.get(run.uid_by_key["chain/fan-in"])
            self.chain_result_label.setText(f"Fan-in result: {fan_in or 'not yet'}")
            set_text_colour(self.chain_result_label, None)
            return
        ok = result == expected_chain_result()
        trail = "→".join(str(step) for step in result.get("trail", ()))
        self.chain_result_label.setText(
            f"Fan-in result {'✔ as expected' if ok else '✘ unexpected'}: "
            f"total = {result.get('total')} · trail = {trail} · "
            f"checksum = {result.get('checksum')} · label = {result.get('label')}"
        )
        set_text_colour(self.chain_result_label, FINISHED_TEXT if ok else FAILED_TEXT)

    def set_chain_box(self, spec: TaskSpec, state: str) -> None:
        """Colour a chain task's box by its state."""
        box = self.chain_boxes.get(spec.key)
        if box is not None:
            box.setStyleSheet(
                f"background: {STATE_COLOURS[state]}; color: black; border: 1px solid #777;"
                " border-radius: 3px; padding: 0 5px"
            )

    def log(self, elapsed: str, task: str, group: str, text: str, colour: QColor | None) -> None:
        """A line at the top of the event log."""
        table = self.log_table
        table.insertRow(0)
        for col, value in enumerate((elapsed, task, group, text)):
            item = QTableWidgetItem(value)
            item.setToolTip(value)
            if colour is not None:
                item.setForeground(QBrush(colour))
            table.setItem(0, col, item)
        if table.rowCount() > MAX_LOG_ROWS:
            table.removeRow(table.rowCount() - 1)

    def add_failure(self, label: str, cause: str, message: str, traceback: str, cascade: bool):
        """A line of the failures table (its tool tip: the traceback)."""
        table = self.failures_table
        row = table.rowCount()
        table.insertRow(row)
        for col, text in enumerate((label, cause, message)):
            item = QTableWidgetItem(text)
            item.setToolTip(traceback)
            item.setForeground(QBrush(CASCADE_TEXT if cascade else FAILED_TEXT))
            table.setItem(row, col, item)
        self._count_failures()

    def clear(self) -> None:
        """Empty the event log and the failures table."""
        self.log_table.setRowCount(0)
        self.clear_failures()

    def clear_failures(self) -> None:
        """Empty the failures table."""
        self.failures_table.setRowCount(0)
        self._count_failures()

    def _count_failures(self) -> None:
        index = self.bottom_tabs.indexOf(self.failures_table)
        self.bottom_tabs.setTabText(
            index, f"Failed pipeline tasks ({self.failures_table.rowCount()})"
        )

    def shown_counts(self, name: str) -> dict[str, int]:
        """The numbers the groups table shows for ``name``."""
        row = self.rows[name]
        return {
            field: int(getattr(row, field).text())
            for field in ("tasks", "waiting", "running", "completed", "failed", "stopped")
        }


def _table(headers: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 4)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setWordWrap(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    return table


def short(value: Any, limit: int = 70) -> str:
    """A one-line text of a task's result, at most ``limit`` characters."""
    if isinstance(value, dict):
        text = ", ".join(f"{key}={item!r}" for key, item in value.items())
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
