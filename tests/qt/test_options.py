"""Task options in their own namespace: ``manager.options(...)`` returns a checked,
immutable ``TaskSubmitter``; ``submit`` passes every keyword to the function."""

from __future__ import annotations

import math
import os
import threading

import pytest
from PySide6.QtCore import QObject

from bgtasks.qt._options import TaskOptions, TaskSubmitter

OPTION_NAMES = (
    "backoff, exclusive, executor, group, key, name, on_upstream_failure, owner, persist, "
    "priority, resources, retries, retry_on, timeout, upstream_task_ids"
)


def echo(*, timeout, name, priority, key, persist, executor, group, retries):
    return {
        "timeout": timeout,
        "name": name,
        "priority": priority,
        "key": key,
        "persist": persist,
        "executor": executor,
        "group": group,
        "retries": retries,
        "thread": threading.current_thread(),
    }


def test_every_keyword_of_submit_reaches_the_function(qtbot, make_manager):
    m = make_manager(start_processing=True)
    kwargs = {
        "timeout": 3,
        "name": 5,
        "priority": "x",
        "key": [1],
        "persist": "yes",
        "executor": "nowhere",
        "group": {},
        "retries": -1,
    }
    handle = m.submit(echo, **kwargs)
    result = handle.result(timeout=10)
    thread = result.pop("thread")
    assert result == kwargs
    assert thread is not threading.main_thread()
    info = m.info(handle.uid)  # none of them was taken as a task option
    assert (info.name, info.priority, info.group, info.key) == ("echo", 0, None, None)


def test_options_bind_task_options_and_submit_passes_keywords_to_the_function(qtbot, make_manager):
    m = make_manager(start_processing=True)
    up = m.submit(lambda: {"merged": 1})
    submitter = m.options(priority=5, group="g", name="bound", upstream_task_ids=[up.uid])
    handle = submitter.submit(lambda a, merged, timeout: (a, merged, timeout), 1, timeout=2)
    assert handle.result(timeout=10) == (1, 1, 2)
    info = m.info(handle.uid)
    assert (info.name, info.priority, info.group, info.upstream) == ("bound", 5, "g", (up.uid,))


def test_signals_and_done_callbacks_of_an_options_task_arrive_on_the_manager_thread(
    qtbot, make_manager
):
    m = make_manager(start_processing=True)
    seen = {}
    m.task_completed.connect(lambda uid, group, result: seen.setdefault("signal", (
        threading.current_thread(), group, result
    )))  # fmt: skip
    submitter = m.options(group="g")
    ran_on = []

    def submit_from_a_worker():  # a submitter is shared between threads
        handle = submitter.submit(lambda x: x * 2, 21)
        handle.add_done_callback(lambda h: seen.setdefault("callback", threading.current_thread()))
        ran_on.append(handle)

    worker = threading.Thread(target=submit_from_a_worker)
    with qtbot.waitSignal(m.task_completed, timeout=10000):
        worker.start()
        worker.join()
    qtbot.waitUntil(lambda: "callback" in seen, timeout=10000)
    assert seen["signal"] == (threading.main_thread(), "g", 42)
    assert seen["callback"] is threading.main_thread()
    assert ran_on[0].result(timeout=0) == 42


def test_options_of_a_submitter_merge_and_later_wins_leaving_the_first_unchanged(make_manager):
    m = make_manager()
    first = m.options(priority=1, name="a", retries=2)
    second = first.options(priority=7, timeout=5)
    assert isinstance(first, TaskSubmitter)
    assert first.task_options.changed() == {"priority": 1, "name": "a", "retries": 2}
    assert second.task_options.changed() == {
        "priority": 7,
        "name": "a",
        "retries": 2,
        "timeout": 5,
    }
    assert m.options().task_options == TaskOptions()


def test_a_submitter_and_its_options_are_immutable(make_manager):
    m = make_manager()
    submitter = m.options(resources=None, upstream_task_ids=[])
    with pytest.raises(AttributeError, match="^TaskSubmitter is immutable: cannot set '_options'$"):
        submitter._options = TaskOptions(priority=3)
    with pytest.raises(AttributeError):
        submitter.task_options.priority = 3
    assert submitter.task_options.upstream_task_ids == ()  # a tuple, not the caller's list


def test_bound_mappings_are_copies(qtbot, make_manager):
    m = make_manager(start_processing=True)
    m.set_resource_limit("disk", 1)
    resources = {"disk": 1}
    submitter = m.options(resources=resources)
    resources["gpu"] = 1  # unknown: would be refused at submit if it leaked in
    assert submitter.submit(lambda: "ok").result(timeout=10) == "ok"
    with pytest.raises(TypeError):
        submitter.task_options.resources["gpu"] = 1


def test_repr_names_the_bound_options(make_manager):
    m = make_manager()
    assert repr(m.options(priority=2, name="n")).endswith(": priority=2, name='n'>")
    assert repr(m.options()).endswith(": default options>")


def test_an_unknown_option_is_refused_naming_it_and_listing_the_options(make_manager):
    m = make_manager()
    with pytest.raises(TypeError) as caught:
        m.options(priorty=3)
    assert (
        str(caught.value) == f"unknown task option 'priorty'; the task options are {OPTION_NAMES}"
    )
    with pytest.raises(TypeError, match="^unknown task option 'colour'; the task options are "):
        m.options(name="a").options(colour="red")
    assert m.add_task(print) == 1  # nothing was registered before


NAN = math.nan


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"retries": -1}, ValueError, "retries must be a non-negative integer, got -1"),
        ({"retries": 1.5}, ValueError, "retries must be a non-negative integer, got 1.5"),
        ({"timeout": NAN}, ValueError, "timeout must be a positive number of seconds, got nan"),
        ({"timeout": 0}, ValueError, "timeout must be a positive number of seconds, got 0"),
        ({"backoff": -1}, ValueError, "backoff must be a non-negative number of seconds, got -1"),
        ({"priority": "x"}, TypeError, "priority must be a number or None, got 'x'"),
        ({"priority": NAN}, TypeError, "priority must be a number or None, got nan"),
        ({"group": []}, TypeError, "group must be hashable, got []"),
        ({"key": {}}, TypeError, "key must be hashable, got {}"),
        ({"name": 3}, TypeError, "name must be a string, got 3"),
        (
            {"upstream_task_ids": "12"},
            TypeError,
            "upstream_task_ids must be a list of task ids, got '12'",
        ),
        (
            {"upstream_task_ids": [1, "a"]},
            TypeError,
            "upstream_task_ids must be a list of task ids, got (1, 'a')",
        ),
        ({"owner": "me"}, TypeError, "owner must be a QObject, got 'me'"),
        ({"exclusive": 1}, TypeError, "exclusive must be True or False, got 1"),
        ({"persist": None}, TypeError, "persist must be True or False, got None"),
        ({"retry_on": 3}, TypeError, "retry_on must be exception types, got 3"),
        (
            {"on_upstream_failure": "explode"},
            ValueError,
            "on_upstream_failure must be 'fail' or 'cancel', got 'explode'",
        ),
        (
            {"resources": {"disk": 0}},
            ValueError,
            "resource 'disk' amount must be a positive integer, got 0",
        ),
        (
            {"executor": "gpu"},
            ValueError,
            "unknown executor 'gpu': use 'thread', 'process', 'dask' or a name given to "
            "set_executor",
        ),
        ({"executor": 3}, TypeError, "executor must be a name or a bgtasks.Executor, got 3"),
        (
            {"persist": True, "retries": 2},
            TypeError,
            "option 'retries' cannot be journaled: persist=True takes priority, group, "
            "upstream_task_ids and name",
        ),
    ],
)
def test_a_bad_value_is_refused_at_options_naming_it(make_manager, options, error, message):
    m = make_manager()
    with pytest.raises(error) as caught:
        m.options(**options)
    assert str(caught.value) == message
    with pytest.raises(error) as caught:  # merged into a good submitter: the same error
        m.options(name="fine").options(**options)
    assert str(caught.value) == message
    assert m.tasks() == []
    assert m.add_task(print) == 1


def test_a_known_executor_name_and_thread_are_accepted(make_manager):
    m = make_manager()
    for name in ("thread", "process", "dask"):
        assert m.options(executor=name).task_options.executor == name


def test_an_owner_that_is_a_qobject_is_accepted_and_stops_its_tasks(qtbot, make_manager):
    m = make_manager()
    owner = QObject()
    handle = m.options(owner=owner).submit(lambda: "never")
    owner.deleteLater()
    qtbot.waitUntil(handle.cancelled, timeout=10000)


def test_add_task_keeps_its_keyword_options(qtbot, make_manager):
    m = make_manager(start_processing=True)
    uid = m.add_task(lambda a: a, 1, "g", None, [4], None, name="legacy", retries=1)
    through = m.add_pass_through_task(task_kwargs={"x": 1}, upstream_task_ids=[uid], name="fan")
    handle = m.handle(through)
    assert handle.result(timeout=10) == {"x": 1}
    assert (m.info(uid).name, m.info(uid).group, m.info(through).name) == ("legacy", "g", "fan")
    with pytest.raises(TypeError) as caught:
        m.add_task(print, persist=True)
    assert str(caught.value) == (
        "unknown task option 'persist'; the task options are backoff, exclusive, executor, key, "
        "name, on_upstream_failure, owner, resources, retries, retry_on, timeout"
    )
    with pytest.raises(ValueError, match=r"^retries must be a non-negative integer, got -1$"):
        m.add_task(print, retries=-1)
    assert [i.uid for i in m.tasks()] == [uid, through]


ADD_TASK_CASES = [
    case
    for case in test_a_bad_value_is_refused_at_options_naming_it.pytestmark[0].args[1]
    if not {"priority", "group", "upstream_task_ids", "persist"} & set(case[0])
]


@pytest.mark.parametrize(("options", "error", "message"), ADD_TASK_CASES)
def test_add_task_refuses_the_same_bad_values_naming_them(make_manager, options, error, message):
    m = make_manager()
    with pytest.raises(error) as caught:
        m.add_task(print, **options)
    assert str(caught.value) == message
    assert m.tasks() == []  # nothing registered


def test_add_task_runs_a_task_on_the_executor_it_names(qtbot, make_manager):
    # Before, add_task(..., executor="process") was accepted and ran in a thread.
    m = make_manager(start_processing=True)
    uid = m.add_task(os.getpid, executor="process")
    handle = m.handle(uid)
    assert handle.result(timeout=60) != os.getpid()
    assert m.info(uid).name == "getpid"
