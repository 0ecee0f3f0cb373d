"""Process tasks: ``options(executor="process").submit(fn, ...)`` (the documented path).

The implementation lives in ``bgtasks.executors.processes``.
"""

from __future__ import annotations

from typing import Any

from .executors import processes as _impl
from .executors.processes import *  # noqa: F403
from .executors.processes import __all__  # noqa: F401


def __getattr__(name: str) -> Any:
    return getattr(_impl, name)
