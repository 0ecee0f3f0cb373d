"""The scheduler's settings and per-task options (validated on the caller's thread)."""

from __future__ import annotations

from collections.abc import Mapping

from ._fields import (
    UPSTREAM_POLICIES,
    SchedulerFields,
)
from ._task import (
    _NO_OPTIONS,
    Options,
)
from ._validate import check_hashable, check_seconds


class Configuration(SchedulerFields):
    """Settings, and the validation of a task's rarely used options."""

    def configure(
        self,
        *,
        cache_size: int | None = None,
        keep_finished: int | None = None,
        progress_interval: float | None = None,
    ) -> None:
        """Change settings under the lock (values checked by the caller); a
        smaller cache or registry limit applies at once."""
        with self._lock:
            if progress_interval is not None:
                self.progress_interval = progress_interval
            if cache_size is not None:
                self.cache_size = cache_size
                while len(self._cache) > cache_size:
                    self._grave.append(self._cache.popitem(last=False))
            if keep_finished is not None:
                self.keep_finished = keep_finished
                if len(self._finished) > keep_finished:
                    self._trim_finished()
                self._flush_wake()
        self._after()

    def make_options(
        self,
        key: object = None,
        retries: object = 0,
        retry_on: object = (Exception,),
        backoff: object = 0.1,
        timeout: object = None,
        resources: object = None,
        on_upstream_failure: object = None,
    ) -> Options:
        """Validate per-task options (caller's thread, no lock)."""
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        if not isinstance(retry_on, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in retry_on
        ):
            raise TypeError(f"retry_on must be exception types, got {retry_on!r}")
        check_seconds("backoff", backoff)
        if (
            key is None and not retries and timeout is None and resources is None
            and on_upstream_failure is None
        ):  # fmt: skip
            return _NO_OPTIONS
        opts = Options()
        if key is not None:
            check_hashable("key", key)
            opts.key = key
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
        opts.retries = retries
        opts.retry_on = retry_on
        opts.backoff = backoff  # type: ignore[assignment]  # checked above
        if timeout is not None:
            opts.timeout = check_seconds("timeout", timeout, positive=True)
        if resources is not None:
            if not isinstance(resources, Mapping):
                raise TypeError(f"resources must map resource names to amounts, got {resources!r}")
            for name, amount in resources.items():
                if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
                    raise ValueError(
                        f"resource {name!r} amount must be a positive integer, got {amount!r}"
                    )
            opts.resources = dict(resources)
        if on_upstream_failure is not None:
            if on_upstream_failure not in UPSTREAM_POLICIES:
                raise ValueError(
                    f"on_upstream_failure must be 'fail' or 'cancel', got {on_upstream_failure!r}"
                )
            opts.policy = on_upstream_failure
        return opts
