"""Never silent: a failure nobody observes is logged once, with its traceback; a
manager never started says so."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from bgtasks.qt import _manager

START_HINT = "call start_processing(), or pass start_processing=True"


def boom() -> None:
    raise ZeroDivisionError("division by zero")


def errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bgtasks" and r.levelno == logging.ERROR]


def unheard(uid: int, name: str = "boom") -> str:
    return (
        f"task {uid} ({name}) failed, and no task_failed slot, done-callback or handle "
        "observed it: division by zero\n"
    )


def dropped(uid: int, name: str = "boom") -> str:
    return (
        f"task {uid} ({name}) failed, and its handle was dropped without result(), "
        "exception(), await or a done-callback: division by zero\n"
    )


def assert_traceback(record: logging.LogRecord) -> None:
    text = record.getMessage()
    assert "\nTraceback (most recent call last):\n" in text
    assert 'raise ZeroDivisionError("division by zero")' in text
    assert text.endswith("\nZeroDivisionError: division by zero")


def run_and_deliver(qtbot, m):
    """Start ``m`` and wait until the group's tasks were delivered (not through task_failed)."""
    with qtbot.waitSignal(m.task_group_finished, timeout=10000):
        m.start_processing()


def later_delivery(qtbot, m) -> None:
    """One more task delivered: whatever the previous deliveries logged is logged."""
    with qtbot.waitSignal(m.task_group_finished, timeout=10000):
        m.add_task(int, group="later")


def test_an_unobserved_failure_is_logged_once_with_its_traceback(qtbot, make_manager, caplog):
    m = make_manager()
    uid = m.add_task(boom, group="g")
    run_and_deliver(qtbot, m)
    later_delivery(qtbot, m)
    [record] = errors(caplog)
    assert record.getMessage().startswith(unheard(uid))
    assert_traceback(record)


def test_a_task_failed_slot_observes_the_failure(qtbot, make_manager, caplog):
    m = make_manager()
    heard = []
    m.task_failed.connect(lambda uid, group, message, tb: heard.append(uid))
    uid = m.add_task(boom, group="g")
    run_and_deliver(qtbot, m)
    later_delivery(qtbot, m)
    assert heard == [uid] and errors(caplog) == []


def test_a_done_callback_observes_the_failure(qtbot, make_manager, caplog):
    m = make_manager()
    h = m.handle(m.add_task(boom, group="g"))
    seen = []
    h.add_done_callback(lambda handle: seen.append(type(handle.exception())))
    del h
    run_and_deliver(qtbot, m)
    later_delivery(qtbot, m)
    gc.collect()
    assert seen == [ZeroDivisionError] and errors(caplog) == []


@pytest.mark.parametrize("when", ["before delivery", "after delivery"])
@pytest.mark.parametrize("how", ["result", "exception"])
def test_consulting_a_handle_observes_the_failure(qtbot, make_manager, caplog, when, how):
    m = make_manager()
    uid = m.add_task(boom, group="g")
    h = m.handle(uid)

    def consult(handle) -> None:
        if how == "result":
            with pytest.raises(ZeroDivisionError):
                handle.result(timeout=10)
        else:
            assert isinstance(handle.exception(timeout=10), ZeroDivisionError)

    if when == "before delivery":
        m.start_processing()
        consult(h)  # the manager's thread: nothing delivered yet
        later_delivery(qtbot, m)
    else:
        run_and_deliver(qtbot, m)
        assert errors(caplog) == []  # a live handle: it is the handle's to report
        consult(h)
    del h
    gc.collect()
    later_delivery(qtbot, m)
    assert errors(caplog) == []


def test_a_handle_dropped_unconsulted_logs_the_failure_once(qtbot, make_manager, caplog):
    m = make_manager()
    uid = m.add_task(boom, group="g")
    first, second = m.handle(uid), m.handle(uid)
    run_and_deliver(qtbot, m)
    later_delivery(qtbot, m)
    assert errors(caplog) == []  # handles live: nothing yet
    del first
    gc.collect()
    assert errors(caplog) == []  # another handle of the task lives
    del second
    [record] = errors(caplog)  # the last one gone: at once, on the thread that dropped it
    assert record.getMessage().startswith(dropped(uid))
    assert_traceback(record)
    gc.collect()
    later_delivery(qtbot, m)
    assert len(errors(caplog)) == 1


def test_one_consulted_handle_of_several_is_enough(qtbot, make_manager, caplog):
    m = make_manager()
    uid = m.add_task(boom, group="g")
    first, second = m.handle(uid), m.handle(uid)
    run_and_deliver(qtbot, m)
    assert isinstance(second.exception(), ZeroDivisionError)
    del first, second
    gc.collect()
    later_delivery(qtbot, m)
    assert errors(caplog) == []


def test_tasks_downstream_of_a_failure_are_not_logged_again(qtbot, make_manager, caplog):
    m = make_manager()
    a = m.add_task(boom, group="g")
    b = m.add_task(int, group="g", upstream_task_ids=[a])
    m.add_task(int, group="g", upstream_task_ids=[b])
    run_and_deliver(qtbot, m)
    later_delivery(qtbot, m)
    [record] = errors(caplog)
    assert record.getMessage().startswith(unheard(a))


def test_each_run_of_a_retried_task_is_logged_once(qtbot, make_manager, caplog):
    m = make_manager()
    uid = m.add_task(boom, group="g")
    run_and_deliver(qtbot, m)
    assert [r.getMessage().startswith(unheard(uid)) for r in errors(caplog)] == [True]
    with qtbot.waitSignal(m.task_group_finished, timeout=10000):
        m.retry(uid)  # its handle is dropped at once, unconsulted
    later_delivery(qtbot, m)
    gc.collect()
    assert [r.getMessage().split("\n")[0] for r in errors(caplog)] == [
        unheard(uid).split("\n")[0],
        dropped(uid).split("\n")[0],
    ]


def test_automatic_retries_log_only_the_final_failure(qtbot, make_manager, caplog):
    m = make_manager()
    uid = m.add_task(boom, group="g", retries=2, backoff=0.001)
    run_and_deliver(qtbot, m)
    later_delivery(qtbot, m)
    assert m.info(uid).attempts == 3
    [record] = errors(caplog)
    assert record.getMessage().startswith(unheard(uid))


# ---------------------------------------------------------------- a manager never started


@pytest.fixture
def soon(monkeypatch):
    monkeypatch.setattr(_manager, "NEVER_STARTED_AFTER", 0.02)
    return 20  # ms


def warnings_of(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "bgtasks" and r.levelno == logging.WARNING
    ]


def test_tasks_added_from_another_thread_to_a_manager_never_started_warn_once(
    qtbot, make_manager, caplog, soon
):
    m = make_manager()
    adder = threading.Thread(target=lambda: [m.add_task(int) for _ in range(3)])
    adder.start()
    adder.join()
    expected = (
        f"3 tasks are waiting on a BackgroundTaskManager that was never started: {START_HINT}"
    )
    qtbot.waitUntil(lambda: warnings_of(caplog) == [expected], timeout=10000)
    m.add_task(int)
    qtbot.wait(soon * 10)  # no second warning, however long it waits
    assert warnings_of(caplog) == [expected]
    m.shut_down()
    assert warnings_of(caplog) == [
        expected,
        "shut down with 4 tasks that never ran: the BackgroundTaskManager was never "
        f"started ({START_HINT})",
    ]


def test_one_task_waiting(qtbot, make_manager, caplog, soon):
    m = make_manager()
    m.add_task(int)
    expected = f"1 task is waiting on a BackgroundTaskManager that was never started: {START_HINT}"
    qtbot.waitUntil(lambda: warnings_of(caplog) == [expected], timeout=10000)


def test_a_manager_started_in_time_or_paused_later_does_not_warn(qtbot, make_manager, caplog, soon):
    m = make_manager()
    m.add_task(int)
    m.start_processing()  # before the event loop ran the check
    started = make_manager(start_processing=True)
    started.pause_processing()
    started.add_task(int)  # queued on a paused manager that was started once
    qtbot.wait(soon * 10)
    m.shut_down()
    started.shut_down()
    assert warnings_of(caplog) == []


def test_a_manager_never_started_warns_at_interpreter_exit():
    code = textwrap.dedent(
        """
        import os
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtCore import QCoreApplication
        from bgtasks import BackgroundTaskManager
        app = QCoreApplication([])
        m = BackgroundTaskManager()
        m.add_task(print, task_args=["never"])
        m.add_task(print, task_args=["never"])
        """
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    # no handler configured: logging's last resort prints warnings to stderr
    assert proc.stderr.splitlines() == [
        "shut down with 2 tasks that never ran: the BackgroundTaskManager was never "
        f"started ({START_HINT})"
    ]
