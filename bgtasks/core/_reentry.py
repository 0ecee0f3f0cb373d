"""Calls from finalizers under the lock, and references that must not die under it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ._fields import (
    SchedulerFields,
    log,
)


class Reentry(SchedulerFields):
    """No user object dies under the lock; a call from the thread that holds it waits for its release."""

    def _init_reentry(self) -> None:
        # Re-entrant only so that a call from a finalizer that the garbage
        # collector runs under it can be told apart and deferred (_reentered).
        self._lock = threading.RLock()
        #: References dropped under the lock, released after it (_bury).
        self._grave = []
        #: The thread that owns the scheduler (the manager's): the only one that
        #: releases the graveyard (see Reentry._bury).
        self._owner_ident = threading.get_ident()
        #: Calls made under the lock by the thread holding it, run after it (_run_deferred).
        self._deferred = []

    def _defer(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Not under the lock: if this thread holds it, queue ``fn(*args)`` for
        when it is released and return True."""
        if self._lock._is_owned():  # type: ignore[attr-defined]
            self._deferred.append((fn, args))
            return True
        return False

    def _run_deferred(self) -> None:
        """Run the calls deferred by _defer; the lock is not held here."""
        if self._lock._is_owned():  # type: ignore[attr-defined]
            return  # still inside an outer hold: its release runs them
        deferred = self._deferred
        while deferred:
            try:
                fn, args = deferred.pop(0)
            except IndexError:  # another thread took the last one
                return
            try:
                fn(*args)
            except Exception:
                log.exception("bgtasks: a call deferred from a finalizer failed: %r%r", fn, args)

    def _bury(self) -> None:
        """Release the references dropped under the lock, on the owner's thread only.

        What the scheduler drops may hold Qt objects (a handle holds its
        manager; a result or a task's arguments may hold widgets): releasing
        them in a worker could destroy a QObject off its thread, which Qt does
        not survive (a manager destroyed in a worker while its thread delivered
        a posted event to it crashed the process).  Workers leave the grave to
        the owner, whose next take_events empties it.
        """
        if self._lock._is_owned() or threading.get_ident() != self._owner_ident:  # type: ignore[attr-defined]
            return
        grave, self._grave = self._grave, []
        grave.clear()

    def _after(self) -> None:
        """After a lock hold: release what died under it, run what was deferred."""
        if self._grave:
            self._bury()
        if self._deferred:
            self._run_deferred()
