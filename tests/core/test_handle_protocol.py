"""TaskHandle over a minimal owner that implements only HandleOwner (no Qt, no manager)."""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import inspect
import threading
from typing import Any

import pytest

from bgtasks import TaskCancelled, TaskState
from bgtasks.core import TASK_CANCELLED, TASK_COMPLETED, TASK_FAILED, Scheduler, run_worker
from bgtasks.core._handle import HandleOwner, TaskHandle

PROTOCOL = {"task_state", "info", "stop_handle", "handle_will_block", "add_handle_callback"}


class FakeOwner:
    """Exactly the five methods of HandleOwner, over a bare Scheduler, and a log of the calls."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.calls: list[str] = []
        self.callbacks: list[tuple[TaskHandle, Any]] = []

    def task_state(self, uid: int) -> TaskState:
        self.calls.append("task_state")
        return self.scheduler.state(uid)

    def info(self, uid: int) -> Any:
        self.calls.append("info")
        return self.scheduler.info(uid)

    def stop_handle(self, uid: int) -> bool:
        self.calls.append("stop_handle")
        return self.scheduler.stop(uid, False, True)

    def handle_will_block(self) -> None:
        self.calls.append("handle_will_block")

    def add_handle_callback(self, handle: TaskHandle, fn: Any) -> None:
        self.calls.append("add_handle_callback")
        if handle.done():
            fn(handle)
        else:
            self.callbacks.append((handle, fn))

    def deliver(self) -> None:
        """As the manager's drain: once a task's end is taken, its done-callbacks run."""
        while events := self.scheduler.take_events():
            for event in events:
                if event[0] in (TASK_COMPLETED, TASK_FAILED, TASK_CANCELLED):
                    uid = event[1] if event[0] == TASK_COMPLETED else event[1].uid
                    ready = [c for c in self.callbacks if c[0].uid == uid]
                    self.callbacks = [c for c in self.callbacks if c not in ready]
                    for handle, fn in ready:
                        fn(handle)


class Rig:
    """A scheduler whose workers the test runs on demand, and a FakeOwner over it."""

    def __init__(self) -> None:
        self.slots = 0
        self.s = Scheduler(1, self._spawn, lambda: None)
        self.owner = FakeOwner(self.s)
        self.s.start()

    def _spawn(self, n: int) -> None:
        self.slots += n

    def submit(self, fn: Any, *args: Any) -> TaskHandle:
        handle = TaskHandle(self.owner)
        handle.uid = self.s.add(fn, task_args=args, handle=handle)
        return handle

    def run(self) -> None:
        while self.slots:
            self.slots -= 1
            run_worker(self.s)


def test_the_fake_owner_has_exactly_the_protocol():
    members = {n for n, v in vars(HandleOwner).items() if callable(v) and not n.startswith("_")}
    assert members == PROTOCOL
    fake = {n for n, v in vars(FakeOwner).items() if callable(v) and not n.startswith("_")}
    assert fake - {"deliver"} == PROTOCOL


def test_the_handle_asks_its_owner_only_for_the_protocol():
    # Every attribute TaskHandle reads from self._owner is a protocol member.
    tree = ast.parse(inspect.getsource(TaskHandle))
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "_owner"
    }
    assert used and used <= PROTOCOL


def test_result_state_and_info_through_the_owner():
    rig = Rig()
    handle = rig.submit(lambda x: x * 2, 21)
    assert not handle.done()
    assert handle.state is TaskState.QUEUED
    assert handle.info().uid == handle.uid
    rig.run()
    assert handle.done() and not handle.cancelled() and not handle.running()
    assert handle.result() == 42
    assert handle.exception() is None
    assert "task_state" in rig.owner.calls and "info" in rig.owner.calls
    # the task had ended: nothing blocked
    assert "handle_will_block" not in rig.owner.calls


def test_a_failure_is_raised_and_returned():
    rig = Rig()

    def boom() -> None:
        raise ValueError("boom")

    handle = rig.submit(boom)
    rig.run()
    with pytest.raises(ValueError, match="boom"):
        handle.result()
    assert isinstance(handle.exception(), ValueError)


def test_a_blocking_wait_tells_the_owner_first():
    rig = Rig()
    handle = rig.submit(lambda: "late")
    with pytest.raises(TimeoutError):
        handle.result(timeout=0.01)
    assert rig.owner.calls.count("handle_will_block") == 1
    worker = threading.Timer(0.05, rig.run)
    worker.start()
    try:
        assert handle.result(timeout=10) == "late"
    finally:
        worker.join()
    assert rig.owner.calls.count("handle_will_block") == 2


def test_cancel_goes_to_the_owner_once():
    rig = Rig()
    handle = rig.submit(lambda: "never")
    assert handle.cancel() is True
    assert rig.owner.calls.count("stop_handle") == 1
    rig.run()
    assert handle.cancelled()
    with pytest.raises(TaskCancelled):
        handle.result()
    with pytest.raises(TaskCancelled):
        handle.exception()
    # already ended: the handle answers without asking the owner
    assert handle.cancel() is False
    assert rig.owner.calls.count("stop_handle") == 1


def test_done_callbacks_go_through_the_owner():
    rig = Rig()
    handle = rig.submit(lambda: 1)
    seen: list[TaskHandle] = []
    handle.add_done_callback(seen.append)
    with pytest.raises(TypeError):
        handle.add_done_callback("not callable")  # type: ignore[arg-type]
    assert rig.owner.calls.count("add_handle_callback") == 1
    assert seen == []
    rig.run()
    rig.owner.deliver()
    assert seen == [handle]
    handle.add_done_callback(seen.append)  # already done: soon (here: at once)
    assert seen == [handle, handle]


def test_await_settles_through_the_owners_callback():
    rig = Rig()
    handle = rig.submit(lambda: "awaited")

    async def main() -> Any:
        waiter = asyncio.ensure_future(_await(handle))
        await asyncio.sleep(0)  # the waiter registered its callback
        await asyncio.to_thread(rig.run)
        rig.owner.deliver()
        return await asyncio.wait_for(waiter, 10)

    assert asyncio.run(main()) == "awaited"
    assert "add_handle_callback" in rig.owner.calls


async def _await(handle: TaskHandle) -> Any:
    return await handle


def test_concurrent_futures_wait_wakes_when_the_worker_resolves_the_handle():
    # No delivery at all: the worker's resolution (under the scheduler's lock)
    # wakes the waiter that concurrent.futures.wait installed, and the owner
    # heard of the block before it began.
    rig = Rig()
    handle = rig.submit(lambda: "resolved")
    other = rig.submit(lambda: "second")
    assert isinstance(handle, concurrent.futures.Future)
    done, not_done = concurrent.futures.wait([handle], timeout=0.01)
    assert done == set() and not_done == {handle}
    assert rig.owner.calls.count("handle_will_block") == 1
    worker = threading.Thread(target=rig.run)
    worker.start()
    try:
        done, not_done = concurrent.futures.wait([handle, other], timeout=10)
        assert done == {handle, other} and not not_done
    finally:
        worker.join()
    assert [h.result() for h in concurrent.futures.as_completed([handle, other])] in (
        ["resolved", "second"],
        ["second", "resolved"],
    )
    assert rig.owner.callbacks == [] and "add_handle_callback" not in rig.owner.calls


def test_a_handle_makes_its_condition_only_when_someone_blocks():
    rig = Rig()
    handle = rig.submit(lambda: 1)
    assert handle._cond is None and handle._wlist is None
    rig.run()
    assert handle.result() == 1  # ended already: nothing to block on
    assert handle._cond is None and handle._wlist is None
    assert not hasattr(handle, "__dict__") or not handle.__dict__
