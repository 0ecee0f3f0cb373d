"""The optional Dask extra, imported in one place: ``distributed`` and ``cloudpickle``,
or None for each when ``bgtasks[dask]`` is not installed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typed as Any whether the extra is installed or not
    cloudpickle: Any
    distributed: Any
else:
    try:
        import cloudpickle
        import distributed
        import distributed.security
    except ImportError:  # the optional extra is not installed
        cloudpickle = None
        distributed = None

__all__ = ["cloudpickle", "distributed"]
