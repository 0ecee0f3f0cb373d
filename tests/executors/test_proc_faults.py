"""Fault injection for process tasks and jobs: killed and crashing workers, programs
killed by signals, and grandchildren (processes started by a task or a program) that
must not outlive a stop, a shut-down or interpreter exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import _process_funcs as f
import pytest

from bgtasks import TaskState
from bgtasks.jobs import Job, JobError, JobResult
from bgtasks.processes import ProcessExecutor, WorkerDied

PY = sys.executable
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
# A program with a grandchild: the shell prints the pid of its background sleep, then waits.
SHELL_WITH_GRANDCHILD = ["-c", "sleep 60 & echo $!; wait"]


def dead(pid: int) -> bool:
    """True if ``pid`` is gone or a zombie (dead; an orphan's zombie may never be reaped
    here: this machine's pid 1 does not reap)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


def wait_dead(pid: int, timeout: float = 10.0) -> bool:
    """Poll until ``pid`` is dead, at most ``timeout`` seconds; whether it died."""
    deadline = time.monotonic() + timeout
    while not dead(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)  # polling with a deadline, not synchronisation
    return True


def kill_if_alive(pid: int) -> None:
    """Clean up after a failing test: a leaked grandchild must not run for a minute."""
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


@pytest.fixture
def manager(make_manager):
    return make_manager(start_processing=True, max_threads=4)


def wait_status(qtbot, manager, uid):
    qtbot.waitUntil(lambda: manager.info(uid).status is not None, timeout=20000)
    return manager.info(uid).status


def job_grandchild(qtbot, job: Job) -> int:
    """Wait until the job's shell printed its background child's pid; that pid."""
    qtbot.waitUntil(lambda: job.stdout.endswith("\n"), timeout=10000)
    return int(job.stdout)


# ------------------------------------------------------------ process tasks: grandchildren


@pytest.mark.parametrize("stubborn", [False, True], ids=["plain", "worker-ignores-sigterm"])
def test_cancel_kills_the_grandchildren_of_a_process_task(qtbot, manager, stubborn):
    ex = ProcessExecutor(1, grace=0.3)
    handle = manager.options(executor=ex).submit(f.start_grandchild_and_wait, stubborn)
    worker, child = wait_status(qtbot, manager, handle.uid)
    try:
        with qtbot.waitSignal(manager.task_cancelled, timeout=20000):
            assert handle.cancel()
        assert manager.task_state(handle.uid) is TaskState.CANCELLED
        assert wait_dead(worker)
        assert wait_dead(child)
        assert manager.options(executor=ex).submit(f.add, 1, 2).result(timeout=20) == 3
    finally:
        kill_if_alive(child)


def test_shut_down_kills_the_grandchildren_of_a_process_task(qtbot, make_manager):
    manager = make_manager(start_processing=True)
    ex = ProcessExecutor(1, grace=0.3)
    manager.set_executor("process", ex)
    handle = manager.options(executor="process").submit(f.start_grandchild_and_wait)
    worker, child = wait_status(qtbot, manager, handle.uid)
    try:
        manager.shut_down(timeout=0.5)
        assert wait_dead(worker)
        assert wait_dead(child)
        assert ex.worker_pids() == []
    finally:
        kill_if_alive(child)


def test_a_crashed_worker_takes_its_grandchildren_along(qtbot, manager):
    ex = ProcessExecutor(1)
    handle = manager.options(executor=ex).submit(f.start_grandchild_and_crash)
    error = handle.exception(timeout=20)
    worker, child = manager.info(handle.uid).status
    try:
        assert type(error) is WorkerDied and error.exitcode == -signal.SIGSEGV
        assert str(error) == (
            f"worker process was killed by signal SIGSEGV while running task {handle.uid} "
            f"(pid {worker})"
        )
        assert wait_dead(child)
    finally:
        kill_if_alive(child)


def _run_app(body: str, tmp_path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, signal, sys, threading, time
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
            sys.path.insert(0, {TESTS_DIR!r})
            import _process_funcs as f
            from PySide6.QtCore import QCoreApplication
            from bgtasks import BackgroundTaskManager
            from bgtasks.jobs import Job

            if __name__ == "__main__":
                app = QCoreApplication([])
                manager = BackgroundTaskManager(start_processing=True)
                manager.shutdown_timeout = 0.05
            """
        )
        + textwrap.indent(textwrap.dedent(body), "    ")
    )
    return subprocess.run([PY, str(script)], capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_interpreter_exit_kills_the_grandchildren_of_a_process_task(tmp_path):
    out = _run_app(
        """
        handle = manager.options(executor="process").submit(f.start_grandchild_and_wait)
        while manager.info(handle.uid).status is None:
            time.sleep(0.01)
        print(*manager.info(handle.uid).status, flush=True)   # then exit, no shut_down
        """,
        tmp_path,
    )
    worker, child = map(int, out.stdout.split())
    try:
        assert out.returncode == 0, out.stderr
        assert wait_dead(worker)
        assert wait_dead(child)
    finally:
        kill_if_alive(child)


@pytest.mark.slow
def test_a_parent_killed_by_sigkill_leaves_no_worker_or_grandchild(tmp_path):
    # No atexit hook runs: the worker sees its pipe close and takes its group along.
    out = _run_app(
        """
        handle = manager.options(executor="process").submit(f.start_grandchild_and_wait)
        while manager.info(handle.uid).status is None:
            time.sleep(0.01)
        print(*manager.info(handle.uid).status, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        tmp_path,
    )
    worker, child = map(int, out.stdout.split())
    try:
        assert out.returncode == -signal.SIGKILL, out.stderr
        assert wait_dead(worker)
        assert wait_dead(child)
    finally:
        kill_if_alive(worker)
        kill_if_alive(child)


# ------------------------------------------------------------ process tasks: crashes


def test_sigkill_of_a_busy_worker_fails_its_task_and_the_next_task_runs(qtbot, manager):
    ex = ProcessExecutor(1)
    handle = manager.options(executor=ex).submit(f.publish_pid_then_sleep)
    pid = wait_status(qtbot, manager, handle.uid)
    os.kill(pid, signal.SIGKILL)
    error = handle.exception(timeout=20)
    assert type(error) is WorkerDied and error.exitcode == -signal.SIGKILL
    assert str(error) == (
        f"worker process was killed by signal SIGKILL while running task {handle.uid} (pid {pid})"
    )
    assert manager.task_state(handle.uid) is TaskState.FAILED
    after = manager.options(executor=ex).submit(f.pid).result(timeout=20)
    assert after != pid and ex.worker_pids() == [after]


def test_a_null_pointer_read_fails_its_task_and_the_next_task_runs(qtbot, manager):
    ex = ProcessExecutor(1)
    first = manager.options(executor=ex).submit(f.pid).result(timeout=20)
    handle = manager.options(executor=ex).submit(f.null_pointer_read)
    error = handle.exception(timeout=20)
    assert type(error) is WorkerDied and error.exitcode == -signal.SIGSEGV
    assert str(error) == (
        f"worker process was killed by signal SIGSEGV while running task {handle.uid} (pid {first})"
    )
    after = manager.options(executor=ex).submit(f.add, 2, 3).result(timeout=20)
    assert after == 5 and first not in ex.worker_pids()


def test_an_idle_worker_killed_from_outside_is_replaced_silently(qtbot, manager):
    ex = ProcessExecutor(1)
    first = manager.options(executor=ex).submit(f.pid).result(timeout=20)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    # waitable (all its threads ended), not reaped: the pool finds out at the next task
    while os.waitid(os.P_PID, first, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    second = manager.options(executor=ex).submit(f.pid).result(timeout=20)
    assert second != first and ex.worker_pids() == [second]


# ------------------------------------------------------------ jobs: grandchildren


def test_cancel_kills_the_grandchildren_of_a_job(qtbot, make_manager):
    m = make_manager(start_processing=True)
    job = Job("sh", SHELL_WITH_GRANDCHILD, timetable=[300], grace=0.3)
    handle = m.submit(job)
    child = job_grandchild(qtbot, job)
    try:
        with qtbot.waitSignal(m.task_cancelled, timeout=10000):
            assert handle.cancel()
        assert m.task_state(handle.uid) is TaskState.CANCELLED
        assert job.exit_code == -signal.SIGTERM
        assert wait_dead(child)
    finally:
        kill_if_alive(child)


def test_shut_down_kills_the_grandchildren_of_a_job(qtbot, make_manager):
    m = make_manager(start_processing=True)
    job = Job("sh", SHELL_WITH_GRANDCHILD, timetable=[300], grace=0.3)
    m.submit(job)
    child = job_grandchild(qtbot, job)
    try:
        m.shut_down(timeout=10)
        assert dead(job.pid)
        assert wait_dead(child)
    finally:
        kill_if_alive(child)


def test_a_grandchild_that_ignores_sigterm_is_killed_after_grace(qtbot, make_manager):
    m = make_manager(start_processing=True)
    deaf_child = "trap '' TERM; sleep 60 & echo $!; wait"  # the sleep inherits the ignore
    job = Job("sh", ["-c", deaf_child], timetable=[300], grace=0.3)
    handle = m.submit(job)
    child = job_grandchild(qtbot, job)
    try:
        with qtbot.waitSignal(m.task_cancelled, timeout=10000):
            m.stop_task(handle.uid)
        assert job.exit_code == -signal.SIGKILL
        assert wait_dead(child)
    finally:
        kill_if_alive(child)


@pytest.mark.slow
def test_interpreter_exit_kills_the_grandchildren_of_a_job(tmp_path):
    out = _run_app(
        f"""
        job = Job("sh", {SHELL_WITH_GRANDCHILD!r}, timetable=[300], grace=0.3)
        manager.submit(job)
        while not job.stdout.endswith("\\n"):
            time.sleep(0.01)
        print(job.pid, job.stdout.strip(), flush=True)   # then exit, no shut_down
        """,
        tmp_path,
    )
    program, child = map(int, out.stdout.split())
    try:
        assert out.returncode == 0, out.stderr
        assert wait_dead(program)
        assert wait_dead(child)
    finally:
        kill_if_alive(child)


# ------------------------------------------------------------ jobs: signals


def test_a_job_killed_by_a_signal_from_outside_fails_naming_it(qtbot, make_manager):
    m = make_manager(start_processing=True)
    job = Job(PY, ["-c", "import time; time.sleep(60)"], timetable=[300])
    handle = m.submit(job)
    qtbot.waitUntil(lambda: job.pid is not None, timeout=10000)
    os.kill(job.pid, signal.SIGKILL)
    error = handle.exception(timeout=10)
    assert type(error) is JobError
    assert str(error) == f"{PY!r} was killed by signal 9 (SIGKILL)"
    assert error.result == JobResult(-signal.SIGKILL, "", "")
    assert m.task_state(handle.uid) is TaskState.FAILED
    again = Job(PY, ["-c", "print('next')"], timetable=[0.05])
    assert m.submit(again).result(timeout=10) == JobResult(0, "next\n", "")


@pytest.mark.parametrize("check", [True, False])
def test_a_program_that_segfaults_ends_with_minus_sigsegv(make_manager, check):
    m = make_manager(start_processing=True)
    code = "import ctypes, sys; print('before', flush=True); ctypes.string_at(0)"
    job = Job(PY, ["-c", code], timetable=[0.05], check=check)
    handle = m.submit(job)
    if check:
        error = handle.exception(timeout=10)
        assert type(error) is JobError
        assert str(error).startswith(f"{PY!r} was killed by signal 11 (SIGSEGV)")
        result = error.result
    else:
        result = handle.result(timeout=10)
    assert result.exit_code == -signal.SIGSEGV and result.stdout == "before\n"
