"""Where a DaskExecutor's calls run: its options checked, its local cluster's
settings (loopback, TLS), and the connection to the cluster.

The local cluster listens on 127.0.0.1 only.  In-process workers talk over
``inproc://``; worker processes (``processes=True``) talk TLS with
credentials made for the cluster (``Security.temporary()``), so no other
process can connect and run code in them, unless ``security=False``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ._dask_extra import distributed


def check_where(
    address: Any,
    client: Any,
    security: Any,
    dashboard_address: Any,
    cluster_kwargs: Mapping[str, Any],
) -> bool:
    """Check where the calls are to run (an address, a client, or the local cluster)
    and the options that go with it; True for the local cluster."""
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
        raise TypeError(f"cluster options {names!r} need the local cluster (no address, no client)")
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
    return local


def require_cryptography() -> None:
    """``ImportError`` saying what to install if ``Security.temporary()`` cannot work."""
    try:
        import cryptography  # noqa: F401 - Security.temporary() needs it
    except ImportError:
        raise ImportError(
            "DaskExecutor(processes=True) secures its cluster with TLS and needs the "
            "cryptography package: pip install 'bgtasks[dask]'"
        ) from None


def cluster_options(
    n_workers: int,
    threads_per_worker: int | None,
    processes: bool,
    dashboard_address: str | None,
    security: Any,
    cluster_kwargs: dict[str, Any],
) -> dict[str, Any]:
    """The keywords of the local cluster's ``LocalCluster`` (without its ``security``)."""
    # Dask always serves HTTP (health, metrics) on the scheduler and each worker:
    # on loopback, with the dashboard only when asked for.
    cluster_kwargs = dict(cluster_kwargs)
    scheduler_kwargs = {
        "dashboard": dashboard_address is not None,
        "dashboard_address": dashboard_address or "127.0.0.1:0",
        **cluster_kwargs.pop("scheduler_kwargs", {}),
    }
    options: dict[str, Any] = {
        "n_workers": n_workers,
        "threads_per_worker": threads_per_worker or os.cpu_count() or 1,
        "processes": processes,
        "dashboard_address": dashboard_address,
        "scheduler_kwargs": scheduler_kwargs,
    }
    if processes:
        # TCP between processes: loopback only, and TLS with credentials made for
        # this cluster, so no other process can connect and run code in the workers.
        options["host"] = "127.0.0.1"
        if security is not False:
            options["protocol"] = "tls://"
    else:
        options["worker_class"] = _loopback_worker_class()
    options.update(cluster_kwargs)
    return options


def connect(
    local: bool,
    options: Mapping[str, Any],
    address: str | None,
    security: Any,
    connect_timeout: float,
) -> tuple[Any, Any]:
    """A new ``(client, cluster)``: a local cluster made with ``options`` (cluster None
    for a scheduler at ``address``).  May block; closes what it made if it fails."""
    made = None
    try:
        if local:
            options = dict(options)
            if options["processes"] and security is None:
                options["security"] = distributed.security.Security.temporary()
            elif security:  # False: Dask's default, no TLS
                options["security"] = security
            made = cluster = distributed.LocalCluster(**options)
            client = distributed.Client(cluster, set_as_default=False)
        else:
            cluster = None
            client = distributed.Client(
                address, set_as_default=False, timeout=connect_timeout, security=security
            )
    except BaseException:
        if made is not None:  # no client: the cluster would leak
            made.close()
        raise
    return client, cluster


def _loopback_worker_class() -> Any:
    """A Worker whose HTTP server listens on 127.0.0.1 (Dask's in-process worker
    would derive all interfaces from its ``inproc://`` address)."""
    global _LoopbackWorker
    if _LoopbackWorker is None:

        class LoopbackWorker(distributed.Worker):  # type: ignore[misc]  # Any: see the import
            def __init__(self, *args: Any, dashboard_address: Any = None, **kwargs: Any):
                super().__init__(
                    *args, dashboard_address=dashboard_address or "127.0.0.1:0", **kwargs
                )

        _LoopbackWorker = LoopbackWorker
    return _LoopbackWorker


_LoopbackWorker: Any = None
