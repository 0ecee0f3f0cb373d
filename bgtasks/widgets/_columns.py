"""The columns and roles of ``TaskModel``: what each cell answers.

Plain functions of a row's snapshot, called from the model's ``data()`` and
``multiData()`` (the views' hottest calls: no more than one Python call per
cell).  GUI thread only, as the model.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from PySide6.QtCore import QModelRoleData, Qt
from PySide6.QtGui import QBrush, QColor

from ..core._errors import text_of
from ..core._state import TaskInfo, TaskState
from ._rows import ACTIVE, GroupRow

#: Column numbers.
NAME, GROUP, STATE, PROGRESS, MESSAGE, ELAPSED, ERROR = range(7)
HEADERS = ("Name", "Group", "State", "Progress", "Message", "Elapsed", "Error")
COLUMNS = len(HEADERS)

#: Roles (``TaskModel.UidRole`` and so on are these).
UID_ROLE = Qt.ItemDataRole.UserRole + 1
STATE_ROLE = Qt.ItemDataRole.UserRole + 2
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 3
TRACEBACK_ROLE = Qt.ItemDataRole.UserRole + 4
INFO_ROLE = Qt.ItemDataRole.UserRole + 5
GROUP_ROLE = Qt.ItemDataRole.UserRole + 6
SORT_ROLE = Qt.ItemDataRole.UserRole + 7

#: Foreground brushes of the states shown in colour (each at least 4.5:1 against
#: a light base and its alternate rows, WCAG AA); the int values of the roles a
#: delegate asks for, for ``multiData()``.
_COLOURS = {
    TaskState.FAILED: QColor(180, 25, 25),
    TaskState.CANCELLED: QColor(100, 100, 100),
    TaskState.CANCELLING: QColor(130, 85, 0),
}
BRUSHES = {state: QBrush(colour) for state, colour in _COLOURS.items()}
RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
DISPLAY = int(Qt.ItemDataRole.DisplayRole)
FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
USER = int(Qt.ItemDataRole.UserRole)


#: No group has a name (the default of ``names`` below).
NO_NAMES: Mapping[Any, str] = {}

#: Longest text a cell shows, and a tooltip: Qt measures and elides the whole
#: string at every paint (20 rows named by 1 MB strings took 5 s a paint).
CELL_TEXT = 500
TIP_TEXT = 5000


def clip(text: str, limit: int = CELL_TEXT) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis.  Any thread."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def group_label(group: Any, names: Mapping[Any, str] = NO_NAMES) -> str:
    """How a group is shown: its name in ``names`` (the manager's
    ``set_group_name``), else ``str(group)``, or "(no group)" for ``None``."""
    if names:
        name = names.get(group)
        if name:
            return name
    return "(no group)" if group is None else text_of(group)


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> str:
    """A string whose plain order (code unit by code unit, as Qt compares
    strings) is the natural order of ``text``: runs of digits by their value,
    the rest case-insensitively, a number before a word ("2" < "10" < "a").

    Each run of digits becomes a control character, its length and the
    digits, so a longer number sorts after a shorter one.  Only the first
    ``CELL_TEXT`` characters count: the cache keeps its keys, and 4,096 names
    of 1 MB would have been 8 GB of it.
    """
    return _natural_key(text[:CELL_TEXT])


@lru_cache(maxsize=4096)
def _natural_key(text: str) -> str:
    parts = _DIGITS.split(text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # digits
            digits = part.lstrip("0") or "0"
            out.append(f"\x01{len(digits):04d}{digits}")
        else:
            out.append(part.casefold())
    return "".join(out)


def format_elapsed(seconds: float | None) -> str:
    """Format a duration: ``0.4 s``, ``12.0 s``, ``3:07``, ``1:02:03``.  Any thread.

    Args:
        seconds: The duration, or None.

    Returns:
        The text; empty for None.
    """
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def elapsed_of(info: TaskInfo) -> float | None:
    """Seconds the task has run (so far, while it runs); ``None`` before it starts."""
    if info.started is None:
        return None
    if info.state in ACTIVE:
        return max(0.0, time.time() - info.started)
    return info.runtime


def task_data(info: TaskInfo, col: int, role: int, names: Mapping[Any, str] = NO_NAMES) -> Any:
    """What a task's cell in column ``col`` answers for ``role`` (``names``: the groups' names)."""
    if role == Qt.ItemDataRole.DisplayRole:
        return display(info, col, names)
    if role == UID_ROLE:
        return info.uid
    if role == STATE_ROLE:
        return info.state
    if role == PROGRESS_ROLE:
        return progress_of(info)
    if role == TRACEBACK_ROLE:
        return info.traceback
    if role == INFO_ROLE:
        return info
    if role == GROUP_ROLE:
        return info.group
    if role == SORT_ROLE:
        return sort_key(info, col, names)
    if role == Qt.ItemDataRole.ToolTipRole:
        if col == ERROR and info.error:
            return clip(info.error, TIP_TEXT)
        if col == MESSAGE and info.message:
            return clip(info.message, TIP_TEXT)
        return None
    if role == Qt.ItemDataRole.ForegroundRole:
        return BRUSHES.get(info.state)
    if role == Qt.ItemDataRole.TextAlignmentRole and col == ELAPSED:
        return RIGHT
    return None


def group_data(group: GroupRow, col: int, role: int, names: Mapping[Any, str] = NO_NAMES) -> Any:
    """What a group's cell in column ``col`` answers for ``role`` (grouped mode)."""
    if role == GROUP_ROLE:
        return group.key
    if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE, PROGRESS_ROLE):
        counts = group.counts
        if counts is None:
            counts = group.counts = dict.fromkeys(TaskState, 0)
            for node in group.children:
                counts[node.info.state] += 1
        total = len(group.children)
        finished = (
            counts[TaskState.COMPLETED] + counts[TaskState.FAILED] + counts[TaskState.CANCELLED]
        )
        if role == PROGRESS_ROLE:
            return finished / total if total else 0.0
        if col == NAME:
            label = group_label(group.key, names)
            return clip(label) if role == Qt.ItemDataRole.DisplayRole else natural_key(label)
        if col == GROUP:
            return f"{total} tasks" if role == Qt.ItemDataRole.DisplayRole else total
        if col == STATE:
            parts = [f"{n} {s.value}" for s, n in counts.items() if n]
            return ", ".join(parts)
        if col == PROGRESS:
            return (
                f"{finished}/{total}"
                if role == Qt.ItemDataRole.DisplayRole
                else finished / max(total, 1)
            )
        return None if role == Qt.ItemDataRole.DisplayRole else ""
    return None


def fill_group_span(
    group: GroupRow,
    col: int,
    role_data_span: Iterable[QModelRoleData],
    names: Mapping[Any, str] = NO_NAMES,
) -> None:
    """``multiData()`` for a group's cell: every role of the span, a value or cleared."""
    for slot in role_data_span:
        value = group_data(group, col, slot.role(), names)
        if value is None:
            slot.clearData()
        else:
            slot.setData(value)


def display(info: TaskInfo, col: int, names: Mapping[Any, str] = NO_NAMES) -> str | None:
    """A task's cell text in column ``col`` (``names``: the groups' names)."""
    if col == NAME:
        return clip(info.name)
    if col == STATE:
        return info.state.value
    if col == PROGRESS:
        if info.state is TaskState.COMPLETED:
            return "100%"
        return "" if info.progress is None else f"{info.progress * 100:.0f}%"
    if col == GROUP:
        return clip(group_label(info.group, names))
    if col == MESSAGE:
        return clip(info.message)
    if col == ELAPSED:
        return format_elapsed(elapsed_of(info))
    if col == ERROR:
        return clip(info.error[: CELL_TEXT + 1].splitlines()[0]) if info.error else ""
    return None


def progress_of(info: TaskInfo) -> float:
    """A task's progress in 0..1 (1 once completed, 0 before it reports any)."""
    if info.state is TaskState.COMPLETED:
        return 1.0
    if info.progress is None:
        return 0.0
    return min(1.0, max(0.0, float(info.progress)))


def sort_key(info: TaskInfo, col: int, names: Mapping[Any, str] = NO_NAMES) -> Any:
    """A value of a task's cell in column ``col`` that sorts naturally."""
    if col == NAME:
        return info.name
    if col == GROUP:
        return natural_key(group_label(info.group, names))
    if col == STATE:
        return list(TaskState).index(info.state)
    if col == PROGRESS:
        return progress_of(info)
    if col == MESSAGE:
        return info.message
    if col == ELAPSED:
        e = elapsed_of(info)
        return -1.0 if e is None else e
    return info.error
