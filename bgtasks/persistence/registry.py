"""The registry of persistable functions: the only functions a journal ever runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_registry: dict[str, Callable[..., Any]] = {}  # name -> function
_names: dict[int, tuple[Callable[..., Any], str]] = {}  # id(function) -> (function, name)
_registry_lock = threading.Lock()


def _label(fn: Any) -> str:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}:{qualname}"
    return repr(fn)


def persistable(fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Register ``fn`` as a function persistent tasks may run; return it unchanged.

    ``@persistable`` registers a module-level function under
    ``module:qualname``; ``@persistable(name="app.render")`` under an explicit
    name that stays valid if the function moves.  ``TaskJournal.submit``
    (and ``manager.options(persist=True).submit``) accept only registered functions,
    and ``TaskJournal.restore`` / ``TaskJournal.restore_snapshot``
    run only the functions registered under the names the journal holds:
    a name nobody registered is reported and skipped, never imported.  So
    register (import the modules that define) your task functions before
    calling ``restore()``.  A name can belong to one function only
    (``ValueError``), except that reloading a module re-registers its
    functions.  Any thread.

    Args:
        fn: The function (positional-only); omitted when called with ``name``
            only, as ``@persistable(name=...)``.
        name: The name to register it under (default ``module:qualname``).

    Returns:
        ``fn`` itself, or without ``fn`` a decorator that registers and returns it.

    Raises:
        TypeError: ``name`` is not a non-empty string, ``fn`` is not callable,
            or it has no stable name (a lambda, a nested function) and no
            ``name`` is given.
        ValueError: ``name`` already belongs to another function, or ``fn``
            is already registered under another name.
    """
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"a persistable name must be a non-empty string, got {name!r}")
    if fn is None:
        return lambda fn: _register(fn, name)
    return _register(fn, name)


def _stable_name(fn: Any, label: str) -> str:
    if not label.partition(":")[2] or "<lambda>" in label or "<locals>" in label:
        raise TypeError(
            "@persistable needs a module-level function or an explicit name=, "
            f"got {fn!r} ({label} is not a stable name)"
        )
    return label


def _register(fn: Any, name: str | None) -> Any:
    if not callable(fn):
        raise TypeError(f"@persistable needs a function, got {fn!r}")
    label = _label(fn)
    if name is None:
        name = _stable_name(fn, label)
    with _registry_lock:
        known = _names.get(id(fn))
        if known is not None and known[0] is fn:
            if known[1] != name:
                raise ValueError(f"{fn!r} is already persistable as {known[1]!r}")
            return fn
        existing = _registry.get(name)
        if existing is not None and existing is not fn:
            if name != label or _label(existing) != label:  # not a reload of the same module
                raise ValueError(
                    f"persistable name {name!r} is already registered for {existing!r}"
                )
            _names.pop(id(existing), None)
        _registry[name] = fn
        _names[id(fn)] = (fn, name)
    return fn


def _unregister(name: str) -> None:
    """Forget a registration (for tests)."""
    with _registry_lock:
        fn = _registry.pop(name, None)
        if fn is not None:
            _names.pop(id(fn), None)


def persistable_functions() -> dict[str, Callable[..., Any]]:
    """A copy of the registry: persistable name -> function.  Any thread."""
    with _registry_lock:
        return dict(_registry)


def function_name(fn: Any) -> str:
    """The persistable name of ``fn``; ``TypeError`` if it was not registered."""
    if not callable(fn):
        raise TypeError(f"a persistent task needs a function, got {fn!r}")
    with _registry_lock:
        known = _names.get(id(fn))
    if known is None or known[0] is not fn:
        raise TypeError(
            f"{_label(fn)} is not a persistable function: decorate it with @persistable "
            "(from bgtasks.persistence) to submit it as a persistent task"
        )
    return known[1]


def lookup(name: str) -> Callable[..., Any] | None:
    """The function registered under ``name``, or None.  Never imports anything."""
    with _registry_lock:
        return _registry.get(name)
