"""External programs as tasks: ``manager.submit(Job(program, arguments))``.

A ``Job`` runs a program through ``QProcess`` in a manager worker
thread, so it is a task like any other: it has a uid, signals, a group,
dependencies, a handle, and can be stopped.  It follows ChimeraX's ``Job``
(launch, then check the program now and then) and fixes that one's defects:
the task always ends (quick programs, exceptions), a failure set by the
monitor is never overwritten, checks back off, and waits wake at once.

The run, in the worker thread::

    launch()
    do:
        stop requested?  -> terminate the program, kill it after `grace` s, end CANCELLED
        wait next_check() seconds, woken early by a stop, the program's end or wake()
        monitor()
    while running() and no fail()
    -> JobResult(exit_code, stdout, stderr), or JobError / JobMonitorError

Errors::

    BgTasksError
     └── JobError          (also RuntimeError; a non-zero exit with check=True)
          ├── JobLaunchError   (program missing or not executable, bad cwd, start failed)
          └── JobMonitorError  (fail() was called, or monitor() raised)
"""

from __future__ import annotations

import atexit
import codecs
import os
import shutil
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QProcess, QProcessEnvironment

from .core._context import TaskContextProtocol, current_task
from .core._errors import BgTasksError, TaskCancelled
from .core._validate import check_bool, check_seconds

__all__ = [
    "DEFAULT_TIMETABLE",
    "Job",
    "JobError",
    "JobLaunchError",
    "JobMonitorError",
    "JobResult",
]

DEFAULT_TIMETABLE: tuple[float, ...] = (
    (5, 5, 10, 15, 25, 40, 65, 105, 170, 275) + tuple(range(300, 801, 50)) + (300,)
)
"""Seconds between checks, as ChimeraX's ``Job``: 5, 5, 10, 15, 25, 40, 65, 105, 170,
275, then 300 to 800 in steps of 50, then every 300 s (the last value of a timetable
repeats)."""

_SLICE = 0.05  # seconds: how often a wait looks for a stop, fail() or wake()
_KILL_WAIT = 30.0  # seconds to wait for a killed program to be reaped
_NOT_RUNNING = QProcess.ProcessState.NotRunning


class JobError(BgTasksError, RuntimeError):
    """A job failed; with ``check=True``, the program exited with a non-zero code.

    The task fails with it: ``task_failed`` on the manager's thread, and the
    handle's ``exception()``.

    Args:
        message: What went wrong.
        result: The job's ``JobResult`` when the program ran to its end.

    Attributes:
        result: The job's ``JobResult`` when the program ran to its end
            (None otherwise).
    """

    def __init__(self, message: str, result: JobResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class JobLaunchError(JobError):
    """The program could not be started: missing, not executable, bad working directory."""


class JobMonitorError(JobError):
    """The job's monitor failed it: ``Job.fail`` was called, or ``monitor()`` raised."""


@dataclass(frozen=True)
class JobResult:
    """What a job that ran to its end returns (the ``result`` of ``task_completed``).

    Frozen: safe to read from any thread.

    Attributes:
        exit_code: The program's exit code, negative when a signal ended it
            (``-9``: SIGKILL), as in ``subprocess``.
        stdout: Its standard output, decoded with the job's ``encoding``.
        stderr: Its standard error, decoded with the job's ``encoding``.
    """

    exit_code: int
    stdout: str
    stderr: str


class Job:
    """An external program run as a task: ``manager.submit(Job(program, arguments))``.

    Build it on any thread; only submit it to a manager's thread pool (not to
    another ``executor``): calling it outside a task raises ``RuntimeError``.
    The program runs in a session of its own, its stdin closed; a stop signals
    its whole process group, so the processes it started stop with it.
    Subclass hooks, all called in the worker thread: ``launch``,
    ``monitor``, ``running``, ``next_check``; inside them
    ``bgtasks.current_task()`` gives the task's context (progress, status,
    settings).  A job object runs one task at a time; it may run again after
    (``retries``, ``retry``), each run starting afresh.  Each running job holds
    one of the manager's threads; cap how many programs run at once with
    ``resources={"programs": 1}`` and ``manager.set_resource_limit("programs", n)``.
    The arguments are kept as attributes of the same names (``program``
    resolved to a path, ``given_program`` as given).

    Args:
        program: Looked up on ``PATH`` (the ``PATH`` of ``env`` if given) unless
            it contains a ``/``; a relative path is taken from ``cwd``.
        arguments: Its command-line arguments.
        cwd: Its working directory; None: this process's.
        env: Its whole environment (as in ``subprocess``); None: this process's.
        timetable: Seconds between checks (``next_check``), the last value
            repeating; None: ``DEFAULT_TIMETABLE``.
        grace: Seconds between the SIGTERM and the SIGKILL of a stopped program.
        check: A non-zero exit code fails the task with ``JobError`` (as
            ``subprocess.run(check=True)``); False: it completes with the
            ``JobResult``.
        encoding: Decodes the output (undecodable bytes replaced).

    Raises:
        JobLaunchError: Here, on the calling thread: the program is missing or
            not executable, or ``cwd`` is not a directory.
        TypeError: An argument of the wrong type.
        ValueError: A bad ``timetable`` or ``grace``.
        LookupError: An unknown ``encoding``.
    """

    def __init__(
        self,
        program: str | os.PathLike[str],
        arguments: Sequence[str | os.PathLike[str]] = (),
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        timetable: Sequence[float] | None = None,
        grace: float = 3.0,
        check: bool = True,
        encoding: str = "utf-8",
    ) -> None:
        if not isinstance(program, (str, os.PathLike)) or not os.fspath(program):
            raise TypeError(f"program must be a non-empty string or path, got {program!r}")
        if isinstance(arguments, (str, bytes)) or not isinstance(arguments, Sequence):
            raise TypeError(f"arguments must be a sequence of strings, got {arguments!r}")
        for arg in arguments:
            if not isinstance(arg, (str, os.PathLike)):
                raise TypeError(f"arguments must be strings or paths, got {arg!r}")
        if cwd is not None and not isinstance(cwd, (str, os.PathLike)):
            raise TypeError(f"cwd must be a string or path, got {cwd!r}")
        if env is not None:
            if not isinstance(env, Mapping):
                raise TypeError(f"env must be a mapping of strings to strings, got {env!r}")
            for key, value in env.items():
                if not isinstance(key, str) or not isinstance(value, str):
                    raise TypeError(f"env must map strings to strings, got {key!r}: {value!r}")
        check_seconds("grace", grace)
        check_bool("check", check)
        if not isinstance(encoding, str):
            raise TypeError(f"encoding must be a string, got {encoding!r}")
        codecs.lookup(encoding)  # LookupError for an unknown codec: here, not at the end

        self.given_program = os.fspath(program)
        self.cwd = None if cwd is None else os.fspath(cwd)
        self.env = None if env is None else dict(env)
        self.program = _resolve(self.given_program, self.cwd, self.env)
        self.arguments = tuple(os.fspath(arg) for arg in arguments)
        self.timetable = DEFAULT_TIMETABLE if timetable is None else _check_timetable(timetable)
        self.grace = float(grace)
        self.check = check
        self.encoding = encoding
        self.__name__ = os.path.basename(self.program)  # the task's name in info() and graphs

        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._idle = threading.Event()  # set while no run is in progress
        self._idle.set()
        self._process: QProcess | None = None
        self._context: TaskContextProtocol | None = None
        self._reset()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.given_program!r} {list(self.arguments)!r}>"

    def _reset(self) -> None:
        self._check_index = 0
        self._failure: str | None = None
        self._pid: int | None = None
        self._group = False  # the program leads a process group of its own (its session)
        self._exit_code: int | None = None
        self._out = bytearray()
        self._err = bytearray()

    # ------------------------------------------------------------------ what others may read

    @property
    def pid(self) -> int | None:
        """The program's process id (kept after it ended); None before the launch.  Any thread."""
        return self._pid

    @property
    def exit_code(self) -> int | None:
        """The exit code once the program ended (negative: killed by that signal).  Any thread."""
        return self._exit_code

    @property
    def stdout(self) -> str:
        """The program's standard output so far, as text.  Any thread."""
        with self._lock:
            data = bytes(self._out)
        return data.decode(self.encoding, errors="replace")

    @property
    def stderr(self) -> str:
        """The program's standard error so far, as text.  Any thread."""
        with self._lock:
            data = bytes(self._err)
        return data.decode(self.encoding, errors="replace")

    @property
    def process(self) -> QProcess | None:
        """The ``QProcess`` of the current run, for subclass hooks.  Worker thread only."""
        return self._process

    # ------------------------------------------------------------------ control from any thread

    def wake(self) -> None:
        """Check now: end the current wait so that ``monitor`` runs at once.

        Any thread.  A wake during ``monitor()`` skips the next wait.
        """
        self._wakeup.set()

    def fail(self, message: str) -> None:
        """Fail the job: stop the program; the task fails with ``JobMonitorError(message)``.

        Whatever the exit code.  Meant for ``monitor`` (worker thread); safe from
        any thread.  The first failure wins; the program's end never overwrites it.

        Args:
            message: The failure's message.

        Raises:
            TypeError: ``message`` is not a string.
        """
        if not isinstance(message, str):
            raise TypeError(f"message must be a string, got {message!r}")
        with self._lock:
            if self._failure is None:
                self._failure = message
        self._wakeup.set()

    # ------------------------------------------------------------------ subclass hooks

    def launch(self, *args: Any, **kwargs: Any) -> None:
        """Start the program (worker thread).  An override may prepare inputs from the
        arguments, then call ``super().launch()``.

        Args:
            *args: The task's arguments (ignored here).
            **kwargs: Its keyword arguments and upstream dict results (ignored here).

        Raises:
            JobLaunchError: The program did not start.
        """
        process = QProcess()
        process.setProgram(self.program)
        process.setArguments(list(self.arguments))
        if self.cwd is not None:
            process.setWorkingDirectory(self.cwd)
        if self.env is not None:
            environment = QProcessEnvironment()
            for key, value in self.env.items():
                environment.insert(key, value)
            process.setProcessEnvironment(environment)
        # A session of its own: a stop signals the program's whole process group,
        # so what it started (``sh -c "tool & wait"``) stops with it.
        process.setUnixProcessParameters(QProcess.UnixProcessFlag.CreateNewSession)
        self._process = process
        process.start()
        if not process.waitForStarted(int(_KILL_WAIT * 1000)):
            raise JobLaunchError(f"cannot run {self.given_program!r}: {process.errorString()}")
        process.closeWriteChannel()
        pid = process.processId()
        try:
            group = os.getpgid(pid) == pid
        except OSError:  # it ended already
            group = False
        with self._lock:
            self._pid = pid
            self._group = group
        with _LIVE_LOCK:
            _LIVE.add(self)
        self._set_status(f"running (pid {pid})")

    def monitor(self) -> None:
        """Check on the program; called after each wait.  Worker thread.

        It runs at least once in a run that is not stopped, the last time
        after the program ended (so it sees all of its output).

        Does nothing by default.  Override it to parse ``stdout``, report
        progress with ``bgtasks.current_task().report_progress(...)``, or call
        ``fail``.  An exception raised here fails the task with
        ``JobMonitorError`` (chained to it) and stops the program.
        """

    def running(self) -> bool:
        """True while the program runs.  Worker thread."""
        process = self._process
        return process is not None and process.state() != _NOT_RUNNING

    def next_check(self) -> float:
        """Seconds until the next ``monitor``: the next value of ``timetable``.

        Each call moves one step on; the last value repeats.  Worker thread
        (it is called once per wait).  Override it for another schedule.
        """
        index = self._check_index
        self._check_index = index + 1
        return self.timetable[min(index, len(self.timetable) - 1)]

    # ------------------------------------------------------------------ the run

    def __call__(self, *args: Any, **kwargs: Any) -> JobResult:
        """Run the job as the current task: what the manager's worker calls."""
        context = current_task()
        with self._lock:
            if not self._idle.is_set():
                raise RuntimeError(f"{self!r} is already running; make one Job per run")
            self._idle.clear()
            self._reset()
        self._context = context
        try:
            return self._run(args, kwargs)
        finally:
            try:
                self._end_process()
            finally:
                self._process = None  # the QProcess is deleted here, in its own thread
                self._context = None
                with _LIVE_LOCK:
                    _LIVE.discard(self)
                self._idle.set()

    def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> JobResult:
        self.launch(*args, **kwargs)
        if self._process is None:
            raise JobLaunchError(
                f"{type(self).__name__}.launch() did not start {self.given_program!r}"
            )
        while True:
            if self._stop_requested():
                self._end_process()
                raise TaskCancelled(f"job {self.given_program!r} was stopped")
            if self._failure is None:
                self._wait(self.next_check())
                if self._stop_requested():
                    continue  # -> stopped above, without a monitor() call
                try:
                    self.monitor()
                except TaskCancelled:  # e.g. current_task().sleep() in monitor() saw a stop
                    self._end_process()
                    raise
                except Exception as exc:
                    with self._lock:
                        self._failure = None  # the exception is the failure reported
                    self._end_process()
                    raise JobMonitorError(
                        f"monitor of {self.given_program!r} raised {type(exc).__name__}: {exc}"
                    ) from exc
            if self._failure is not None:
                self._end_process()
                raise JobMonitorError(self._failure)
            if not self.running():
                break
        return self._finish()

    def _finish(self) -> JobResult:
        if self._exit_code is None:  # running() said done while the program runs: end it
            self._end_process()
        code = self._exit_code
        assert code is not None
        result = JobResult(code, self.stdout, self.stderr)
        self._set_status(f"exited with code {code}")
        if self.check and code != 0:
            raise JobError(_exit_message(self.given_program, code, result.stderr), result)
        return result

    def _stop_requested(self) -> bool:
        context = self._context
        return _EXITING.is_set() or (context is not None and context.cancelled)

    def _wait(self, seconds: float) -> None:
        """Wait ``seconds``; end early on a stop, fail(), wake() or the program's end."""
        process = self._process
        assert process is not None
        deadline = time.monotonic() + seconds
        while not self._wakeup.is_set() and not self._stop_requested():
            if process.state() == _NOT_RUNNING:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            finished = process.waitForFinished(max(1, int(min(remaining, _SLICE) * 1000)))
            self._drain()
            if finished:
                break
        self._wakeup.clear()
        self._record_exit()

    def _drain(self) -> None:
        process = self._process
        if process is None:
            return
        out = process.readAllStandardOutput().data()
        err = process.readAllStandardError().data()
        if out or err:
            with self._lock:
                self._out += out
                self._err += err

    def _record_exit(self) -> None:
        process = self._process
        if process is None or process.state() != _NOT_RUNNING or self._pid is None:
            return
        if self._exit_code is None:
            self._drain()
            code = process.exitCode()
            if process.exitStatus() == QProcess.ExitStatus.CrashExit:
                code = -code  # Qt gives the signal number
            self._exit_code = code

    def _wait_finished(self, seconds: float) -> bool:
        process = self._process
        assert process is not None
        deadline = time.monotonic() + seconds
        while process.state() != _NOT_RUNNING:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            process.waitForFinished(max(1, int(min(remaining, _SLICE) * 1000)))
            self._drain()
        return True

    def _end_process(self) -> None:
        """Terminate the program if it runs, kill it after ``grace`` s, and reap it."""
        process = self._process
        if process is None:
            return
        if process.state() != _NOT_RUNNING:
            self._set_status(f"terminating (pid {self._pid})")
            self._signal(signal.SIGTERM)
            if not self._wait_finished(self.grace):
                self._signal(signal.SIGKILL)
                self._wait_finished(_KILL_WAIT)
            # What the program started and left behind (a child deaf to SIGTERM, or
            # one the program did not wait for) dies with it.
            self._signal_group(signal.SIGKILL)
        self._drain()
        self._record_exit()

    def _signal_group(self, signum: int) -> bool:
        """Send ``signum`` to the program's process group; False if it has none or it is gone."""
        pid = self._pid
        if not self._group or pid is None:
            return False
        try:
            os.killpg(pid, signum)
        except OSError:
            return False
        return True

    def _signal(self, signum: int) -> None:
        """Send ``signum`` to the program and what it started (its process group); to the
        program alone if a ``launch()`` override gave it no group of its own."""
        if self._signal_group(signum):
            return
        process = self._process
        if process is not None and process.state() != _NOT_RUNNING:
            if signum == signal.SIGKILL:
                process.kill()
            else:
                process.terminate()

    def _set_status(self, text: str) -> None:
        context = self._context
        if context is not None:
            context.status = text


# ---------------------------------------------------------------------- helpers


def _exit_message(program: str, code: int, stderr: str) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "an unknown signal"
        text = f"{program!r} was killed by signal {-code} ({name})"
    else:
        text = f"{program!r} exited with code {code}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    if lines:
        last = lines[-1].strip()
        text += f": {last[:200]}"
    return text


def _check_timetable(timetable: object) -> tuple[float, ...]:
    if isinstance(timetable, (str, bytes)) or not isinstance(timetable, Sequence):
        raise TypeError(f"timetable must be a sequence of seconds, got {timetable!r}")
    if not timetable:
        raise ValueError("timetable must not be empty")
    return tuple(
        float(check_seconds(f"timetable[{i}]", value, positive=True))
        for i, value in enumerate(timetable)
    )


def _resolve(program: str, cwd: str | None, env: Mapping[str, str] | None) -> str:
    """The absolute path of ``program``, or ``JobLaunchError`` saying why it cannot run."""
    if cwd is not None and not os.path.isdir(cwd):
        raise JobLaunchError(
            f"cannot run {program!r}: working directory {cwd!r} is not a directory"
        )
    if os.sep in program or (os.altsep is not None and os.altsep in program):
        path = os.path.abspath(os.path.join(cwd or os.getcwd(), program))
        if not os.path.exists(path):
            raise JobLaunchError(f"cannot run {program!r}: no such file")
        if os.path.isdir(path):
            raise JobLaunchError(f"cannot run {program!r}: it is a directory")
        if not os.access(path, os.X_OK):
            raise JobLaunchError(f"cannot run {program!r}: it is not executable")
        return path
    search = env.get("PATH", "") if env is not None else None
    found = shutil.which(program, path=search)
    if found is None:
        raise JobLaunchError(f"cannot run {program!r}: not found on PATH")
    return os.path.abspath(found)


# At interpreter exit, programs still running are stopped as a task stop does
# (terminate, kill after grace), before the managers' own shut-down runs.
_LIVE: set[Job] = set()
_LIVE_LOCK = threading.Lock()
_EXITING = threading.Event()


@atexit.register
def _stop_all_at_exit() -> None:
    _EXITING.set()
    with _LIVE_LOCK:
        jobs = list(_LIVE)
    if not jobs:
        return
    deadline = time.monotonic() + max(job.grace for job in jobs) + 2.0
    for job in jobs:
        job._idle.wait(max(0.0, deadline - time.monotonic()))
    for job in jobs:
        pid = job.pid
        if not job._idle.is_set() and pid is not None:
            # its worker is stuck: do not leave the program, or what it started, running
            if not job._signal_group(signal.SIGKILL):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
