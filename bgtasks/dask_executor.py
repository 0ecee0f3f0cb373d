"""Tasks on a ``dask.distributed`` cluster: ``executor="dask"`` (the documented path).

The implementation lives in ``bgtasks.executors.dask``.
"""

from __future__ import annotations

from typing import Any

from .executors import dask as _impl
from .executors.dask import *  # noqa: F403


def __getattr__(name: str) -> Any:
    return getattr(_impl, name)
