"""Run chosen tasks on a Dask cluster: ``manager.submit(fn, ..., executor="dask")``.

A task submitted with ``executor="dask"`` keeps everything a thread task has
(uid, signals, group, dependencies, priority, handle, retries, timeout); a
manager worker thread hands the call to ``dask.distributed`` and waits for it:

* the call runs with ``client.submit(..., priority=context.priority,
  fifo_timeout=0, pure=False)``: Dask's own scheduler orders its queue as the
  manager does (higher priority first, FIFO among equals), and identical calls
  are never merged (share a call with the manager's ``key=`` option instead);
* stopping the task (``stop_task``, ``handle.cancel()``, a ``timeout``, shut
  down) cancels the Dask future with ``force=True`` within ``poll_interval``;
* an error raised by the call arrives with its original type and traceback;
* inside the call, ``bgtasks.current_task()`` works.  On the in-process
  cluster (the default) it is the task's own context, so progress, status,
  settings, ``cancelled`` and ``sleep`` behave exactly as in a thread task.  In
  another process (a real cluster, or ``processes=True``) it is a stand-in:
  progress and status travel back as Dask events (at most 25 a second, the
  last value always delivered before the result), ``cancelled`` and ``sleep``
  see the cancellation of the Dask future, and settings are not forwarded.

Dask is optional: ``pip install 'bgtasks[dask]'``.  This module imports without
it; constructing a :class:`DaskExecutor` then raises ``ImportError``.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..core import _context
from ..core._errors import TaskCancelled
from ..core._validate import check_bool, check_count, check_seconds
from ._contract import Executor

if TYPE_CHECKING:
    from ..core._context import TaskContext

try:
    import cloudpickle
    import distributed
    import distributed.security
except ImportError:  # the optional extra is not installed
    cloudpickle = None
    distributed = None

#: The error raised when the ``dask`` extra is missing.
MISSING_EXTRA = "executor='dask' needs the dask extra: pip install 'bgtasks[dask]'"

#: The least time between two progress events sent from another process.
REMOTE_PROGRESS_INTERVAL = 0.04

# Dask worker states in which a task is still wanted.
_RUNNING_STATES = frozenset({"executing", "long-running"})


#: Local clusters whose close outlived shut_down's timeout (a task never returned).
_LEFT_RUNNING: list[Any] = []


class DaskExecutor(Executor):
    """Runs tasks on a ``dask.distributed`` cluster.

    ``DaskExecutor()`` starts, on its first task, an in-process ``LocalCluster``
    of ``n_workers`` workers with ``threads_per_worker`` threads each (default:
    one worker, one thread per core; workers are threads of this process
    talking over ``inproc://``, so it starts in milliseconds and the task's
    own context is used inside the call).  ``processes=True`` puts the workers
    in processes (true parallelism for CPU-bound Python; the program must be
    import-safe: ``if __name__ == "__main__":``); they talk TLS on 127.0.0.1
    with credentials made for the cluster (``Security.temporary()``, which
    needs ``cryptography``), so no other process can connect and run code in
    them; ``security=False`` turns TLS off, or give a ``Security`` of your
    own.  No dashboard is started unless ``dashboard_address`` is given; Dask's
    HTTP servers (health, metrics) listen on free ports of 127.0.0.1 only.
    Other keywords go to ``LocalCluster``.  Either way Dask pickles the
    function and arguments, so :meth:`check` refuses what it cannot pickle.

    ``DaskExecutor("tls://host:8786", security=Security(...))`` connects to a
    running scheduler (its workers need ``bgtasks[dask]`` and the task
    functions importable, or defined in ``__main__``/as lambdas, which
    cloudpickle sends by value).  A plain ``tcp://`` scheduler runs code for
    anyone who reaches its port: use TLS with client certificates there.
    ``DaskExecutor(client=client)`` uses the application's own synchronous
    ``distributed.Client``, which :meth:`shut_down` leaves open.

    ``slots`` caps how many of its tasks run at once (the manager keeps the
    rest queued by priority); by default the local cluster's thread count, no
    cap for a cluster given by address or client.  ``poll_interval`` is how
    often a waiting call checks for a stop request (the cancel latency).

    Construct it on any thread; the manager calls :meth:`check` on the thread
    that submits and :meth:`run` in its worker threads.  Progress from another
    process is forwarded on the Dask client's event-loop thread; the manager
    delivers it, like every signal, on its own thread.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        client: Any = None,
        n_workers: int = 1,
        threads_per_worker: int | None = None,
        processes: bool = False,
        slots: int | None = None,
        poll_interval: float = 0.02,
        connect_timeout: float = 10.0,
        dashboard_address: str | None = None,
        security: Any = None,
        **cluster_kwargs: Any,
    ) -> None:
        if distributed is None:
            raise ImportError(MISSING_EXTRA)
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a string like 'tcp://host:8786', got {address!r}")
        if client is not None:
            if not isinstance(client, distributed.Client):
                raise TypeError(f"client must be a distributed.Client, got {client!r}")
            if client.asynchronous:
                raise ValueError(f"client must be synchronous (asynchronous=False), got {client!r}")
            if address is not None:
                raise ValueError(f"give address or client, not both (address={address!r})")
        local = address is None and client is None
        if not local and (cluster_kwargs or dashboard_address is not None):
            names = sorted(cluster_kwargs) + (["dashboard_address"] if dashboard_address else [])
            raise TypeError(
                f"cluster options {names!r} need the local cluster (no address, no client)"
            )
        if client is not None and security is not None:
            raise ValueError("security goes with an address or the local cluster, not a client")
        if dashboard_address is not None and not isinstance(dashboard_address, str):
            raise TypeError(
                f"dashboard_address must be a string like '127.0.0.1:8787', got {dashboard_address!r}"
            )
        if security is not None and not (
            security is False or isinstance(security, distributed.security.Security)
        ):
            raise TypeError(
                f"security must be a distributed.security.Security or False, got {security!r}"
            )
        if local and processes and security is None:
            try:
                import cryptography  # noqa: F401 - Security.temporary() needs it
            except ImportError:
                raise ImportError(
                    "DaskExecutor(processes=True) secures its cluster with TLS and needs the "
                    "cryptography package: pip install 'bgtasks[dask]'"
                ) from None
        check_count("n_workers", n_workers, minimum=1)
        check_count("threads_per_worker", threads_per_worker, minimum=1, optional=True)
        check_count("slots", slots, minimum=1, optional=True)
        check_bool("processes", processes)
        check_seconds("poll_interval", poll_interval, positive=True)
        check_seconds("connect_timeout", connect_timeout, positive=True)
        self.address = address
        self.poll_interval = float(poll_interval)
        self.connect_timeout = float(connect_timeout)
        if slots is None and local:
            slots = n_workers * (threads_per_worker or os.cpu_count() or 1)
        self.slots = slots
        self.security = security
        # Dask always serves HTTP (health, metrics) on the scheduler and each worker:
        # on loopback, with the dashboard only when asked for.
        scheduler_kwargs = {
            "dashboard": dashboard_address is not None,
            "dashboard_address": dashboard_address or "127.0.0.1:0",
            **cluster_kwargs.pop("scheduler_kwargs", {}),
        }
        self._cluster_options: dict[str, Any] = {
            "n_workers": n_workers,
            "threads_per_worker": threads_per_worker or os.cpu_count() or 1,
            "processes": processes,
            "dashboard_address": dashboard_address,
            "scheduler_kwargs": scheduler_kwargs,
        }
        if processes:
            # TCP between processes: loopback only, and TLS with credentials made for
            # this cluster, so no other process can connect and run code in the workers.
            self._cluster_options["host"] = "127.0.0.1"
            if security is not False:
                self._cluster_options["protocol"] = "tls://"
        else:
            self._cluster_options["worker_class"] = _loopback_worker_class()
        self._cluster_options.update(cluster_kwargs)
        self._local = local
        self._lock = threading.Lock()
        self._connect_lock = threading.Lock()  # one connect at a time (see _ensure_client)
        self._client = client
        self._owns_client = client is None
        self._cluster: Any = None
        self._subscribed = False
        self._closed = False
        self._topic = f"bgtasks-{uuid.uuid4().hex}"
        # key -> (context, future or None before submit) of the calls in flight; under _lock.
        self._routes: dict[str, tuple[TaskContext, Any]] = {}

    def __repr__(self) -> str:
        where = self.address or ("client" if not self._owns_client else "local cluster")
        return f"<DaskExecutor {where}{' (shut down)' if self._closed else ''}>"

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` in use; None before the first task on the local cluster."""
        return self._client

    # ----------------------------------------------------------------- contract

    def check(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        """Raise ``TypeError`` naming what cloudpickle cannot serialise (the submitting thread).

        Lambdas and closures are fine; locks, open files, sockets, Qt objects are not.
        """
        try:
            cloudpickle.dumps((fn, args, dict(kwargs)))
        except Exception as whole:
            parts = [("function", fn)]
            parts += [(f"argument {i}", value) for i, value in enumerate(args)]
            parts += [(f"keyword argument {name!r}", value) for name, value in kwargs.items()]
            for label, value in parts:
                try:
                    cloudpickle.dumps(value)
                except Exception as exc:
                    raise TypeError(
                        f"executor='dask' cannot send the {label} {_short_repr(value)} to Dask: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
            raise TypeError(
                f"executor='dask' cannot send the call of {_short_repr(fn)} to Dask: "
                f"{type(whole).__name__}: {whole}"
            ) from whole

    def run(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        context: TaskContext,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` on the cluster and return its result (a manager worker).

        Reports progress 0 before and 1 after the call (and whatever the call
        reports in between); raises the call's own exception, or
        :class:`TaskCancelled` once a stop was requested and the Dask future
        cancelled.
        """
        client = self._ensure_client()
        context.raise_if_cancelled()
        name = getattr(fn, "__name__", type(fn).__name__)
        key = f"{name}-{uuid.uuid4().hex}"
        local = _LocalContext(context)
        _in_process[key] = local
        done = threading.Event()
        context.report_progress(0.0)
        with self._lock:  # before the call starts: its first events find their task
            self._routes[key] = (context, None)
        try:
            future = client.submit(
                _run_call,
                fn,
                args,
                dict(kwargs),
                key,
                (self._topic, context.uid, _plain(context.group), context.priority),
                key=key,
                priority=context.priority,
                fifo_timeout=0,  # FIFO among equal priorities, as in the manager
                pure=False,
            )
            with self._lock:
                self._routes[key] = (context, future)
            future.add_done_callback(lambda _future: done.set())
            while not done.wait(self.poll_interval):
                if context.cancelled:
                    _cancel(client, [future])
                    raise TaskCancelled(f"task {context.uid} was asked to stop")
            try:
                result, final = future.result()
            except concurrent.futures.CancelledError as exc:
                # Dask's cancellation of the future; the function's own CancelledError
                # (or TaskCancelled) is the task's outcome and stays as it is
                if isinstance(exc, TaskCancelled) or not future.cancelled():
                    raise
                raise TaskCancelled(f"task {context.uid}: its Dask future was cancelled") from exc
        finally:
            local.end()
            _in_process.pop(key, None)
            with self._lock:
                self._routes.pop(key, None)
        if final is not None:
            context.report_progress(final[0], message=final[1])
        context.report_progress(1.0)
        return result

    def shut_down(self, timeout: float = 5.0) -> None:
        """Cancel this executor's calls and close what it created, within ``timeout`` s.

        Idempotent; a client given by the application stays open.  Any thread.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            client, cluster = (self._client if self._subscribed else None), self._cluster
            futures = [future for _, future in self._routes.values() if future is not None]
        if client is None:
            return
        owns = self._owns_client
        topic = self._topic

        def close() -> None:
            try:
                if futures:
                    _cancel(client, futures)
                if owns:
                    client.close(timeout=timeout)
                else:
                    client.unsubscribe_topic(topic)
                if cluster is not None:
                    cluster.close(timeout=timeout)
            except Exception:  # noqa: S110 - best effort; nothing is waiting for it
                pass

        closer = threading.Thread(target=close, name="bgtasks-dask-shut-down", daemon=True)
        closer.start()
        closer.join(max(0.0, timeout))
        if cluster is not None and closer.is_alive():
            # A task that never returns keeps the cluster from closing: like the
            # manager's thread pool, it is left to finish in the background, kept
            # here so that it is not collected half-closed (Dask closes it at exit).
            _LEFT_RUNNING.append(cluster)

    # ----------------------------------------------------------------- helpers

    def _ensure_client(self) -> Any:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self!r} was shut down")
            if self._subscribed:
                return self._client
        # Connect outside self._lock: a connect can hang (Dask's handshake does not
        # always honour its timeout), and shut_down() must never wait for one.
        with self._connect_lock:
            with self._lock:
                if self._closed:
                    raise RuntimeError(f"{self!r} was shut down")
                if self._subscribed:
                    return self._client
                client, cluster = self._client, self._cluster
            if client is None:
                made = None
                try:
                    if self._local:
                        options = dict(self._cluster_options)
                        if options["processes"] and self.security is None:
                            options["security"] = distributed.security.Security.temporary()
                        elif self.security:  # False: Dask's default, no TLS
                            options["security"] = self.security
                        made = cluster = distributed.LocalCluster(**options)
                        client = distributed.Client(cluster, set_as_default=False)
                    else:
                        client = distributed.Client(
                            self.address,
                            set_as_default=False,
                            timeout=self.connect_timeout,
                            security=self.security,
                        )
                except BaseException:
                    if made is not None:  # no client: the cluster would leak
                        made.close()
                    raise
            client.subscribe_topic(self._topic, self._on_event)
            with self._lock:
                closed = self._closed
                if not closed:
                    self._client, self._cluster, self._subscribed = client, cluster, True
            if closed:  # shut down while connecting: close what this call made
                if self._owns_client:
                    client.close(timeout=1)
                    if cluster is not None:
                        cluster.close(timeout=1)
                else:
                    client.unsubscribe_topic(self._topic)
                raise RuntimeError(f"{self!r} was shut down")
            return client

    def _on_event(self, event: tuple[float, Any]) -> None:
        # On the client's event-loop thread: progress or status from another process.
        _, (key, kind, value, message) = event
        with self._lock:
            route = self._routes.get(key)
            if route is None:  # the call already ended: its final value came with it
                return
            context = route[0]
            try:
                if kind == "progress":
                    context.report_progress(value, message=message)
                elif kind == "status":
                    context.status = value
            except Exception:  # noqa: S110 - a late event for an ending task
                pass


def _loopback_worker_class() -> Any:
    """A Worker whose HTTP server listens on 127.0.0.1 (Dask's in-process worker
    would derive all interfaces from its ``inproc://`` address)."""
    global _LoopbackWorker
    if _LoopbackWorker is None:

        class LoopbackWorker(distributed.Worker):
            def __init__(self, *args: Any, dashboard_address: Any = None, **kwargs: Any):
                super().__init__(
                    *args, dashboard_address=dashboard_address or "127.0.0.1:0", **kwargs
                )

        _LoopbackWorker = LoopbackWorker
    return _LoopbackWorker


_LoopbackWorker: Any = None


def _short_repr(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plain(group: Any) -> Any:
    """The group if it can travel to another process, else its repr."""
    try:
        cloudpickle.dumps(group)
    except Exception:
        return repr(group)
    return group


def _cancel(client: Any, futures: list[Any]) -> None:
    try:
        client.cancel(futures, force=True)
    except Exception:  # noqa: S110 - the client is closing: the futures go with it
        pass


# ------------------------------------------------------------ inside the call

#: Contexts of calls running on this process's in-process workers, by Dask key.
_in_process: dict[str, _LocalContext] = {}
_running = threading.local()


def _run_call(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    key: str,
    meta: tuple[str, int, Any, float],
) -> tuple[Any, tuple[float, str | None] | None]:
    """What the Dask worker runs: the call, with ``current_task()`` answering inside it."""
    context: Any = _in_process.get(key)
    remote = None
    if context is None:  # another process
        remote = context = _RemoteContext(key, *meta)
    previous = getattr(_running, "context", None)
    _running.context = context
    try:
        result = fn(*args, **kwargs)
    finally:
        _running.context = previous
    return result, (remote.last_progress if remote is not None else None)


class _LocalContext:
    """The task's own context, seen from an in-process Dask worker thread.

    After the manager's call ended (the task was cancelled while the Dask
    thread still runs), progress and status are dropped and ``cancelled`` is True.
    """

    __slots__ = ("_context", "_ended")

    def __init__(self, context: TaskContext) -> None:
        self._context = context
        self._ended = False

    def end(self) -> None:
        self._ended = True

    uid = property(lambda self: self._context.uid)
    group = property(lambda self: self._context.group)
    priority = property(lambda self: self._context.priority)
    settings = property(lambda self: self._context.settings)

    @property
    def cancelled(self) -> bool:
        return self._ended or self._context.cancelled

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise TaskCancelled(f"task {self.uid} was asked to stop")

    def sleep(self, seconds: float) -> None:
        self._context.sleep(seconds)
        self.raise_if_cancelled()

    def report_progress(
        self, done: float, total: float | None = None, message: str | None = None
    ) -> None:
        if not self._ended:
            self._context.report_progress(done, total, message)

    @property
    def status(self) -> Any:
        return self._context.status

    @status.setter
    def status(self, value: Any) -> None:
        if not self._ended:
            self._context.status = value

    def update_settings(self) -> bool:
        return False if self._ended else self._context.update_settings()


class _RemoteContext:
    """``current_task()`` in a Dask worker process: progress and status travel as events."""

    def __init__(self, key: str, topic: str, uid: int, group: Any, priority: float) -> None:
        self.uid, self.group, self.priority = uid, group, priority
        self._key, self._topic = key, topic
        self._status: Any = None
        self._sent_at = 0.0
        self.last_progress: tuple[float, str | None] | None = None
        self._worker = distributed.get_worker()

    @property
    def cancelled(self) -> bool:
        task = self._worker.state.tasks.get(self._key)
        return task is None or task.state not in _RUNNING_STATES

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise TaskCancelled(f"task {self.uid} was asked to stop")

    def sleep(self, seconds: float) -> None:
        check_seconds("seconds", seconds, infinite=True)  # inf: until stopped
        deadline = time.monotonic() + seconds
        while True:
            self.raise_if_cancelled()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def report_progress(
        self, done: float, total: float | None = None, message: str | None = None
    ) -> None:
        fraction = _context.progress_fraction(done, total, message)
        if message is None and self.last_progress is not None:
            message = self.last_progress[1]
        self.last_progress = (fraction, message)
        now = time.monotonic()
        if now - self._sent_at >= REMOTE_PROGRESS_INTERVAL:
            self._sent_at = now
            self._worker.log_event(self._topic, [self._key, "progress", fraction, message])

    @property
    def status(self) -> Any:
        return self._status

    @status.setter
    def status(self, value: Any) -> None:
        self._worker.log_event(self._topic, [self._key, "status", value, None])
        self._status = value

    @property
    def settings(self) -> Any:
        return None

    def update_settings(self) -> bool:
        return False


def _dask_context() -> Any:
    context = getattr(_running, "context", None)
    if context is None and _previous_hook is not None:
        return _previous_hook()
    return context


# current_task() asks this hook when the calling thread runs no manager task;
# a hook installed before this module is still asked.
_previous_hook = _context.remote_context
if _previous_hook is not None and getattr(_previous_hook, "__name__", "") == "_dask_context":
    _previous_hook = None  # this module reloaded
_context.remote_context = _dask_context
