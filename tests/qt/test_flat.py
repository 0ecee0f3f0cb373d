"""Mixin attributes copied into the Qt classes: same resolution, quicker lookup."""

from __future__ import annotations

import inspect

from PySide6.QtCore import QObject

from bgtasks import BackgroundTaskManager
from bgtasks.qt._flat import flatten_mixins


class _First:
    def who(self) -> str:
        return "first"

    def event_name(self) -> str:
        return "first:" + super().event_name()  # type: ignore[misc]


class _Second:
    def who(self) -> str:
        return "second"

    def only_second(self) -> str:
        return "second only"

    def event_name(self) -> str:
        return "second"


_First.__module__ = _Second.__module__ = "bgtasks.tests_flat"  # count as bgtasks mixins


def _resolved(cls: type, name: str) -> object:
    for base in cls.__mro__:
        if name in vars(base):
            return vars(base)[name]
    raise AttributeError(name)


def test_the_nearest_definition_wins_and_super_still_starts_after_its_mixin(qapp):
    @flatten_mixins
    class Flat(_First, _Second, QObject):
        def who(self) -> str:
            return "own"

    obj = Flat()
    assert obj.who() == "own"  # the class's own definition is kept
    assert obj.only_second() == "second only"
    assert obj.event_name() == "first:second"  # super() inside a copied function
    assert vars(Flat)["event_name"] is vars(_First)["event_name"]  # the nearest mixin's


def test_every_manager_method_resolves_as_before_and_is_found_at_the_first_level(qapp):
    cls = BackgroundTaskManager
    names = {
        name
        for base in cls.__mro__[1:]
        if base.__module__.startswith("bgtasks.")
        for name in vars(base)
        if not name.startswith("__")
    }
    assert {"submit", "options", "info", "retry", "_drain", "_deliver", "handle"} <= names
    for name in names:
        assert name in vars(cls), name
        # the same object the MRO resolves (the flattening copied the nearest definition)
        unflattened = next(vars(b)[name] for b in cls.__mro__[1:] if name in vars(b))
        own = vars(cls)[name]
        assert own is unflattened or name in _defined_by_the_class(cls), name


def _defined_by_the_class(cls: type) -> set[str]:
    source = inspect.getsource(cls)
    return {name for name in vars(cls) if f"def {name}(" in source}
