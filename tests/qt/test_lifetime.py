"""Interpreter exit, deletion and application quit, each in a fresh subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import os, sys, threading
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QCoreApplication, QObject, QTimer
from bgtasks import BackgroundTaskManager
app = QCoreApplication([])
started = threading.Event()
forever = threading.Event()  # never set: the task never returns by itself
def stuck():
    started.set()
    forever.wait()
"""


def run(body: str, timeout: float = 60) -> subprocess.CompletedProcess:
    code = PRELUDE + textwrap.dedent(body)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert "QThread: Destroyed" not in proc.stderr
    assert "Fatal Python error" not in proc.stderr
    return proc


pytestmark = pytest.mark.slow


def test_delete_right_after_shut_down_with_a_stuck_task():
    proc = run(
        """
        m = BackgroundTaskManager(start_processing=True)
        m.add_task(stuck)
        started.wait(10)
        m.shut_down(timeout=0.1)
        del m
        import gc; gc.collect()
        print("alive")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "alive"


def test_interpreter_exit_without_shut_down_and_a_stuck_task():
    proc = run(
        """
        m = BackgroundTaskManager(start_processing=True)
        m.shutdown_timeout = 0.1
        m.add_task(stuck)
        for _ in range(100):
            m.add_task(len, task_args=[()])
        started.wait(10)
        print("exiting")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "exiting"


def test_interpreter_exit_with_finished_work_and_no_event_loop():
    proc = run(
        """
        m = BackgroundTaskManager(start_processing=True)
        done = threading.Semaphore(0)
        for _ in range(1000):
            m.add_task(done.release)
        for _ in range(1000):
            done.acquire()
        print("done")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"


def test_garbage_collected_manager_while_a_task_runs():
    proc = run(
        """
        import gc
        m = BackgroundTaskManager(start_processing=True)
        m.add_task(stuck)
        started.wait(10)
        del m
        gc.collect()
        QCoreApplication.processEvents()
        print("alive")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "alive"


def test_parent_deleted_while_results_keep_coming():
    proc = run(
        """
        import shiboken6, time
        parent = QObject()
        m = BackgroundTaskManager(parent, start_processing=True)
        release = threading.Event()
        def later(i):
            release.wait(10)
            return i
        for i in range(2000):
            m.add_task(later, task_args=[i])
        shiboken6.delete(parent)     # deletes the manager's C++ object too
        release.set()                 # workers now finish while the manager is gone
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            QCoreApplication.processEvents()
        print("alive")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "alive"


def test_application_quit_shuts_down_a_manager_with_a_stuck_task():
    proc = run(
        """
        m = BackgroundTaskManager(start_processing=True)
        m.shutdown_timeout = 0.1
        m.add_task(stuck)
        started.wait(10)
        QTimer.singleShot(0, app.quit)
        app.exec()
        try:
            m.add_task(print)
        except RuntimeError as exc:
            print(exc)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "this task manager has been shut down; it accepts no new tasks"
