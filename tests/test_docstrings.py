"""Every public name is documented in Google style (issue 13).

Read with griffe and its Google parser, as mkdocstrings reads them for the API
reference.  The public API: the ``__all__`` of ``bgtasks``, ``bgtasks.widgets``,
``bgtasks.thumbnails``, ``bgtasks.persistence``, ``bgtasks.jobs``, ``bgtasks.loops``,
``bgtasks.processes`` and ``bgtasks.dask_executor``, and the public methods,
properties and signals of its classes, those inherited from bgtasks classes
included.  A method that overrides a PySide6 base method (``paint``, ``data``,
``eventFilter``...) is Qt's API and is left out.

Each of them has a docstring; a function's or method's Args section names every
parameter of its signature (``self``/``cls`` aside; ``*args`` and ``**kwargs`` may
share one entry) and no parameter that does not exist, and its docstring says
which thread may call it ("thread").  A class's constructor parameters are in
the Args of the class docstring (or of ``__init__``); those of a generated
constructor (dataclasses, named tuples) may be its Attributes instead, and an
inherited one is documented where it is defined.  Every
signal of a public class is named in the class docstring.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import pathlib
import re
from typing import Any

import griffe
import pytest

ROOT = pathlib.Path(__file__).parents[1]

PUBLIC_MODULES = (
    "bgtasks",
    "bgtasks.widgets",
    "bgtasks.thumbnails",
    "bgtasks.persistence",
    "bgtasks.jobs",
    "bgtasks.loops",
    "bgtasks.processes",
    "bgtasks.dask_executor",
)

_QT_MODULES = ("PySide6", "shiboken6", "Shiboken")


@dataclasses.dataclass
class Checked:
    """What one checked object is: its griffe object, where it lives, what it is."""

    path: str
    obj: griffe.Object
    kind: str  # "function", "method" or "property"
    parameters: list[str] = dataclasses.field(default_factory=list)


def _load() -> griffe.Object:
    loader = griffe.GriffeLoader(
        search_paths=[str(ROOT)], docstring_parser=griffe.Parser.google, allow_inspection=False
    )
    package = loader.load("bgtasks")
    loader.resolve_aliases(implicit=False, external=False)
    return package


def _target(obj: griffe.Object | griffe.Alias) -> griffe.Object:
    return obj.final_target if isinstance(obj, griffe.Alias) else obj


def _lookup(package: griffe.Object, path: str) -> griffe.Object:
    """The griffe object at a dotted ``path`` (``bgtasks.x.Y.z``), aliases followed."""
    obj: Any = package
    for part in path.split(".")[1:]:
        obj = _target(obj)[part]
    return _target(obj)


def _public_names() -> list[tuple[str, str, Any]]:
    """(module whose source defines the names, name, the object) for each public name."""
    names = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        source = getattr(module, "_impl", module)  # processes / dask_executor re-export
        exported = getattr(module, "__all__", None) or source.__all__
        for name in exported:
            names.append((source.__name__, name, getattr(module, name)))
    return names


def _is_qt_override(cls: type, name: str) -> bool:
    """Whether ``name`` overrides (or is) a method of a PySide6 base of ``cls``."""
    return any(
        name in vars(base) for base in cls.__mro__ if base.__module__.startswith(_QT_MODULES)
    )


def _griffe_class(package: griffe.Object, cls: type) -> griffe.Object:
    return _lookup(package, f"{cls.__module__}.{cls.__qualname__}")


def _members(package: griffe.Object, cls: type) -> tuple[list[Checked], list[str]]:
    """The public methods and properties of ``cls`` to check, and its signals' names."""
    from PySide6.QtCore import Signal

    checked, signals = [], []
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue
        owner = next((base for base in cls.__mro__ if name in vars(base)), None)
        if owner is None or not owner.__module__.startswith("bgtasks"):
            continue
        value = vars(owner)[name]
        if isinstance(value, Signal):
            signals.append(name)
            continue
        if _is_qt_override(cls, name):
            continue
        if isinstance(value, property):
            kind = "property"
        elif isinstance(value, (staticmethod, classmethod)) or inspect.isfunction(value):
            kind = "method"
        else:
            continue  # a class attribute, an enum member, a field
        obj = _griffe_class(package, owner)[name]
        obj = _target(obj)
        path = f"{cls.__module__}.{cls.__qualname__}.{name}"
        params = []
        if kind == "method" and isinstance(obj, griffe.Function):
            params = _parameters(obj, drop_first=not isinstance(value, staticmethod))
        checked.append(Checked(path, obj, kind, params))
    return checked, signals


def _parameters(function: griffe.Function, drop_first: bool) -> list[str]:
    params = list(function.parameters)
    if drop_first and params and params[0].name in ("self", "cls"):
        params = params[1:]
    names = []
    for param in params:
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            names.append("*" + param.name)
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            names.append("**" + param.name)
        else:
            names.append(param.name)
    return names


def _section_names(obj: griffe.Object, kinds: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    if obj.docstring is None:
        return names
    for section in obj.docstring.parse(griffe.Parser.google, warnings=False):
        if section.kind.value in kinds:
            for item in section.value:
                for part in item.name.split(","):
                    names.add(part.strip())
    return names


def _args_problems(
    path: str, params: list[str], args: set[str], attributes: frozenset[str] = frozenset()
) -> list[str]:
    """Parameters that ``args`` (or ``attributes``) leaves out, and Args naming none."""
    problems = []
    bare = {name.lstrip("*") for name in args}
    missing = [p for p in params if p.lstrip("*") not in bare | attributes]
    if missing:
        problems.append(f"{path}: Args does not describe {', '.join(missing)}")
    extra = sorted(bare - {p.lstrip("*") for p in params})
    if extra:
        problems.append(f"{path}: Args names no parameter: {', '.join(extra)}")
    return problems


def _check_callable(item: Checked) -> list[str]:
    if item.obj.docstring is None or not item.obj.docstring.value.strip():
        return [f"{item.path}: no docstring"]
    problems = _args_problems(item.path, item.parameters, _section_names(item.obj, ("parameters",)))
    if item.kind in ("function", "method") and "thread" not in item.obj.docstring.value.lower():
        problems.append(f"{item.path}: does not say which thread may call it")
    return problems


def _constructor_problems(package: griffe.Object, cls: type, gcls: griffe.Object) -> list[str]:
    path = f"{cls.__module__}.{cls.__qualname__}"
    owner = next((base for base in cls.__mro__ if "__init__" in vars(base)), object)
    if not owner.__module__.startswith("bgtasks") or issubclass(cls, enum.Enum):
        return []  # object's, an exception's or Qt's constructor
    if getattr(cls, "_is_protocol", False):
        return []  # a Protocol is not constructed
    init = inspect.signature(cls.__init__)
    params = [
        ("*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else "") + p.name
        for p in list(init.parameters.values())[1:]
    ]
    documented = _section_names(gcls, ("parameters",))
    gowner = _griffe_class(package, owner)
    if gowner is not gcls:  # an inherited constructor is documented where it is defined
        documented |= _section_names(gowner, ("parameters",))
    ginit = gowner.members.get("__init__")
    if ginit is not None:
        documented |= _section_names(_target(ginit), ("parameters",))
    generated = dataclasses.is_dataclass(cls) or (
        issubclass(cls, tuple) and hasattr(cls, "_fields")
    )
    attributes = frozenset(_section_names(gcls, ("attributes",)) if generated else ())
    return _args_problems(f"{path}()", params, documented, attributes)


def _signal_problems(cls: type, gcls: griffe.Object, signals: list[str]) -> list[str]:
    text = gcls.docstring.value if gcls.docstring else ""
    missing = [s for s in signals if not re.search(rf"\b{re.escape(s)}\b", text)]
    if missing:
        return [f"{cls.__module__}.{cls.__qualname__}: signals not in its docstring: {missing}"]
    return []


def _problems() -> list[str]:
    package = _load()
    problems: list[str] = []
    seen: set[str] = set()
    for module_name, name, value in _public_names():
        gobj = _lookup(package, f"{module_name}.{name}")
        path = f"{module_name}.{name}"
        if gobj.path in seen:
            continue
        seen.add(gobj.path)
        if inspect.isclass(value):
            if gobj.docstring is None or not gobj.docstring.value.strip():
                problems.append(f"{path}: no docstring")
            problems += _constructor_problems(package, value, gobj)
            members, signals = _members(package, value)
            problems += _signal_problems(value, gobj, signals)
            for item in members:
                if item.obj.path not in seen:  # a mixin's method is checked once
                    seen.add(item.obj.path)
                    problems += _check_callable(item)
        elif inspect.isfunction(value):
            assert isinstance(gobj, griffe.Function), path
            params = _parameters(gobj, drop_first=False)
            problems += _check_callable(Checked(path, gobj, "function", params))
        elif gobj.docstring is None or not gobj.docstring.value.strip():
            problems.append(f"{path}: no docstring")
    return list(dict.fromkeys(problems))


@pytest.fixture(scope="module")
def problems() -> list[str]:
    return _problems()


def test_the_public_api_is_found():
    names = [(module, name) for module, name, _ in _public_names()]
    assert len(names) > 50
    assert ("bgtasks", "BackgroundTaskManager") in names
    assert ("bgtasks.executors.dask", "DaskExecutor") in names


def test_every_public_name_is_documented_in_google_style(problems):
    assert problems == [], f"{len(problems)} docstring problems:\n" + "\n".join(problems)
