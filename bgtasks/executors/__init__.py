"""Where a task runs: the ``Executor`` contract, and the process and Dask backends.

``options(executor=...).submit(...)`` hands the call to an executor; everything else (uid,
signals, dependencies, priorities, handles) stays the manager's.  The backends
are imported on first use (Dask is an optional extra); their documented import
paths are ``bgtasks.processes`` and ``bgtasks.dask_executor``.
"""

from __future__ import annotations

from ._contract import Executor, RemoteCall

__all__ = ["Executor", "RemoteCall"]
