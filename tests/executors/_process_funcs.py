"""Module-level functions the process tests send to worker processes.

Spawned workers import this module by name (pytest puts tests/executors/ on sys.path,
the ``pythonpath`` ini option in pyproject.toml, and spawn passes sys.path to the child).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from bgtasks import current_task


def add(a, b=0):
    return a + b


def pid():
    return os.getpid()


def pid_after(event_path):
    """Wait until ``event_path`` exists (written by the test), then return the pid."""
    while not os.path.exists(event_path):
        time.sleep(0.005)
    return os.getpid()


def raise_value_error(text):
    raise ValueError(text)


class NeedsTwo(Exception):
    """Pickles (args has one item) but cannot be rebuilt: __init__ needs two."""

    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


def raise_unrebuildable():
    raise NeedsTwo("left", "right")


class HoldsLock(Exception):
    def __init__(self):
        super().__init__("holds a lock")
        self.lock = threading.Lock()


def raise_unpicklable():
    raise HoldsLock()


def return_unpicklable():
    return threading.Lock()


def exit_with(code):
    sys.stdout.flush()
    os._exit(code)


def segfault():
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(10)


def publish_pid_then_spin(ignore_sigterm=False):
    """Publish the pid as status, then burn CPU without ever looking at cancel."""
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    current_task().status = os.getpid()
    while True:
        pass


def publish_pid_then_sleep():
    """Publish the pid, then wait in the interruptible sleep (a cooperative task)."""
    current_task().status = os.getpid()
    current_task().sleep(60)
    return "not reached"


def context_facts():
    ctx = current_task()
    return {"uid": ctx.uid, "group": ctx.group, "cancelled": ctx.cancelled, "pid": os.getpid()}


def progress_steps(n):
    ctx = current_task()
    for i in range(n + 1):
        ctx.report_progress(i, n, f"step {i}")
    return n


def talk(n_lines):
    print("hello from print")
    sys.stderr.write("careful on stderr\n")
    os.write(1, b"straight to fd 1\n")
    for i in range(n_lines):
        print(f"line {i}")
    print("no newline at the end", end="")
    return os.getpid()


def wait_for_settings():
    ctx = current_task()
    ctx.status = "waiting"
    while not ctx.update_settings():
        ctx.sleep(0.01)
    return ctx.settings


def burn(seconds):
    """Pure-Python CPU work for about ``seconds`` (the benchmark's workload)."""
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        for i in range(1000):
            x += i * i
    return x


class Picky:
    def __init__(self):
        self.lock = threading.Lock()

    def method(self):
        return 1


class Plain:
    def __init__(self, value):
        self.value = value

    def get(self, extra=0):
        return self.value + extra


def exit_the_first_time(marker_path):
    """Crash the worker (exit code 3) unless ``marker_path`` exists; create it first."""
    if not os.path.exists(marker_path):
        open(marker_path, "w").close()
        os._exit(3)
    return os.getpid()


def start_grandchild_and_wait(ignore_sigterm=False):
    """Start ``sleep 60`` (a grandchild of the parent), publish (own pid, its pid), wait for it."""
    import subprocess

    child = subprocess.Popen(["sleep", "60"])
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    current_task().status = (os.getpid(), child.pid)
    child.wait()
    return "not reached"


def start_grandchild_and_crash():
    """Start ``sleep 60``, publish (own pid, its pid), then crash the worker (SIGSEGV)."""
    import subprocess

    child = subprocess.Popen(["sleep", "60"])
    current_task().status = (os.getpid(), child.pid)
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(10)


def null_pointer_read():
    """A real segfault: read address 0 (the C code of a broken extension)."""
    import ctypes

    return ctypes.string_at(0)


def publish_pid_then_wait_forever():
    """Publish the pid, then block in a wait no cancel can end (a stuck C call)."""
    current_task().status = os.getpid()
    threading.Event().wait()


def write_long_line(n_bytes):
    """Write ``n_bytes`` to fd 1 without a newline (in 1 MiB writes); return the pid."""
    chunk = b"x" * (1 << 20)
    left = n_bytes
    while left:
        part = chunk[: min(left, len(chunk))]
        os.write(1, part)
        left -= len(part)
    return os.getpid()


def context_kind():
    """Whether ``current_task()`` is a ``TaskContextProtocol`` here, and its class's path
    (a string: it travels back from any process)."""
    from bgtasks import TaskContextProtocol

    ctx = current_task()
    kind = type(ctx)
    return isinstance(ctx, TaskContextProtocol), f"{kind.__module__}.{kind.__qualname__}"


# -- an error whose unpickling in the parent process runs a test's hook: the parent
# unpickles a task's error after handing the worker back, so the hook runs in the
# instant between the two, where another call may take the worker.

#: "take": a function the parent calls when it unpickles a HandsOverError (once).
HANDOVER: dict = {}


class HandsOverError(Exception):
    def __reduce__(self):
        return (_rebuild_hands_over, (self.args[0],))


def _rebuild_hands_over(text):
    take = HANDOVER.pop("take", None)  # None in the worker (which checks the error rebuilds)
    if take is not None:
        take()
    return HandsOverError(text)


def raise_hands_over(text):
    raise HandsOverError(text)


def report_then_wait(event_path):
    """Report progress 0.5, wait until ``event_path`` exists, then return the pid."""
    current_task().report_progress(0.5)
    while not os.path.exists(event_path):
        time.sleep(0.005)
    return os.getpid()
