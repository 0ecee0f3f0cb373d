"""The ``TaskMonitor``'s group filter: a combo box of the groups the model shows.

It lists "All groups", then every group with a row in the model, by label in
natural order (numbers by value, names alphabetically; see
``natural_key``), named by the manager's ``set_group_name``.  Groups that
leave the model leave the list, but for the one chosen: it stays while it is
the filter, so the list never changes the filter under the user.

The list is brought up to date only when the model's set of groups or a name
changed (the model counts such changes), and then item by item: a pass that
changes no group costs nothing here.  GUI thread only.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from PySide6.QtWidgets import QComboBox

from ._columns import clip, natural_key
from ._filter_proxy import ANY_GROUP
from ._model import TaskModel


class GroupFilter:
    """Keeps a combo box's items (after its first, "All groups") in step with a model's groups."""

    def __init__(self, combo: QComboBox, model: TaskModel) -> None:
        self._combo = combo
        self._model = model
        self._keys: list[str] = []  # the natural keys of items 1.., in order
        self._items: list[Any] = []  # the groups of items 1.., in order
        self._seen = -1  # the model's groups_version last listed

    def chosen(self) -> Any:
        """The group chosen (``ANY_GROUP`` for all)."""
        return ANY_GROUP if self._combo.currentIndex() <= 0 else self._combo.currentData()

    def sync(self, force: bool = False) -> None:
        """List the model's groups now, if they changed since the last call (or ``force``)."""
        version = self._model._store.groups_version
        if version == self._seen and not force:
            return
        self._seen = version
        wanted = list(self._model.groups())
        chosen = self.chosen()
        if chosen is not ANY_GROUP and chosen not in self._model._store.group_sizes:
            wanted.append(chosen)
        combo = self._combo
        blocked = combo.blockSignals(True)  # items move; the filter does not change
        try:
            self._drop_gone(wanted)
            self._add_new(wanted)
        finally:
            combo.blockSignals(blocked)

    def relabel(self) -> None:
        """Names changed: list every group again under its label."""
        combo = self._combo
        blocked = combo.blockSignals(True)
        try:
            chosen = self.chosen()
            while combo.count() > 1:
                combo.removeItem(combo.count() - 1)
            self._keys.clear()
            self._items.clear()
            self._seen = -1
            self.sync()
            if chosen is not ANY_GROUP:
                combo.setCurrentIndex(self._index_of(chosen))
        finally:
            combo.blockSignals(blocked)

    def _index_of(self, group: Any) -> int:
        for i, item in enumerate(self._items):
            if item == group:
                return i + 1
        return 0

    def _drop_gone(self, wanted: list[Any]) -> None:
        keep = set(wanted)
        combo, keys, items = self._combo, self._keys, self._items
        for i in range(len(items) - 1, -1, -1):
            if items[i] not in keep:
                combo.removeItem(i + 1)
                del keys[i], items[i]

    def _add_new(self, wanted: list[Any]) -> None:
        have = set(self._items)
        combo, keys, items = self._combo, self._keys, self._items
        for group in wanted:
            if group in have:
                continue
            label = self._model.group_label(group)
            key = natural_key(label)
            at = bisect_left(keys, key)
            keys.insert(at, key)
            items.insert(at, group)
            combo.insertItem(at + 1, clip(label), group)
