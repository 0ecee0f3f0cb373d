"""executor="dask": tasks run on a dask.distributed LocalCluster (in-process, or worker processes).

Skipped when the ``dask`` extra is not installed; the ``test`` extra installs it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading

import _process_funcs
import pytest
from PySide6.QtCore import QThread

distributed = pytest.importorskip("distributed")

from bgtasks import TaskCancelled, TaskState, current_task  # noqa: E402
from bgtasks.dask_executor import MISSING_EXTRA, DaskExecutor  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """One in-process cluster (2 threads) for the module: it starts in milliseconds."""
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address="127.0.0.1:0"
    ) as local:
        yield local


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as dask_client:
        yield dask_client


@pytest.fixture
def dask_manager(make_manager, client):
    """A manager whose executor="dask" runs on the module's cluster (left open at its end)."""
    manager = make_manager(start_processing=True)
    executor = DaskExecutor(client=client, poll_interval=0.01)
    manager.set_executor("dask", executor)
    return manager


# Functions sent to Dask are pickled: those that share events and lists with the
# test live at module level, so they travel by reference and, on the in-process
# cluster, see these very objects.
EVENTS: dict[str, threading.Event] = {}
LOG: list = []


@pytest.fixture(autouse=True)
def fresh_events():
    EVENTS.clear()
    for name in ("started", "release", "halfway"):
        EVENTS[name] = threading.Event()
    LOG.clear()
    yield
    for event in EVENTS.values():  # a failed test leaves no Dask thread waiting
        event.set()


@pytest.fixture(autouse=True)
def unpolluted_http_routes():
    """Without bokeh, a scheduler with a dashboard appends Dask's "install bokeh" page
    to the routes list of Dask's config, in place, so every later scheduler of the
    process serves it at /status: each test starts from the routes Dask ships."""
    import dask

    key = "distributed.scheduler.http.routes"
    missing = "distributed.http.scheduler.missing_bokeh"
    routes = [route for route in dask.config.get(key) if route != missing]
    with dask.config.set({key: routes}):
        yield


def record(value):
    LOG.append(value)


def wait_done(qtbot, handles, timeout=15000):
    qtbot.waitUntil(lambda: all(h.done() for h in handles), timeout=timeout)


def where_am_i(x):
    return distributed.get_worker().address, threading.current_thread().name, x * 2


def raises_cancelled_error():
    import concurrent.futures

    raise concurrent.futures.CancelledError("the function's own")


# ----------------------------------------------------------------- running, signals


def test_a_task_runs_on_a_dask_worker_and_signals_arrive_on_the_manager_thread(
    qtbot, dask_manager, cluster
):
    slot_threads = []
    completed = []

    def on_completed(uid, group, result):
        slot_threads.append(QThread.currentThread())
        completed.append((uid, group, result))

    dask_manager.task_completed.connect(on_completed)
    with qtbot.waitSignal(dask_manager.task_completed, timeout=15000):
        handle = dask_manager.options(group="g", executor="dask").submit(where_am_i, 21)
    address, thread_name, value = handle.result(timeout=0)
    assert address in cluster.workers.keys() | {w.address for w in cluster.workers.values()}
    assert thread_name != threading.main_thread().name
    assert completed == [(handle.uid, "g", (address, thread_name, 42))]
    assert slot_threads == [QThread.currentThread()]
    assert handle.info().name == "where_am_i"
    assert dask_manager.task_state(handle.uid) is TaskState.COMPLETED


def scheduler_address():
    return distributed.get_worker().scheduler.address


def test_the_default_executor_is_an_in_process_cluster_made_on_first_use(qtbot, make_manager):
    manager = make_manager(start_processing=True)
    handle = manager.options(executor="dask").submit(scheduler_address)
    assert handle.result(timeout=30).startswith("inproc://")


def test_shut_down_closes_the_cluster_the_executor_made(qtbot, make_manager):
    manager = make_manager(start_processing=True)
    executor = DaskExecutor(threads_per_worker=1)
    manager.set_executor("dask", executor)
    assert executor.client is None  # nothing started before the first task
    assert (
        manager.options(executor="dask").submit(lambda a, b: a + b, 2, b=3).result(timeout=30) == 5
    )
    client = executor.client
    assert client.status == "running"
    manager.shut_down(timeout=10)
    assert client.status == "closed"
    assert client.cluster.status.name == "closed"


def test_upstream_dict_results_arrive_merged_in_kwargs(qtbot, dask_manager):
    def measure(text):  # a thread task
        return {"length": len(text)}

    def describe(length, unit):  # on Dask, with `length` from upstream
        return f"{length} {unit}", distributed.get_worker() is not None

    first = dask_manager.submit(measure, "background")
    second = dask_manager.options(upstream_task_ids=[first.uid], executor="dask").submit(
        describe, unit="chars"
    )
    assert second.result(timeout=15) == ("10 chars", True)


def once(x):
    LOG.append(x)
    EVENTS["release"].wait(10)
    return x + 1


def test_the_manager_key_shares_one_dask_run_among_requesters(qtbot, dask_manager):
    handles = [dask_manager.options(key="k", executor="dask").submit(once, 1) for _ in range(3)]
    EVENTS["release"].set()
    wait_done(qtbot, handles)
    assert [h.result() for h in handles] == [2, 2, 2]
    assert LOG == [1]


# ----------------------------------------------------------------- errors


class Oops(Exception):
    pass


def fails(n):
    raise Oops(f"bad value {n}")


def test_an_error_keeps_its_type_message_and_traceback(qtbot, dask_manager):
    failed = []
    dask_manager.task_failed.connect(lambda uid, g, msg, tb: failed.append((uid, msg, tb)))
    with qtbot.waitSignal(dask_manager.task_failed, timeout=15000):
        handle = dask_manager.options(executor="dask").submit(fails, 7)
    error = handle.exception(timeout=0)
    assert type(error) is Oops and str(error) == "bad value 7"
    [(uid, message, tb)] = failed
    assert uid == handle.uid
    assert message == "bad value 7"
    assert 'raise Oops(f"bad value {n}")' in tb
    assert tb.rstrip().endswith("Oops: bad value 7")
    assert dask_manager.task_state(handle.uid) is TaskState.FAILED


def test_check_refuses_what_cannot_be_sent_to_dask_and_registers_nothing(dask_manager):
    lock = threading.Lock()
    with pytest.raises(
        TypeError,
        match=r"^executor='dask' cannot send the argument 1 <unlocked _thread\.lock object at "
        r"0x[0-9a-f]+> to Dask: TypeError: cannot pickle '_thread\.lock' object$",
    ):
        dask_manager.options(executor="dask").submit(where_am_i, 1, lock)
    with pytest.raises(TypeError, match=r"^executor='dask' cannot send the keyword argument 'x' "):
        dask_manager.options(executor="dask").submit(where_am_i, x=lock)

    def holds_a_lock():
        return lock

    with pytest.raises(TypeError, match=r"^executor='dask' cannot send the function <function "):
        dask_manager.options(executor="dask").submit(holds_a_lock)
    assert dask_manager.tasks() == []
    # A lambda is fine: cloudpickle sends it by value.
    assert dask_manager.options(executor="dask").submit(lambda: "ok").result(timeout=15) == "ok"


# ----------------------------------------------------------------- cancellation


def stubborn():  # ignores the stop: only the Dask future's cancellation ends the task
    EVENTS["started"].set()
    EVENTS["release"].wait(30)
    LOG.append(current_task().cancelled)
    current_task().report_progress(0.9)  # dropped: the task already ended
    return "late"


def test_cancelling_a_running_task_cancels_its_dask_future(qtbot, dask_manager, cluster):
    cancelled = []
    dask_manager.task_cancelled.connect(lambda uid, g: cancelled.append(uid))
    handle = dask_manager.options(executor="dask").submit(stubborn)
    assert EVENTS["started"].wait(15)
    [key] = [k for k in list(cluster.scheduler.tasks) if str(k).startswith("stubborn-")]
    with qtbot.waitSignal(dask_manager.task_cancelled, timeout=10000):
        assert handle.cancel() is True
    assert handle.cancelled() and cancelled == [handle.uid]
    with pytest.raises(TaskCancelled):
        handle.result(timeout=0)
    qtbot.waitUntil(lambda: key not in cluster.scheduler.tasks, timeout=10000)
    EVENTS["release"].set()
    qtbot.waitUntil(lambda: LOG == [True], timeout=10000)
    assert handle.info().progress == 0.0


def test_a_future_cancelled_on_the_dask_side_ends_the_task_cancelled(
    qtbot, dask_manager, client, cluster
):
    handle = dask_manager.options(executor="dask").submit(blocker)
    assert EVENTS["started"].wait(15)
    [key] = [k for k in list(cluster.scheduler.tasks) if str(k).startswith("blocker-")]
    with qtbot.waitSignal(dask_manager.task_cancelled, timeout=10000) as blocker_signal:
        client.cancel([distributed.Future(key, client)], force=True)
    assert blocker_signal.args == [handle.uid, None]
    assert dask_manager.task_state(handle.uid) is TaskState.CANCELLED


def sleeper():
    EVENTS["started"].set()
    current_task().sleep(60)
    LOG.append("never")


def test_a_cooperative_task_sleeping_on_dask_wakes_and_ends_cancelled(qtbot, dask_manager):
    handle = dask_manager.options(executor="dask").submit(sleeper)
    assert EVENTS["started"].wait(15)
    with qtbot.waitSignal(dask_manager.task_cancelled, timeout=10000):
        dask_manager.stop_task(handle.uid)
    assert dask_manager.task_state(handle.uid) is TaskState.CANCELLED
    assert LOG == []


def blocker():
    EVENTS["started"].set()
    EVENTS["release"].wait(30)


def test_a_timeout_stops_the_dask_task_and_fails_it_with_timeout_error(qtbot, dask_manager):
    handle = dask_manager.options(timeout=0.2, executor="dask").submit(blocker)
    wait_done(qtbot, [handle])
    EVENTS["release"].set()
    assert isinstance(handle.exception(timeout=0), TimeoutError)


# ----------------------------------------------------------------- priority, progress


def test_submit_passes_priority_a_unique_key_and_pure_false(
    qtbot, dask_manager, client, monkeypatch
):
    calls = []
    original = client.submit

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(client, "submit", spy)
    handles = [
        dask_manager.options(priority=7, executor="dask").submit(where_am_i, 1) for _ in range(2)
    ]
    wait_done(qtbot, handles)
    assert [(c["priority"], c["fifo_timeout"], c["pure"]) for c in calls] == [(7, 0, False)] * 2
    assert calls[0]["key"] != calls[1]["key"]
    assert all(c["key"].startswith("where_am_i-") for c in calls)


def record_too(value):
    LOG.append(value)


@pytest.mark.parametrize(
    ("recorder", "first", "second", "expected"),
    [
        (record, ("low", 1), ("high", 5), ["high", "low"]),  # higher priority first
        (record_too, ("a", 3), ("b", 3), ["a", "b"]),  # FIFO among equals
    ],
)
def test_dask_runs_its_queue_in_the_managers_order(
    qtbot, make_manager, recorder, first, second, expected
):
    # One busy Dask thread and no slot limit: both tasks reach the worker's
    # queue, in submit order, while it is busy; only the priority given to
    # Dask orders them.  (Dask sends a worker tasks ahead of time while a task
    # group is small; once a group has more tasks than twice the cluster's
    # threads, the rest wait in the scheduler's queue, also by priority.)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
        ) as one_thread,
        distributed.Client(one_thread, set_as_default=False) as dask_client,
    ):
        manager = make_manager(start_processing=True)
        manager.set_executor("dask", DaskExecutor(client=dask_client))
        handles = [manager.options(executor="dask").submit(blocker)]
        assert EVENTS["started"].wait(15)
        for count, (value, priority) in enumerate((first, second), start=2):
            handles.append(
                manager.options(priority=priority, executor="dask").submit(recorder, value)
            )
            qtbot.waitUntil(lambda n=count: len(one_thread.scheduler.tasks) == n, timeout=10000)
        EVENTS["release"].set()
        wait_done(qtbot, handles)
        assert LOG == expected
        manager.shut_down(timeout=5)


def work():
    ctx = current_task()
    ctx.report_progress(1, 2, "half")
    ctx.status = "working"
    EVENTS["halfway"].set()
    EVENTS["release"].wait(30)
    return ctx.uid


def test_progress_and_status_reported_inside_dask_reach_the_manager(qtbot, dask_manager):
    log = []
    dask_manager.task_progress.connect(lambda uid, g, f, msg: log.append(("progress", f, msg)))
    dask_manager.task_completed.connect(lambda uid, g, r: log.append(("completed", r)))

    handle = dask_manager.options(executor="dask").submit(work)
    assert EVENTS["halfway"].wait(15)
    qtbot.waitUntil(lambda: ("progress", 0.5, "half") in log, timeout=10000)
    assert handle.info().status == "working"
    EVENTS["release"].set()
    wait_done(qtbot, [handle])
    qtbot.waitUntil(lambda: log and log[-1][0] == "completed", timeout=10000)
    assert log[-1] == ("completed", handle.uid)
    assert log[-2] == ("progress", 1.0, "half")


# ----------------------------------------------------------------- worker processes


def remote_work(n):
    ctx = current_task()
    ctx.report_progress(0.25, message="a quarter")  # sent at once
    ctx.report_progress(0.75, message="three quarters")  # held back, comes with the result
    ctx.status = "remote"
    with pytest.raises(ValueError, match=r"^progress must be a fraction between 0 and 1, got 2$"):
        ctx.report_progress(2)
    return n * 3, ctx.uid, ctx.cancelled


def remote_wait_for_cancel(path):
    ctx = current_task()
    ctx.report_progress(0.5, message="waiting")
    try:
        ctx.sleep(60)  # raises TaskCancelled in the worker once the future is cancelled
    except TaskCancelled:
        with open(path, "w") as f:
            f.write(f"stopped {ctx.cancelled}")
        raise


def test_in_worker_processes_progress_errors_and_cancel_still_work(qtbot, make_manager, tmp_path):
    executor = DaskExecutor(n_workers=1, threads_per_worker=2, processes=True, poll_interval=0.01)
    manager = make_manager(start_processing=True)
    manager.set_executor("dask", executor)
    progress = []
    manager.task_progress.connect(lambda uid, g, f, msg: progress.append((uid, f, msg)))

    done = manager.options(executor="dask").submit(remote_work, 5)
    assert done.result(timeout=60) == (15, done.uid, False)
    assert executor.client.scheduler.address.startswith("tls://127.0.0.1:")
    kind = manager.options(executor="dask").submit(_process_funcs.context_kind).result(timeout=60)
    assert kind == (True, "bgtasks.executors._dask_contexts.RemoteContext")
    qtbot.waitUntil(lambda: (done.uid, 1.0, "three quarters") in progress, timeout=10000)
    assert done.info().status == "remote"

    failing = manager.options(executor="dask").submit(fails, 3)
    wait_done(qtbot, [failing], timeout=30000)
    assert type(failing.exception()) is Oops and str(failing.exception()) == "bad value 3"

    stopped = tmp_path / "stopped"
    waiting = manager.options(executor="dask").submit(remote_wait_for_cancel, str(stopped))
    qtbot.waitUntil(lambda: (waiting.uid, 0.5, "waiting") in progress, timeout=30000)
    waiting.cancel()
    wait_done(qtbot, [waiting])
    assert waiting.cancelled()
    qtbot.waitUntil(stopped.exists, timeout=10000)  # the worker's sleep woke up
    qtbot.waitUntil(lambda: stopped.read_text() == "stopped True", timeout=10000)
    manager.shut_down(timeout=10)
    assert executor.client.status == "closed"


# ----------------------------------------------------------------- security


def listening_sockets(pid: int) -> set[str]:
    """The TCP addresses process ``pid`` listens on, as "host:port" (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        with open(f"/proc/{pid}/net/{table}") as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state != "0A" or inode not in inodes:  # 0A: LISTEN
                    continue
                host, port = local.split(":")
                raw = bytes.fromhex(host)
                if width == 8:
                    address = ".".join(str(b) for b in raw[::-1])
                else:  # four little-endian 32-bit words
                    words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
                    address = bytes(b for w in words for b in w).hex()
                    address = "::" if address == "0" * 32 else address
                    if address == "0" * 31 + "1":
                        address = "::1"
                found.add(f"{address}:{int(port, 16)}")
    return found


def http_status(address: str, path: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_default_cluster_listens_on_loopback_only_and_has_no_dashboard(make_manager):
    before = listening_sockets(os.getpid())
    manager = make_manager(start_processing=True)
    executor = DaskExecutor(threads_per_worker=1)
    manager.set_executor("dask", executor)
    assert (
        manager.options(executor="dask")
        .submit(scheduler_address)
        .result(timeout=30)
        .startswith("inproc://")
    )
    opened = listening_sockets(os.getpid()) - before
    # Dask's HTTP servers (health, metrics) of the scheduler and the worker, nothing else
    assert len(opened) == 2 and all(a.startswith("127.0.0.1:") for a in opened), opened
    port = executor.client.scheduler_info()["services"]["dashboard"]
    assert http_status(f"127.0.0.1:{port}", "/health") == 200
    assert http_status(f"127.0.0.1:{port}", "/status") == 404  # no dashboard page


def test_a_dashboard_is_served_when_asked_for(make_manager):
    manager = make_manager(start_processing=True)
    executor = DaskExecutor(threads_per_worker=1, dashboard_address="127.0.0.1:0")
    manager.set_executor("dask", executor)
    manager.options(executor="dask").submit(scheduler_address).result(timeout=30)
    port = executor.client.scheduler_info()["services"]["dashboard"]
    # 200: the dashboard, or the page saying bokeh is needed for it
    assert http_status(f"127.0.0.1:{port}", "/status") == 200


def worker_pid():
    return os.getpid()


async def ask_identity(address, security):
    """Connect to a Dask server as a client would and ask who it is (the first step
    before submitting code to run)."""
    comm = await distributed.comm.connect(
        address, timeout=2, **security.get_connection_args("client")
    )
    try:
        await comm.write({"op": "identity"})
        return await comm.read()
    finally:
        await comm.close()


def test_the_processes_cluster_uses_tls_on_loopback_and_refuses_strangers(make_manager):
    from distributed.security import Security

    before = listening_sockets(os.getpid())
    manager = make_manager(start_processing=True)
    executor = DaskExecutor(n_workers=1, threads_per_worker=1, processes=True)
    manager.set_executor("dask", executor)
    pid = manager.options(executor="dask").submit(worker_pid).result(timeout=60)
    assert pid != os.getpid()
    address = executor.client.scheduler.address
    assert address.startswith("tls://127.0.0.1:")
    (worker,) = executor.client.scheduler_info()["workers"]
    assert worker.startswith("tls://127.0.0.1:")
    sockets = listening_sockets(pid) | (listening_sockets(os.getpid()) - before)
    assert sockets and all(a.startswith("127.0.0.1:") for a in sockets), sockets
    port = executor.client.scheduler_info()["services"]["dashboard"]
    assert http_status(f"127.0.0.1:{port}", "/status") == 404
    # Another local process: plain TCP, TLS without credentials, TLS with other credentials.
    host_port = address.removeprefix("tls://")
    worker_port = worker.removeprefix("tls://")
    strangers = [
        (f"tcp://{host_port}", Security()),
        (address, Security(require_encryption=True)),
        (address, Security.temporary()),
        (worker, Security.temporary()),
        (f"tcp://{worker_port}", Security()),
    ]
    for target, security in strangers:
        # OSError: refused by the server (closed, handshake failed, timed out);
        # TypeError: Dask's client will not even try TLS without a certificate
        with pytest.raises((OSError, TypeError)):
            asyncio.run(ask_identity(target, security))
    # the same call with the cluster's own credentials gets an answer
    own = executor.client.security
    assert asyncio.run(ask_identity(address, own))["type"] == "Scheduler"
    # the executor's own client still works
    assert manager.options(executor="dask").submit(worker_pid).result(timeout=60) == pid


def test_processes_true_without_cryptography_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_cryptography(name, *args, **kwargs):
        if name == "cryptography" or name.startswith("cryptography."):
            raise ImportError("No module named 'cryptography'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cryptography)
    with pytest.raises(ImportError) as info:
        DaskExecutor(processes=True)
    assert str(info.value) == (
        "DaskExecutor(processes=True) secures its cluster with TLS and needs the "
        "cryptography package: pip install 'bgtasks[dask]'"
    )
    DaskExecutor(processes=True, security=False)  # an explicit choice: no TLS, no check


def test_security_false_gives_a_plain_tcp_cluster_on_loopback(make_manager):
    manager = make_manager(start_processing=True)
    executor = DaskExecutor(n_workers=1, threads_per_worker=1, processes=True, security=False)
    manager.set_executor("dask", executor)
    assert manager.options(executor="dask").submit(worker_pid).result(timeout=60) != os.getpid()
    assert executor.client.scheduler.address.startswith("tcp://127.0.0.1:")


# ----------------------------------------------------------------- configuration, lifetime


def test_constructor_refuses_bad_configuration(client):
    cases = [
        (
            dict(address=8786),
            TypeError,
            "address must be a string like 'tcp://host:8786', got 8786",
        ),
        (dict(client="c"), TypeError, "client must be a distributed.Client, got 'c'"),
        (
            dict(address="tcp://h:1", client=client),
            ValueError,
            "give address or client, not both (address='tcp://h:1')",
        ),
        (
            dict(address="tcp://h:1", memory_limit="1GB"),
            TypeError,
            "cluster options ['memory_limit'] need the local cluster (no address, no client)",
        ),
        (dict(n_workers=0), ValueError, "n_workers must be a positive integer, got 0"),
        (
            dict(threads_per_worker=1.5),
            ValueError,
            "threads_per_worker must be a positive integer or None, got 1.5",
        ),
        (dict(slots=True), ValueError, "slots must be a positive integer or None, got True"),
        (dict(processes="yes"), TypeError, "processes must be True or False, got 'yes'"),
        (
            dict(poll_interval=0),
            ValueError,
            "poll_interval must be a positive number of seconds, got 0",
        ),
        (
            dict(address="tls://h:1", dashboard_address="127.0.0.1:0"),
            TypeError,
            "cluster options ['dashboard_address'] need the local cluster (no address, no client)",
        ),
        (
            dict(client=client, security=False),
            ValueError,
            "security goes with an address or the local cluster, not a client",
        ),
        (
            dict(security="yes"),
            TypeError,
            "security must be a distributed.security.Security or False, got 'yes'",
        ),
        (
            dict(dashboard_address=8787),
            TypeError,
            "dashboard_address must be a string like '127.0.0.1:8787', got 8787",
        ),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error) as info:
            DaskExecutor(**kwargs)
        assert str(info.value) == message


def test_slots_default_to_the_local_cluster_threads():
    assert DaskExecutor(n_workers=2, threads_per_worker=3).slots == 6
    assert DaskExecutor(slots=4).slots == 4
    assert DaskExecutor("tcp://127.0.0.1:1").slots is None


def test_manager_shut_down_with_a_stubborn_dask_task_is_bounded(qtbot, make_manager):
    manager = make_manager(start_processing=True)
    executor = DaskExecutor(threads_per_worker=1)
    manager.set_executor("dask", executor)
    handle = manager.options(executor="dask").submit(blocker)  # never looks at its context
    assert EVENTS["started"].wait(15)
    manager.shut_down(timeout=1)  # returns although the Dask thread is still blocked
    assert handle.done()
    with pytest.raises(TaskCancelled):
        handle.result(timeout=0)
    assert executor.client.status == "closed"
    with pytest.raises(RuntimeError, match=r"^<DaskExecutor local cluster \(shut down\)> was "):
        executor.run(trivial_sum, (1, 2), {}, None)


def trivial_sum(a, b):
    return a + b


def test_shut_down_leaves_a_given_client_open_and_is_idempotent(qtbot, client):
    executor = DaskExecutor(client=client)
    executor.shut_down(timeout=5)
    executor.shut_down(timeout=5)
    assert client.status == "running"
    with pytest.raises(RuntimeError, match=r"^<DaskExecutor client \(shut down\)> was shut down$"):
        executor.run(where_am_i, (1,), {}, None)


def test_an_unreachable_scheduler_fails_the_task_with_os_error(qtbot, make_manager):
    manager = make_manager(start_processing=True)
    executor = DaskExecutor("tcp://127.0.0.1:9", connect_timeout=0.5)
    manager.set_executor("dask", executor)
    handle = manager.options(executor="dask").submit(where_am_i, 1)
    wait_done(qtbot, [handle])
    error = handle.exception()
    assert isinstance(error, OSError)
    assert "tcp://127.0.0.1:9" in str(error)
    manager.shut_down(timeout=5)


def test_a_functions_own_cancelled_error_fails_the_task(qtbot, dask_manager):
    import concurrent.futures

    handle = dask_manager.options(executor="dask").submit(raises_cancelled_error)
    wait_done(qtbot, [handle])
    assert dask_manager.task_state(handle.uid) is TaskState.FAILED
    assert type(handle.exception()) is concurrent.futures.CancelledError


def test_shut_down_does_not_wait_for_a_connect_that_hangs(qtbot, make_manager):
    import socket

    server = socket.socket()  # accepts connections, never answers: the handshake hangs
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    port = server.getsockname()[1]
    try:
        manager = make_manager(start_processing=True)
        executor = DaskExecutor(f"tcp://127.0.0.1:{port}", connect_timeout=30)
        manager.set_executor("dask", executor)
        handle = manager.options(executor="dask").submit(where_am_i, 1)
        server.settimeout(10)
        conn, _ = server.accept()  # the task is connecting now
        closer = threading.Thread(target=manager.shut_down, kwargs={"timeout": 0.5})
        closer.start()
        closer.join(10)  # a hang is what this test catches, not a time
        assert not closer.is_alive()
        assert handle.done() and handle.cancelled()
        conn.close()
    finally:
        server.close()


def test_without_dask_the_package_imports_and_executor_dask_says_what_to_install():
    code = textwrap.dedent(
        """
        import os, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        sys.modules["dask"] = sys.modules["distributed"] = None  # as if not installed
        import bgtasks
        from bgtasks.dask_executor import DaskExecutor
        from PySide6.QtCore import QCoreApplication
        app = QCoreApplication([])
        manager = bgtasks.BackgroundTaskManager()
        for attempt in (DaskExecutor, lambda: manager.options(executor="dask").submit(print)):
            try:
                attempt()
            except (ImportError, RuntimeError) as exc:
                print(type(exc).__name__, exc)
        print(len(manager.tasks()))
        manager.shut_down(timeout=1)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"ImportError {MISSING_EXTRA}"
    assert lines[1].split(" ", 1)[1] == MISSING_EXTRA
    assert lines[2] == "0"


# A Dask script as a user writes it (a __main__ guard, a progress-reporting task);
# the guide's own Dask example is run by tests/test_docs.py.
USER_SCRIPT = """\
import sys

from PySide6.QtCore import QCoreApplication

from bgtasks import BackgroundTaskManager, current_task


def simulate(steps):                      # runs on a Dask worker thread
    ctx = current_task()
    for i in range(steps):
        ctx.report_progress(i + 1, steps)
    return sum(range(steps))


if __name__ == "__main__":
    app = QCoreApplication(sys.argv)
    manager = BackgroundTaskManager(start_processing=True)
    handle = manager.options(executor="dask", priority=5).submit(simulate, 1000)
    handle.add_done_callback(lambda h: (print(h.result()), app.quit()))
    app.exec()                            # prints 499500
    manager.shut_down()
"""


def test_a_user_script_on_dask_runs_as_written(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(USER_SCRIPT)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["499500"]
