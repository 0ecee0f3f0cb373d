"""The demo's main window: submits the workload and shows its outcome live."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QCloseEvent, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from bgtasks import BackgroundTaskManager, TaskState

from .workload import CHAIN_LENGTH, GROUPS, TaskSpec, build_workload, expected_chain_result

MAX_LOG_ROWS = 400
POLL_MS = 100

#: Background colours of the chain's boxes, by what we know of the task.
STATE_COLOURS = {
    "waiting": "#e0e0e0",
    "running": "#9ecbff",
    "completed": "#8fd19e",
    "failed": "#f28b82",
    "stopped": "#9e9e9e",
}
FAILED_TEXT = QColor("#b3261e")
CASCADE_TEXT = QColor("#8a5a00")  # failed because an upstream task failed
FINISHED_TEXT = QColor("#1e7d32")
WAITING = (TaskState.PENDING, TaskState.QUEUED)
STOPPED = (TaskState.CANCELLING, TaskState.CANCELLED)  # a stopped task never reports


class Run:
    """Bookkeeping for one submission of the workload (no Qt)."""

    def __init__(self, number: int, specs: list[TaskSpec], group_ids: dict[str, Hashable]):
        self.number = number
        self.group_ids = group_ids
        self.group_names = {gid: name for name, gid in group_ids.items()}
        self.uid_by_key: dict[str, int] = {}
        self.spec_by_uid: dict[int, TaskSpec] = {}
        self.outstanding: set[int] = set()  # submitted, end not yet seen
        self.outcome: dict[int, str] = {}  # uid -> "completed" | "failed" | "stopped"
        self.submitted: Counter[str] = Counter()  # per group name
        self.ended: dict[str, Counter[str]] = {name: Counter() for name in GROUPS}
        self.group_finished: Counter[str] = Counter()
        self.chain_result: dict[str, Any] | None = None
        self.started = time.perf_counter()
        self.finished_at: float | None = None

    def add(self, uid: int, spec: TaskSpec) -> None:
        self.uid_by_key[spec.key] = uid
        self.spec_by_uid[uid] = spec
        self.outstanding.add(uid)
        self.submitted[spec.group] += 1

    def end(self, uid: int, outcome: str) -> TaskSpec | None:
        """Record a task's end; None if it is not this run's or already ended."""
        if uid not in self.outstanding:
            return None
        self.outstanding.discard(uid)
        self.outcome[uid] = outcome
        spec = self.spec_by_uid[uid]
        self.ended[spec.group][outcome] += 1
        return spec

    def totals(self) -> Counter[str]:
        return sum(self.ended.values(), Counter())

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.perf_counter()) - self.started


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


class DemoWindow(QMainWindow):
    """Submits ~300 tasks on start and shows how they end."""

    #: Every task of the current run has ended (completed, failed or stopped).
    run_finished = Signal()

    def __init__(self, seed: int = 0, max_threads: int = 4, parent: QWidget | None = None):
        super().__init__(parent)
        self.seed = seed
        self.setWindowTitle("bgtasks demo")
        self.manager = BackgroundTaskManager(self, max_threads=max_threads)
        self.manager.task_completed.connect(self._on_completed)
        self.manager.task_failed.connect(self._on_failed)
        self.manager.task_group_finished.connect(self._on_group_finished)
        self.run: Run | None = None
        self.paused = False

        self._build_ui()
        self._poll_timer = QTimer(self, interval=POLL_MS)
        self._poll_timer.timeout.connect(self._poll)
        self.resize(1100, 760)
        self.restart()

    # ------------------------------------------------------------------ layout

    def _build_ui(self) -> None:
        central = QWidget()
        root = QVBoxLayout(central)

        # Controls and overall progress.
        controls = QHBoxLayout()
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.group_combo = QComboBox()
        self.group_combo.addItems(GROUPS)
        self.stop_button = QPushButton("Stop group")
        self.stop_button.clicked.connect(self.stop_selected_group)
        self.restart_button = QPushButton("Restart")
        self.restart_button.clicked.connect(self.restart)
        for widget in (self.pause_button, self.group_combo, self.stop_button):
            controls.addWidget(widget)
        controls.addSpacing(12)
        controls.addWidget(self.restart_button)
        controls.addSpacing(12)
        self.status_label = QLabel()
        controls.addWidget(self.status_label, 1)
        root.addLayout(controls)

        self.overall = QProgressBar()
        self.overall.setFormat("%v / %m tasks ended")
        root.addWidget(self.overall)

        # Groups table and chain side by side.
        top = QHBoxLayout()
        top.addWidget(self._build_groups_box(), 3)
        top.addWidget(self._build_chain_box(), 2)
        root.addLayout(top)

        # Event log and failures.
        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.log_table = self._table(("t (s)", "Task", "Group", "Event"))
        self.failures_table = self._table(("Task", "Cause", "Error"))
        splitter.addWidget(self._boxed("Recent events (newest first)", self.log_table))
        splitter.addWidget(self._boxed("Failures", self.failures_table))
        splitter.setSizes([500, 600])
        root.addWidget(splitter, 1)

        self.setCentralWidget(central)

    def _build_groups_box(self) -> QGroupBox:
        box = QGroupBox("Groups")
        grid = QGridLayout(box)
        headers = (
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
        for col, text in enumerate(headers):
            label = QLabel(f"<b>{text}</b>")
            grid.addWidget(label, 0, col)
        self.rows: dict[str, GroupRow] = {}
        for r, name in enumerate(GROUPS, start=1):
            grid.addWidget(QLabel(name), r, 0)
            labels = [QLabel("0") for _ in range(6)]
            for col, label in enumerate(labels, start=1):
                label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                grid.addWidget(label, r, col)
            progress = QProgressBar()
            progress.setMinimumWidth(140)
            status = QLabel()
            grid.addWidget(progress, r, 7)
            grid.addWidget(status, r, 8)
            self.rows[name] = GroupRow(*labels, progress, status)
        grid.setColumnStretch(7, 1)
        grid.setRowStretch(len(GROUPS) + 1, 1)
        grid.setHorizontalSpacing(14)
        return box

    def _build_chain_box(self) -> QGroupBox:
        box = QGroupBox("Chain: 10 steps passing a dict along, then a fan-in")
        layout = QVBoxLayout(box)
        steps, fan_in = QHBoxLayout(), QHBoxLayout()
        steps.setSpacing(4)
        fan_in.setSpacing(4)
        fan_in.addWidget(QLabel(f"step {CHAIN_LENGTH} +"))
        self.chain_boxes: dict[str, QLabel] = {}
        for spec in build_workload(self.seed):
            if spec.group != "chain":
                continue
            if spec.key == "chain/fan-in":
                fan_in.addWidget(QLabel("→"))
            label = QLabel(spec.label.replace("step ", ""))
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setMinimumSize(26, 26)
            label.setToolTip(spec.key)
            self.chain_boxes[spec.key] = label
            (steps if spec.key.startswith("chain/step") else fan_in).addWidget(label)
        steps.addStretch(1)
        fan_in.addStretch(1)
        layout.addLayout(steps)
        layout.addLayout(fan_in)
        self.chain_progress = QLabel()
        self.chain_result_label = QLabel()
        self.chain_result_label.setWordWrap(True)
        self.chain_result_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        layout.addWidget(self.chain_progress)
        layout.addWidget(self.chain_result_label)
        legend = "  ".join(
            f'<span style="background-color:{colour}">&nbsp;&nbsp;&nbsp;</span> {state}'
            for state, colour in STATE_COLOURS.items()
        )
        layout.addWidget(QLabel(legend))
        layout.addStretch(1)
        return box

    @staticmethod
    def _table(headers: tuple[str, ...]) -> QTableWidget:
        table = QTableWidget(0, len(headers))
        table.setHorizontalHeaderLabels(headers)
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(20)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        return table

    @staticmethod
    def _boxed(title: str, widget: QWidget) -> QGroupBox:
        box = QGroupBox(title)
        QVBoxLayout(box).addWidget(widget)
        return box

    # ------------------------------------------------------------------ actions

    def restart(self) -> None:
        """Stop whatever is left of the current run and submit the workload again."""
        old = self.run
        if old is not None and old.outstanding:
            # Late reports of the old run are ignored: its uids are not in the new run.
            self.manager.stop_all_tasks()
        number = old.number + 1 if old else 1
        specs = build_workload(self.seed)
        group_ids = {name: self.manager.next_group_id() for name in GROUPS}
        run = self.run = Run(number, specs, group_ids)

        # Submit everything before dispatching, so no group can empty half-way.
        self.manager.pause_processing()
        for spec in specs:
            upstream = [run.uid_by_key[key] for key in spec.upstream]
            gid = group_ids[spec.group]
            if spec.fn is None:
                uid = self.manager.add_pass_through_task(
                    spec.priority, gid, upstream, task_kwargs=spec.kwargs
                )
            else:
                uid = self.manager.add_task(
                    spec.fn, spec.priority, gid, upstream, task_kwargs=spec.kwargs
                )
            run.add(uid, spec)
        if not self.paused:
            self.manager.start_processing()

        self.log_table.setRowCount(0)
        self.failures_table.setRowCount(0)
        for spec in specs:
            self._set_chain_box(spec, "waiting")
        self.overall.setRange(0, len(specs))
        self._log("", "", f"run {number}: submitted {len(specs)} tasks")
        self._poll_timer.start()
        self._refresh()

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.paused:
            self.manager.pause_processing()  # running tasks still finish and report
        else:
            self.manager.start_processing()
        self.pause_button.setText("Resume" if self.paused else "Pause")
        self._log("", "", "paused" if self.paused else "resumed")
        self._refresh()

    def stop_selected_group(self) -> None:
        self.stop_group(self.group_combo.currentText())

    def stop_group(self, name: str) -> None:
        """Stop a group's tasks and those downstream of them (not its upstream tasks)."""
        run = self.run
        if run is None or run.finished_at is not None:
            return
        before = run.totals()["stopped"]
        self.manager.stop_task_group(run.group_ids[name], stop_upstream=False)
        self._poll()  # stopped tasks never report: find them now
        self._log("", name, f"stop group: {run.totals()['stopped'] - before} tasks stopped")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        self._poll_timer.stop()
        self.manager.shut_down(timeout=2)
        super().closeEvent(event)

    # ------------------------------------------------------------------ task reports

    def _on_completed(self, uid: int, group: Hashable, result: Any) -> None:
        run = self.run
        spec = run.end(uid, "completed") if run else None
        if spec is None:
            return  # a late report from a previous run
        if spec.key == "chain/fan-in":
            run.chain_result = result
        self._set_chain_box(spec, "completed")
        self._log(spec.label, spec.group, f"completed: {_short(result)}")
        self._after_end(spec.group)

    def _on_failed(self, uid: int, group: Hashable, message: str, traceback_str: str) -> None:
        run = self.run
        spec = run.end(uid, "failed") if run else None
        if spec is None:
            return
        # A task downstream of a failed task fails with the same message; say which one.
        failed_upstream = [
            run.spec_by_uid[run.uid_by_key[key]].label
            for key in spec.upstream
            if run.outcome.get(run.uid_by_key[key]) == "failed"
        ]
        cause = f"via {', '.join(failed_upstream)}" if failed_upstream else "raised"
        self._set_chain_box(spec, "failed")
        self._log(spec.label, spec.group, f"FAILED: {message}", colour=FAILED_TEXT)
        row = self.failures_table.rowCount()
        self.failures_table.insertRow(row)
        for col, text in enumerate((spec.label, cause, message)):
            item = QTableWidgetItem(text)
            item.setToolTip(traceback_str)
            item.setForeground(QBrush(CASCADE_TEXT if failed_upstream else FAILED_TEXT))
            self.failures_table.setItem(row, col, item)
        self._after_end(spec.group)

    def _on_group_finished(self, group: Hashable) -> None:
        run = self.run
        name = run.group_names.get(group) if run else None
        if name is None:
            return
        run.group_finished[name] += 1
        self._log("", name, "group finished", colour=FINISHED_TEXT)
        self._refresh_row(name)

    def _after_end(self, name: str) -> None:
        self._refresh_row(name)
        self._refresh_overall()
        self._check_finished()

    def _poll(self) -> None:
        """Find stopped tasks (they never report) and count waiting/running ones."""
        run = self.run
        if run is None:
            return
        waiting: Counter[str] = Counter()
        running: Counter[str] = Counter()
        for uid in list(run.outstanding):
            spec = run.spec_by_uid[uid]
            state = self.manager.task_state(uid)
            if state in STOPPED:
                run.end(uid, "stopped")
                self._set_chain_box(spec, "stopped")
            elif state in WAITING:
                waiting[spec.group] += 1
            elif state is TaskState.RUNNING:
                running[spec.group] += 1
                self._set_chain_box(spec, "running")
            # else: ended, and its report is on the way
        for name, row in self.rows.items():
            row.waiting.setText(str(waiting[name]))
            row.running.setText(str(running[name]))
        self._refresh()
        self._check_finished()

    def _check_finished(self) -> None:
        run = self.run
        if run is None or run.outstanding or run.finished_at is not None:
            return
        run.finished_at = time.perf_counter()
        self._poll_timer.stop()
        for row in self.rows.values():
            row.waiting.setText("0")
            row.running.setText("0")
        self._log("", "", f"run {run.number}: all tasks ended in {run.elapsed:.1f} s")
        self._refresh()
        self.run_finished.emit()

    # ------------------------------------------------------------------ display

    def _refresh(self) -> None:
        for name in GROUPS:
            self._refresh_row(name)
        self._refresh_overall()

    def _refresh_row(self, name: str) -> None:
        run = self.run
        if run is None:
            return
        row, ended, total = self.rows[name], run.ended[name], run.submitted[name]
        row.tasks.setText(str(total))
        row.completed.setText(str(ended["completed"]))
        row.failed.setText(str(ended["failed"]))
        row.stopped.setText(str(ended["stopped"]))
        row.failed.setStyleSheet("color: #b3261e; font-weight: bold" if ended["failed"] else "")
        row.progress.setRange(0, total)
        row.progress.setValue(sum(ended.values()))
        if run.group_finished[name]:
            row.status.setText("finished")
        elif sum(ended.values()) == total:
            row.status.setText("stopped")
        elif self.paused:
            row.status.setText("paused")
        else:
            row.status.setText("running")

    def _refresh_overall(self) -> None:
        run = self.run
        if run is None:
            return
        totals = run.totals()
        self.overall.setValue(sum(totals.values()))
        summary = (
            f"{totals['completed']} completed · {totals['failed']} failed · "
            f"{totals['stopped']} stopped"
        )
        if run.finished_at is not None:
            state = f"all {len(run.spec_by_uid)} tasks ended in {run.elapsed:.1f} s"
        else:
            state = f"{'paused' if self.paused else 'running'} {run.elapsed:.1f} s"
        self.status_label.setText(f"<b>Run {run.number}</b> — {state} — {summary}")
        self._refresh_chain_text()

    def _refresh_chain_text(self) -> None:
        run = self.run
        steps = [k for k in run.uid_by_key if k.startswith("chain/step")]
        done = sum(run.outcome.get(run.uid_by_key[k]) == "completed" for k in steps)
        self.chain_progress.setText(f"Steps completed: {done} / {len(steps)}")
        result = run.chain_result
        if result is None:
            fan_in = run.outcome.get(run.uid_by_key["chain/fan-in"])
            self.chain_result_label.setText(f"Fan-in result: {fan_in or 'not yet'}")
            return
        ok = result == expected_chain_result()
        trail = "→".join(str(step) for step in result.get("trail", ()))
        verdict = (
            "<span style='color:#1e7d32'>✔ as expected</span>"
            if ok
            else "<span style='color:#b3261e'>✘ unexpected</span>"
        )
        self.chain_result_label.setText(
            f"Fan-in result {verdict}<br>"
            f"&nbsp;&nbsp;total = {result.get('total')} · trail = {trail}<br>"
            f"&nbsp;&nbsp;checksum = {result.get('checksum')} · label = {result.get('label')}"
        )

    def _set_chain_box(self, spec: TaskSpec, state: str) -> None:
        box = self.chain_boxes.get(spec.key)
        if box is not None:
            box.setStyleSheet(
                f"background: {STATE_COLOURS[state]}; border: 1px solid #777; border-radius: 3px;"
                " padding: 0 5px"
            )

    def _log(self, task: str, group: str, text: str, colour: QColor | None = None) -> None:
        table = self.log_table
        table.insertRow(0)
        elapsed = f"{self.run.elapsed:.2f}" if self.run else ""
        for col, value in enumerate((elapsed, task, group, text)):
            item = QTableWidgetItem(value)
            item.setToolTip(value)
            if colour is not None:
                item.setForeground(QBrush(colour))
            table.setItem(0, col, item)
        if table.rowCount() > MAX_LOG_ROWS:
            table.removeRow(table.rowCount() - 1)

    # ------------------------------------------------------------------ for tests and scripts

    def shown_counts(self, name: str) -> dict[str, int]:
        """The numbers the groups table shows for ``name``."""
        row = self.rows[name]
        return {
            field: int(getattr(row, field).text())
            for field in ("tasks", "waiting", "running", "completed", "failed", "stopped")
        }


def _short(value: Any, limit: int = 70) -> str:
    if isinstance(value, dict):
        text = ", ".join(f"{key}={item!r}" for key, item in value.items())
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
