"""``TaskProgressDialog``: a (window-)modal dialog over one batch of tasks.

"Exporting 120 files…": a bar with the batch's overall progress (the mean of
its tasks' progress fractions, an ended task counting whole), the message
the busiest task reported last, a smoothed remaining-time estimate, and a
Cancel button (also Escape and the title bar's close button) that stops the
batch's tasks and says it is cancelling.  When every task has ended the
dialog closes by itself, unless tasks failed: then it stays open and lists
them, each with its traceback one keypress away.

The dialog learns everything from the manager's signals (``task_progress``,
``task_completed``, ``task_failed``, ``task_cancelled``, ``task_added`` and
``task_state_changed``), which arrive on the GUI thread; when it is made it
reads the batch's tasks once, so a batch that ended (or partly ended) before
the dialog existed shows as it is.  GUI thread only.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable
from typing import Any

from PySide6.QtCore import QEvent, Qt, QThread, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core._errors import repr_of
from ..core._state import TaskInfo, TaskState
from ..qt._home_thread import DiesAtHome
from ..qt._manager import BackgroundTaskManager
from ._columns import TIP_TEXT, clip
from ._progress_batch import (
    CANCELLED,
    COMPLETED,
    FAILED,
    Batch,
    BatchFailure,
    RemainingTime,
    remaining_text,
)
from ._progress_parts import FailureList, grow
from ._shutdown import manager_is_shut_down

_UNSET: Any = object()
_BAR_MAX = 1000
_ENDED = {TaskState.COMPLETED: COMPLETED, TaskState.FAILED: FAILED, TaskState.CANCELLED: CANCELLED}
_LIVE = frozenset({TaskState.PENDING, TaskState.QUEUED, TaskState.RUNNING})
#: Milliseconds between two updates of the remaining-time estimate.
ESTIMATE_INTERVAL = 500
#: Milliseconds the dialog gathers signals before it redraws.
REFRESH_DELAY = 30


def _task_ids(manager: BackgroundTaskManager, task_ids: Iterable[int]) -> list[TaskInfo]:
    if isinstance(task_ids, (str, bytes)) or not isinstance(task_ids, Iterable):
        raise TypeError(f"task_ids must be an iterable of task uids (ints), not {task_ids!r}")
    uids = list(dict.fromkeys(task_ids))
    if not uids:
        raise ValueError("task_ids is empty: a progress dialog needs at least one task")
    for uid in uids:
        if isinstance(uid, bool) or not isinstance(uid, int):
            raise TypeError(f"task_ids must be task uids (ints), not {uid!r}")
    infos = manager.infos(uids)
    for uid in uids:
        if uid not in infos:
            raise ValueError(f"task {uid} is unknown: task_ids must name tasks of this manager")
    return [infos[uid] for uid in uids]


def _group_tasks(manager: BackgroundTaskManager, group: Hashable) -> list[TaskInfo]:
    infos = manager.tasks(group=group)  # TypeError for an unhashable group
    if group is None or not infos:
        raise ValueError(
            f"group {repr_of(group)} has no tasks in this manager: submit the batch before binding "
            "the dialog to its group, or give task_ids"
        )
    return sorted(infos, key=lambda info: info.uid)


class TaskProgressDialog(DiesAtHome, QDialog):
    """A dialog with the progress of one batch: a group, or a list of task ids.

    * **Progress**: the bar shows the mean of the tasks' latest progress
      fractions, a task that ended (whatever its outcome) counting 1 and one
      that reported nothing yet 0; below it, how many tasks ended out of how
      many, a remaining-time estimate ("about 2 min left", smoothed; none in
      the first seconds) and the message the most recent task reported.
      Bound to a group, tasks added to the group later join the batch.
    * **Cancel** (the button, Escape, or closing the window): stops the
      batch's live tasks (``stop_task_group(group, stop_upstream=False)``, or
      ``stop_task`` for each listed task; tasks waiting for them are stopped
      too) and reads "Cancelling…" until they have ended.  Running Python
      code can only be asked to stop: a task that never checks
      ``current_task().cancelled`` runs to its end.
    * **The end**: once shown, the dialog closes by itself when every task
      has ended: ``accept()`` (``finished(QDialog.Accepted)``) if every task
      completed, ``reject()`` (``finished(QDialog.Rejected)``) if the user
      cancelled and none failed.  Otherwise (tasks failed, or were stopped by
      someone else) it stays open: the heading says what happened, the failed
      tasks are listed (expand a row, or press Right, for its traceback; the
      pane below shows the current one's whole traceback, wrapped) and
      the button reads Close (then ``finished(QDialog.Rejected)``).  A batch
      that ended before the dialog was shown closes at once in the same way.
    * **Accessibility**: the bar, labels, list and button have accessible
      names; the bar's accessible description reads like the text below it.
      Focus starts on Cancel; Tab goes to the failure list when it shows.
    * **Shut down**: a manager shut down (it emits nothing more) is noticed
      within ``ESTIMATE_INTERVAL`` ms; the dialog then says so and offers
      Close.

    It adds no signals of its own: use QDialog's ``finished(int)``,
    ``accepted`` and ``rejected``.  Show it with ``open()`` (window-modal
    over ``parent``, returns at once) or ``exec()``.  GUI thread only: it
    must be created on the manager's thread.

    Args:
        manager: The manager that runs the batch.
        group: The batch is this group's tasks (it must have some).
        task_ids: The batch is these tasks (uids of ``manager``); give
            ``group`` or ``task_ids``, not both.
        parent: The window it is modal over.
        title: The window title.
        text: The heading, e.g. "Exporting 120 files…" (default: "Running N
            tasks…").
        modality: ``Qt.WindowModal`` (default) or ``Qt.ApplicationModal``
            (or ``Qt.NonModal``).

    Raises:
        TypeError: ``manager`` is not a ``BackgroundTaskManager``; neither or
            both of ``group`` and ``task_ids`` given; a task id is not an int.
        ValueError: ``group`` has no tasks in ``manager``; a task id is
            unknown; ``task_ids`` is empty.
        RuntimeError: called on a thread other than the manager's.
    """

    def __init__(
        self,
        manager: BackgroundTaskManager,
        *,
        group: Hashable = _UNSET,
        task_ids: Iterable[int] | None = None,
        parent: QWidget | None = None,
        title: str = "Background tasks",
        text: str = "",
        modality: Qt.WindowModality = Qt.WindowModality.WindowModal,
    ) -> None:
        if not isinstance(manager, BackgroundTaskManager):
            raise TypeError(f"manager must be a BackgroundTaskManager, not {manager!r}")
        if (group is _UNSET) == (task_ids is None):
            raise TypeError("give the batch as group=... or as task_ids=[...], not both or neither")
        if QThread.currentThread() is not manager.thread():
            raise RuntimeError("a TaskProgressDialog must be made on its manager's thread")
        infos = (
            _task_ids(manager, task_ids) if task_ids is not None else _group_tasks(manager, group)
        )
        super().__init__(parent)
        self._remember_home()  # destroyed on this thread, whoever drops it last
        self._manager = manager
        self._group: Hashable = None if group is _UNSET else group
        self._by_group = group is not _UNSET
        self._batch = Batch()
        self.estimate = RemainingTime()
        #: The clock of the estimate (seconds); tests may replace it.
        self.clock = time.monotonic
        self._cancelling = False
        self._over_handled = False  # the end was dealt with since the last show
        self._shut_down = False
        self._build(
            title, text or f"Running {len(infos)} task{'s' if len(infos) != 1 else ''}…", modality
        )
        for info in infos:
            self._take(info)
        self._wire()
        self._refresh()

    # ------------------------------------------------------------------ building

    def _build(self, title: str, text: str, modality: Qt.WindowModality) -> None:
        self.setWindowTitle(title)
        self.setWindowModality(modality)
        self.setMinimumWidth(420)
        self._text = text
        self.heading = QLabel(text, self)
        self.heading.setWordWrap(True)
        self.heading.setAccessibleName("Batch")
        self.setAccessibleDescription(text)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, _BAR_MAX)
        self.bar.setFormat("%p%")
        self.bar.setAccessibleName("Overall progress")
        self.status = QLabel(self)
        self.status.setAccessibleName("Tasks ended and time left")
        self.current = QLabel(self)
        self.current.setAccessibleName("Current task")
        self.current.setTextFormat(Qt.TextFormat.PlainText)
        self.failure_list = FailureList(self)
        self.failures_view = self.failure_list.view
        self.button = QPushButton("&Cancel", self)
        self.button.setAutoDefault(False)
        self.button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.button)
        layout = QVBoxLayout(self)
        for widget in (self.heading, self.bar, self.status, self.current):
            layout.addWidget(widget)
        layout.addWidget(self.failure_list.label)
        layout.addWidget(self.failures_view, 1)
        layout.addWidget(self.failure_list.traceback_pane, 1)
        layout.addLayout(buttons)
        QWidget.setTabOrder(self.failures_view, self.failure_list.traceback_pane)
        QWidget.setTabOrder(self.failure_list.traceback_pane, self.button)
        self.button.setFocus()
        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_DELAY)
        self._refresh_timer.timeout.connect(self._refresh)
        self._estimate_timer = QTimer(self, interval=ESTIMATE_INTERVAL)
        self._estimate_timer.timeout.connect(self._tick)

    def _wire(self) -> None:
        # Bound methods only: a lambda over self held by a C++ connection
        # would keep the dialog alive for ever.
        manager = self._manager
        manager.task_added.connect(self._on_added)
        manager.task_progress.connect(self._on_progress)
        manager.task_completed.connect(self._on_completed)
        manager.task_failed.connect(self._on_failed)
        manager.task_cancelled.connect(self._on_cancelled)
        manager.task_state_changed.connect(self._on_state)

    def _take(self, info: TaskInfo) -> None:
        """Add a task as the registry sees it now (it may have ended already)."""
        if not self._batch.add(info.uid, info.name):
            return
        outcome = _ENDED.get(info.state)
        if outcome is not None:
            self._batch.end(info.uid, outcome, info.error, info.traceback)
        elif info.progress is not None:
            self._batch.report(info.uid, info.progress, info.message)

    # ------------------------------------------------------------------ public API

    def uids(self) -> list[int]:
        """The batch's task uids, in the order they joined it.  GUI thread."""
        return self._batch.uids()

    def group(self) -> Hashable:
        """The group the dialog is bound to (None when bound to task ids).  GUI thread."""
        return self._group

    def fraction(self) -> float:
        """The overall progress, 0..1, as the bar shows it.  GUI thread."""
        return self._batch.fraction()

    def counts(self) -> dict[str, int]:
        """How many tasks ``"completed"``, ``"failed"``, were ``"cancelled"``, are ``"live"``.

        GUI thread.
        """
        return self._batch.counts()

    def failures(self) -> list[BatchFailure]:
        """The failed tasks (uid, name, error, traceback), in the order they failed.

        GUI thread.
        """
        return self._batch.failures()

    def message(self) -> str:
        """The current task's line: ``"name: message"``, or "" when none reported one.

        GUI thread.
        """
        current = self._batch.current()
        if current is None:
            return ""
        uid, message = current
        return f"{self._batch.name(uid)}: {message}"

    def remaining(self) -> str:
        """The remaining-time text (``"about 2 min left"``), "" while unknown.  GUI thread."""
        if self._batch.is_over() or self._cancelling:
            return ""
        return remaining_text(self.estimate.seconds_left())

    def is_over(self) -> bool:
        """Whether every task of the batch has ended.  GUI thread."""
        return self._batch.is_over()

    def is_cancelling(self) -> bool:
        """Whether Cancel was pressed (``cancel()`` called).  GUI thread."""
        return self._cancelling

    def cancel(self) -> None:
        """Stop the batch's live tasks and show "Cancelling…"; what Cancel does.

        Queued tasks never run; running ones are asked to stop (see the class
        docstring).  The dialog closes (``reject``) once every task has ended,
        unless tasks failed.  Nothing happens once the batch is over.  GUI
        thread; the tasks' ``task_cancelled`` signals arrive on it.
        """
        if self._batch.is_over() or self._cancelling or self._shut_down:
            return
        self._cancelling = True
        if self._by_group:
            self._manager.stop_task_group(self._group, stop_upstream=False)
        else:
            for uid in self._batch.live():
                try:
                    self._manager.stop_task(uid, stop_upstream=False)
                except KeyError:  # forgotten meanwhile: it ended long ago
                    pass
        self._refresh()

    def reject(self) -> None:
        """Escape, Cancel or the window's close button: cancel while tasks run, else close.

        GUI thread.
        """
        if self._batch.is_over() or self._shut_down:
            super().reject()
        else:
            self.cancel()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        """Qt override: a batch over before the dialog showed closes it at once."""
        super().showEvent(event)
        self._over_handled = False
        if not self._batch.is_over() and not self._shut_down:
            self.estimate.update(self.clock(), self._batch.fraction())
            self._estimate_timer.start()
        QTimer.singleShot(0, self._refresh)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        """Qt override: re-elide the current task's line when the font changes."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._show_current()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Qt override: the current task's line is elided to the new width."""
        super().resizeEvent(event)
        self._show_current()

    # ------------------------------------------------------------------ signals

    def _poke(self) -> None:
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _on_added(self, uid: int, group: Hashable) -> None:
        if not self._by_group or uid in self._batch or group != self._group:
            return
        try:
            info = self._manager.info(uid)
        except KeyError:  # forgotten already
            return
        self._take(info)
        self._over_handled = False
        self._poke()

    def _on_progress(self, uid: int, group: Hashable, fraction: float, message: str) -> None:
        if uid in self._batch:
            self._batch.report(uid, fraction, message)
            self._poke()

    def _on_completed(self, uid: int, group: Hashable, result: object) -> None:
        if self._batch.end(uid, COMPLETED):
            self._poke()

    def _on_failed(self, uid: int, group: Hashable, message: str, traceback: str) -> None:
        if uid in self._batch:
            self._batch.end(uid, FAILED, message, traceback)
            self._poke()

    def _on_cancelled(self, uid: int, group: Hashable) -> None:
        if self._batch.end(uid, CANCELLED):
            self._poke()

    def _on_state(self, uid: int, group: Hashable, state: TaskState) -> None:
        # A retried task runs again: it is live, and the batch is not over.
        if state in _LIVE and uid in self._batch and self._batch.reopen(uid):
            self._over_handled = False
            self.failure_list.drop(uid)
            self._poke()

    def _tick(self) -> None:
        if not self._shut_down and manager_is_shut_down(self._manager):
            self._shut_down = True
            self._refresh()
            return
        self.estimate.update(self.clock(), self._batch.fraction())
        self._show_status()

    # ------------------------------------------------------------------ display

    def _refresh(self) -> None:
        batch = self._batch
        self.bar.setValue(round(batch.fraction() * _BAR_MAX))
        if self.failure_list.add(batch.failures()):
            grow(self, 640, 520)  # room for the failure list
        self._show_status()
        self._show_current()
        if self._shut_down:
            self._estimate_timer.stop()
            self._set_heading("The task manager has shut down: the batch will not finish.")
            self._offer_close()
        elif batch.is_over():
            self._estimate_timer.stop()
            self.current.setVisible(False)
            self._end()
        elif self._cancelling:
            self.button.setText("Cancelling…")
            self.button.setEnabled(False)
        else:  # running (again, after a retry)
            self.current.setVisible(True)
            self._set_heading(self._text)
            self.button.setText("&Cancel")
            self.button.setEnabled(True)
            self.button.setDefault(False)

    def _set_heading(self, text: str) -> None:
        self.heading.setText(text)
        self.setAccessibleDescription(text)  # what a screen reader says of the dialog

    def _show_status(self) -> None:
        counts = self._batch.counts()
        ended = len(self._batch) - counts["live"]
        parts = [f"{ended} of {len(self._batch)} tasks ended"]
        parts += [f"{counts[o]} {o}" for o in (FAILED, CANCELLED) if counts[o]]
        if self._cancelling and counts["live"]:
            parts.append(f"cancelling {counts['live']}")
        left = self.remaining()
        if left:
            parts.append(left)
        text = " · ".join(parts)
        self.status.setText(text)
        self.bar.setAccessibleDescription(f"{round(self._batch.fraction() * 100)} % done, {text}")

    def _show_current(self) -> None:
        full = clip(self.message(), TIP_TEXT)
        width = self.current.contentsRect().width()
        metrics = self.current.fontMetrics()
        shown = metrics.elidedText(full, Qt.TextElideMode.ElideMiddle, width) if width else full
        self.current.setText(shown)
        self.current.setToolTip(full if shown != full else "")
        self.current.setAccessibleDescription(full)

    def _end(self) -> None:
        counts = self._batch.counts()
        if not self.isVisible() or self._over_handled:
            return
        self._over_handled = True
        if counts[FAILED] == 0 and counts[CANCELLED] == 0:
            self.accept()
            return
        if counts[FAILED] == 0 and self._cancelling:
            QDialog.reject(self)
            return
        total = len(self._batch)
        if counts[FAILED]:
            heading = f"{counts[FAILED]} of {total} tasks failed"
        else:
            heading = f"{counts[CANCELLED]} of {total} tasks were cancelled"
        extra = [f"{counts[o]} {o}" for o in (COMPLETED, CANCELLED) if counts[o] and counts[FAILED]]
        self._set_heading(heading + (f" ({', '.join(extra)})" if extra else "") + ".")
        self._offer_close()
        if counts[FAILED]:
            self.failure_list.focus_first()

    def _offer_close(self) -> None:
        self.button.setText("&Close")
        self.button.setEnabled(True)
        self.button.setDefault(True)
