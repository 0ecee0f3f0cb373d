"""One run's open journal: the file, its lock, the tasks this run launched (restored
ones included: a restore's rows are committed and launched here), and the writes of
each task's life (started, ended, finished) as it runs.

``JournalSession`` is the base of ``TaskJournal``, which
adds the API.  It is typed against ``JournalManager`` and
never imports the manager.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core._context import current_task
from ..core._errors import TaskCancelled
from .codec import RECORD_COLUMNS, decode_record, to_json
from .paths import default_journal_path
from .protocol import JournalManager
from .records import CANCELLED, FAILED, FINISHED, JournalError, JournalRecord, RestoreReport
from .restore import RestorePlan, old_uid
from .schema import LIVE, SQL_ENDED, SQL_FINISHED, SQL_RESUBMIT, SQL_SKIP, SQL_STARTED, SQL_UID
from .store import Transaction, insert_task, open_journal, quarantine_rows

if TYPE_CHECKING:
    from ..core._handle import TaskHandle

log = logging.getLogger("bgtasks.persistence")


class _Call:
    """The function the manager runs for a persistent task: journals around ``fn``."""

    __slots__ = ("__name__", "journal", "jid", "fn", "args", "kwargs")

    def __init__(
        self,
        journal: JournalSession,
        jid: int,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> None:
        # The call's own arguments travel here: the keywords the manager
        # passes to the call are the merged dict results of upstream tasks.
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


class JournalSession:
    """The journal file of one manager, opened for this run (a new session).

    Holds the connection and its lock, the tasks this run launched (uid <->
    jid, live ones, those whose result is stored), and writes each task's
    life: a worker's writes never raise into the task, and the journal's own
    bookkeeping of tasks that end without running happens in done callbacks.
    """

    def __init__(
        self,
        manager: JournalManager,
        path: str | os.PathLike[str] | None = None,
        *,
        synchronous: str = "normal",
    ) -> None:
        """Open (or create) the journal at ``path``: see ``TaskJournal``."""
        if not isinstance(manager, JournalManager):
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
        self._db, opened = open_journal(self.path, synchronous)
        #: damaged rows found at open (jid -> why), moved aside by restore() or discard()
        self._damaged: dict[int, str] = dict(opened.damaged)
        self._quarantined: dict[int, str] = dict(opened.damaged)
        try:
            self._start_session(opened.session)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"{self.path}: cannot read the journal: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    def _start_session(self, session: int) -> None:
        with self._writing():
            self.session = session
            self._db.execute(
                "UPDATE meta SET value=? WHERE key='next_session'", (str(self.session + 1),)
            )
            live = self._db.execute(f"SELECT jid FROM tasks WHERE {LIVE}").fetchall()
            self._needs_restore = bool(self._damaged) or any(
                jid not in self._damaged for (jid,) in live
            )

    def _writing(self) -> Transaction:
        """A transaction whose failure (a full disk...) raises ``JournalError``."""
        return Transaction(self._db, self._lock, self.path)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the journal {self.path} is closed")

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
        self._write(SQL_STARTED, {"t": time.time(), "jid": jid})

    def _mark_ended(self, jid: int, state: str, error: str | None = None) -> None:
        with self._lock:
            if self._live.pop(jid, None) is None:
                return  # already journaled (by the worker, reset() or restore())
            self._write(SQL_ENDED, {"state": state, "error": error, "t": time.time(), "jid": jid})

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
                text = to_json("the result", result)
            except TypeError as exc:
                error = f"result not stored: {exc}"
        with self._lock:
            if self._live.pop(jid, None) is None:
                return
            self._write(
                SQL_FINISHED, {"result": text, "error": error, "t": time.time(), "jid": jid}
            )

    def _on_done(self, jid: int, handle: TaskHandle[Any]) -> None:
        # Manager's thread: journal an end the worker did not see (stopped
        # while queued, failed or cancelled upstream).
        if jid not in self._live:
            return
        if handle.cancelled():
            self._mark_ended(jid, CANCELLED)
            return
        error = handle.exception(timeout=0)  # done: does not wait
        if error is not None:
            self._mark_ended(jid, FAILED, error=str(error))
        else:
            self._mark_ended(jid, FINISHED)

    def _watch(self, handle: TaskHandle[Any], jid: int) -> None:
        handle.add_done_callback(lambda h: self._on_done(jid, h))

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
                    self._db.executemany(SQL_UID, [{"uid": u, "jid": j} for u, j in pairs])
            except JournalError:
                log.exception("journal %s: cannot record the uids of launched tasks", self.path)
            finally:
                if full:
                    self._db.execute("PRAGMA synchronous=FULL")

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
    ) -> TaskHandle[Any]:
        # After the row's commit; the caller holds the lock, so the worker's
        # "started" write waits until the uid is recorded.
        handle = self.manager.options(
            priority=priority,
            group=group,
            upstream_task_ids=upstream or None,
            name=name or getattr(fn, "__name__", None),
        ).submit(_Call(self, jid, fn, args, kwargs))
        self._uid_to_jid[handle.uid] = jid
        self._live[jid] = handle.uid
        if store_result:
            self._store.add(jid)
        return handle

    def _commit_restore(
        self, plan: RestorePlan, report: RestoreReport, reuse_rows: bool
    ) -> dict[int, int]:
        """Lock held: commit the planned rows; returns record jid -> its row's jid.

        ``reuse_rows`` (restore): the rows are resubmitted in place, the
        skipped ones marked, the damaged ones quarantined.  Else (snapshot)
        new rows are inserted.  Nothing runs yet: a refused write changes nothing.
        """
        row_of: dict[int, int] = {}
        with self._writing():
            if reuse_rows:
                report.quarantined.update(quarantine_rows(self._db, self._damaged, self.path))
                self._db.executemany(SQL_SKIP, plan.skipped_rows)
            for rec, _, _, upstream_jids in plan.launches:
                if reuse_rows:
                    row_of[rec.jid] = rec.jid
                    self._db.execute(SQL_RESUBMIT, {"session": self.session, "jid": rec.jid})
                else:
                    row_of[rec.jid] = insert_task(
                        self._db, self.session, rec.function, json.dumps(rec.args),
                        json.dumps(rec.kwargs), rec.name, rec.group, rec.priority,
                        [row_of[u] for u in upstream_jids], rec.enduring, rec.store_result,
                    )  # fmt: skip
        if reuse_rows:
            self._needs_restore = False
            self._damaged.clear()
        return row_of

    def _launch_restored(
        self, plan: RestorePlan, row_of: dict[int, int], report: RestoreReport
    ) -> None:
        # Lock held, rows committed: hand the planned tasks to the manager.
        new_uid: dict[int, int] = {}  # record's jid -> new uid
        pairs: list[tuple[int, int]] = []
        try:
            for rec, fn, kwargs, upstream_jids in plan.launches:
                old = old_uid(rec)
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

    def _watch_restored(self, report: RestoreReport) -> None:
        for handle in report.handles.values():
            self._watch(handle, self._uid_to_jid[handle.uid])

    def _row(self, jid: int) -> Any:
        # The row of ``jid`` as RECORD_COLUMNS, or None.
        return self._db.execute(
            f"SELECT {RECORD_COLUMNS} FROM tasks WHERE jid=?", (jid,)
        ).fetchone()

    def _sound(self) -> str:
        # An SQL condition leaving out the damaged rows (never even decoded).
        if not self._damaged:
            return "1"
        return f"jid NOT IN ({','.join(str(int(j)) for j in self._damaged)})"

    def _unfinished(self, this_session: bool) -> list[JournalRecord]:
        # Tasks submitted or started and not ended, of this run or of earlier ones.
        rows = self._db.execute(
            f"SELECT {RECORD_COLUMNS} FROM tasks WHERE state IN ('submitted','started') "
            f"AND session{'=' if this_session else '<>'}? AND {self._sound()} ORDER BY jid",
            (self.session,),
        ).fetchall()
        return [decode_record(row) for row in rows]
