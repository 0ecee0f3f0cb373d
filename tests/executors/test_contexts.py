"""Every task context implements ``bgtasks.TaskContextProtocol``, member for member,
with the protocol's signatures: a context that drifts (a member missing, renamed, a
parameter added, a property turned into a plain attribute) fails here.

The context types are listed by hand; the tests at the end check that
``current_task()`` in each backend returns one of them, so a new context type
cannot go unlisted.
"""

from __future__ import annotations

import importlib.util
import inspect

import _process_funcs as f
import pytest

from bgtasks import TaskContext, TaskContextProtocol
from bgtasks.executors._dask_contexts import LocalContext, RemoteContext
from bgtasks.executors._process_context import WorkerContext
from bgtasks.loops import LoopContext

#: Every class whose instances current_task() returns.
CONTEXT_TYPES = [TaskContext, WorkerContext, LocalContext, RemoteContext]

#: The members current_task()'s documentation promises (README "Task control").
DOCUMENTED = {
    "uid",
    "group",
    "priority",
    "cancelled",
    "raise_if_cancelled",
    "sleep",
    "report_progress",
    "status",
    "settings",
    "update_settings",
}


def path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def protocol_members() -> list[str]:
    return sorted(name for name in vars(TaskContextProtocol) if not name.startswith("_"))


def test_the_protocol_has_the_documented_members_and_is_runtime_checkable():
    assert set(protocol_members()) == DOCUMENTED
    assert not isinstance(object(), TaskContextProtocol)  # TypeError if not runtime-checkable


def test_a_loop_is_given_the_same_protocol():
    assert LoopContext is TaskContextProtocol


@pytest.mark.parametrize("name", protocol_members())
@pytest.mark.parametrize("cls", CONTEXT_TYPES, ids=lambda cls: cls.__name__)
def test_each_context_type_has_each_member_with_the_protocols_signature(cls, name):
    expected = inspect.getattr_static(TaskContextProtocol, name)
    actual = inspect.getattr_static(cls, name, None)
    assert actual is not None, f"{cls.__name__} has no {name}"
    if isinstance(expected, property):
        assert isinstance(actual, property), f"{cls.__name__}.{name} is not a property"
        assert inspect.signature(actual.fget) == inspect.signature(expected.fget)
        if expected.fset is None:
            assert actual.fset is None, f"{cls.__name__}.{name} is settable"
        else:
            assert actual.fset is not None, f"{cls.__name__}.{name} cannot be set"
            assert inspect.signature(actual.fset) == inspect.signature(expected.fset)
    else:
        assert inspect.isfunction(actual), f"{cls.__name__}.{name} is not a method"
        assert inspect.signature(actual) == inspect.signature(expected)


# ------------------------------------------- what current_task() returns in each backend


def run_context_kind(qtbot, manager, **options):
    handle = manager.options(**options).submit(f.context_kind)
    qtbot.waitUntil(handle.done, timeout=60000)
    return handle.result(timeout=0)


def test_in_a_manager_thread_current_task_is_a_task_context(qtbot, make_manager):
    manager = make_manager(start_processing=True)
    assert run_context_kind(qtbot, manager) == (True, path(TaskContext))


def test_in_a_worker_process_current_task_is_a_worker_context(qtbot, make_manager):
    from bgtasks.processes import ProcessExecutor

    manager = make_manager(start_processing=True)
    manager.set_executor("process", ProcessExecutor(1))
    assert run_context_kind(qtbot, manager, executor="process") == (True, path(WorkerContext))


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="needs the dask extra")
def test_on_an_in_process_dask_worker_current_task_is_a_local_context(qtbot, make_manager):
    from bgtasks.dask_executor import DaskExecutor

    manager = make_manager(start_processing=True)
    manager.set_executor("dask", DaskExecutor(threads_per_worker=1))
    assert run_context_kind(qtbot, manager, executor="dask") == (True, path(LocalContext))


# RemoteContext (a Dask worker process) is checked the same way in test_dask.py, on
# the processes=True cluster that test already starts.
