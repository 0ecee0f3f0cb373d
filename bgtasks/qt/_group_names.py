"""Display names of task groups (a mixin of BackgroundTaskManager).

A group is any hashable value; a name is how people see it ("Import 3
photos" rather than ``17``).  Names belong to the Qt layer: the scheduling
core never reads them.

A name lives as long as its group does.  While at least one group has a
name, the manager listens to its own ``task_added`` and ``task_removed``
and keeps the uids of each named group's registered tasks; when the last of
them is forgotten (``keep_finished``, ``clear_finished``) the name goes too,
announced by ``group_renamed(group, "")``.  A name set before the group has
any task waits for its tasks.  With no name set the manager listens to
neither signal, so the scheduler produces no events for them on that
account.

Thread: names are set on the manager's thread (``group_renamed`` is emitted
there, at once) and read on any (a dict read, atomic under the GIL).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread

from ..core._errors import text_of
from ..core._validate import check_hashable

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance

    from ..core._state import TaskInfo

    _Base = QObject  # a mixin of a QObject: type-check it as one
else:
    _Base = object


class GroupNames(_Base):
    """``set_group_name``, ``group_name`` and the ``group_renamed`` signal."""

    # declared by BackgroundTaskManager
    group_renamed: SignalInstance
    task_added: SignalInstance
    task_removed: SignalInstance

    if TYPE_CHECKING:

        def tasks(self, group: Hashable = ..., state: Any = None) -> list[TaskInfo]: ...

    # group -> name, and group -> uids of its registered tasks (named groups only)
    _group_names: dict[Hashable, str] | None = None
    _named_uids: dict[Hashable, set[int]]

    def set_group_name(self, group: Hashable, name: str) -> None:
        """Show ``group`` as ``name``; the empty string clears its name.

        Manager's thread only; ``group_renamed(group, name)`` is emitted on
        it, before this returns, when the name changes.  The name is
        dropped (and ``group_renamed(group, "")`` emitted) once the manager
        has forgotten every task of the group.

        Args:
            group: The group (any hashable value, ``None`` included).
            name: Its display name; ``""`` clears it.

        Raises:
            TypeError: ``name`` is not a str, or ``group`` is unhashable.
            RuntimeError: called on another thread than the manager's.
        """
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        check_hashable("group", group)
        if QThread.currentThread() is not self.thread():
            raise RuntimeError(
                "set_group_name must be called on the manager's thread, "
                f"not on {QThread.currentThread()!r}"
            )
        names = self._group_names
        if names is None:
            names = self._group_names = {}
            self._named_uids = {}
        if names.get(group, "") == name:
            return
        if not name:
            self._drop_group_name(group)
            self.group_renamed.emit(group, "")
            return
        if not names:  # the first name: follow the groups' tasks from now on
            self.task_added.connect(self._named_group_task_added)
            self.task_removed.connect(self._named_group_task_removed)
        if group not in names:
            # after connecting: a task added meanwhile is both read and announced
            self._named_uids[group] = {info.uid for info in self.tasks(group)}
        names[group] = name
        self.group_renamed.emit(group, name)

    def group_name(self, group: Hashable) -> str:
        """The name of ``group`` (see ``set_group_name``), else ``str(group)``
        (``"<type> (str() failed)"`` if that raises).  Any thread.

        Args:
            group: The group (any hashable value, ``None`` included).

        Returns:
            Its name, or ``str(group)`` when it has none.
        """
        names = self._group_names
        if names:
            try:
                name = names.get(group)
            except TypeError:  # unhashable: it has no name
                name = None
            if name is not None:
                return name
        return text_of(group)

    def group_names(self) -> dict[Hashable, str]:
        """Every group that has a name, with its name (a copy).  Any thread."""
        return dict(self._group_names or {})

    def _drop_group_name(self, group: Hashable) -> None:
        names = self._group_names
        assert names is not None
        names.pop(group, None)
        self._named_uids.pop(group, None)
        if not names:  # no name left: stop listening (no events produced for it)
            self.task_added.disconnect(self._named_group_task_added)
            self.task_removed.disconnect(self._named_group_task_removed)

    def _named_group_task_added(self, uid: int, group: Any) -> None:
        uids = self._named_uids.get(group)
        if uids is not None:
            uids.add(uid)

    def _named_group_task_removed(self, uid: int, group: Any) -> None:
        uids = self._named_uids.get(group)
        if uids is None:
            return
        uids.discard(uid)
        if not uids:  # the manager forgot the group's last task
            self._drop_group_name(group)
            self.group_renamed.emit(group, "")
