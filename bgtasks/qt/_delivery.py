"""Delivery: the core's events become signals and done-callbacks on the manager's thread.

A worker that records the first undelivered event posts one ``QEvent`` to the
manager.  The drain then emits signals for every event it finds, oldest first,
for at most ``drain_budget`` seconds per pass; if more remain it continues from
a zero-timer, so paint and input events interleave with a flood of results.
The event loop does not wait while that timer is due, so whatever ran before
it fired (a view's layout, a paint) is part of the same stall: the next pass
gets what is left of the budget, an eighth of it at least.
While workers run, the manager's thread beats the GIL gate (see
``bgtasks/core/_gil_gate.py``).  Owners (QObjects whose destruction cancels
their tasks) and the handles' done-callbacks live here too.

Never silent: a failure that no ``task_failed`` slot, done-callback or handle
observes is logged at ERROR on the ``bgtasks`` logger, with its traceback:
at delivery if the task has no live handle, else by the handles
(``FailureReport``) once the last of them is dropped unconsulted.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import deque
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QEvent, QMetaMethod, QObject, QThread, QTimer

from ..core import (
    GROUP_FINISHED,
    TASK_ADDED,
    TASK_CANCELLED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_PROGRESS,
    TASK_REMOVED,
    TASK_STARTED,
    TASK_STATE,
    TASK_STATUS,
    Scheduler,
    check_seconds,
)
from ..core._errors import UpstreamFailed
from ..core._handle import _WATCH_LOCK, FailureReport, TaskHandle
from ..core._state import TaskState

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance

    from ..core._gil_gate import GilGate

    _Base = QObject  # a mixin of a QObject: type-check it as one
else:
    _Base = object

log = logging.getLogger("bgtasks")

WAKE = QEvent.Type(QEvent.registerEventType())
BEAT_MS = 1  # the GIL gate's beat: well under its STALE_AFTER
_BEAT_QUIET_AFTER = 0.25  # no event from the workers for this long: stop beating

#: A state's value (how TASK_STATE events carry it) -> the state.
_STATE_OF = {state._value_: state for state in TaskState}

#: Signals whose events the scheduler produces only while they are connected.
_OPTIONAL_SIGNALS = {
    "task_started": TASK_STARTED,
    "task_state_changed": TASK_STATE,
    "task_added": TASK_ADDED,
    "task_removed": TASK_REMOVED,
    "task_status_changed": TASK_STATUS,
}


class Delivery(_Base):
    """The manager's delivery side (a mixin of BackgroundTaskManager, on its thread)."""

    # Set by BackgroundTaskManager.__init__ (see _init_delivery).
    _scheduler: Scheduler
    _shut_down: bool
    _drain_budget: float
    task_completed: SignalInstance
    task_failed: SignalInstance
    task_group_finished: SignalInstance
    task_cancelled: SignalInstance
    task_started: SignalInstance
    task_progress: SignalInstance
    task_state_changed: SignalInstance
    task_added: SignalInstance
    task_removed: SignalInstance
    task_status_changed: SignalInstance

    def _init_delivery(self) -> None:
        assert isinstance(self, QObject)
        self._pending: deque[tuple[Any, ...]] = deque()  # taken from the scheduler, not yet emitted
        self._callbacks: dict[
            int, list[tuple[TaskHandle[Any], Callable[[TaskHandle[Any]], Any]]]
        ] = {}
        self._callbacks_lock = threading.Lock()
        self._resume = QTimer(self)  # the drain continues after other timers had their turn
        self._resume.setSingleShot(True)
        self._resume.timeout.connect(self._drain)
        # While workers run, this thread beats the scheduler's GIL gate: a
        # worker that sees no beat for a few ms waits until this thread has
        # had the GIL (see core/_gil_gate.py).  Stopped when no worker runs.
        from PySide6.QtCore import Qt

        self._beat = QTimer(self)
        self._beat.setTimerType(Qt.TimerType.PreciseTimer)
        self._beat.setInterval(BEAT_MS)
        self._beat.timeout.connect(self._on_beat)
        self._drained_at = 0.0  # perf_counter() of the last drain
        self._resumed_at = 0.0  # perf_counter() when a pass that ran out of budget ended
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()  # any thread
        self._owners: dict[int, set[int]] = {}  # id(owner) -> uids
        self._owner_of: dict[int, int] = {}  # uid -> id(owner)
        self._receivers: dict[int, int] = {}  # optional event kind -> connections
        # (from the meta-object: QMetaMethod.fromSignal(self.task_failed) would keep self alive)
        self._failed_signal = _signal_method(self, "task_failed")

    def _stop_delivery(self) -> None:
        """shut_down(): nothing more is delivered."""
        self._pending.clear()
        self._resume.stop()
        self._beat.stop()
        with self._callbacks_lock:
            self._callbacks.clear()

    def _own(self, owner: QObject, uid: int) -> None:
        key = id(owner)
        with self._callbacks_lock:
            uids = self._owners.get(key)
            first = uids is None
            if uids is None:
                uids = self._owners[key] = set()
            uids.add(uid)
            self._owner_of[uid] = key
        if first:
            owner.destroyed.connect(functools.partial(self._owner_destroyed, key))

    def _owner_destroyed(self, key: int, *_: object) -> None:
        # The owner's own slots went with it (Qt disconnects a destroyed
        # receiver); the registry's signals and the handles' done-callbacks
        # still report how its tasks end, so monitors and waiters see it.
        with self._callbacks_lock:
            uids = self._owners.pop(key, set())
            for uid in uids:
                self._owner_of.pop(uid, None)
        if not self._shut_down:
            self._scheduler.stop_uids(uids)

    # -- what a TaskHandle needs of its manager (core/_handle.py: HandleOwner).
    # Public so the handle depends on a protocol, not on the manager's insides;
    # code outside bgtasks uses the handle's own methods instead.

    def stop_handle(self, uid: int) -> bool:
        """For ``TaskHandle.cancel()``: stop the task and its downstream tasks.  Any thread.

        Its upstream tasks are left alone.

        Args:
            uid: The task's uid.

        Returns:
            False if the task had already ended, else True.

        Raises:
            TypeError: ``uid`` is not an int.
            KeyError: a uid this manager never issued, or one forgotten.
        """
        return self._scheduler.stop(uid, False, True)

    def handle_will_block(self) -> None:
        """For ``TaskHandle.result()``/``exception()``: the calling thread is about
        to block on a task.  If it is the manager's thread, workers stop giving
        the GIL way to it until its next beat (they may be what it waits for).
        Any thread."""
        self._scheduler.gate.blocking()

    def add_handle_callback(
        self, handle: TaskHandle[Any], fn: Callable[[TaskHandle[Any]], Any]
    ) -> None:
        """For ``TaskHandle.add_done_callback()``: call ``fn(handle)`` when it is done.

        Any thread may call this; ``fn`` runs on the manager's thread once
        ``handle`` is done (soon, if it already is), and what it raises is
        logged.

        Args:
            handle: A handle this manager issued.
            fn: Called with ``handle`` as its only argument.
        """
        with self._callbacks_lock:
            if not handle.done():
                self._callbacks.setdefault(handle.uid, []).append((handle, fn))
                return
        self._call_soon(fn, handle)

    @property
    def drain_budget(self) -> float:
        """Seconds a delivery pass may spend emitting signals before it yields
        to the event loop (default 0.004); a pass that continues one which ran
        out of it counts what the event loop ran in between (a view's layout, a
        paint) against it, down to an eighth of it.

        Read on any thread; set on the manager's thread (``ValueError`` for a
        negative, NaN or infinite value: no time is ever past NaN, and a drain
        that never yields freezes the UI for a whole flood).
        """
        return self._drain_budget

    @drain_budget.setter
    def drain_budget(self, seconds: float) -> None:
        self._drain_budget = float(check_seconds("drain_budget", seconds))

    # -- introspection of the GIL gate's beat (tests, diagnostics); read-only.

    @property
    def gil_gate(self) -> GilGate:
        """The GIL gate between this manager's thread and its workers
        (``bgtasks/core/_gil_gate.py``): the manager's thread beats it while
        workers run, and a worker that sees no beat gives way.  Any thread may
        read it; only the manager's thread beats it."""
        return self._scheduler.gate

    @property
    def is_beating(self) -> bool:
        """Whether the manager's thread is beating the GIL gate now (its 1 ms
        beat timer runs: workers run and their events keep coming).  Manager's
        thread."""
        return self._beat.isActive()

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._shut_down:
            return
        if QThread.currentThread() is self.thread():
            _call_logged(fn, *args)
        else:
            self._calls.append((fn, args))
            QCoreApplication.postEvent(self, QEvent(WAKE))

    def connectNotify(self, signal: QMetaMethod) -> None:  # noqa: N802 - Qt override
        self._count_receivers(signal, 1)

    def disconnectNotify(self, signal: QMetaMethod) -> None:  # noqa: N802 - Qt override
        self._count_receivers(signal, -1)

    def _count_receivers(self, signal: QMetaMethod, delta: int) -> None:
        kind = _OPTIONAL_SIGNALS.get(bytes(signal.name().data()).decode())
        scheduler = getattr(self, "_scheduler", None)
        if kind is None or scheduler is None:
            return
        counts = self._receivers
        counts[kind] = max(0, counts.get(kind, 0) + delta)
        scheduler.watch(k for k, n in counts.items() if n > 0)

    def event(self, ev: QEvent) -> bool:
        if ev.type() == WAKE:
            self._drain()
            return True
        return super().event(ev)

    def _on_beat(self) -> None:
        # Beat while workers run and their events keep coming: tasks that run
        # long and quietly reach no point where they could give way, and a
        # 1 ms timer would only keep this thread (and the CPU) awake.
        if (
            self._scheduler.workers_running()
            and perf_counter() - self._drained_at < _BEAT_QUIET_AFTER
        ):
            self._scheduler.gate.beat()
        else:
            self._beat.stop()
            self._scheduler.gate.stop()

    def _drain(self) -> None:
        # Events move from the scheduler to self._pending and are emitted from
        # there one at a time, so a slot that spins a nested event loop (a
        # modal dialog) gets a nested drain that continues in order.
        if not self._shut_down:
            # this thread has the GIL: no worker needs to wait for it.  (A drain
            # is bounded by drain_budget, however the workers slow it down.)
            self._drained_at = perf_counter()
            self._scheduler.gate.beat()
            if not self._beat.isActive():
                self._beat.start()
        calls = self._calls
        while calls:
            fn, args = calls.popleft()
            _call_logged(fn, *args)
        pending = self._pending
        take = self._scheduler.take_events
        now = perf_counter()
        budget = self._drain_budget
        if self._resumed_at:
            # The last pass ran out of budget and left a zero-timer due: the
            # event loop has not waited since, so what ran in between (a view's
            # layout, a paint) is part of the same stall.  This pass takes what
            # is left of the budget, and an eighth of it at least.
            budget = max(budget - (now - self._resumed_at), budget / 8)
            self._resumed_at = 0.0
        deadline = now + budget
        # Bound once a pass, not once an event: on a PySide object a method
        # lookup costs ~90 ns and ``self.task_completed.emit`` ~170 ns.
        deliver = self._deliver
        emit_completed = self.task_completed.emit
        while not self._shut_down:
            if not pending:
                events = take()
                if not events:
                    return
                pending.extend(events)
            while pending and not self._shut_down:
                event = pending.popleft()
                if event[0] == TASK_COMPLETED and not self._callbacks and not self._owner_of:
                    # the common end, with no done-callback to run: inline
                    emit_completed(event[1], event[2], event[3])
                else:
                    deliver(event)
                now = perf_counter()
                if now >= deadline:
                    # Continue from a zero-timer, not a posted event: Qt handles
                    # posted events before timers, so a posted event would run
                    # the next pass back to back with this one.
                    self._resumed_at = now
                    self._resume.start(0)
                    return

    def _deliver(self, event: tuple[Any, ...]) -> None:
        # Every field read here was captured in the event under the
        # scheduler's lock (take_events); the task records are only read for
        # their uid and group, which never change.
        kind = event[0]
        if kind == TASK_STATE:  # (kind, uid, group, state's value): no record
            self.task_state_changed.emit(event[1], event[2], _STATE_OF[event[3]])
            return
        if kind == TASK_ADDED:  # (kind, uid, group)
            self.task_added.emit(event[1], event[2])
            return
        if kind == TASK_COMPLETED:  # (kind, uid, group, result)
            uid = event[1]
            self.task_completed.emit(uid, event[2], event[3])
            self._ended(uid)
            return
        task = event[1]
        if kind == TASK_PROGRESS:
            task = event[2]
            self.task_progress.emit(task.uid, task.group, event[3], event[4])
            return
        elif kind == GROUP_FINISHED:
            self.task_group_finished.emit(task)
            return
        elif kind == TASK_FAILED:
            self.task_failed.emit(task.uid, task.group, event[2], event[3])
            if not self.isSignalConnected(self._failed_signal):
                _report_unheard(event)
        elif kind == TASK_CANCELLED:
            self.task_cancelled.emit(task.uid, task.group)
        elif kind == TASK_REMOVED:
            self.task_removed.emit(task, event[2])
            return
        else:
            if kind == TASK_STARTED:
                self.task_started.emit(task.uid, task.group)
            elif kind == TASK_STATUS:
                self.task_status_changed.emit(task.uid, task.group, event[2])
            return
        self._ended(task.uid)

    def _ended(self, uid: int) -> None:
        """A task's end was delivered: its done-callbacks, and its owner forgets it."""
        if self._callbacks or self._owner_of:
            with self._callbacks_lock:
                callbacks = self._callbacks.pop(uid, None)
                if callbacks and not all(handle.done() for handle, _ in callbacks):
                    # handles of a newer run (retry) wait for that run's end
                    later = [c for c in callbacks if not c[0].done()]
                    self._callbacks[uid] = later
                    callbacks = [c for c in callbacks if c[0].done()]
                key = self._owner_of.pop(uid, None)
                if key is not None:
                    self._owners.get(key, set()).discard(uid)
            if callbacks:
                for handle, fn in callbacks:
                    _call_logged(fn, handle)


def _signal_method(obj: QObject, name: str) -> QMetaMethod:
    meta = obj.metaObject()
    for i in range(meta.methodCount()):
        method = meta.method(i)
        if method.methodType() == QMetaMethod.MethodType.Signal and method.name() == name:
            return method
    raise LookupError(f"{type(obj).__name__} has no signal {name!r}")


def _report_unheard(event: tuple[Any, ...]) -> None:
    """A failure no slot heard: log it now, or leave it to its handles."""
    task = event[1]
    if isinstance(task.error, UpstreamFailed):
        return  # it did not run: the failure upstream is the one to report
    handles: list[TaskHandle[Any]] | None = event[4]
    if handles:
        with _WATCH_LOCK:
            if any(h._watch is True for h in handles):
                return  # result()/exception()/a done-callback has seen it
            # logged when the last handle is dropped, unless one is consulted first
            report = FailureReport(task.uid, task.name, event[2], event[3])
            for h in handles:
                h._watch = report
        return
    log.error(
        "task %s (%s) failed, and no task_failed slot, done-callback or handle observed it: %s\n%s",
        task.uid, task.name, event[2], event[3].rstrip("\n"),
    )  # fmt: skip


def _call_logged(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("bgtasks: a done-callback raised")
