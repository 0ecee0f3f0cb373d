"""bgtasks.jobs: external programs run as manager tasks (real programs: this Python)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading

import pytest

from bgtasks import BgTasksError, TaskCancelled, TaskState, UpstreamFailed, current_task
from bgtasks.jobs import (
    DEFAULT_TIMETABLE,
    Job,
    JobError,
    JobLaunchError,
    JobMonitorError,
    JobResult,
)

PY = sys.executable
LONG = "import time; time.sleep(60)"
DEAF = (  # ignores SIGTERM, says so once it does
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


def gone(pid: int) -> bool:
    """True if no process (not even a zombie) has this pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def started(qtbot, job: Job) -> int:
    """Wait until the job's program runs; its pid."""
    qtbot.waitUntil(lambda: job.pid is not None, timeout=10000)
    assert job.pid is not None and not gone(job.pid)
    return job.pid


class Recorder(Job):
    """A job that records its monitor() calls (and the thread they ran on)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []
        self.threads: list[threading.Thread] = []
        self.monitored = threading.Event()

    def monitor(self) -> None:
        self.calls.append(self.stdout)
        self.threads.append(threading.current_thread())
        self.monitored.set()


# ---------------------------------------------------------------- results


def test_a_short_job_completes_with_its_exit_code_and_output(qtbot, make_manager):
    m = make_manager(start_processing=True)
    code = "import sys; print('out 1'); print('out 2'); sys.stderr.write('err\\n')"
    job = Recorder(PY, ["-c", code])
    completed = []
    m.task_completed.connect(lambda *a: completed.append((a, threading.current_thread())))
    with qtbot.waitSignal(m.task_completed, timeout=10000):
        h = m.options(group="jobs").submit(job)
    expected = JobResult(0, "out 1\nout 2\n", "err\n")
    assert completed == [((h.uid, "jobs", expected), threading.main_thread())]
    assert h.result(timeout=0) == expected
    assert (job.exit_code, job.stdout, job.stderr) == (0, "out 1\nout 2\n", "err\n")
    info = m.info(h.uid)
    assert info.name == os.path.basename(PY)
    assert info.status == "exited with code 0"
    # monitor ran once, after the program's end, in a worker thread
    assert job.calls == ["out 1\nout 2\n"]
    assert job.threads[0] is not threading.main_thread()


def test_a_non_zero_exit_fails_the_task_with_job_error(qtbot, make_manager):
    m = make_manager(start_processing=True)
    job = Job(PY, ["-c", "import sys; print('partial'); sys.exit('boom')"])
    with qtbot.waitSignal(m.task_failed, timeout=10000) as blocker:
        h = m.submit(job)
    message = f"{PY!r} exited with code 1: boom"
    assert blocker.args[:3] == [h.uid, None, message]
    error = h.exception(timeout=0)
    assert type(error) is JobError and str(error) == message
    assert isinstance(error, BgTasksError) and isinstance(error, RuntimeError)
    assert error.result == JobResult(1, "partial\n", "boom\n")
    assert m.task_state(h.uid) is TaskState.FAILED


def test_check_false_completes_with_the_non_zero_exit_code(make_manager):
    m = make_manager(start_processing=True)
    h = m.submit(Job(PY, ["-c", "raise SystemExit(7)"], check=False))
    assert h.result(timeout=10) == JobResult(7, "", "")


def test_cwd_env_and_a_relative_program_path(tmp_path, make_manager):
    tool = tmp_path / "tool"
    tool.write_text(
        f"#!{PY}\nimport os, sys\nprint(os.getcwd(), os.environ['GREETING'], sys.argv[1])\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    m = make_manager(start_processing=True)
    job = Job("./tool", ["arg"], cwd=tmp_path, env={"GREETING": "hi"})
    assert job.program == str(tool)
    result = m.submit(job).result(timeout=10)
    assert result == JobResult(0, f"{tmp_path} hi arg\n", "")


def test_upstream_failure_means_the_program_never_runs(make_manager):
    m = make_manager(start_processing=True)

    def broken():
        raise ValueError("no input")

    first = m.submit(broken)
    job = Job(PY, ["-c", "print('ran')"])
    h = m.options(upstream_task_ids=[first.uid]).submit(job)
    assert isinstance(h.exception(timeout=10), UpstreamFailed)
    assert job.pid is None and job.stdout == ""


def test_a_plain_job_below_a_dict_result_runs_and_a_subclass_gets_the_values(make_manager):
    m = make_manager(start_processing=True)
    first = m.submit(lambda: {"name": "input.txt"})
    plain = Job(PY, ["-c", "print('ran')"])
    h = m.options(upstream_task_ids=[first.uid]).submit(plain, 5)  # arguments it does not use
    assert h.result(timeout=10).stdout == "ran\n"

    class Named(Job):
        def launch(self, *args, **kwargs):
            self.arguments = (*self.arguments, str(args), kwargs["name"])
            super().launch()

    named = Named(PY, ["-c", "import sys; print(sys.argv[1:])"])
    h = m.options(upstream_task_ids=[first.uid]).submit(named, 7)
    assert h.result(timeout=10).stdout == "['(7,)', 'input.txt']\n"


# ---------------------------------------------------------------- bad input and launch errors


def test_a_missing_program_is_refused_at_submit(make_manager):
    m = make_manager(start_processing=True)
    with pytest.raises(
        JobLaunchError, match=r"^cannot run 'no-such-program-bgtasks': not found on PATH$"
    ):
        m.submit(Job("no-such-program-bgtasks", ["x"]))
    assert m.tasks() == []


def test_unrunnable_paths_are_refused_with_the_reason(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("not a program")
    cases = [
        (dict(program=str(tmp_path / "missing")), f"{tmp_path / 'missing'}': no such file"),
        (dict(program=str(plain)), f"{plain}': it is not executable"),
        (dict(program=str(tmp_path)), f"{tmp_path}': it is a directory"),
        (dict(program=PY, cwd=plain), f"{PY}': working directory '{plain}' is not a directory"),
    ]
    for kwargs, tail in cases:
        with pytest.raises(JobLaunchError) as info:
            Job(**kwargs)
        assert str(info.value).endswith(tail), str(info.value)
        assert str(info.value).startswith("cannot run '")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(program=""), TypeError, "program must be a non-empty string or path, got ''"),
        (dict(program=PY, arguments="-c"), TypeError, "arguments must be a sequence"),
        (dict(program=PY, arguments=["-c", 1]), TypeError, "got 1"),
        (dict(program=PY, env={"A": 1}), TypeError, "env must map strings to strings, got 'A': 1"),
        (dict(program=PY, timetable=[]), ValueError, "timetable must not be empty"),
        (
            dict(program=PY, timetable=[5, 0]),
            ValueError,
            "timetable[1] must be a positive number of seconds, got 0",
        ),
        (
            dict(program=PY, grace=-1),
            ValueError,
            "grace must be a non-negative number of seconds, got -1",
        ),
        (
            dict(program=PY, grace=float("inf")),
            ValueError,
            "grace must be a finite number of seconds of at most",
        ),
        (dict(program=PY, check="yes"), TypeError, "check must be True or False, got 'yes'"),
    ],
)
def test_bad_arguments_raise_naming_the_value(kwargs, error, message):
    with pytest.raises(error) as info:
        Job(**kwargs)
    assert type(info.value) is error and message in str(info.value)


def test_a_program_that_cannot_start_at_run_time_fails_the_task(tmp_path, make_manager):
    tool = tmp_path / "tool"
    tool.write_text(f"#!{PY}\nprint('hi')\n")
    tool.chmod(0o700)
    job = Job(tool)  # runnable when checked here ...
    tool.chmod(0o600)  # ... not when launched
    m = make_manager(start_processing=True)
    error = m.submit(job).exception(timeout=10)
    assert type(error) is JobLaunchError
    assert str(error).startswith(f"cannot run {str(tool)!r}: ")
    assert "Permission denied" in str(error)


# ---------------------------------------------------------------- stopping


def test_cancel_terminates_a_long_program_and_the_task_ends_cancelled(qtbot, make_manager):
    m = make_manager(start_processing=True)
    job = Job(PY, ["-c", LONG], timetable=[300])
    h = m.options(group="g").submit(job)
    pid = started(qtbot, job)
    qtbot.waitUntil(lambda: m.info(h.uid).status == f"running (pid {pid})", timeout=10000)
    with qtbot.waitSignal(m.task_cancelled, timeout=10000) as blocker:
        assert h.cancel() is True
    assert blocker.args == [h.uid, "g"]
    assert m.task_state(h.uid) is TaskState.CANCELLED
    assert job.exit_code == -signal.SIGTERM
    assert gone(pid)


def test_stop_task_kills_a_program_that_ignores_sigterm_after_grace(qtbot, make_manager):
    m = make_manager(start_processing=True)
    job = Job(PY, ["-c", DEAF], timetable=[300], grace=0.2)
    h = m.submit(job)
    pid = started(qtbot, job)
    qtbot.waitUntil(lambda: job.stdout == "ready\n", timeout=10000)  # SIGTERM is ignored now
    with qtbot.waitSignal(m.task_cancelled, timeout=10000):
        m.stop_task(h.uid)
    assert m.task_state(h.uid) is TaskState.CANCELLED
    assert job.exit_code == -signal.SIGKILL
    assert gone(pid)


def test_a_timeout_terminates_the_program_and_fails_with_timeout_error(qtbot, make_manager):
    m = make_manager(start_processing=True)
    job = Job(PY, ["-c", LONG], timetable=[300])
    h = m.options(timeout=0.3).submit(job)
    error = h.exception(timeout=10)
    assert type(error) is TimeoutError
    assert str(error) == f"task {h.uid} timed out after 0.3 s"
    assert job.exit_code == -signal.SIGTERM and gone(job.pid)


def test_shut_down_leaves_no_program_running(qtbot, make_manager):
    m = make_manager(start_processing=True)
    job = Job(PY, ["-c", DEAF], timetable=[300], grace=0.2)
    m.submit(job)
    pid = started(qtbot, job)
    qtbot.waitUntil(lambda: job.stdout == "ready\n", timeout=10000)
    m.shut_down(timeout=10)
    assert gone(pid)


@pytest.mark.slow
def test_interpreter_exit_leaves_no_program_running(tmp_path):
    # The app exits without shutting anything down while its job's program ignores SIGTERM.
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, sys, threading
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
            from PySide6.QtCore import QCoreApplication
            from bgtasks import BackgroundTaskManager
            from bgtasks.jobs import Job

            class Ready(Job):
                seen = threading.Event()
                def monitor(self):
                    if "ready" in self.stdout:
                        self.seen.set()

            app = QCoreApplication([])
            manager = BackgroundTaskManager(start_processing=True)
            manager.shutdown_timeout = 0.05  # the manager's shut-down alone would not wait
            job = Ready(sys.executable, ["-c", {DEAF!r}], timetable=[0.05], grace=0.5)
            manager.submit(job)
            assert Ready.seen.wait(30)
            print(job.pid, flush=True)
            """
        )
    )
    out = subprocess.run(
        [PY, str(script)], capture_output=True, text=True, timeout=60, cwd=os.getcwd()
    )
    assert out.returncode == 0, out.stderr
    assert gone(int(out.stdout))
    # stopped by the job itself (terminate, kill after grace), not by Qt deleting a live
    # QProcess from the main thread at exit
    assert "QProcess: Destroyed while process" not in out.stderr, out.stderr


# ---------------------------------------------------------------- the monitor


def test_fail_in_monitor_is_not_overwritten_by_a_zero_exit(qtbot, make_manager):
    class Picky(Job):
        def monitor(self) -> None:
            if "warning" in self.stdout:
                self.fail("the program warned")

    m = make_manager(start_processing=True)
    job = Picky(PY, ["-c", "print('warning')"], timetable=[300])
    with qtbot.waitSignal(m.task_failed, timeout=10000) as blocker:
        h = m.submit(job)
    assert blocker.args[2] == "the program warned"
    assert type(h.exception(timeout=0)) is JobMonitorError
    assert job.exit_code == 0  # the program succeeded; the monitor's verdict stands
    assert m.task_state(h.uid) is TaskState.FAILED


def test_fail_in_monitor_stops_a_running_program(qtbot, make_manager):
    class Impatient(Job):
        def monitor(self) -> None:
            self.fail(f"gave up on pid {self.pid}")

    m = make_manager(start_processing=True)
    job = Impatient(PY, ["-c", LONG], timetable=[0.01])
    h = m.submit(job)
    error = h.exception(timeout=10)
    assert type(error) is JobMonitorError and str(error) == f"gave up on pid {job.pid}"
    assert job.exit_code == -signal.SIGTERM and gone(job.pid)


def test_an_exception_in_monitor_fails_the_task_chained_to_it(make_manager):
    class Broken(Job):
        def monitor(self) -> None:
            raise ValueError("cannot parse")

    m = make_manager(start_processing=True)
    job = Broken(PY, ["-c", LONG], timetable=[0.01])
    error = m.submit(job).exception(timeout=10)
    assert type(error) is JobMonitorError
    assert str(error) == f"monitor of {PY!r} raised ValueError: cannot parse"
    assert type(error.__cause__) is ValueError
    assert job.exit_code == -signal.SIGTERM and gone(job.pid)


def test_monitor_reports_progress_through_the_task_context(qtbot, make_manager):
    class Counting(Job):
        def monitor(self) -> None:
            steps = self.stdout.count("step")
            current_task().report_progress(steps, 4, f"{steps} of 4 steps")

    m = make_manager(start_processing=True)
    progress = []
    m.task_progress.connect(lambda *a: progress.append(a))
    job = Counting(PY, ["-c", "for i in range(4): print('step', i)"], timetable=[300])
    with qtbot.waitSignal(m.task_completed, timeout=10000):
        h = m.submit(job)
    assert h.result(timeout=0).exit_code == 0
    # one monitor() call, after the program's end: one report, delivered before the result
    assert progress == [(h.uid, None, 1.0, "4 of 4 steps")]
    assert m.info(h.uid).progress == 1.0


# ---------------------------------------------------------------- checks: timetable and wake-ups


def test_the_default_timetable_backs_off_as_chimerax_documents():
    job = Job(PY)
    checks = [job.next_check() for _ in range(25)]
    assert checks == [5, 5, 10, 15, 25, 40, 65, 105, 170, 275]  + [
        300, 350, 400, 450, 500, 550, 600, 650, 700, 750, 800,
    ] + [300, 300, 300, 300]  # fmt: skip
    assert job.timetable == DEFAULT_TIMETABLE


def test_a_custom_timetable_repeats_its_last_value_and_restarts_each_run(make_manager):
    class Logged(Job):
        def next_check(self) -> float:
            value = super().next_check()
            self.log.append(value)
            return value

    job = Logged(PY, ["-c", "pass"], timetable=[0.5, 2, 3])
    job.log = []
    assert [job.next_check() for _ in range(5)] == [0.5, 2.0, 3.0, 3.0, 3.0]
    m = make_manager(start_processing=True)
    for _ in range(2):
        job.log = []
        assert m.submit(job).result(timeout=10).exit_code == 0
        assert job.log[0] == 0.5  # each run starts at the top of the timetable


def test_wake_makes_the_monitor_run_at_once(qtbot, make_manager):
    m = make_manager(start_processing=True)
    job = Recorder(PY, ["-c", LONG], timetable=[300])
    h = m.submit(job)
    started(qtbot, job)
    assert not job.monitored.is_set()
    job.wake()
    assert job.monitored.wait(10)  # long before the 300 s check
    assert h.cancel() is True
    with pytest.raises(TaskCancelled):
        h.result(timeout=10)
    assert m.task_state(h.uid) is TaskState.CANCELLED
    assert len(job.calls) == 1  # a stop ends the job without another monitor()


def test_the_program_ending_wakes_the_wait(make_manager):
    m = make_manager(start_processing=True)
    job = Recorder(PY, ["-c", "import time; time.sleep(0.1); print('done')"], timetable=[300])
    assert m.submit(job).result(timeout=10) == JobResult(0, "done\n", "")
    assert job.calls == ["done\n"]


def test_a_job_runs_one_task_at_a_time(qtbot, make_manager):
    m = make_manager(start_processing=True, max_threads=2)
    job = Job(PY, ["-c", LONG], timetable=[300])
    first = m.submit(job)
    started(qtbot, job)
    second = m.submit(job)
    error = second.exception(timeout=10)
    assert type(error) is RuntimeError
    assert str(error) == f"{job!r} is already running; make one Job per run"
    assert first.cancel() is True
    qtbot.waitUntil(first.done, timeout=10000)
    assert first.cancelled() and gone(job.pid)


def test_task_cancelled_raised_in_monitor_ends_the_task_cancelled(make_manager):
    class Quitter(Job):
        def monitor(self) -> None:
            raise TaskCancelled("the monitor gave up")

    m = make_manager(start_processing=True)
    job = Quitter(PY, ["-c", LONG], timetable=[0.01])
    h = m.submit(job)
    with pytest.raises(TaskCancelled):
        h.result(timeout=10)
    assert m.task_state(h.uid) is TaskState.CANCELLED
    assert job.exit_code == -signal.SIGTERM and gone(job.pid)


def test_a_running_override_that_says_done_ends_the_program(make_manager):
    class Once(Job):
        def running(self) -> bool:
            return False  # one check is enough

    m = make_manager(start_processing=True)
    job = Once(PY, ["-c", LONG], timetable=[0.01], check=False)
    assert m.submit(job).result(timeout=10) == JobResult(-signal.SIGTERM, "", "")
    assert gone(job.pid)
