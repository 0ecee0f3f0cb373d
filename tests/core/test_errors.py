"""Every exception class bgtasks defines is a BgTasksError, is listed in the
hierarchy of ``bgtasks.core._errors``, and pickles (worker processes send them)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pickle
import pkgutil
import subprocess
import sys
import textwrap

import pytest

import bgtasks
from bgtasks.core._errors import BgTasksError


def _modules() -> list[str]:
    names = [
        info.name
        for info in pkgutil.walk_packages(bgtasks.__path__, "bgtasks.")
        if not info.name.endswith("__main__")
    ]
    if importlib.util.find_spec("dask") is None or importlib.util.find_spec("distributed") is None:
        names = [name for name in names if name != "bgtasks.dask_executor"]
    return sorted(names)


def _exception_classes() -> dict[str, type[BaseException]]:
    """``module.QualName`` -> class, for every exception class defined in bgtasks."""
    found: dict[str, type[BaseException]] = {}
    for name in ["bgtasks", *_modules()]:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.split(".")[0] == "bgtasks"
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_the_walk_finds_the_modules_and_classes_it_must():
    modules = _modules()
    for name in (
        "bgtasks.core._errors",
        "bgtasks.executors._process_worker",
        "bgtasks.jobs",
        "bgtasks.widgets",
    ):
        assert name in modules
    names = {cls.__name__ for cls in _exception_classes().values()}
    assert {"TaskCancelled", "WorkerDied", "JobLaunchError", "ThumbnailError"} <= names


def test_every_exception_class_of_the_package_is_a_bgtaskserror():
    outside = [
        name for name, cls in _exception_classes().items() if not issubclass(cls, BgTasksError)
    ]
    assert outside == []


def test_builtin_bases_are_kept():
    import concurrent.futures

    from bgtasks.core._errors import TaskCancelled, UpstreamFailed
    from bgtasks.core._state import IllegalTransition
    from bgtasks.jobs import JobError
    from bgtasks.processes import WorkerDied
    from bgtasks.thumbnails import ThumbnailError

    assert issubclass(TaskCancelled, concurrent.futures.CancelledError)
    for cls in (UpstreamFailed, IllegalTransition, WorkerDied, JobError):
        assert issubclass(cls, RuntimeError)
    assert issubclass(ThumbnailError, OSError)


def test_the_hierarchy_in_the_docstring_lists_every_public_exception_class():
    import bgtasks.core._errors

    doc = bgtasks.core._errors.__doc__ or ""
    missing = sorted(
        cls.__name__
        for cls in _exception_classes().values()
        if not cls.__name__.startswith("_") and f" {cls.__name__} " not in doc.replace("\n", " ")
    )
    assert missing == []


def _samples() -> list[BaseException]:
    """One instance of every exception class whose ``__init__`` takes other arguments
    than a message."""
    from bgtasks.core._errors import UpstreamFailed
    from bgtasks.core._state import IllegalTransition, TaskState
    from bgtasks.executors._process_worker import RemoteTraceback, UnpicklableError
    from bgtasks.jobs import JobError, JobLaunchError, JobMonitorError
    from bgtasks.processes import WorkerDied
    from bgtasks.thumbnails import ThumbnailError

    return [
        UpstreamFailed(7, 3, "boom"),
        IllegalTransition(7, TaskState.COMPLETED, TaskState.RUNNING),
        WorkerDied("the worker process running task 7 was killed by signal SIGKILL", -9),
        RemoteTraceback('Traceback (most recent call last):\n  File "x.py"\nValueError: v\n'),
        UnpicklableError("m.Bad", "Bad(<lock>)", "TypeError: cannot pickle '_thread.lock'"),
        JobError("the program failed", None),
        JobLaunchError("cannot run 'x': not found on PATH"),
        JobMonitorError("the monitor failed the job"),
        ThumbnailError("/pictures/caf\udce9.jpg", "Unsupported image format"),
    ]


def _same(a: BaseException, b: BaseException) -> None:
    assert type(b) is type(a)
    assert str(b) == str(a) and b.args == a.args
    assert vars(b) == vars(a)


def test_every_exception_class_pickles_with_its_attributes():
    samples = _samples()
    sampled = {type(error) for error in samples}
    for name, cls in _exception_classes().items():
        if cls in sampled:
            continue
        # Not sampled: its __init__ must take just a message, like Exception's.
        assert "__init__" not in vars(cls), f"{name} has its own __init__: add it to _samples()"
        samples.append(cls(f"a {cls.__name__}"))
    for error in samples:
        error.__notes__ = ["a note"]  # what add_note does (Python 3.11+; 3.10 has none)
        _same(error, pickle.loads(pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)))


_CHILD = textwrap.dedent(
    """
    import pickle, sys
    from bgtasks.core._errors import TaskCancelled, UpstreamFailed
    from bgtasks.executors._process_worker import RemoteTraceback, UnpicklableError
    from bgtasks.core._state import IllegalTransition, TaskState
    from bgtasks.processes import WorkerDied
    assert not [m for m in sys.modules if m.startswith("PySide6")], "Qt was imported"
    errors = [
        TaskCancelled("task 7 was asked to stop"),
        UpstreamFailed(7, 3, "boom"),
        IllegalTransition(7, TaskState.COMPLETED, TaskState.RUNNING),
        WorkerDied("the worker process died", None),
        RemoteTraceback("Traceback ..."),
        UnpicklableError("m.Bad", "Bad()", "TypeError: no"),
    ]
    sys.stdout.buffer.write(pickle.dumps(errors, protocol=pickle.HIGHEST_PROTOCOL))
    """
)


def test_exceptions_made_in_a_process_without_qt_unpickle_in_another():
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    errors = pickle.loads(done.stdout)
    assert [type(e).__name__ for e in errors] == [
        "TaskCancelled",
        "UpstreamFailed",
        "IllegalTransition",
        "WorkerDied",
        "RemoteTraceback",
        "UnpicklableError",
    ]
    assert all(isinstance(e, BgTasksError) for e in errors)
    upstream, illegal, died = errors[1], errors[2], errors[3]
    assert (upstream.uid, upstream.upstream, upstream.message) == (7, 3, "boom")
    assert str(upstream) == "task 7 did not run: upstream task 3 failed: boom"
    assert (illegal.uid, illegal.old.name, illegal.new.name) == (7, "COMPLETED", "RUNNING")
    assert (str(died), died.exitcode) == ("the worker process died", None)
    assert isinstance(died, RuntimeError)


@pytest.mark.parametrize("name", ["bgtasks.core._errors", "bgtasks.core._validate"])
def test_the_error_and_validation_modules_import_nothing_from_qt(name):
    code = (
        f"import sys, {name}; "
        "assert not [m for m in sys.modules if m.startswith('PySide6')], 'Qt was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()


class _Mute:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise KeyError("no repr")


def test_text_of_and_repr_of_survive_a_value_that_cannot_say_what_it_is():
    from bgtasks.core import Scheduler
    from bgtasks.core._errors import repr_of, text_of

    assert (text_of(7), text_of("g"), repr_of("g")) == ("7", "g", "'g'")
    assert text_of(_Mute()) == "_Mute (str() failed)"
    assert repr_of(_Mute()) == "_Mute (repr() failed)"
    # a task record's repr (in logs and debuggers) with such a group
    s = Scheduler(1, lambda n: None, lambda: None)
    s.pause()
    try:
        uid = s.add(len, task_args=((),), group=_Mute())
        assert repr(s._tasks[uid]).endswith("group=_Mute (repr() failed)>")
    finally:
        s.close()
