"""What the journal hands out: its error, its records, restore reports, and the row states."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core._errors import BgTasksError

if TYPE_CHECKING:
    from ..core._handle import TaskHandle

#: States a row can be in.  The first two are live; the others are terminal.
SUBMITTED, STARTED = "submitted", "started"
FINISHED, FAILED, CANCELLED, SKIPPED = "finished", "failed", "cancelled", "skipped"
LIVE_STATES = (SUBMITTED, STARTED)
STATES = (SUBMITTED, STARTED, FINISHED, FAILED, CANCELLED, SKIPPED)


class JournalError(BgTasksError):
    """A journal file cannot be used: not a bgtasks journal, damaged, newer, or in use."""


@dataclass(frozen=True)
class JournalRecord:
    """One persistent task as the journal holds it (``TaskJournal.records()``).

    Frozen: any thread may read it.

    Attributes:
        jid: The journal's id of the task, stable across restarts.
        uid: The manager uid of its latest submission (None if the process
            died inside ``submit``).
        session: The run of the application that submitted it last.
        state: One of ``submitted``, ``started``, ``finished``, ``failed``,
            ``cancelled``, ``skipped``.
        function: The name it was registered under with ``persistable``.
        args: Its positional arguments (JSON data).
        kwargs: Its keyword arguments (JSON data).
        name: Its name option, or None.
        group: Its group (None, a str or an int).
        priority: Its priority, or None.
        upstream: The ``jid`` of each task it waits for.
        enduring: Whether it survives ``TaskJournal.reset()``.
        store_result: Whether its result is kept.
        runs: How many times it started.
        result: The stored result (see ``store_result``), or None.
        error: The failure message, or why the task was skipped or its
            result not stored; None otherwise.
    """

    jid: int
    uid: int | None
    session: int
    state: str
    function: str
    args: list[Any]
    kwargs: dict[str, Any]
    name: str | None
    group: Any
    priority: float | None
    upstream: list[int]
    enduring: bool
    store_result: bool
    runs: int
    result: Any
    error: str | None


@dataclass
class RestoreReport:
    """What ``TaskJournal.restore`` or ``TaskJournal.restore_snapshot`` did.

    Keys are the tasks' old uids (their uids in the process that submitted
    them).  Made by the thread that called ``restore``; read it there.

    Attributes:
        handles: Old uid -> the re-submitted task's new handle.
        uids: Old uid -> the re-submitted task's new uid.
        interrupted: The tasks that were running when the process died (or
            when the snapshot was taken), rerun or not.
        skipped: The tasks not re-submitted, with the reason in ``reasons``.
        reasons: Old uid -> why it was skipped: an interrupted task the app
            chose not to rerun, a task whose upstream was skipped, failed or
            cancelled, or whose upstream result could not be stored.
        quarantined: The journal ids (``jid``) of damaged rows, moved to the
            journal's ``quarantine`` table -> what is wrong.
    """

    handles: dict[int, TaskHandle[Any]] = field(default_factory=dict)
    uids: dict[int, int] = field(default_factory=dict)
    interrupted: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)
    quarantined: dict[int, str] = field(default_factory=dict)
