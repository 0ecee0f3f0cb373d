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

    ``jid`` is the journal's id of the task, stable across restarts; ``uid``
    the manager uid of its latest submission (None if the process died inside
    ``submit``); ``session`` the run of the application that submitted it
    last; ``state`` one of ``submitted``, ``started``, ``finished``,
    ``failed``, ``cancelled``, ``skipped``; ``runs`` how many times it started.
    ``result`` is the stored result (see ``store_result``), ``error`` the
    failure message or why the task was skipped or its result not stored.
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
    """What :meth:`TaskJournal.restore` or :meth:`TaskJournal.restore_snapshot` did.

    Keys are the tasks' old uids (their uids in the process that submitted
    them).  ``handles`` and ``uids`` map each re-submitted task to its new
    handle and uid.  ``interrupted`` lists the tasks that were running when
    the process died (or when the snapshot was taken), rerun or not.
    ``skipped`` lists the tasks not re-submitted, with the reason in
    ``reasons``: an interrupted task the app chose not to rerun, a task whose
    upstream was skipped, failed or cancelled, or whose upstream result could
    not be stored.  ``quarantined`` maps the journal ids (``jid``) of damaged
    rows, moved to the journal's ``quarantine`` table, to what is wrong.
    """

    handles: dict[int, TaskHandle[Any]] = field(default_factory=dict)
    uids: dict[int, int] = field(default_factory=dict)
    interrupted: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)
    quarantined: dict[int, str] = field(default_factory=dict)
