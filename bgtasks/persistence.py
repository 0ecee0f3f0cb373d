"""Saved and restored task queues: ``TaskJournal`` journals persistent tasks to SQLite.

A persistent task is submitted through a :class:`TaskJournal` instead of the
manager.  Its function must be registered with :func:`persistable` (the
journal stores its name, ``module:qualname`` or an explicit one) and its
arguments JSON data (``None``, bools, numbers, strings, lists and dicts with
string keys, nested), so that the journal can be read by any tool and a
foreign or tampered file can never run code: restore runs only functions the
application registered, and never imports a module a file names.  The journal writes each task's
life (submitted, started, finished, failed, cancelled) to an embedded SQLite
database, and :meth:`TaskJournal.restore` re-submits on the next start the
tasks that did not end, with their priorities, groups and dependencies.

File format: SQLite in WAL mode, ``PRAGMA application_id`` = 0x62677461
("bgta"), ``PRAGMA user_version`` = the format version, a ``meta`` table with
``format = 'bgtasks-journal'``.  Any other file is refused with
:class:`JournalError` and left untouched.  One process at a time owns a
journal file (exclusive locking mode); another one gets ``JournalError``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ._context import current_task
from ._errors import BgTasksError, TaskCancelled
from ._handle import TaskHandle
from ._manager import BackgroundTaskManager
from ._state import TaskState

log = logging.getLogger(__name__)

__all__ = [
    "JournalError",
    "JournalRecord",
    "RestoreReport",
    "TaskJournal",
    "default_journal_path",
    "persistable",
    "persistable_functions",
]

APPLICATION_ID = 0x62677461  # "bgta"
FORMAT_NAME = "bgtasks-journal"
FORMAT_VERSION = 2  # 2: row checksums (crc) and the quarantine table
SNAPSHOT_VERSION = 1

#: States a row can be in.  The first two are live; the others are terminal.
SUBMITTED, STARTED = "submitted", "started"
FINISHED, FAILED, CANCELLED, SKIPPED = "finished", "failed", "cancelled", "skipped"
LIVE_STATES = (SUBMITTED, STARTED)
STATES = (SUBMITTED, STARTED, FINISHED, FAILED, CANCELLED, SKIPPED)

#: The columns a row's checksum covers, in order.
_CRC_COLUMNS = (
    "jid", "session", "uid", "state", "function", "args", "kwargs", "name", "grp", "priority",
    "upstream", "enduring", "store_result", "runs", "result", "error", "submitted_at",
    "started_at", "ended_at",
)  # fmt: skip
_QUARANTINE = (
    "CREATE TABLE IF NOT EXISTS quarantine (reason TEXT NOT NULL, quarantined_at REAL NOT NULL, "
    + ", ".join(_CRC_COLUMNS) + ", crc)"
)
_DAMAGED_ROW = "checksum mismatch (damaged, or edited outside bgtasks)"


def _crc(*values: Any) -> int:
    """A row's checksum: CRC-32 of the repr of its values (SQLite function ``bgtasks_crc``)."""
    return zlib.crc32(repr(values).encode("utf-8", "surrogatepass"))


def _update(sets: dict[str, str], where: str) -> str:
    """``UPDATE tasks SET ... WHERE ...`` that also recomputes the row's checksum."""
    assigns = ", ".join(f"{column}={expr}" for column, expr in sets.items())
    values = ", ".join(f"({sets[c]})" if c in sets else c for c in _CRC_COLUMNS)
    return f"UPDATE tasks SET {assigns}, crc=bgtasks_crc({values}) WHERE {where}"


_LIVE = "state IN ('submitted','started')"
_SQL_STARTED = _update(
    {"state": "'started'", "runs": "runs+1", "started_at": ":t"}, "jid=:jid AND state='submitted'"
)
_SQL_ENDED = _update(
    {"state": ":state", "error": ":error", "ended_at": ":t"}, f"jid=:jid AND {_LIVE}"
)
_SQL_FINISHED = _update(
    {"state": "'finished'", "result": ":result", "error": ":error", "ended_at": ":t"},
    f"jid=:jid AND {_LIVE}",
)
_SQL_UID = _update({"uid": ":uid"}, "jid=:jid")
_SQL_SKIP = _update({"state": "'skipped'", "error": ":error", "ended_at": ":t"}, "jid=:jid")
_SQL_RESUBMIT = _update(
    {"state": "'submitted'", "session": ":session", "uid": "NULL", "started_at": "NULL",
     "ended_at": "NULL", "error": "NULL"},
    "jid=:jid",
)  # fmt: skip
_SQL_RESET = _update({"state": "'cancelled'", "error": "'reset'", "ended_at": ":t"}, "jid=:jid")
_SQL_INSERT = (
    "INSERT INTO tasks (" + ", ".join(_CRC_COLUMNS) + ", crc) SELECT " + ", ".join(
        v := ["n", ":session", "NULL", "'submitted'", ":function", ":args", ":kwargs", ":name",
              ":grp", ":priority", ":upstream", ":enduring", ":store_result", "0", "NULL",
              "NULL", ":t", "NULL", "NULL"]
    ) + f", bgtasks_crc({', '.join(v)}) FROM (SELECT coalesce(max(jid), 0) + 1 AS n FROM tasks)"
)  # fmt: skip
_SQL_QUARANTINE = "INSERT INTO quarantine SELECT :reason, :t, * FROM tasks WHERE jid=:jid"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tasks (
    jid INTEGER PRIMARY KEY,
    session INTEGER NOT NULL,
    uid INTEGER,
    state TEXT NOT NULL,
    function TEXT NOT NULL,
    args TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    name TEXT,
    grp TEXT NOT NULL,
    priority,
    upstream TEXT NOT NULL,
    enduring INTEGER NOT NULL,
    store_result INTEGER NOT NULL,
    runs INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    submitted_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    crc INTEGER
);
CREATE INDEX tasks_live ON tasks (state) WHERE state IN ('submitted', 'started');
"""


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

    handles: dict[int, TaskHandle] = field(default_factory=dict)
    uids: dict[int, int] = field(default_factory=dict)
    interrupted: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)
    quarantined: dict[int, str] = field(default_factory=dict)


def default_journal_path() -> Path:
    """``<per-user app data dir>/bgtasks-journal.sqlite3``.

    The directory is ``QStandardPaths.AppLocalDataLocation`` (on Linux
    ``~/.local/share/<organization>/<application>``), or
    ``~/.local/share/bgtasks`` when Qt cannot name one.  Any thread.
    """
    from PySide6.QtCore import QStandardPaths

    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    base = Path(location) if location else Path.home() / ".local" / "share" / "bgtasks"
    return base / "bgtasks-journal.sqlite3"


# ---------------------------------------------------------------- validation helpers


_registry: dict[str, Callable[..., Any]] = {}  # name -> function
_names: dict[int, tuple[Callable[..., Any], str]] = {}  # id(function) -> (function, name)
_registry_lock = threading.Lock()


def _label(fn: Any) -> str:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}:{qualname}"
    return repr(fn)


def persistable(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Any:
    """Register ``fn`` as a function persistent tasks may run; return it unchanged.

    ``@persistable`` registers a module-level function under
    ``module:qualname``; ``@persistable(name="app.render")`` under an explicit
    name that stays valid if the function moves.  :meth:`TaskJournal.submit`
    (and ``manager.submit(persist=True)``) accept only registered functions,
    and :meth:`TaskJournal.restore` / :meth:`TaskJournal.restore_snapshot`
    run only the functions registered under the names the journal holds:
    a name nobody registered is reported and skipped, never imported.  So
    register (import the modules that define) your task functions before
    calling ``restore()``.  A name can belong to one function only
    (``ValueError``), except that reloading a module re-registers its
    functions.  Any thread.
    """
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"a persistable name must be a non-empty string, got {name!r}")
    if fn is None:
        return lambda fn: _register(fn, name)
    return _register(fn, name)


def _register(fn: Any, name: str | None) -> Any:
    if not callable(fn):
        raise TypeError(f"@persistable needs a function, got {fn!r}")
    label = _label(fn)
    if name is None:
        if not label.partition(":")[2] or "<lambda>" in label or "<locals>" in label:
            raise TypeError(
                "@persistable needs a module-level function or an explicit name=, "
                f"got {fn!r} ({label} is not a stable name)"
            )
        name = label
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


def _function_name(fn: Any) -> str:
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


def _lookup(name: str) -> Callable[..., Any] | None:
    """The function registered under ``name``, or None.  Never imports anything."""
    with _registry_lock:
        return _registry.get(name)


def _to_json(what: str, value: Any) -> str:
    """JSON text of ``value``; ``TypeError`` if it does not come back equal."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
        same = _same(json.loads(text), value)
    except (TypeError, ValueError, RecursionError):
        same = False
    if not same:
        raise TypeError(
            f"{what} must be JSON data (None, bool, int, float, str, list, dict with str keys), got {value!r}"
        )
    return text


def _same(a: Any, b: Any) -> bool:
    # Exact round trip: types too (a tuple would come back a list, 1.0 would stay 1.0).
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return a == b and math.isfinite(a)
    return a == b


def _check_group(group: Any) -> None:
    if group is not None and (isinstance(group, bool) or not isinstance(group, (str, int))):
        raise TypeError(f"a persistent task's group must be None, a str or an int, got {group!r}")


def _check_priority(priority: Any) -> None:
    if priority is not None and (
        isinstance(priority, bool)
        or not isinstance(priority, (int, float))
        or not math.isfinite(priority)
    ):
        raise TypeError(f"priority must be a finite number or None, got {priority!r}")


# ---------------------------------------------------------------- the journal


class _Call:
    """The function the manager runs for a persistent task: journals around ``fn``."""

    __slots__ = ("__name__", "journal", "jid", "fn", "args", "kwargs")

    def __init__(
        self,
        journal: TaskJournal,
        jid: int,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> None:
        # The call's own arguments travel here, not as submit() keywords, where
        # a name such as "key" or "retries" would be taken as a task option.
        self.journal = journal
        self.jid = jid
        self.fn = fn
        self.args = tuple(args)
        self.kwargs = dict(kwargs)
        self.__name__ = getattr(fn, "__name__", "task")

    def __call__(self, **upstream: Any) -> Any:
        journal, jid = self.journal, self.jid
        journal._mark_started(jid)
        try:
            # dict results of upstream tasks win over the task's own keywords
            result = self.fn(*self.args, **{**self.kwargs, **upstream})
        except TaskCancelled:
            journal._mark_stopped(jid)
            raise
        except BaseException as exc:  # noqa: BLE001 - journal it, the manager reports it
            journal._mark_ended(jid, FAILED, error=f"{type(exc).__name__}: {exc}")
            raise
        if current_task().cancelled:  # the manager drops the result: it ends CANCELLED
            journal._mark_stopped(jid)
        else:
            journal._mark_finished(jid, result)
        return result

    def __repr__(self) -> str:
        return f"<persistent call of {self.fn!r}>"


class TaskJournal:
    """Persistent tasks of one manager, journaled to an SQLite file.

    ``TaskJournal(manager, path=None, synchronous="normal")`` opens (or
    creates) the journal at ``path`` (default :func:`default_journal_path`).
    ``synchronous="normal"`` survives any crash of the process (SIGKILL
    included) and keeps commits cheap; ``"full"`` also survives a power loss
    or an OS crash, at the price of an fsync per commit.  Raises
    :class:`JournalError` naming the path for a file that is not a bgtasks
    journal (never overwriting it), one written by a newer format, a damaged
    one, or one another process has open.

    Every method may be called from any thread (a running task included);
    the journal's own bookkeeping of tasks that end without running (stopped
    while queued, upstream failed) happens in done callbacks on the manager's
    thread.  If the journal holds tasks that did not end in a previous run,
    call :meth:`restore` (or :meth:`discard`) before submitting new ones.
    Closing the journal (or the manager's ``shut_down``) while tasks run
    leaves them "started": the next run reports them as interrupted.
    """

    def __init__(
        self,
        manager: BackgroundTaskManager,
        path: str | os.PathLike[str] | None = None,
        *,
        synchronous: str = "normal",
    ) -> None:
        if not isinstance(manager, BackgroundTaskManager):
            raise TypeError(f"manager must be a BackgroundTaskManager, got {manager!r}")
        if synchronous not in ("normal", "full"):
            raise ValueError(f"synchronous must be 'normal' or 'full', got {synchronous!r}")
        self.manager = manager
        self.path = Path(default_journal_path() if path is None else path)
        self._synchronous = synchronous
        self._lock = threading.RLock()
        self._uid_to_jid: dict[int, int] = {}  # this session's live and ended tasks
        self._live: dict[int, int] = {}  # jid -> uid, tasks of this session not ended
        self._store: set[int] = set()  # jids whose result is kept whatever it is
        self._closed = False
        self._db, opened = _open(self.path, synchronous)
        #: damaged rows found at open (jid -> why), moved aside by restore() or discard()
        self._damaged: dict[int, str] = dict(opened.damaged)
        self._quarantined: dict[int, str] = dict(opened.damaged)
        try:
            with self._writing():
                self.session = opened.session
                self._db.execute(
                    "UPDATE meta SET value=? WHERE key='next_session'", (str(self.session + 1),)
                )
                live = self._db.execute(f"SELECT jid FROM tasks WHERE {_LIVE}").fetchall()
                self._needs_restore = bool(self._damaged) or any(
                    jid not in self._damaged for (jid,) in live
                )
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"{self.path}: cannot read the journal: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    @property
    def quarantined(self) -> dict[int, str]:
        """Rows found damaged when this journal was opened: ``jid`` -> what is wrong.

        They are never run nor returned by :meth:`records`;
        :meth:`restore` and :meth:`discard` move them to the ``quarantine``
        table of the file (nothing is deleted).
        """
        return dict(self._quarantined)

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        """Close the file.  Later journal writes of running tasks are dropped.  Any thread."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> TaskJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, params: Any) -> None:
        # A worker's or a callback's write; never raises into the task.
        with self._lock:
            if self._closed:
                return
            try:
                self._db.execute(sql, params)
            except sqlite3.Error:
                log.exception("journal %s: write failed", self.path)

    def _mark_started(self, jid: int) -> None:
        self._write(_SQL_STARTED, {"t": time.time(), "jid": jid})

    def _mark_ended(self, jid: int, state: str, error: str | None = None) -> None:
        with self._lock:
            if self._live.pop(jid, None) is None:
                return  # already journaled (by the worker, reset() or restore())
            self._write(
                _SQL_ENDED, {"state": state, "error": error, "t": time.time(), "jid": jid}
            )

    def _mark_stopped(self, jid: int) -> None:
        # A task stopped by the manager's shut_down stays "started": the next
        # run's restore() reports it as interrupted, like after a crash.
        if self.manager.is_shut_down:
            with self._lock:
                self._live.pop(jid, None)
        else:
            self._mark_ended(jid, CANCELLED)

    def _mark_finished(self, jid: int, result: Any) -> None:
        store = jid in self._store
        text = error = None
        # A non-empty dict is merged into downstream kwargs: it is always kept,
        # so that a downstream task restored after a crash gets it too.
        if store or (isinstance(result, dict) and result):
            try:
                text = _to_json("the result", result)
            except TypeError as exc:
                error = f"result not stored: {exc}"
        with self._lock:
            if self._live.pop(jid, None) is None:
                return
            self._write(
                _SQL_FINISHED, {"result": text, "error": error, "t": time.time(), "jid": jid}
            )

    def _on_done(self, jid: int, handle: TaskHandle) -> None:
        # Manager's thread: journal an end the worker did not see (stopped
        # while queued, failed or cancelled upstream).
        if jid not in self._live:
            return
        if handle.cancelled():
            self._mark_ended(jid, CANCELLED)
        elif handle._state is TaskState.FAILED:
            self._mark_ended(jid, FAILED, error=str(handle._error))
        else:
            self._mark_ended(jid, FINISHED)

    # ------------------------------------------------------------------ submitting

    def submit(
        self,
        fn: Callable[..., Any],
        /,
        *args: Any,
        priority: float | None = None,
        group: Hashable = None,
        upstream_task_ids: Sequence[int] | None = None,
        name: str | None = None,
        enduring: bool = False,
        store_result: bool = False,
        **kwargs: Any,
    ) -> TaskHandle:
        """Queue ``fn(*args, **kwargs)`` on the manager as a persistent task.

        The journal has committed the task's "submitted" row when this
        returns.  ``fn`` must be registered with :func:`persistable`
        (``TypeError`` otherwise; nothing is recorded nor run) and ``args``/``kwargs``
        JSON data; ``group`` None, a str or an int; ``upstream_task_ids``
        uids of persistent tasks this journal submitted in this run
        (``ValueError`` otherwise).  ``enduring`` tasks survive :meth:`reset`.
        ``store_result`` keeps the result in the journal (if it is JSON data);
        non-empty dict results are always kept, since they are merged into
        downstream tasks' kwargs, restored ones included.

        Any thread may call this.  Returns the manager's :class:`TaskHandle`.
        """
        function = _function_name(fn)
        args_text = _to_json("the arguments", list(args))
        kwargs_text = _to_json("the keyword arguments", kwargs)
        return self._submit(
            fn, function, args_text, kwargs_text, args, kwargs,
            priority, group, upstream_task_ids, name, enduring, store_result,
        )  # fmt: skip

    def _submit(
        self,
        fn: Callable[..., Any],
        function: str,
        args_text: str,
        kwargs_text: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        priority: Any,
        group: Any,
        upstream_task_ids: Sequence[int] | None,
        name: str | None,
        enduring: bool,
        store_result: bool,
    ) -> TaskHandle:
        _check_priority(priority)
        _check_group(group)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {name!r}")
        for flag, value in (("enduring", enduring), ("store_result", store_result)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be True or False, got {value!r}")
        upstream = list(upstream_task_ids or ())
        with self._lock:
            self._check_open()
            if self._needs_restore:
                raise RuntimeError(
                    f"{self.path} holds tasks that did not end in a previous run: "
                    "call restore() or discard() before submitting new ones"
                )
            jids = []
            for uid in upstream:
                jid = self._uid_to_jid.get(uid) if isinstance(uid, int) else None
                if jid is None:
                    raise ValueError(
                        f"upstream task {uid!r} is not a persistent task of this journal"
                    )
                jids.append(jid)
            if self.manager.is_shut_down:
                raise RuntimeError("the manager is shut down; it accepts no new tasks")
            # The row is committed before the manager knows the task: a refused
            # write (a full disk) leaves nothing to run, and a retry runs it once.
            with self._writing():
                jid = self._insert(
                    function, args_text, kwargs_text, name, group, priority, jids,
                    enduring, store_result,
                )  # fmt: skip
            try:
                handle = self._launch(
                    jid, fn, args, kwargs, priority, group, upstream, name, store_result
                )
            except BaseException:
                self._write("DELETE FROM tasks WHERE jid=?", (jid,))
                raise
            self._write_uids([(handle.uid, jid)])
        handle.add_done_callback(lambda h, jid=jid: self._on_done(jid, h))
        return handle

    def _writing(self) -> _Transaction:
        """A transaction whose failure (a full disk...) raises ``JournalError``."""
        return _Transaction(self._db, self._lock, self.path)

    def _write_uids(self, pairs: list[tuple[int, int]]) -> None:
        # The manager's uids of launched tasks.  The tasks run whatever
        # happens here: if this write fails, their rows keep uid NULL and a
        # restore reports them under -jid.
        with self._lock:
            if self._closed or not pairs:
                return
            # Not worth an fsync with synchronous="full": the next synced
            # commit makes it durable, and a power loss before only loses uids.
            full = self._synchronous == "full"
            try:
                if full:
                    self._db.execute("PRAGMA synchronous=NORMAL")
                with self._writing():
                    self._db.executemany(_SQL_UID, [{"uid": u, "jid": j} for u, j in pairs])
            except JournalError:
                log.exception("journal %s: cannot record the uids of launched tasks", self.path)
            finally:
                if full:
                    self._db.execute("PRAGMA synchronous=FULL")

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the journal {self.path} is closed")

    def _insert(
        self,
        function: str,
        args_text: str,
        kwargs_text: str,
        name: str | None,
        group: Any,
        priority: Any,
        upstream_jids: list[int],
        enduring: bool,
        store_result: bool,
    ) -> int:
        cursor = self._db.execute(
            _SQL_INSERT,
            {
                "session": self.session, "function": function, "args": args_text,
                "kwargs": kwargs_text, "name": name, "grp": json.dumps(group),
                "priority": priority, "upstream": json.dumps(upstream_jids),
                "enduring": int(enduring), "store_result": int(store_result), "t": time.time(),
            },
        )  # fmt: skip
        return int(cursor.lastrowid)  # type: ignore[arg-type]

    def _launch(
        self,
        jid: int,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        priority: Any,
        group: Any,
        upstream: list[int],
        name: str | None,
        store_result: bool,
    ) -> TaskHandle:
        # After the row's commit; the caller holds the lock, so the worker's
        # "started" write waits until the uid is recorded.
        handle = self.manager.submit(
            _Call(self, jid, fn, args, kwargs),
            priority=priority,
            group=group,
            upstream_task_ids=upstream or None,
            name=name or getattr(fn, "__name__", None),
        )
        self._uid_to_jid[handle.uid] = jid
        self._live[jid] = handle.uid
        if store_result:
            self._store.add(jid)
        return handle

    # ------------------------------------------------------------------ reading

    def records(self) -> list[JournalRecord]:
        """Every task in the journal, oldest first, but the damaged rows
        (:attr:`quarantined`).  Any thread."""
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM tasks WHERE {self._sound()} ORDER BY jid"
            ).fetchall()
        return [_record(row) for row in rows]

    def record(self, uid: int) -> JournalRecord:
        """The record of the task with manager uid ``uid`` (this run).  ``KeyError`` if none."""
        with self._lock:
            self._check_open()
            jid = self._uid_to_jid.get(uid)
            if jid is None:
                raise KeyError(uid)
            row = self._db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE jid=?", (jid,)).fetchone()
        return _record(row)

    def _sound(self) -> str:
        # An SQL condition leaving out the damaged rows (never even decoded).
        if not self._damaged:
            return "1"
        return f"jid NOT IN ({','.join(str(int(j)) for j in self._damaged)})"

    @property
    def needs_restore(self) -> bool:
        """True while tasks of a previous run wait for :meth:`restore` or :meth:`discard`."""
        return self._needs_restore

    # ------------------------------------------------------------------ restoring

    def restore(
        self, rerun_interrupted: bool | Callable[[JournalRecord], bool] = True
    ) -> RestoreReport:
        """Re-submit the tasks of previous runs that did not end.

        In dependency order, with their priorities, groups, names and
        upstream links; each gets a new uid (``report.uids``: old -> new).
        Finished tasks never run again; a finished upstream's stored dict
        result is merged into its restored downstream tasks' kwargs, as the
        manager would have done.  Tasks that were running when the process
        died are listed in ``report.interrupted``: they run again if
        ``rerun_interrupted`` is True (or returns True for their record),
        else they and the tasks downstream of them are skipped (state
        ``skipped``).  A task whose function name is not registered with
        :func:`persistable` is skipped too, reported and logged: the journal
        never imports a module by a name it holds.  Nothing is done a second
        time: a second call finds nothing to restore.  Any thread.
        """
        if not isinstance(rerun_interrupted, bool) and not callable(rerun_interrupted):
            raise TypeError(
                f"rerun_interrupted must be a bool or a callable, got {rerun_interrupted!r}"
            )
        with self._lock:
            self._check_open()
            todo = self._unfinished(this_session=False)
            needed = {j for r in todo for j in r.upstream} - {r.jid for r in todo}
            ended = {}
            for jid in needed - set(self._damaged):
                row = self._db.execute(
                    f"SELECT {_COLUMNS} FROM tasks WHERE jid=?", (jid,)
                ).fetchone()
                if row is not None:
                    ended[jid] = _record(row)
            report = RestoreReport()
            self._restore_records(todo, ended, rerun_interrupted, report, reuse_rows=True)
        self._watch(report)
        return report

    def _unfinished(self, this_session: bool) -> list[JournalRecord]:
        # Tasks submitted or started and not ended, of this run or of earlier ones.
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM tasks WHERE state IN ('submitted','started') "
            f"AND session{'=' if this_session else '<>'}? AND {self._sound()} ORDER BY jid",
            (self.session,),
        ).fetchall()
        return [_record(row) for row in rows]

    def discard(self) -> list[JournalRecord]:
        """Give up the tasks of previous runs that did not end: they become ``skipped``.

        Returns their records (as they were).  Damaged rows are moved to the
        ``quarantine`` table, as by :meth:`restore`.  Any thread.
        """
        with self._lock:
            self._check_open()
            records = self._unfinished(this_session=False)
            with self._writing():
                self._move_damaged_rows()
                self._db.executemany(
                    _SQL_SKIP,
                    [{"error": "discarded", "t": time.time(), "jid": r.jid} for r in records],
                )
            self._needs_restore = False
            self._damaged.clear()
        return records

    def _move_damaged_rows(self) -> dict[int, str]:
        # Inside a write transaction: damaged rows go to the quarantine table.
        if not self._damaged:
            return {}
        self._db.execute(_QUARANTINE)
        now = time.time()
        for jid, reason in self._damaged.items():
            self._db.execute(_SQL_QUARANTINE, {"reason": reason, "t": now, "jid": jid})
            self._db.execute("DELETE FROM tasks WHERE jid=?", (jid,))
            log.warning("%s: %s: moved to the quarantine table, not run", self.path, reason)
        return dict(self._damaged)

    def _restore_records(
        self,
        todo: list[JournalRecord],
        ended: dict[int, JournalRecord],
        rerun_interrupted: bool | Callable[[JournalRecord], bool],
        report: RestoreReport,
        reuse_rows: bool,
    ) -> None:
        # Lock held.  ``todo`` is in dependency order.  First decide everything,
        # then commit the rows, and only then hand the tasks to the manager: a
        # refused write (JournalError) or a raising rerun_interrupted leaves
        # nothing running and nothing changed.
        plan: list[tuple[JournalRecord, Callable[..., Any], dict[str, Any], list[int]]] = []
        planned: set[int] = set()
        given_up: dict[int, str] = {}  # jid -> why
        skipped_rows: list[dict[str, Any]] = []
        for rec in todo:
            old = rec.uid if rec.uid is not None else -rec.jid
            reason = None
            if rec.state == STARTED:
                report.interrupted.append(old)
                rerun = (
                    rerun_interrupted if isinstance(rerun_interrupted, bool)
                    else bool(rerun_interrupted(rec))
                )  # fmt: skip
                if not rerun:
                    reason = "interrupted"
            merged: dict[str, Any] = {}
            upstream_jids = []
            for up in rec.upstream:
                if reason is not None:
                    break
                if up in planned:
                    upstream_jids.append(up)
                elif up in given_up:
                    reason = f"upstream task {up} was skipped"
                elif up in self._damaged:
                    reason = f"upstream task {up} is damaged (quarantined)"
                elif up not in ended:
                    reason = f"upstream task {up} is missing from the journal"
                else:
                    upstream = ended[up]
                    if upstream.state != FINISHED:
                        reason = f"upstream task {up} {upstream.state}"
                    elif upstream.error and upstream.error.startswith("result not stored"):
                        reason = f"upstream task {up}: {upstream.error}"
                    elif isinstance(upstream.result, dict):
                        merged.update(upstream.result)
            fn = _lookup(rec.function) if reason is None else None
            if reason is None and fn is None:
                reason = (
                    f"function {rec.function!r} is not registered as persistable: "
                    "not imported, not run"
                )
                log.warning("%s: task %s: %s", self.path, old, reason)
            if reason is not None:
                given_up[rec.jid] = reason
                report.skipped.append(old)
                report.reasons[old] = reason
                skipped_rows.append({"error": reason, "t": time.time(), "jid": rec.jid})
                continue
            assert fn is not None
            plan.append((rec, fn, {**rec.kwargs, **merged}, upstream_jids))
            planned.add(rec.jid)
        row_of: dict[int, int] = {}  # record's jid -> its row's jid in this journal
        with self._writing():
            if reuse_rows:
                report.quarantined.update(self._move_damaged_rows())
                self._db.executemany(_SQL_SKIP, skipped_rows)
            for rec, _, _, upstream_jids in plan:
                if reuse_rows:
                    row_of[rec.jid] = rec.jid
                    self._db.execute(_SQL_RESUBMIT, {"session": self.session, "jid": rec.jid})
                else:
                    row_of[rec.jid] = self._insert(
                        rec.function, json.dumps(rec.args), json.dumps(rec.kwargs), rec.name,
                        rec.group, rec.priority, [row_of[u] for u in upstream_jids],
                        rec.enduring, rec.store_result,
                    )  # fmt: skip
        if reuse_rows:
            self._needs_restore = False
            self._damaged.clear()
        new_uid: dict[int, int] = {}  # record's jid -> new uid
        pairs: list[tuple[int, int]] = []
        try:
            for rec, fn, kwargs, upstream_jids in plan:
                old = rec.uid if rec.uid is not None else -rec.jid
                jid = row_of[rec.jid]
                handle = self._launch(
                    jid, fn, rec.args, kwargs, rec.priority, rec.group,
                    [new_uid[u] for u in upstream_jids], rec.name, rec.store_result,
                )  # fmt: skip
                new_uid[rec.jid] = handle.uid
                pairs.append((handle.uid, jid))
                report.handles[old] = handle
                report.uids[old] = handle.uid
        finally:
            self._write_uids(pairs)

    def _watch(self, report: RestoreReport) -> None:
        for handle in report.handles.values():
            jid = self._uid_to_jid[handle.uid]
            handle.add_done_callback(lambda h, jid=jid: self._on_done(jid, h))

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> dict[str, Any]:
        """The live persistent tasks of this run as plain (JSON) data, with a ``version``.

        For applications that keep their own session files (ChimeraX's
        ``take_snapshot``).  Each task: its uid, function, args, kwargs, name,
        group, priority, upstream uids, enduring flag, whether it was running,
        and the stored dict results of its finished upstream tasks.  Any thread.
        """
        with self._lock:
            self._check_open()
            live = self._unfinished(this_session=True)
            uid_of = {r.jid: r.uid for r in live}
            tasks = []
            for rec in live:
                upstream, merged = [], {}
                for up in rec.upstream:
                    if up in uid_of:
                        upstream.append(uid_of[up])
                        continue
                    row = self._db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE jid=?", (up,))
                    done = _record(row.fetchone())
                    if isinstance(done.result, dict):
                        merged.update(done.result)
                tasks.append(
                    {
                        "uid": rec.uid, "function": rec.function, "args": rec.args,
                        "kwargs": {**rec.kwargs, **merged}, "name": rec.name,
                        "group": rec.group, "priority": rec.priority, "upstream": upstream,
                        "enduring": rec.enduring, "store_result": rec.store_result,
                        "running": rec.state == STARTED,
                    }
                )  # fmt: skip
        return {"format": FORMAT_NAME, "version": SNAPSHOT_VERSION, "tasks": tasks}

    def restore_snapshot(
        self,
        data: Mapping[str, Any],
        rerun_interrupted: bool | Callable[[JournalRecord], bool] = True,
    ) -> RestoreReport:
        """Submit the tasks of a :meth:`snapshot` again, as new persistent tasks.

        Same rules and report as :meth:`restore` (tasks running when the
        snapshot was taken count as interrupted).  ``ValueError`` for data
        that is not a snapshot or has a version this bgtasks cannot read;
        nothing is submitted then.  Any thread.
        """
        todo = _parse_snapshot(data)
        report = RestoreReport()
        with self._lock:
            self._check_open()
            self._restore_records(todo, {}, rerun_interrupted, report, reuse_rows=False)
        self._watch(report)
        return report

    # ------------------------------------------------------------------ reset

    def reset(self) -> list[int]:
        """Cancel the live session tasks (not ``enduring``) of this run; keep enduring ones.

        Like ChimeraX's session reset with ``SESSION_ENDURING``.  The
        cancellation is journaled first, so a crash right after never brings
        them back.  Queued ones never run; running ones are asked to stop.
        Tasks downstream of a cancelled one are cancelled by the manager, enduring
        or not.  Returns the uids cancelled.  Any thread.
        """
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                "SELECT jid, uid FROM tasks WHERE state IN ('submitted','started') "
                "AND session=? AND enduring=0",
                (self.session,),
            ).fetchall()
            with self._writing():
                self._db.executemany(
                    _SQL_RESET, [{"t": time.time(), "jid": jid} for jid, _ in rows]
                )
            for jid, _ in rows:
                self._live.pop(jid, None)
        uids = [uid for _, uid in rows]
        for uid in uids:
            self.manager.stop_task(uid, stop_upstream=False, stop_downstream=True)
        return uids

    # ------------------------------------------------------------------ housekeeping

    def clear_finished(self) -> int:
        """Delete ended tasks no live task depends on; returns how many.  Any thread."""
        with self._lock:
            self._check_open()
            damaged = set(self._damaged)
            needed = {
                j
                for (text,) in self._db.execute(
                    f"SELECT upstream FROM tasks WHERE {_LIVE} AND {self._sound()}"
                )
                for j in json.loads(text)
            }
            ended = [
                jid
                for (jid,) in self._db.execute(
                    "SELECT jid FROM tasks WHERE state NOT IN ('submitted','started')"
                )
                if jid not in needed and jid not in damaged
            ]
            with self._writing():
                self._db.executemany("DELETE FROM tasks WHERE jid=?", [(j,) for j in ended])
        return len(ended)


_COLUMNS = (
    "jid, uid, session, state, function, args, kwargs, name, grp, priority, upstream, "
    "enduring, store_result, runs, result, error"
)


def _record(row: tuple[Any, ...]) -> JournalRecord:
    (jid, uid, session, state, function, args, kwargs, name, grp, priority, upstream,
     enduring, store_result, runs, result, error) = row  # fmt: skip
    return JournalRecord(
        jid=jid, uid=uid, session=session, state=state, function=function,
        args=json.loads(args), kwargs=json.loads(kwargs), name=name, group=json.loads(grp),
        priority=priority, upstream=json.loads(upstream), enduring=bool(enduring),
        store_result=bool(store_result), runs=runs,
        result=None if result is None else json.loads(result), error=error,
    )  # fmt: skip


def _parse_snapshot(data: Any) -> list[JournalRecord]:
    if not isinstance(data, Mapping) or data.get("format") != FORMAT_NAME:
        raise ValueError(f"not a bgtasks snapshot: {data!r:.200}")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"bad snapshot version {version!r}")
    if version > SNAPSHOT_VERSION:
        raise ValueError(
            f"snapshot version {version} is newer than this bgtasks reads ({SNAPSHOT_VERSION})"
        )
    tasks = data.get("tasks")
    if not isinstance(tasks, list):
        raise ValueError(f"bad snapshot: 'tasks' must be a list, got {tasks!r:.200}")
    records = []
    jid_of: dict[int, int] = {}
    for index, task in enumerate(tasks, 1):
        try:
            uid = task["uid"]
            upstream = [jid_of[u] for u in task["upstream"]]
            rec = JournalRecord(
                jid=index, uid=uid, session=0,
                state=STARTED if task["running"] else SUBMITTED,
                function=task["function"], args=list(task["args"]), kwargs=dict(task["kwargs"]),
                name=task["name"], group=task["group"], priority=task["priority"],
                upstream=upstream, enduring=bool(task["enduring"]),
                store_result=bool(task["store_result"]), runs=0, result=None, error=None,
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad snapshot task #{index}: {task!r:.200} ({exc!r})") from exc
        jid_of[uid] = index
        records.append(rec)
    return records


class _Transaction:
    """``with``: take the lock, BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error).

    A failed BEGIN or COMMIT (a full disk, an I/O error) is rolled back and
    raised as :class:`JournalError` naming the file.
    """

    __slots__ = ("_db", "_lock", "_path")

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock, path: Path) -> None:
        self._db = db
        self._lock = lock
        self._path = path

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._lock.release()
            raise JournalError(f"{self._path}: cannot write the journal: {exc}") from exc
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                try:
                    self._db.execute("COMMIT")
                    return
                except sqlite3.Error as error:
                    self._rollback()
                    raise JournalError(f"{self._path}: cannot write the journal: {error}") from error
            self._rollback()
            if isinstance(exc, sqlite3.Error):
                raise JournalError(f"{self._path}: cannot write the journal: {exc}") from exc
        finally:
            self._lock.release()

    def _rollback(self) -> None:
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("journal %s: rollback failed", self._path)


@dataclass
class _Opened:
    session: int  # this run's session number
    damaged: dict[int, str]  # jid -> why


class _InUse(JournalError):
    pass


def _open(path: Path, synchronous: str) -> tuple[sqlite3.Connection, _Opened]:
    """:func:`_open_once`, tried again for ~0.2 s while another process holds the file.

    Two processes opening one file at once briefly lock each other out
    (one probing while the other creates it); a process that keeps the
    journal open still gets "in use".
    """
    for attempt in range(6):
        try:
            return _open_once(path, synchronous)
        except _InUse as exc:
            if attempt == 5:
                raise JournalError(str(exc)) from exc.__cause__
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def _open_once(path: Path, synchronous: str) -> tuple[sqlite3.Connection, _Opened]:
    """Connect to a bgtasks journal, creating it if the file is absent or empty.

    An existing file is checked first on a read-only connection (format,
    ``PRAGMA integrity_check``, metadata, every row's checksum and values), so
    a damaged or foreign file raises :class:`JournalError` before anything
    writes to it.  Damaged rows of a sound file are returned, not refused.
    """
    for _ in range(3):
        fresh = not path.exists() or path.stat().st_size == 0
        if fresh:
            path.parent.mkdir(parents=True, exist_ok=True)
            opened = _Opened(session=1, damaged={})
            version = FORMAT_VERSION
        else:
            probed = _probe(path)
            if probed is None:  # an SQLite file with no table yet (being created?)
                fresh, opened, version = True, _Opened(session=1, damaged={}), FORMAT_VERSION
            else:
                opened, version = probed
        try:
            db = sqlite3.connect(path, timeout=0.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot open the journal: {exc}") from exc
        try:
            db.create_function("bgtasks_crc", -1, _crc, deterministic=True)
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            db.execute("BEGIN IMMEDIATE")  # takes the exclusive lock now: in use -> error
            if fresh:
                if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    db.execute("ROLLBACK")  # another process created it meanwhile: check it
                    db.close()
                    continue
                # One transaction: a crash while creating leaves an empty file or a journal.
                for statement in (*_SCHEMA.split(";"), _QUARANTINE):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"INSERT INTO meta VALUES ('format', '{FORMAT_NAME}')")
                db.execute("INSERT INTO meta VALUES ('next_session', '1')")
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={FORMAT_VERSION}")
            elif version < 2:  # format 1 had no checksums: seal the rows as they are
                db.execute("ALTER TABLE tasks ADD COLUMN crc INTEGER")
                db.execute(f"UPDATE tasks SET crc=bgtasks_crc({', '.join(_CRC_COLUMNS)})")
                db.executemany(
                    "UPDATE tasks SET crc=NULL WHERE jid=?", [(j,) for j in opened.damaged]
                )
                db.execute(_QUARANTINE)
                db.execute(f"PRAGMA user_version={FORMAT_VERSION}")
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" in str(exc):
                raise _InUse(f"{path}: the journal is in use by another process") from exc
            raise JournalError(f"{path}: cannot use the journal: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            db.close()
            raise JournalError(f"{path}: not a bgtasks journal (damaged or foreign): {exc}") from exc
        except BaseException:
            db.close()
            raise
        return db, opened
    raise _InUse(f"{path}: the journal is in use by another process")


def _probe(path: Path) -> tuple[_Opened, int] | None:
    # A read-only connection: closing it never checkpoints or deletes a
    # foreign database's -wal file, so a refused file is left as it was.
    # Without a -wal file to read, it is opened immutable: SQLite then
    # creates no -wal nor -shm file next to it either.
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    had_shm = shm.exists()
    has_wal = wal.exists() and wal.stat().st_size > 0
    mode = "mode=ro" if has_wal else "mode=ro&immutable=1"
    try:
        probe = sqlite3.connect(f"file:{quote(str(path))}?{mode}", uri=True, timeout=0.0)
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: cannot open the journal: {exc}") from exc
    try:
        return _check_format(probe, path)
    except JournalError:
        probe.close()
        if not had_shm:  # one this probe made for a crashed journal's WAL
            shm.unlink(missing_ok=True)
        raise
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise _InUse(f"{path}: the journal is in use by another process") from exc
        raise JournalError(f"{path}: damaged bgtasks journal ({exc})") from exc
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path}: not a bgtasks journal (damaged or foreign): {exc}") from exc
    except (ValueError, TypeError, OverflowError) as exc:  # UnicodeDecodeError included
        raise JournalError(f"{path}: damaged bgtasks journal ({exc})") from exc
    finally:
        probe.close()


def _check_format(db: sqlite3.Connection, path: Path) -> tuple[_Opened, int] | None:
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    if app_id == 0 and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
        return None  # another process creating the journal, or an empty database
    if app_id != APPLICATION_ID:
        raise JournalError(
            f"{path}: not a bgtasks journal (application_id {app_id:#x}); it was left untouched"
        )
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > FORMAT_VERSION:
        raise JournalError(
            f"{path}: journal format {version} is newer than this bgtasks reads ({FORMAT_VERSION})"
        )
    db.text_factory = bytes  # damaged text must not raise while reading
    problems = [
        row[0].decode("utf-8", "replace") if isinstance(row[0], bytes) else str(row[0])
        for row in db.execute("PRAGMA integrity_check(10)")
    ]
    if problems != ["ok"]:
        text = "; ".join(problems).replace("\n", " ")
        raise JournalError(f"{path}: damaged bgtasks journal (integrity check: {text:.300})")
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    fmt = meta.get(b"format")
    if fmt != FORMAT_NAME.encode() or version < 1:
        raise JournalError(
            f"{path}: damaged bgtasks journal (format {_text(fmt)!r}, version {version})"
        )
    damaged, max_session = _check_rows(db, version)
    raw = meta.get(b"next_session")
    text = _text(raw)
    if not isinstance(text, str) or not text.isascii() or not text.isdigit() or int(text) < 1:
        raise JournalError(f"{path}: damaged bgtasks journal (bad next_session {text!r})")
    if int(text) <= max_session:
        raise JournalError(
            f"{path}: damaged bgtasks journal "
            f"(bad next_session {text!r} (rows of session {max_session} exist))"
        )
    return _Opened(session=int(text), damaged=damaged), version


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def _check_rows(db: sqlite3.Connection, version: int) -> tuple[dict[int, str], int]:
    """Damaged rows (jid -> why) and the highest session of the sound ones."""
    types = "||','||".join(f"typeof({c})" for c in (*_CRC_COLUMNS, "crc"))
    crc = "crc" if version >= 2 else "NULL"
    damaged: dict[int, str] = {}
    max_session = 0
    query = f"SELECT {', '.join(_CRC_COLUMNS)}, {crc}, {types} FROM tasks ORDER BY jid"
    for row in db.execute(query):
        jid, values, stored, kinds = row[0], list(row[: len(_CRC_COLUMNS)]), row[-2], row[-1]
        why = None
        for i, kind in enumerate(kinds.decode("ascii").split(",")[: len(_CRC_COLUMNS)]):
            if kind == "blob":
                why = f"bad {_CRC_COLUMNS[i]}: a blob"
            elif kind == "text":
                try:
                    values[i] = values[i].decode("utf-8")
                except UnicodeDecodeError:
                    why = f"not UTF-8 text in {_CRC_COLUMNS[i]}"
            if why:
                break
        if why is None and version >= 2 and (type(stored) is not int or stored != _crc(*values)):
            why = _DAMAGED_ROW
        if why is None:
            why = _check_values(values)
        if why is None:
            max_session = max(max_session, values[1])
        else:
            damaged[jid] = f"row {jid}: {why}"
    return damaged, max_session


def _check_values(values: list[Any]) -> str | None:
    """What is wrong with a row's values, or None."""
    row = dict(zip(_CRC_COLUMNS, values, strict=True))

    def json_of(column: str) -> Any:
        return json.loads(row[column])

    def is_int(v: Any) -> bool:
        return type(v) is int

    def is_number(v: Any) -> bool:
        return type(v) in (int, float) and math.isfinite(v)

    checks: list[tuple[str, Callable[[], bool]]] = [
        ("session", lambda: is_int(row["session"]) and row["session"] >= 1),
        ("uid", lambda: row["uid"] is None or is_int(row["uid"])),
        ("state", lambda: row["state"] in STATES),
        ("function", lambda: isinstance(row["function"], str) and bool(row["function"])),
        ("args", lambda: isinstance(json_of("args"), list)),
        ("kwargs", lambda: isinstance(json_of("kwargs"), dict)),
        ("name", lambda: row["name"] is None or isinstance(row["name"], str)),
        ("grp", lambda: (g := json_of("grp")) is None or (type(g) in (str, int))),
        ("priority", lambda: row["priority"] is None or is_number(row["priority"])),
        ("upstream", lambda: isinstance(up := json_of("upstream"), list) and all(
            is_int(j) and 1 <= j < row["jid"] for j in up)),
        ("enduring", lambda: row["enduring"] in (0, 1) and is_int(row["enduring"])),
        ("store_result", lambda: row["store_result"] in (0, 1) and is_int(row["store_result"])),
        ("runs", lambda: is_int(row["runs"]) and row["runs"] >= 0),
        ("result", lambda: row["result"] is None or (json_of("result"), True)[1]),
        ("error", lambda: row["error"] is None or isinstance(row["error"], str)),
        ("submitted_at", lambda: is_number(row["submitted_at"])),
        ("started_at", lambda: row["started_at"] is None or is_number(row["started_at"])),
        ("ended_at", lambda: row["ended_at"] is None or is_number(row["ended_at"])),
    ]  # fmt: skip
    for column, check in checks:
        try:
            good = check()
        except (TypeError, ValueError, RecursionError):
            good = False
        if not good:
            return f"bad {column}: {row[column]!r:.80}"
    return None
