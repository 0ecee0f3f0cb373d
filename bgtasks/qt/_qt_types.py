"""Create the Python types of the loaded PySide6 modules on the manager's thread.

PySide6 (6.8 on) creates a module's Python types on first use.  That is not
thread-safe: creating a type runs Python code (its enums come from the
``enum`` module), the GIL passes to another thread meanwhile, and a thread
that touches a type of the same module not created yet dies with SIGSEGV in
``Shiboken::Module::get``.  Worker threads that first-touch ``QImage``,
``QPainter``, ``QProcess``... did that under load (found by the crash hunt of
issue 11; ``tests/test_crash_guard.py`` reproduces it).  So before the
manager's workers run, the manager's thread creates every type of every
PySide6 module loaded by then, once per module (~80 ms for QtCore, QtGui and
QtWidgets together).  A module that a task itself imports later is not
covered: import it (or create a manager) on the UI thread first.
"""

from __future__ import annotations

import sys
import threading

_done: set[str] = set()
_lock = threading.Lock()


def create_loaded_qt_types() -> int:
    """Create the types of every PySide6 module loaded and not yet handled; returns how many
    modules were handled.  Call it on the thread that owns the manager, before workers run."""
    handled = 0
    with _lock:
        for name, module in list(sys.modules.items()):
            if not name.startswith("PySide6.Qt") or name in _done or module is None:
                continue
            _done.add(name)
            handled += 1
            for attr in dir(module):
                if attr.startswith("Q"):
                    try:
                        getattr(module, attr)
                    except Exception:  # noqa: BLE001, S112 - a type that cannot load is not used
                        continue
    return handled
