"""What can be sent to a worker process: the checks behind ``ProcessExecutor.check``.

A worker process is spawned: it receives the function and its arguments
pickled, and imports the function's module by name.  These checks say, in a
``TypeError``, why a call cannot make that trip (a lambda, a local function,
something that does not pickle).
"""

from __future__ import annotations

import functools
import inspect
import pickle
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ..core._validate import callable_name


def why_unpicklable(value: Any) -> str | None:
    """None if ``value`` pickles, else why not."""
    try:
        pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def check_sendable_callable(fn: Callable[..., Any]) -> None:
    """Raise ``TypeError`` saying why ``fn`` cannot be sent to a worker process."""
    if isinstance(fn, functools.partial):
        check_sendable_callable(fn.func)
        check_sendable_arguments(fn.func, fn.args, fn.keywords)
    name = callable_name(fn)
    prefix = f"cannot run {name} in a worker process"
    if not callable(fn):
        raise TypeError(f"{prefix}: {fn!r} is not callable")
    if getattr(fn, "__name__", None) == "<lambda>":
        raise TypeError(
            "cannot run <lambda> in a worker process: it is a lambda; define it at module level"
        )
    if "<locals>" in getattr(fn, "__qualname__", ""):
        outer = name.split(".<locals>", 1)[0]
        raise TypeError(
            f"{prefix}: it is a local function defined inside {outer}(); define it at module level"
        )
    module = getattr(fn, "__module__", None)
    if module == "__main__" and not hasattr(sys.modules.get("__main__"), "__file__"):
        raise TypeError(
            f"{prefix}: it is defined in an interactive session, which a worker process cannot "
            "import; define it in a module"
        )
    if inspect.ismethod(fn):
        why = why_unpicklable(fn.__self__)
        if why is not None:
            raise TypeError(
                f"{prefix}: it is a bound method of {type(fn.__self__).__qualname__} object "
                f"that cannot be pickled ({why})"
            )
    why = why_unpicklable(fn)
    if why is not None:
        raise TypeError(f"{prefix}: it cannot be pickled ({why})")


def check_sendable_arguments(fn: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Raise ``TypeError`` naming the first argument of ``fn`` that cannot be pickled."""
    items = [(f"argument {i}", value) for i, value in enumerate(args)]
    items += [(f"argument {key!r}", value) for key, value in kwargs.items()]
    for label, value in items:
        why = why_unpicklable(value)
        if why is not None:
            try:
                text = f"{value!r:.80}"
            except Exception:
                text = f"<{type(value).__qualname__}>"
            raise TypeError(
                f"cannot send {label} of {callable_name(fn)} to a worker process: "
                f"{text} cannot be pickled ({why})"
            )
