"""Mixin methods copied into the Qt class that uses them, for quick attribute lookup.

Python caches attribute lookups per type, but not for PySide's (Shiboken)
types: every ``self.method`` on a QObject subclass walks its whole MRO.  A
class assembled from mixins (the manager: five of them) then pays for each
level on every call (measured: 53 ns for a method of the class itself, 96 ns
for one of a mixin four levels down).  :func:`flatten_mixins` copies the
mixins' attributes into the class's own dict, in MRO order, so lookups stop at
the first level.  Behaviour is unchanged: the nearest definition still wins,
and ``super()`` inside a copied function still starts after the mixin that
defined it (its ``__class__`` cell).
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T", bound=type)


def flatten_mixins(cls: T) -> T:
    """Copy the attributes of ``cls``'s bgtasks bases into ``cls`` itself.

    Dunder names are left where they are (``__init__``, ``__del__`` and the
    like are found through type slots).  Call once, right after the class
    statement, on the thread that imports the module.

    Args:
        cls: A class whose bases include bgtasks mixins.

    Returns:
        ``cls``, for use as a decorator.
    """
    own = cls.__dict__
    for base in cls.__mro__[1:]:
        if not base.__module__.startswith("bgtasks."):
            continue
        for name, value in vars(base).items():
            if name.startswith("__") or name in own:
                continue
            setattr(cls, name, value)
    return cls
