"""Run chosen tasks on a Dask cluster: ``manager.options(executor="dask").submit(fn, ...)``.

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
it; constructing a ``DaskExecutor`` then raises ``ImportError``.

This module holds the executor; its options and cluster set-up (loopback,
TLS) are in ``_dask_cluster``, ``current_task()`` inside the call in
``_dask_contexts``.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..core._errors import TaskCancelled
from ..core._validate import check_bool, check_count, check_seconds
from ._contract import Executor
from ._dask_cluster import check_where, cluster_options, connect, require_cryptography
from ._dask_contexts import REMOTE_PROGRESS_INTERVAL as REMOTE_PROGRESS_INTERVAL
from ._dask_contexts import LocalContext, in_process, run_call

if TYPE_CHECKING:
    from ..core._context import TaskContextProtocol

from ._dask_extra import cloudpickle, distributed

__all__ = ["MISSING_EXTRA", "REMOTE_PROGRESS_INTERVAL", "DaskExecutor"]

MISSING_EXTRA = "executor='dask' needs the dask extra: pip install 'bgtasks[dask]'"
"""The message of the ``ImportError`` raised when the ``dask`` extra is missing."""

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
    function and arguments, so ``check`` refuses what it cannot pickle.

    ``DaskExecutor("tls://host:8786", security=Security(...))`` connects to a
    running scheduler (its workers need ``bgtasks[dask]`` and the task
    functions importable, or defined in ``__main__``/as lambdas, which
    cloudpickle sends by value).  A plain ``tcp://`` scheduler runs code for
    anyone who reaches its port: use TLS with client certificates there.
    ``DaskExecutor(client=client)`` uses the application's own synchronous
    ``distributed.Client``, which ``shut_down`` leaves open.

    ``slots`` caps how many of its tasks run at once (the manager keeps the
    rest queued by priority); by default the local cluster's thread count, no
    cap for a cluster given by address or client.  ``poll_interval`` is how
    often a waiting call checks for a stop request (the cancel latency).

    Construct it on any thread; the manager calls ``check`` on the thread
    that submits and ``run`` in its worker threads.  Progress from another
    process is forwarded on the Dask client's event-loop thread; the manager
    delivers it, like every signal, on its own thread.

    Args:
        address: A running scheduler's address (``"tls://host:8786"``); None for
            the local cluster or ``client``.
        client: The application's own synchronous ``distributed.Client``; left
            open by ``shut_down``.
        n_workers: Workers of the local cluster.
        threads_per_worker: Threads per local worker (default: one per core).
        processes: Put the local cluster's workers in processes (TLS on 127.0.0.1).
        slots: The most of its tasks running at once; default the local cluster's
            thread count, no cap for an address or a client.
        poll_interval: Seconds between two checks for a stop request while a call
            runs.
        connect_timeout: Seconds to wait for the scheduler at ``address``.
        dashboard_address: Where the local cluster's dashboard listens; None: no
            dashboard.
        security: A ``distributed.security.Security`` for the connection, False
            for no TLS, None for the default (temporary credentials with
            ``processes=True``).
        **cluster_kwargs: Further keywords for ``distributed.LocalCluster``.

    Raises:
        ImportError: The ``dask`` extra (or ``cryptography`` for
            ``processes=True``) is not installed.
        TypeError: An argument of the wrong type, or cluster keywords without the
            local cluster.
        ValueError: An argument out of range, or a conflicting combination
            (``address`` and ``client``; ``security`` with ``client``; an
            asynchronous client).

    Attributes:
        address: The scheduler's address given, or None.
        poll_interval: Seconds between two checks for a stop request.
        connect_timeout: Seconds to wait for the scheduler at ``address``.
        security: The security given.
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
        local = check_where(address, client, security, dashboard_address, cluster_kwargs)
        if local and processes and security is None:
            require_cryptography()
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
        self._cluster_options = cluster_options(
            n_workers, threads_per_worker, processes, dashboard_address, security, cluster_kwargs
        )
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
        self._routes: dict[str, tuple[TaskContextProtocol, Any]] = {}

    def __repr__(self) -> str:
        where = self.address or ("client" if not self._owns_client else "local cluster")
        return f"<DaskExecutor {where}{' (shut down)' if self._closed else ''}>"

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` in use; None before the first task on the local cluster.

        Any thread.
        """
        return self._client

    # ----------------------------------------------------------------- contract

    def check(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        """Refuse a call that cloudpickle cannot serialise.

        Called on the submitting thread (any thread).  Lambdas and closures are
        fine; locks, open files, sockets, Qt objects are not.

        Args:
            fn: The task's function.
            args: Its positional arguments.
            kwargs: Its keyword arguments.

        Raises:
            TypeError: The function or an argument cannot be pickled; the message
                names which.
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
        context: TaskContextProtocol,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` on the cluster, blocking a manager worker thread.

        Args:
            fn: The task's function.
            args: Its positional arguments.
            kwargs: Its keyword arguments.
            context: The task's context, polled for a stop every ``poll_interval`` s.

        Returns:
            The call's result (progress 0 is reported before the call, 1 after).

        Raises:
            TaskCancelled: A stop was requested (the Dask future is cancelled)."""
        client = self._ensure_client()
        context.raise_if_cancelled()
        name = getattr(fn, "__name__", type(fn).__name__)
        key = f"{name}-{uuid.uuid4().hex}"
        local = LocalContext(context)
        in_process[key] = local
        done = threading.Event()
        context.report_progress(0.0)
        with self._lock:  # before the call starts: its first events find their task
            self._routes[key] = (context, None)
        try:
            future = client.submit(
                run_call,
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
            in_process.pop(key, None)
            with self._lock:
                self._routes.pop(key, None)
        if final is not None:
            context.report_progress(final[0], message=final[1])
        context.report_progress(1.0)
        return result

    def shut_down(self, timeout: float = 5.0) -> None:
        """Cancel this executor's calls and close what it created, within ``timeout`` s.

        Idempotent; a client given by the application stays open.  Any thread.
        A local cluster that a never-ending task keeps open is left to close in
        the background.

        Args:
            timeout: The most seconds to wait for the close.
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
                client, cluster = connect(
                    self._local,
                    self._cluster_options,
                    self.address,
                    self.security,
                    self.connect_timeout,
                )
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
