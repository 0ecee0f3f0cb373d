"""``Immutable``: a base for small value objects that refuse every change after ``__init__``."""

from __future__ import annotations


class Immutable:
    """Refuses ``setattr`` and ``delattr``; ``__init__`` sets fields with
    ``object.__setattr__``.  Safe to share between threads."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")
