"""The crash evidence of tests/conftest.py (issue 11): a native crash in a test, or during
interpreter exit, leaves every thread's stack in $BGTASKS_CRASH_DIR/pytest-<pid>.log, and
pytest's own per-test timeout dump (faulthandler_timeout) still reaches stderr.

Each case runs a small pytest session in a subprocess that uses a copy of this conftest.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

pytestmark = pytest.mark.slow

PARKED_THREAD = """
import threading
_parked = threading.Event()

def parked_worker_thread():
    _parked.wait()

threading.Thread(target=parked_worker_thread, daemon=True).start()
"""


def run_session(tmp_path, test_source, *options, timeout=120):
    """Run pytest on ``test_source`` with this conftest; (process, crash logs by name)."""
    shutil.copy(os.path.join(TESTS_DIR, "conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_case.py").write_text(textwrap.dedent(test_source))
    crash = tmp_path / "crash"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}
    env["BGTASKS_CRASH_DIR"] = str(crash)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_case.py",
         *options],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    logs = {}
    for path in glob.glob(str(crash / "*.log")):
        with open(path) as f:
            logs[os.path.basename(path)] = f.read()
    return proc, logs


def only_log(proc, logs):
    assert len(logs) == 1, (logs, proc.stdout, proc.stderr)
    return next(iter(logs.values()))


def test_a_segfault_in_a_test_leaves_every_threads_stack(tmp_path):
    proc, logs = run_session(
        tmp_path,
        PARKED_THREAD
        + textwrap.dedent("""
        import ctypes

        def test_boom():
            ctypes.string_at(0)
    """),
    )
    assert proc.returncode == -signal.SIGSEGV, (proc.stdout, proc.stderr)
    log = only_log(proc, logs)
    assert "running test_case.py::test_boom" in log.splitlines()[0]
    assert "Fatal Python error: Segmentation fault" in log
    assert "test_boom" in log and "parked_worker_thread" in log  # all threads


def test_an_abort_in_a_worker_thread_leaves_its_stack(tmp_path):
    # qFatal ("QThread: Destroyed while thread is still running") aborts like this.
    proc, logs = run_session(
        tmp_path,
        """
        import os
        import threading

        def aborting_worker():
            os.abort()

        def test_abort_from_a_thread():
            t = threading.Thread(target=aborting_worker)
            t.start()
            t.join()
    """,
    )
    assert proc.returncode == -signal.SIGABRT, (proc.stdout, proc.stderr)
    log = only_log(proc, logs)
    assert "Fatal Python error: Aborted" in log
    assert "aborting_worker" in log and "test_abort_from_a_thread" in log


def test_a_crash_during_interpreter_exit_leaves_its_stack(tmp_path):
    proc, logs = run_session(
        tmp_path,
        """
        import atexit
        import ctypes

        def crash_at_exit():
            ctypes.string_at(0)

        def test_registers_a_crash_for_exit():
            atexit.register(crash_at_exit)
    """,
    )
    assert proc.returncode == -signal.SIGSEGV, (proc.stdout, proc.stderr)
    assert "1 passed" in proc.stdout
    log = only_log(proc, logs)
    assert "pytest finished" in log.splitlines()[0]
    assert "Fatal Python error: Segmentation fault" in log and "crash_at_exit" in log


def test_a_clean_run_leaves_one_note_which_the_next_run_removes(tmp_path):
    proc, logs = run_session(tmp_path, "def test_fine():\n    pass\n")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    log = only_log(proc, logs)
    assert len(log.splitlines()) == 1 and "pytest finished" in log
    proc, again = run_session(tmp_path, "def test_fine():\n    pass\n")
    assert len(again) == 1 and set(again) != set(logs)  # the old note is gone, a new one made


def test_the_timeout_dump_still_goes_to_stderr(tmp_path):
    proc, logs = run_session(
        tmp_path,
        """
        import time

        def test_stuck_for_a_while():
            time.sleep(3)
    """,
        "-o",
        "faulthandler_timeout=0.5",
        "-p",
        "no:timeout",
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "Timeout (0:00:00.500000)!" in proc.stderr, proc.stderr
    assert "test_stuck_for_a_while" in proc.stderr
    assert "Fatal Python error" not in only_log(proc, logs)


# ------------------------------------------------------------------ the crash it found

# PySide6 (6.8 on) creates a module's Python types on first use, and that is not
# thread-safe: making a type runs Python code (its enums come from the enum module),
# the GIL passes to another thread meanwhile, and a thread that touches a type of the
# same module not created yet dies with SIGSEGV in Shiboken::Module::get.  Worker
# threads first-touching QImage, QPainter, QProcess... did that under load (the demo's
# sample tasks: QImage.save in 8 workers).  Eight tasks that first-touch every type of
# QtCore, QtGui and QtWidgets in different orders crash about 6 runs in 10 without a
# guard; the manager creates the types of the loaded Qt modules before its workers run
# (bgtasks/qt/_qt_types.py).
FIRST_TOUCH = """
import random
from PySide6 import QtCore, QtGui, QtWidgets
app = QtCore.QCoreApplication([])
from bgtasks import BackgroundTaskManager
names = [(m, n) for m in (QtCore, QtGui, QtWidgets) for n in dir(m) if n.startswith("Q")]

def first_touch(seed):
    order = names[:]
    random.Random(seed).shuffle(order)
    for module, name in order:
        getattr(module, name)
    return seed

manager = BackgroundTaskManager(start_processing=True, max_threads=8)
handles = [manager.submit(first_touch, k) for k in range(8)]
print(sorted(h.result(timeout=60) for h in handles))
manager.shut_down()
"""


def test_workers_that_first_touch_qt_types_at_once_do_not_crash_the_process():
    env = {k: v for k, v in os.environ.items() if k != "PYSIDE6_OPTION_LAZY"}  # lazy: the default
    env["PYTHONFAULTHANDLER"] = "1"
    for attempt in range(3):
        proc = subprocess.run(
            [sys.executable, "-c", FIRST_TOUCH], env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, f"attempt {attempt}: exit {proc.returncode}\n{proc.stderr}"
        assert proc.stdout.strip() == str(list(range(8)))
