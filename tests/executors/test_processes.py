"""ProcessExecutor: tasks in spawned worker processes, hard cancel, crashes, remote errors.

Most tests go through ``manager.options(executor=ex).submit(...)``, as users do; each
test has its own small executor (the manager shuts it down with itself).
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
import textwrap
import threading

import _process_funcs as f
import pytest

from bgtasks import TaskCancelled, TaskState
from bgtasks.processes import ProcessExecutor, RemoteTraceback, UnpicklableError, WorkerDied

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def is_dead(pid: int) -> bool:
    """True once ``pid`` no longer exists (the executor reaps its workers)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def manager(make_manager):
    return make_manager(start_processing=True, max_threads=4)


def wait_status(qtbot, manager, uid):
    """Wait until the task published its worker's pid as status; return it."""
    qtbot.waitUntil(lambda: manager.info(uid).status is not None, timeout=20000)
    return manager.info(uid).status


# ------------------------------------------------------------------- check


def test_check_refuses_a_lambda_with_the_reason():
    ex = ProcessExecutor(1)
    with pytest.raises(TypeError) as info:
        ex.check(lambda: 1, (), {})
    assert str(info.value) == (
        "cannot run <lambda> in a worker process: it is a lambda; define it at module level"
    )


def test_check_refuses_a_local_function_naming_it():
    def inner():
        return 1

    with pytest.raises(TypeError) as info:
        ProcessExecutor(1).check(inner, (), {})
    assert str(info.value) == (
        "cannot run test_check_refuses_a_local_function_naming_it.<locals>.inner in a worker "
        "process: it is a local function defined inside "
        "test_check_refuses_a_local_function_naming_it(); define it at module level"
    )


def test_check_refuses_a_bound_method_of_an_unpicklable_object():
    with pytest.raises(TypeError) as info:
        ProcessExecutor(1).check(f.Picky().method, (), {})
    assert str(info.value) == (
        "cannot run Picky.method in a worker process: it is a bound method of Picky object "
        "that cannot be pickled (TypeError: cannot pickle '_thread.lock' object)"
    )


def test_check_refuses_unpicklable_arguments_naming_them():
    ex = ProcessExecutor(1)
    lock = threading.Lock()
    with pytest.raises(TypeError, match=r"^cannot send argument 1 of add to a worker process: "):
        ex.check(f.add, (1, lock), {})
    with pytest.raises(TypeError) as info:
        ex.check(f.add, (1,), {"b": lock})
    assert str(info.value) == (
        f"cannot send argument 'b' of add to a worker process: {lock!r} cannot be pickled "
        "(TypeError: cannot pickle '_thread.lock' object)"
    )
    with pytest.raises(TypeError, match=r"argument 0 of add .*<lambda>"):
        ex.check(f.add, (lambda: 1,), {})


def test_check_accepts_module_functions_partials_and_picklable_methods():
    ex = ProcessExecutor(1)
    ex.check(f.add, (1, 2), {})
    ex.check(functools.partial(f.add, 1), (), {"b": 2})
    ex.check(f.Plain(3).get, (), {"extra": 1})
    with pytest.raises(TypeError) as info:
        ex.check(functools.partial(_local_function()), (), {})
    assert str(info.value) == (
        "cannot run _local_function.<locals>.g in a worker process: it is a local function "
        "defined inside _local_function(); define it at module level"
    )


def _local_function():
    def g():
        return 1

    return g


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_workers": 0}, ValueError, "max_workers must be a positive integer, got 0"),
        ({"max_workers": 1.5}, ValueError, "max_workers must be a positive integer, got 1.5"),
        ({"min_workers": -1}, ValueError, "min_workers must be a non-negative integer, got -1"),
        (
            {"max_workers": 2, "min_workers": 3},
            ValueError,
            "min_workers (3) must not exceed max_workers (2)",
        ),
        (
            {"idle_timeout": -1},
            ValueError,
            "idle_timeout must be a non-negative number of seconds, got -1",
        ),
        (
            {"idle_timeout": float("nan")},
            ValueError,
            "idle_timeout must be a non-negative number of seconds, got nan",
        ),
        ({"grace": True}, ValueError, "grace must be a non-negative number of seconds, got True"),
        (
            {"grace": float("inf")},
            ValueError,
            "grace must be a finite number of seconds of at most 9223372036, got inf",
        ),
        (
            {"cancel_window": "1"},
            ValueError,
            "cancel_window must be a non-negative number of seconds, got '1'",
        ),
        ({"clock": 3}, TypeError, "clock must be callable, got 3"),
    ],
)
def test_constructor_rejects_bad_values_naming_them(kwargs, error, message):
    with pytest.raises(error) as info:
        ProcessExecutor(**kwargs)
    assert str(info.value) == message.replace("9223372036", f"{threading.TIMEOUT_MAX:.0f}")


def test_idle_timeout_may_be_inf():
    ex = ProcessExecutor(1, idle_timeout=float("inf"))
    assert ex.idle_timeout == float("inf")
    ex.shut_down()


def test_submit_refuses_a_lambda_at_the_call_and_registers_nothing(manager):
    with pytest.raises(TypeError, match=r"^cannot run <lambda> in a worker process"):
        manager.options(executor=ProcessExecutor(1)).submit(lambda: 1)
    assert manager.tasks() == []


# ------------------------------------------------------------------- results and errors


def test_process_task_runs_in_another_process_and_reuses_its_worker(qtbot, manager):
    ex = ProcessExecutor(1)
    first = manager.options(executor=ex).submit(f.pid)
    second = manager.options(executor=ex).submit(f.pid)
    a, b = first.result(timeout=20), second.result(timeout=20)
    assert a == b != os.getpid()
    assert ex.worker_pids() == [a]
    assert os.getpgid(a) == a  # its own process group: a terminal's Ctrl+C does not reach it
    assert ex.workers_started == 1
    assert manager.options(executor=ex).submit(f.add, 2, b=3).result(timeout=20) == 5


def test_default_process_executor_is_used_by_name(qtbot, manager):
    handle = manager.options(executor="process").submit(f.add, 20, 22)
    assert handle.result(timeout=20) == 42


def test_upstream_dict_is_merged_into_the_process_task_kwargs(qtbot, manager):
    ex = ProcessExecutor(1)
    up = manager.submit(dict, b=5)
    down = manager.options(upstream_task_ids=[up.uid], executor=ex).submit(f.add, 1)
    assert down.result(timeout=20) == 6


def test_unpicklable_upstream_value_fails_the_task_naming_the_argument(qtbot, manager):
    ex = ProcessExecutor(1)
    up = manager.submit(dict, b=threading.Lock())
    down = manager.options(upstream_task_ids=[up.uid], executor=ex).submit(f.add, 1)
    error = down.exception(timeout=20)
    assert isinstance(error, TypeError)
    assert str(error).startswith("cannot send argument 'b' of add to a worker process: ")


def test_remote_error_keeps_its_type_and_shows_the_remote_traceback(qtbot, manager):
    ex = ProcessExecutor(1)
    with qtbot.waitSignal(manager.task_failed, timeout=20000) as blocker:
        handle = manager.options(group="g", executor=ex).submit(f.raise_value_error, "boom")
    uid, group, message, tb = blocker.args
    assert (uid, group, message) == (handle.uid, "g", "boom")
    error = handle.exception(timeout=1)
    assert type(error) is ValueError and error.args == ("boom",)
    assert isinstance(error.__cause__, RemoteTraceback)
    assert "_process_funcs.py" in error.__cause__.text
    assert "in raise_value_error" in error.__cause__.text
    # The manager's traceback string shows the frames of the worker process.
    assert 'in raise_value_error\n    raise ValueError(text)\nValueError: boom\n"""' in tb
    assert "The above exception was the direct cause of the following exception" in tb
    assert manager.options(executor=ex).submit(f.add, 1, 1).result(timeout=20) == 2  # worker kept


def test_exception_that_cannot_be_rebuilt_arrives_as_a_substitute(qtbot, manager):
    ex = ProcessExecutor(1)
    error = manager.options(executor=ex).submit(f.raise_unrebuildable).exception(timeout=20)
    assert type(error) is UnpicklableError
    assert error.type_name == "_process_funcs.NeedsTwo"
    assert error.repr == "NeedsTwo('left/right')"
    assert str(error) == (
        "NeedsTwo('left/right') (a _process_funcs.NeedsTwo that could not be sent back: "
        "TypeError: NeedsTwo.__init__() missing 1 required positional argument: 'b')"
    )
    assert "in raise_unrebuildable" in error.__cause__.text


def test_exception_that_cannot_be_pickled_arrives_as_a_substitute(qtbot, manager):
    ex = ProcessExecutor(1)
    error = manager.options(executor=ex).submit(f.raise_unpicklable).exception(timeout=20)
    assert type(error) is UnpicklableError
    assert str(error) == (
        "HoldsLock('holds a lock') (a _process_funcs.HoldsLock that could not be sent back: "
        "TypeError: cannot pickle '_thread.lock' object)"
    )
    assert "in raise_unpicklable" in error.__cause__.text


def test_result_that_cannot_be_pickled_fails_with_a_type_error(qtbot, manager):
    ex = ProcessExecutor(1)
    error = manager.options(executor=ex).submit(f.return_unpicklable).exception(timeout=20)
    assert type(error) is TypeError
    assert str(error).startswith(
        "the result of return_unpicklable cannot be sent back from the worker process: "
        "<unlocked _thread.lock object at "
    )


# ------------------------------------------------------------------- crashes


def test_worker_exit_fails_the_task_naming_the_exit_code_and_is_replaced(qtbot, manager):
    ex = ProcessExecutor(1)
    first = manager.options(executor=ex).submit(f.pid).result(timeout=20)
    handle = manager.options(executor=ex).submit(f.exit_with, 3)
    error = handle.exception(timeout=20)
    assert type(error) is WorkerDied and error.exitcode == 3
    assert str(error) == (
        f"worker process died with exit code 3 while running task {handle.uid} (pid {first})"
    )
    assert manager.task_state(handle.uid) is TaskState.FAILED
    assert is_dead(first)
    after = manager.options(executor=ex).submit(f.pid).result(timeout=20)
    assert after != first and ex.worker_pids() == [after]


def test_a_crashed_task_can_be_retried_on_worker_died(qtbot, manager, tmp_path):
    ex = ProcessExecutor(1)
    handle = manager.options(executor=ex, retries=1, retry_on=(WorkerDied,), backoff=0.01).submit(
        f.exit_the_first_time, str(tmp_path / "marker")
    )
    assert handle.result(timeout=20) == ex.worker_pids()[0]
    assert manager.info(handle.uid).attempts == 2


def test_segfault_names_the_signal_and_the_other_task_is_not_lost(qtbot, manager, tmp_path):
    ex = ProcessExecutor(2)
    go = tmp_path / "go"
    survivor = manager.options(executor=ex).submit(f.pid_after, str(go))
    crash = manager.options(executor=ex).submit(f.segfault)
    error = crash.exception(timeout=20)
    assert type(error) is WorkerDied and error.exitcode == -11
    assert str(error).startswith(
        f"worker process was killed by signal SIGSEGV while running task {crash.uid} (pid "
    )
    go.write_text("")
    assert survivor.result(timeout=20) in ex.worker_pids()
    assert manager.options(executor=ex).submit(f.add, 1, 2).result(timeout=20) == 3


# ------------------------------------------------------------------- cancel


def test_cancel_of_a_busy_task_terminates_its_worker_and_replaces_it(qtbot, manager):
    ex = ProcessExecutor(1)
    handle = manager.options(group="g", executor=ex).submit(f.publish_pid_then_spin)
    pid = wait_status(qtbot, manager, handle.uid)
    with qtbot.waitSignal(manager.task_cancelled, timeout=20000) as blocker:
        assert handle.cancel()
    assert blocker.args == [handle.uid, "g"]
    assert manager.task_state(handle.uid) is TaskState.CANCELLED
    assert is_dead(pid)
    assert pid not in ex.worker_pids()
    assert manager.options(executor=ex).submit(f.add, 1, 2).result(timeout=20) == 3


def test_cancel_kills_a_worker_that_ignores_sigterm_after_the_grace(qtbot, manager):
    ex = ProcessExecutor(1, grace=0.2)
    handle = manager.options(executor=ex).submit(f.publish_pid_then_spin, True)
    pid = wait_status(qtbot, manager, handle.uid)
    with qtbot.waitSignal(manager.task_cancelled, timeout=20000):
        manager.stop_task(handle.uid)
    assert is_dead(pid)
    with pytest.raises(TaskCancelled):
        handle.result(timeout=1)


def test_cooperative_task_stops_in_its_sleep_and_keeps_its_worker(qtbot, manager):
    ex = ProcessExecutor(1, cancel_window=30)  # generous: the machine is shared
    handle = manager.options(executor=ex).submit(f.publish_pid_then_sleep)
    pid = wait_status(qtbot, manager, handle.uid)
    with qtbot.waitSignal(manager.task_cancelled, timeout=20000):
        handle.cancel()
    assert not is_dead(pid)
    assert manager.options(executor=ex).submit(f.pid).result(timeout=20) == pid


def test_timeout_terminates_the_worker_and_fails_the_task(qtbot, manager):
    # The one worker is started first, so its pid is known even if the 0.5 s
    # run out (under load) before the task itself could publish anything.
    ex = ProcessExecutor(1)
    assert ex.start_workers() == 1
    (pid,) = ex.worker_pids()
    handle = manager.options(executor=ex, timeout=0.5).submit(f.publish_pid_then_spin)
    assert isinstance(handle.exception(timeout=20), TimeoutError)
    assert manager.task_state(handle.uid) is TaskState.FAILED
    assert is_dead(pid)


def test_run_gives_up_waiting_for_a_worker_when_cancelled():
    ex = ProcessExecutor(1)

    class Context:
        uid, group, priority, cancelled = 5, None, 0, True

    try:
        with pytest.raises(TaskCancelled, match="^task 5 was asked to stop$"):
            ex.run(f.add, (1, 2), {}, Context())
        assert ex.worker_pids() == []  # nothing was started for it
    finally:
        ex.shut_down(5)


# ------------------------------------------------------------------- the context


def test_current_task_in_the_worker_knows_its_task(qtbot, manager):
    ex = ProcessExecutor(1)
    handle = manager.options(group=("a", 1), executor=ex).submit(f.context_facts)
    facts = handle.result(timeout=20)
    assert facts["pid"] != os.getpid()
    assert {k: facts[k] for k in ("uid", "group", "cancelled")} == {
        "uid": handle.uid,
        "group": ("a", 1),
        "cancelled": False,
    }


def test_progress_is_forwarded_and_the_final_value_arrives(qtbot, manager):
    ex = ProcessExecutor(1)
    seen = []
    manager.task_progress.connect(lambda *args: seen.append(args))
    handle = manager.options(group="p", executor=ex).submit(f.progress_steps, 50)
    with qtbot.waitSignal(manager.task_completed, timeout=20000):
        pass
    assert handle.result(timeout=1) == 50
    assert seen and seen[-1] == (handle.uid, "p", 1.0, "step 50")
    assert [s[2] for s in seen] == sorted(s[2] for s in seen)


def test_settings_reach_the_worker(qtbot, manager):
    ex = ProcessExecutor(1)
    handle = manager.options(executor=ex).submit(f.wait_for_settings)
    qtbot.waitUntil(lambda: manager.info(handle.uid).status == "waiting", timeout=20000)
    manager.set_settings(handle.uid, {"zoom": 2})
    assert handle.result(timeout=20) == {"zoom": 2}


def test_output_is_logged_line_by_line_with_the_task_id(qtbot, manager, caplog):
    caplog.set_level(logging.INFO, logger="bgtasks.processes")
    ex = ProcessExecutor(1)
    handle = manager.options(executor=ex).submit(f.talk, 3)
    handle.result(timeout=20)
    records = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "bgtasks.processes"
    ]
    tag = f"[task {handle.uid}]"
    stdout = [m for level, m in records if level == "INFO"]
    assert stdout == [
        f"{tag} hello from print",
        f"{tag} straight to fd 1",
        f"{tag} line 0",
        f"{tag} line 1",
        f"{tag} line 2",
        f"{tag} no newline at the end",
    ]
    assert [m for level, m in records if level == "WARNING"] == [f"{tag} careful on stderr"]


# ------------------------------------------------------------------- the pool


def test_pool_grows_to_max_workers_and_no_further(qtbot, manager, tmp_path):
    ex = ProcessExecutor(2)
    go = tmp_path / "go"
    handles = [manager.options(executor=ex).submit(f.pid_after, str(go)) for _ in range(5)]
    qtbot.waitUntil(lambda: len(ex.worker_pids()) == 2, timeout=20000)
    go.write_text("")
    pids = {h.result(timeout=20) for h in handles}
    assert len(pids) == 2 and sorted(pids) == ex.worker_pids()
    assert ex.workers_started == 2


def test_start_workers_starts_them_before_first_use(qtbot, manager):
    ex = ProcessExecutor(3)
    assert ex.start_workers(2) == 2
    pids = ex.worker_pids()
    assert len(pids) == 2 and ex.workers_started == 2
    assert ex.start_workers() == 1  # up to max_workers
    assert ex.start_workers() == 0
    with pytest.raises(ValueError, match=r"^n must be a non-negative integer, got -1$"):
        ex.start_workers(-1)
    assert manager.options(executor=ex).submit(f.pid).result(timeout=20) in ex.worker_pids()
    assert ex.workers_started == 3


def test_idle_workers_are_reaped_down_to_min_workers(tmp_path):
    now = [1000.0]
    ex = ProcessExecutor(2, min_workers=1, idle_timeout=10, clock=lambda: now[0])

    class Context:
        group, priority, cancelled = None, 0, False

        def __init__(self, uid):
            self.uid = uid

    go = tmp_path / "go"
    results = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(ex.run(f.pid_after, (str(go),), {}, Context(i)))
        )
        for i in range(2)
    ]
    try:
        for t in threads:
            t.start()
        while len(ex.worker_pids()) < 2:  # both runs hold a worker
            threading.Event().wait(0.01)
        go.write_text("")
        for t in threads:
            t.join(20)
        assert sorted(results) == ex.worker_pids() and len(set(results)) == 2
        now[0] += 9.5
        ex.reap_idle()
        assert ex.worker_pids() == sorted(results)
        now[0] += 1
        ex.reap_idle()
        (kept,) = ex.worker_pids()
        (reaped,) = set(results) - {kept}
        assert is_dead(reaped) and not is_dead(kept)
        now[0] += 100
        ex.reap_idle()
        assert ex.worker_pids() == [kept]  # min_workers stay
    finally:
        ex.shut_down(5)


def test_shut_down_stops_busy_workers_and_ends_their_tasks_cancelled(qtbot, make_manager):
    manager = make_manager(start_processing=True)
    ex = ProcessExecutor(2, grace=0.2)
    manager.set_executor("process", ex)
    stubborn = manager.options(executor="process").submit(f.publish_pid_then_spin, True)
    plain = manager.options(executor="process").submit(f.publish_pid_then_spin)
    pids = [wait_status(qtbot, manager, h.uid) for h in (stubborn, plain)]
    manager.shut_down(timeout=0.5)
    assert all(is_dead(pid) for pid in pids)
    assert ex.worker_pids() == []
    ex.shut_down(0.1)  # idempotent

    class Context:
        uid, group, priority, cancelled = 1, None, 0, False

    with pytest.raises(RuntimeError, match="^the ProcessExecutor was shut down$"):
        ex.run(f.add, (1,), {}, Context())


def test_interpreter_exit_does_not_hang_on_live_workers():
    code = textwrap.dedent(
        f"""
        import sys, threading
        sys.path.insert(0, {TESTS_DIR!r})
        import _process_funcs as f
        from bgtasks.processes import ProcessExecutor

        class Context:
            group, priority, cancelled = None, 0, False
            def __init__(self, uid):
                self.uid, self.status = uid, None

        if __name__ == "__main__":
            ex = ProcessExecutor(2)
            print(ex.run(f.pid, (), {{}}, Context(1)), flush=True)   # an idle worker
            busy = Context(2)
            threading.Thread(target=ex.run, args=(f.publish_pid_then_spin, (True,), {{}}, busy),
                             daemon=True).start()
            while busy.status is None:
                threading.Event().wait(0.01)
            print(busy.status, flush=True)                           # a busy one, deaf to SIGTERM
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    pids = [int(line) for line in proc.stdout.split()]
    assert len(pids) == 2
    assert all(is_dead(pid) for pid in pids)


def test_interpreter_exit_with_a_running_process_task_of_a_manager_does_not_hang():
    code = textwrap.dedent(
        f"""
        import os, sys, time
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        sys.path.insert(0, {TESTS_DIR!r})
        import _process_funcs as f
        from PySide6.QtCore import QCoreApplication
        from bgtasks import BackgroundTaskManager

        app = QCoreApplication([])
        manager = BackgroundTaskManager(start_processing=True)
        handle = manager.options(executor="process").submit(f.publish_pid_then_spin, True)
        while manager.info(handle.uid).status is None:
            time.sleep(0.01)
        print(manager.info(handle.uid).status, flush=True)   # then exit, no shut_down
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Fatal Python error" not in proc.stderr
    assert is_dead(int(proc.stdout))


class _Context:
    """The little of a task context that ProcessExecutor.run uses, for direct calls."""

    def __init__(self, uid):
        self.uid, self.group, self.priority, self.cancelled = uid, None, 0, False
        self.progressed = threading.Event()

    def report_progress(self, *args, **kwargs):
        self.progressed.set()


def test_an_error_never_discards_a_worker_another_call_has_taken(tmp_path):
    # A call hands its worker back, then raises its task's error; if another
    # call took the worker in between, that worker must be left alone.  The
    # error's unpickling in this process (f.HandsOverError) is that instant:
    # there another call takes the worker and starts its task.
    executor = ProcessExecutor(1)
    release, other, outcomes = tmp_path / "release", _Context(2), []

    def run_other():
        try:
            outcomes.append(executor.run(f.report_then_wait, (str(release),), {}, other))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            outcomes.append(exc)

    taker = threading.Thread(target=run_other)

    def take():
        taker.start()
        if not other.progressed.wait(30):  # its task runs: it holds the worker
            raise RuntimeError("the other call did not get the worker")

    f.HANDOVER["take"] = take
    try:
        with pytest.raises(f.HandsOverError, match="^bad value$"):
            executor.run(f.raise_hands_over, ("bad value",), {}, _Context(1))
        assert other.progressed.is_set()  # the other call took the worker in between
        pids = executor.worker_pids()
        release.touch()
        taker.join(30)
        assert len(pids) == 1 and outcomes == pids  # it ended on its worker, not stopped under it
        assert executor.workers_started == 1  # nobody was replaced
    finally:
        f.HANDOVER.clear()
        release.touch()
        executor.shut_down(2)


def test_the_worker_context_sleep_refuses_nan_and_sleeps_until_stopped_on_inf():
    from bgtasks.executors._process_context import WorkerContext

    ctx = WorkerContext(None, 5, None, 0)  # type: ignore[arg-type]  # sleep sends nothing
    for bad in (float("nan"), -1, "1", True):
        with pytest.raises(ValueError) as info:
            ctx.sleep(bad)  # type: ignore[arg-type]
        assert str(info.value) == f"seconds must be a non-negative number, got {bad!r}"
    ctx.sleep(0)
    ctx.sleep(0.01)
    threading.Timer(0.1, ctx.request_stop).start()
    with pytest.raises(TaskCancelled, match="^task 5 was asked to stop$"):
        ctx.sleep(float("inf"))  # raised OverflowError before
