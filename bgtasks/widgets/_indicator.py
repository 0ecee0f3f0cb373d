"""A compact status-bar widget: overall progress and counts of the manager's live tasks."""

from __future__ import annotations

import time
from time import perf_counter
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent, QPaintEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QStyle,
    QStyleOptionFocusRect,
    QStylePainter,
    QWidget,
)

from ..core import check_count, check_seconds
from ..core._state import TaskState
from ..qt._home_thread import DiesAtHome
from ..qt._manager import BackgroundTaskManager
from ._shutdown import manager_is_shut_down

_LIVE = (TaskState.PENDING, TaskState.QUEUED, TaskState.RUNNING, TaskState.CANCELLING)
_BAR_MAX = 1000
SHUT_DOWN_TEXT = "Shut down"
SHUT_DOWN_TIP = "The task manager has shut down"


class TaskStatusIndicator(DiesAtHome, QWidget):
    """Overall progress bar and a count label (``"3 running · 12 queued"``) for a status bar.

    * **Counts**: *running* counts RUNNING and CANCELLING tasks, *queued*
      counts QUEUED and PENDING tasks (PENDING ones wait for upstream tasks or
      a retry); the tool tip lists every state.
    * **Progress**: work is counted in *batches*: a batch begins when a task
      appears while nothing is live and ends when nothing is live any more.
      The bar shows ``(finished + sum of running tasks' progress) / size`` of
      the batch, where a running task that never reported progress counts 0.
      With a single running task this is its own progress; with many short
      tasks it is done/total.  (A task that is retried counts again.)
    * **Refresh**: the manager's signals only start a QTimer; the widget
      re-reads the manager at most ``refresh_interval`` ms apart (10 Hz) and
      the timer stops when nothing is live.  ``refresh()`` updates at once.
      The tool tip lists the counts by state, after any text given to
      ``setToolTip``.
    * **Idle**: the bar is hidden and the label reads ``"Idle"`` (in the
      normal text colour: a disabled grey is too faint to read);
      with ``hide_when_idle = True`` the whole widget hides instead.
    * **Activation**: a left click, or Space/Enter/Return while it has focus,
      emits ``clicked`` and shows and raises the widget given to
      ``set_monitor``, if any.
    * **Shut down**: the manager emits nothing after ``shut_down()``; each
      refresh looks at ``manager.is_shut_down`` (or whether the manager's
      QObject was deleted).  Then the label reads ``"Shut down · 2
      stopping"`` while tasks that were running have not returned (re-read
      at the refresh rate for ``shutdown_poll_limit`` seconds at most), and
      finally ``"Shut down"``, with the timer stopped for good.

    Args:
        manager: The manager it summarises.
        parent: The parent widget.
    """

    clicked = Signal()

    IDLE_TEXT = "Idle"
    SHUT_DOWN_TEXT = SHUT_DOWN_TEXT

    def __init__(self, manager: BackgroundTaskManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._remember_home()  # destroyed on this thread, whoever drops it last
        self._manager = manager
        self._monitor: QWidget | None = None
        self._batch: set[int] = set()  # live (or just added) tasks of the batch
        self._idle_at = 0.0  # time.time() when refresh() last found nothing live
        self._finished = 0  # tasks of the batch that ended; keeps memory bounded
        self._hide_when_idle = False
        self._hidden_by_me = False
        self._tip_hint = ""
        self._tip_details = ""
        self._idle = True
        self._pressed = False
        self._shutdown_poll_limit = 30.0  # see shutdown_poll_limit
        self._shut_down = False
        self._shutdown_deadline = 0.0

        self._bar = QProgressBar(self)
        self._bar.setRange(0, _BAR_MAX)
        self._bar.setTextVisible(False)
        self._bar.setMaximumWidth(120)
        self._bar.setMaximumHeight(14)
        self._bar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._label = QLabel(self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(6)
        layout.addWidget(self._bar)
        layout.addWidget(self._label)
        self.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAccessibleName("Background tasks")
        for child in (self._bar, self._label):
            child.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)

        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._tick)

        manager.task_added.connect(self._on_added)
        manager.task_state_changed.connect(self._poke)
        manager.task_removed.connect(self._poke)
        # Tasks added before the indicator existed belong to the first batch.
        self._batch.update(info.uid for info in self._live_infos())
        self.refresh()

    # ------------------------------------------------------------------ public API

    @property
    def refresh_interval(self) -> int:
        """Milliseconds between refreshes while tasks are live."""
        return self._timer.interval()

    @refresh_interval.setter
    def refresh_interval(self, ms: int) -> None:
        self._timer.setInterval(check_count("refresh_interval", ms, minimum=1))

    @property
    def shutdown_poll_limit(self) -> float:
        """Seconds the indicator keeps re-reading tasks still stopping after a
        shut-down (settable, non-negative; default 30)."""
        return self._shutdown_poll_limit

    @shutdown_poll_limit.setter
    def shutdown_poll_limit(self, seconds: float) -> None:
        self._shutdown_poll_limit = float(check_seconds("shutdown_poll_limit", seconds))

    @property
    def hide_when_idle(self) -> bool:
        """Hide the whole widget (instead of greying it) while nothing is live."""
        return self._hide_when_idle

    @hide_when_idle.setter
    def hide_when_idle(self, value: bool) -> None:
        self._hide_when_idle = bool(value)
        if not self._hide_when_idle and self._hidden_by_me:
            self._hidden_by_me = False
            self.show()
        self.refresh()

    def set_monitor(self, widget: QWidget | None) -> None:
        """Show and raise ``widget`` on activation.  GUI thread.

        Args:
            widget: The widget to show (a ``TaskMonitor``, say); None: only emit
                ``clicked``.
        """
        self._monitor = widget

    def monitor(self) -> QWidget | None:
        """The widget shown on activation, or None.  GUI thread."""
        return self._monitor

    def text(self) -> str:
        """The label's text.  GUI thread."""
        return self._label.text()

    def progress(self) -> float | None:
        """The bar's fraction (0..1), ``None`` while idle or once the manager is shut down.

        GUI thread.
        """
        return None if self._idle or self._shut_down else self._bar.value() / _BAR_MAX

    def is_idle(self) -> bool:
        """True while no task is live (the bar is hidden).  GUI thread."""
        return self._idle

    def is_shut_down(self) -> bool:
        """Whether the indicator noticed that its manager was shut down (or deleted).

        GUI thread.
        """
        return self._shut_down

    def running_timers(self) -> set[str]:
        """Which of the indicator's timers run: ``{"refresh"}`` while it re-reads
        the manager (tasks live, or still stopping after a shut-down), else an
        empty set.  GUI thread only."""
        return {"refresh"} if self._timer.isActive() else set()

    def activate(self) -> None:
        """What a click does: emit ``clicked``, show and raise the monitor.  GUI thread."""
        self.clicked.emit()
        monitor = self._monitor
        if monitor is not None:
            if monitor.isMinimized():
                monitor.showNormal()
            else:
                monitor.show()
            monitor.raise_()
            monitor.activateWindow()

    def setToolTip(self, text: str) -> None:  # noqa: N802 - Qt override
        """Set the tool tip's first part; the indicator appends the task counts.

        GUI thread.

        Args:
            text: The tool tip's first part.
        """
        self._tip_hint = text
        self._set_details(self._tip_details)

    def refresh(self) -> None:
        """Re-read the manager now and update the bar, label and tool tip.  GUI thread."""
        if self._check_shut_down():
            self._refresh_shut_down()
            return
        infos = self._live_infos()
        counts = {state: 0 for state in _LIVE}
        for info in infos:
            counts[info.state] += 1
        if not infos:
            self._batch.clear()
            self._finished = 0
            self._idle_at = time.time()  # what ended by now belongs to an old batch
            self._set_idle(True)
            return
        live = {info.uid for info in infos}
        self._finished += len(self._batch - live)
        self._batch = live
        finished = self._finished
        total = finished + len(live)
        running = 0.0
        for info in infos:
            if info.state in (TaskState.RUNNING, TaskState.CANCELLING) and info.progress:
                running += min(max(info.progress, 0.0), 1.0)
        fraction = (finished + running) / total
        n_running = counts[TaskState.RUNNING] + counts[TaskState.CANCELLING]
        n_queued = counts[TaskState.QUEUED] + counts[TaskState.PENDING]
        text = f"{n_running} running · {n_queued} queued"
        self._label.setText(text)
        self._bar.setValue(round(fraction * _BAR_MAX))
        tip = [f"{counts[s]} {s.value}" for s in _LIVE if counts[s]]
        tip.append(f"{finished} of {total} finished")
        self._set_details("\n".join(tip))
        self.setAccessibleDescription(f"{text}, {round(fraction * 100)} % done")
        self._set_idle(False)
        # Poll while anything is live, even with no signal to start it: an
        # indicator made while tasks run, or a manager shut down meanwhile
        # (it emits nothing more), would otherwise never be read again.
        self._poke()

    # ------------------------------------------------------------------ internals

    def _check_shut_down(self) -> bool:
        if self._shut_down:
            return True
        if not manager_is_shut_down(self._manager):
            return False
        self._shut_down = True
        self._shutdown_deadline = perf_counter() + self.shutdown_poll_limit
        return True

    def _refresh_shut_down(self) -> None:
        # The registry still answers: tasks that were running are CANCELLING
        # until their function returns (queued ones were dropped at once).
        infos = self._live_infos()
        self._batch.clear()
        self._finished = 0
        if infos and perf_counter() < self._shutdown_deadline:
            self._set_idle(False)
            self._bar.setVisible(False)
            self._show_stopping(infos)
            self._poke()
            return
        # Done: every task ended, or the rest never will as far as we wait.
        self._set_idle(True)  # stops the timer for good: nothing will start it again
        if infos:  # the last word on them: still stopping
            self._show_stopping(infos)
        else:
            self._label.setText(SHUT_DOWN_TEXT)
            self._set_details(SHUT_DOWN_TIP)
            self.setAccessibleDescription(SHUT_DOWN_TIP)

    def _show_stopping(self, infos: list[Any]) -> None:
        counts = {state: 0 for state in _LIVE}
        for info in infos:
            counts[info.state] += 1
        self._label.setText(f"{SHUT_DOWN_TEXT} · {len(infos)} stopping")
        details = [SHUT_DOWN_TIP] + [f"{counts[s]} {s.value}" for s in _LIVE if counts[s]]
        self._set_details("\n".join(details))
        self.setAccessibleDescription(f"{SHUT_DOWN_TIP}, {len(infos)} tasks stopping")

    def _set_details(self, details: str) -> None:
        self._tip_details = details
        QWidget.setToolTip(self, "\n".join(part for part in (self._tip_hint, details) if part))

    def _live_infos(self) -> list[Any]:
        manager = self._manager
        infos: list[Any] = []
        for state in _LIVE:
            infos.extend(manager.tasks(state=state))
        return infos

    def _set_idle(self, idle: bool) -> None:
        self._idle = idle
        if idle:
            self._label.setText(self.IDLE_TEXT)
            self._bar.setValue(0)
            self._set_details("No background tasks")
            self.setAccessibleDescription("No background tasks")
            self._timer.stop()
        self._bar.setVisible(not idle)
        if self._hide_when_idle:
            if idle and not self.isHidden():
                self._hidden_by_me = True
                self.hide()
            elif not idle and self._hidden_by_me:
                self._hidden_by_me = False
                self.show()

    def _on_added(self, uid: int, group: Any) -> None:
        if self._idle:
            # The registry runs ahead of delivery: a task_added that arrives
            # after its task ended may belong to a batch that was over already
            # (it ended before the indicator last found nothing live).  One that
            # ended since belongs to the new batch and counts as finished there.
            try:
                info = self._manager.info(uid)
            except KeyError:  # forgotten: long over
                return
            if info.state not in _LIVE and (info.ended is None or info.ended <= self._idle_at):
                return
        self._batch.add(uid)
        self._poke()

    def _poke(self, *_: Any) -> None:
        if self._shut_down and not self._batch and self._idle:
            return  # finished with a shut-down manager
        if not self._timer.isActive():
            self._timer.start()

    def _tick(self) -> None:
        self.refresh()

    # ------------------------------------------------------------------ input

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        """Qt override: a left click starts an activation."""
        if event.button() == Qt.MouseButton.LeftButton:
            self._pressed = True
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        """Qt override: a left click released inside activates."""
        if event.button() == Qt.MouseButton.LeftButton and self._pressed:
            self._pressed = False
            event.accept()
            if self.rect().contains(event.position().toPoint()):
                self.activate()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        """Qt override: Space or Enter activates."""
        if event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        ):
            event.accept()
            self.activate()
            return
        super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        """Qt override: draws the focus rectangle over the frame."""
        super().paintEvent(event)
        if self.hasFocus():  # keyboard users need to see where focus is
            painter = QStylePainter(self)
            option = QStyleOptionFocusRect()
            option.initFrom(self)
            painter.drawPrimitive(QStyle.PrimitiveElement.PE_FrameFocusRect, option)
