"""Ask before a window closes while important background tasks are live."""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from ..core._state import TaskInfo, TaskState
from ..qt._home_thread import DiesAtHome
from ..qt._manager import BackgroundTaskManager
from ._shutdown import manager_is_shut_down

_LIVE = (TaskState.PENDING, TaskState.QUEUED, TaskState.RUNNING, TaskState.CANCELLING)


class CloseChoice(enum.Enum):
    """The answers to "tasks are still running: close anyway?"."""

    CANCEL_AND_QUIT = "cancel"  #: stop every task and let the window close
    WAIT = "wait"  #: keep the window open, wait (with a progress dialog), then close it
    STAY = "stay"  #: ignore the close


#: ``ask(window, tasks) -> CloseChoice``: ``tasks`` are the important live tasks.
AskFunction = Callable[[QWidget, Sequence[TaskInfo]], CloseChoice]


def ask_with_message_box(window: QWidget, tasks: Sequence[TaskInfo]) -> CloseChoice:
    """The default question: a modal QMessageBox with three buttons ("Stay" on Escape).

    GUI thread (it runs a modal dialog).

    Args:
        window: The window being closed (the dialog's parent).
        tasks: The live tasks that hold it open.

    Returns:
        The user's choice.
    """
    running = sum(info.state in (TaskState.RUNNING, TaskState.CANCELLING) for info in tasks)
    waiting = len(tasks) - running
    box = QMessageBox(window)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Background tasks")
    box.setText(
        f"{len(tasks)} background task{'s' if len(tasks) != 1 else ''} "
        f"{'have' if len(tasks) != 1 else 'has'} not finished "
        f"({running} running, {waiting} waiting)."
    )
    box.setInformativeText("Cancel them and quit, wait for them to finish, or stay?")
    names = [f"{info.uid}: {info.name} ({info.state.value})" for info in tasks[:20]]
    if len(tasks) > 20:
        names.append(f"… and {len(tasks) - 20} more")
    box.setDetailedText("\n".join(names))
    cancel = box.addButton("Cancel tasks and quit", QMessageBox.ButtonRole.DestructiveRole)
    wait = box.addButton("Wait for them", QMessageBox.ButtonRole.AcceptRole)
    stay = box.addButton("Stay", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(stay)
    box.setEscapeButton(stay)
    box.exec()
    clicked = box.clickedButton()
    box.deleteLater()
    if clicked is cancel:
        return CloseChoice.CANCEL_AND_QUIT
    if clicked is wait:
        return CloseChoice.WAIT
    return CloseChoice.STAY


class CloseGuard(DiesAtHome, QObject):
    """Guards ``window``'s close against losing live background tasks.

    Installed as an event filter on ``window`` (and parented to it unless
    ``parent`` is given).  When the window gets a close event while
    *important* tasks are PENDING, QUEUED, RUNNING or CANCELLING, the guard
    calls ``self.ask(window, tasks)``, which returns a ``CloseChoice``:

    * ``CANCEL_AND_QUIT``: ``manager.stop_all_tasks()``, and the window closes
      (unimportant tasks are stopped too: the application is going away).
    * ``WAIT``: the close is ignored and a window-modal QProgressDialog shows
      how many important tasks have finished; when none is live the dialog
      goes and the window is closed again (and then closes unless new
      important work appeared).  The dialog's "Stop waiting" button ends the
      wait and leaves the window open.
    * ``STAY``: the close is ignored.

    With no important live task the window closes without a question.

    **A shut-down manager** (``manager.is_shut_down``, or its QObject
    deleted) has no live task that could still deliver anything: the
    window closes without a question, and a wait in progress ends as if the
    tasks had finished (the wait's 100 ms poll notices it, since the manager
    emits nothing more).

    **Unimportant tasks** never hold a window open: tasks of a group given
    to ``ignore_group``, tasks whose name was given to
    ``ignore_name``, and tasks for which ``is_important(info)`` (a
    replaceable callable, default: always True) returns False.

    ``ask`` defaults to ``ask_with_message_box``; assign any callable
    with that signature (tests do).  ``progress_dialog_factory(window)``
    builds the wait dialog.  Signals: ``answered(CloseChoice)`` after each
    question, ``wait_finished(bool)`` when a wait ends (True: the tasks
    finished and the window was closed again; False: the user stopped it).

    Args:
        window: The top-level window whose close it guards (its event filter).
        manager: The manager whose live tasks may hold the window open.
        parent: The guard's QObject parent; None: ``window``.
    """

    answered = Signal(object)
    wait_finished = Signal(bool)

    def __init__(
        self,
        window: QWidget,
        manager: BackgroundTaskManager,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent if parent is not None else window)
        self._remember_home()  # destroyed on this thread, whoever drops it last
        self._window = window
        self._manager = manager
        self._ignored_groups: set[Hashable] = set()
        self._ignored_names: set[str] = set()
        self.is_important: Callable[[TaskInfo], bool] = lambda info: True
        self.ask: AskFunction = ask_with_message_box
        self.progress_dialog_factory: Callable[[QWidget], QProgressDialog] = _make_progress_dialog
        self._asking = False
        self._dialog: QProgressDialog | None = None
        self._waited: set[int] = set()
        self._poll = QTimer(self)
        self._poll.setInterval(100)
        self._poll.timeout.connect(self._check_wait)
        window.installEventFilter(self)

    # ------------------------------------------------------------------ configuration

    def ignore_group(self, group: Hashable) -> None:
        """Tasks of ``group`` never hold the window open.  GUI thread.

        Args:
            group: A task group.
        """
        self._ignored_groups.add(group)

    def unignore_group(self, group: Hashable) -> None:
        """Undo ``ignore_group``.  GUI thread.

        Args:
            group: A task group.
        """
        self._ignored_groups.discard(group)

    def ignore_name(self, name: str) -> None:
        """Tasks named ``name`` never hold the window open.  GUI thread.

        Args:
            name: A task name (``TaskInfo.name``).
        """
        self._ignored_names.add(name)

    def unignore_name(self, name: str) -> None:
        """Undo ``ignore_name``.  GUI thread.

        Args:
            name: A task name.
        """
        self._ignored_names.discard(name)

    def window(self) -> QWidget:
        """The window it guards.  GUI thread."""
        return self._window

    def progress_dialog(self) -> QProgressDialog | None:
        """The wait dialog while waiting, else None.  GUI thread."""
        return self._dialog

    def is_waiting(self) -> bool:
        """True while the guard waits for tasks (its dialog shows).  GUI thread."""
        return self._dialog is not None

    def running_timers(self) -> set[str]:
        """Which of the guard's timers run: ``{"poll"}`` while it polls the tasks
        it waits for, else an empty set.  GUI thread only."""
        return {"poll"} if self._poll.isActive() else set()

    def manager_is_shut_down(self) -> bool:
        """Whether the manager was shut down (or deleted): then nothing holds the window.

        GUI thread.
        """
        return manager_is_shut_down(self._manager)

    def important_tasks(self) -> list[TaskInfo]:
        """The live tasks that hold the window open, by uid (none once the
        manager is shut down: they can deliver nothing more).  GUI thread."""
        if self.manager_is_shut_down():
            return []
        infos: list[TaskInfo] = []
        for state in _LIVE:
            infos.extend(self._manager.tasks(state=state))
        important = [info for info in infos if self._important(info)]
        important.sort(key=lambda info: info.uid)
        return important

    def uninstall(self) -> None:
        """Stop guarding the window.  GUI thread."""
        self._window.removeEventFilter(self)
        self._end_wait(False, close=False)

    # ------------------------------------------------------------------ the guard

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Qt override: intercepts the window's close events.  GUI thread."""
        if watched is self._window and event.type() == QEvent.Type.Close:
            if self._guard_close():
                return False
            event.ignore()  # a close event starts accepted: ignore it, or the window closes
            return True
        return super().eventFilter(watched, event)

    def _guard_close(self) -> bool:
        """True: let the window close."""
        if self._asking or self._dialog is not None:
            return False  # a second close while we ask or wait: the first one decides
        tasks = self.important_tasks()
        if not tasks:
            return True
        self._asking = True
        try:
            choice = self.ask(self._window, tasks)
        finally:
            self._asking = False
        if not isinstance(choice, CloseChoice):
            raise TypeError(f"ask must return a CloseChoice, got {choice!r}")
        self.answered.emit(choice)
        if choice is CloseChoice.CANCEL_AND_QUIT:
            self._manager.stop_all_tasks()
            return True
        if choice is CloseChoice.WAIT:
            self._start_wait(tasks)
        return False

    def _important(self, info: TaskInfo) -> bool:
        try:
            if info.group in self._ignored_groups:
                return False
        except TypeError:  # an unhashable group cannot be in the set
            pass
        if info.name in self._ignored_names:
            return False
        return bool(self.is_important(info))

    # ------------------------------------------------------------------ waiting

    def _start_wait(self, tasks: Sequence[TaskInfo]) -> None:
        self._waited = {info.uid for info in tasks}
        dialog = self._dialog = self.progress_dialog_factory(self._window)
        dialog.setMaximum(len(self._waited))
        dialog.setValue(0)
        dialog.canceled.connect(self._wait_cancelled)
        manager = self._manager
        manager.task_state_changed.connect(self._poke)
        manager.task_removed.connect(self._poke)
        dialog.show()
        self._poll.start()
        self._check_wait()

    def _poke(self, *_: Any) -> None:
        # Signals only hurry the next check; the poll timer bounds the rate.
        if self._dialog is not None and not self._poll.isActive():
            self._poll.start()

    def _check_wait(self) -> None:
        dialog = self._dialog
        if dialog is None:
            return
        live = self.important_tasks()
        self._waited.update(info.uid for info in live)
        left = len(live)
        total = len(self._waited)
        dialog.setMaximum(max(total, 1))
        dialog.setValue(total - left)
        dialog.setLabelText(
            f"Waiting for {left} background task{'s' if left != 1 else ''} to finish…"
        )
        if not left:
            self._end_wait(True, close=True)

    def _wait_cancelled(self) -> None:
        if self._dialog is not None:
            self._end_wait(False, close=False)

    def _end_wait(self, finished: bool, close: bool) -> None:
        dialog = self._dialog
        if dialog is None:
            return
        self._dialog = None
        self._poll.stop()
        manager = self._manager
        try:
            manager.task_state_changed.disconnect(self._poke)
            manager.task_removed.disconnect(self._poke)
        except (RuntimeError, TypeError):  # pragma: no cover - already gone
            pass
        dialog.canceled.disconnect(self._wait_cancelled)
        dialog.reset()
        dialog.hide()
        dialog.deleteLater()
        self.wait_finished.emit(finished)
        if close:
            # Closing again asks again if new important work appeared meanwhile.
            QTimer.singleShot(0, self._window, self._window.close)


def _make_progress_dialog(window: QWidget) -> QProgressDialog:
    dialog = QProgressDialog(window)
    dialog.setWindowTitle("Background tasks")
    dialog.setLabelText("Waiting for background tasks to finish…")
    dialog.setCancelButtonText("Stop waiting")
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.setMinimumDuration(0)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    return dialog
