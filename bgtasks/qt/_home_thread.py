"""Qt objects of bgtasks are destroyed on their own thread, whoever drops them.

The last reference to a QObject can die on any thread: the cyclic garbage
collector runs on whichever thread happens to allocate, and a worker, a Dask
thread or a timer can hold the last reference for a moment.  Shiboken then
deletes the C++ object right there, off the object's thread.  That is what
crashed the suite under load: ``~QObject`` on a worker posts the
``destroyed`` signal's queued call (and the drain's wake-ups are posted too)
to the dying object itself, and the object's thread, delivering one of those
events at the same moment, called ``QObject::event`` on it and wrote through
a null pointer.

``DiesAtHome`` keeps such an object alive when its finalizer runs on a
foreign thread (PEP 442 resurrection) and posts it home, to a small releaser
object living on that thread; the home thread deletes the C++ object on its
next turn of the event loop, the normal way.  The mixin adds no ``event``
override, so the objects that use it pay nothing per event.  If the home thread has no event loop any more the object is
simply kept until the process ends, which is better than a crash.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject
from shiboken6 import Shiboken

#: Posted to a home thread's releaser: delete what was parked for that thread.
RELEASE = QEvent.Type(QEvent.registerEventType())

_LOCK = threading.Lock()
# Objects whose finalizer ran on a foreign thread, by home thread, until that
# thread deletes them; and each home thread's releaser.
_PARKED: dict[int, list[Any]] = {}
_RELEASERS: dict[int, _Releaser] = {}


def parked_count() -> int:
    """How many objects wait for their home thread to delete them.  Any thread."""
    with _LOCK:
        return sum(len(objs) for objs in _PARKED.values())


class _Releaser(QObject):
    """Lives on one home thread and deletes what was parked for it there."""

    def __init__(self, ident: int) -> None:
        super().__init__()
        self._ident = ident

    def event(self, ev: QEvent) -> bool:
        if ev.type() != RELEASE:
            return super().event(ev)
        with _LOCK:
            objs = _PARKED.pop(self._ident, [])
        for obj in objs:
            # Delete the C++ object here: the wrapper may still be in a
            # reference cycle, and the collector that frees it could run on
            # any thread (its finalizer, which parked it, does not run twice).
            if Shiboken.isValid(obj):
                obj._before_home_delete()
                Shiboken.delete(obj)
        return True


class DiesAtHome:
    """Mixin for a QObject subclass: its C++ object is destroyed on its thread.

    Call ``_remember_home`` in ``__init__``, on the object's thread, after
    ``QObject.__init__``.  Only objects that Python owns are protected (one
    with a parent is deleted by its parent, on the parent's thread).
    """

    _home_ident: int | None = None

    def _remember_home(self) -> None:
        ident = threading.get_ident()
        with _LOCK:
            if ident not in _RELEASERS:
                _RELEASERS[ident] = _Releaser(ident)
        self._home_ident = ident

    def _before_home_delete(self) -> None:
        """Called on the home thread just before a parked object is deleted."""

    def __del__(self) -> None:
        home = self._home_ident
        if home is None or threading.get_ident() == home:
            return
        try:
            me: Any = self  # a QObject: the mixin is only used on QObject subclasses
            if not (Shiboken.isValid(me) and Shiboken.ownedByPython(me)):
                return  # already gone, or a parent deletes it on its thread
            with _LOCK:
                _PARKED.setdefault(home, []).append(self)  # resurrected
                releaser = _RELEASERS[home]
            QCoreApplication.postEvent(releaser, QEvent(RELEASE))
        except Exception:  # interpreter shutdown: nothing left to protect
            pass
