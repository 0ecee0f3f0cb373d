"""The journal: ``TaskJournal``, the API of persistent tasks.

It never imports the manager: the open file and the writes of each task's
life are ``JournalSession`` (typed against
``JournalManager``), the SQL lives in ``.store`` and
``.schema``, restore planning in ``.restore``, snapshots in ``.snapshot``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ..core._immutable import Immutable
from .codec import RECORD_COLUMNS, check_group, check_priority, decode_record, to_json
from .records import JournalRecord, RestoreReport
from .registry import function_name
from .restore import RerunInterrupted, check_rerun_interrupted, plan_restore
from .schema import LIVE, SQL_RESET, SQL_SKIP
from .session import JournalSession
from .snapshot import build_snapshot, parse_snapshot
from .store import insert_task, quarantine_rows

if TYPE_CHECKING:
    from ..core._handle import TaskHandle

P = ParamSpec("P")
T = TypeVar("T")


class TaskJournal(JournalSession):
    """Persistent tasks of one manager, journaled to an SQLite file.

    ``TaskJournal(manager, path=None, synchronous="normal")`` opens (or
    creates) the journal at ``path`` and starts a new session (a run of the
    application).

    Every method may be called from any thread (a running task included);
    the journal's own bookkeeping of tasks that end without running (stopped
    while queued, upstream failed) happens in done callbacks on the manager's
    thread.  If the journal holds tasks that did not end in a previous run,
    call ``restore`` (or ``discard``) before submitting new ones.
    Closing the journal (or the manager's ``shut_down``) while tasks run
    leaves them "started": the next run reports them as interrupted.

    Args:
        manager: A ``BackgroundTaskManager``, or anything with the journal
            protocol (``bgtasks.persistence.protocol.JournalManager``).
        path: The journal file (default ``default_journal_path``).
        synchronous: ``"normal"`` survives any crash of the process (SIGKILL
            included) and keeps commits cheap; ``"full"`` also survives a
            power loss or an OS crash, at the price of an fsync per commit.

    Raises:
        TypeError: ``manager`` has not the journal protocol.
        ValueError: ``synchronous`` is neither ``"normal"`` nor ``"full"``.
        JournalError: the file is not a bgtasks journal (it is left
            untouched), was written by a newer format, is damaged, cannot
            be opened, or another process has it open; the message names it.
    """

    @property
    def quarantined(self) -> dict[int, str]:
        """Rows found damaged when this journal was opened: ``jid`` -> what is wrong.

        They are never run nor returned by ``records``;
        ``restore`` and ``discard`` move them to the ``quarantine``
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

    # ------------------------------------------------------------------ submitting

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[T]:
        """Queue ``fn(*args, **kwargs)`` on the manager as a persistent task.

        Every keyword argument goes to ``fn``, whatever its name; bind task
        options first with ``options``:
        ``journal.options(priority=5, enduring=True).submit(fn, *args, **kwargs)``.
        The journal has committed the task's "submitted" row when this
        returns.  Any thread may call this, a running task included; the
        handle's callbacks and the task's signals arrive on the manager's thread.

        Args:
            fn: A function registered with ``persistable`` (positional-only).
            *args: JSON data, the positional arguments of ``fn``.
            **kwargs: JSON data, the keyword arguments of ``fn``.

        Returns:
            The manager's ``TaskHandle`` of the task.

        Raises:
            TypeError: ``fn`` is not registered, or the arguments are not JSON
                data; nothing is recorded nor run.
            RuntimeError: the journal holds tasks of a previous run not yet
                restored or discarded, it is closed, or the manager is shut down.
        """
        return self._submit_with(_DEFAULT_OPTIONS, fn, args, kwargs)

    def options(self, **task_options: Any) -> JournalSubmitter:
        """Bind journal task options: ``journal.options(group="g").submit(fn, *args, **kwargs)``.

        Checked here, once; the ``JournalSubmitter`` returned is immutable,
        may be reused from any thread, and its ``options(**more)`` merges more
        options in (later wins).  Any thread may call this.  The options:

        * ``priority``: a number or None; ``group``: None, a str or an int;
          ``name``: a str or None (as the manager's options).
        * ``upstream_task_ids``: uids of persistent tasks this journal
          submitted in this run (checked at ``submit``: ``ValueError`` otherwise).
        * ``enduring``: the task survives ``reset``.
        * ``store_result``: keep the result in the journal (if it is JSON
          data); non-empty dict results are always kept, since they are
          merged into downstream tasks' kwargs, restored ones included.

        Args:
            **task_options: The options above, by name.

        Returns:
            A ``JournalSubmitter`` bound to this journal and these options.

        Raises:
            TypeError: a name that is not an option (the message lists them)
                or a value the journal cannot hold (the message names it).
        """
        return JournalSubmitter(self, _DEFAULT_OPTIONS.merged(task_options))

    def _submit_with(
        self,
        options: JournalOptions,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> TaskHandle[Any]:
        """Journal and queue ``fn(*args, **kwargs)`` with ``options`` (already checked)."""
        function = function_name(fn)
        args_text = to_json("the arguments", list(args))
        kwargs_text = to_json("the keyword arguments", kwargs)
        priority, group, name = options.priority, options.group, options.name
        enduring, store_result = options.enduring, options.store_result
        upstream = list(options.upstream_task_ids or ())
        with self._lock:
            jids = self._check_submittable(upstream)
            # The row is committed before the manager knows the task: a refused
            # write (a full disk) leaves nothing to run, and a retry runs it once.
            with self._writing():
                jid = insert_task(
                    self._db, self.session, function, args_text, kwargs_text, name, group,
                    priority, jids, enduring, store_result,
                )  # fmt: skip
            try:
                handle = self._launch(
                    jid, fn, args, kwargs, priority, group, upstream, name, store_result
                )
            except BaseException:
                self._write("DELETE FROM tasks WHERE jid=?", (jid,))
                raise
            self._write_uids([(handle.uid, jid)])
        self._watch(handle, jid)
        return handle

    def _check_submittable(self, upstream: list[int]) -> list[int]:
        """Lock held: the jids of the ``upstream`` uids; raise if no task can be submitted."""
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
                raise ValueError(f"upstream task {uid!r} is not a persistent task of this journal")
            jids.append(jid)
        if self.manager.is_shut_down:
            raise RuntimeError("the manager is shut down; it accepts no new tasks")
        return jids

    # ------------------------------------------------------------------ reading

    def records(self) -> list[JournalRecord]:
        """Every task in the journal, oldest first, but the damaged rows.  Any thread.

        Raises:
            RuntimeError: the journal is closed.
        """
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                f"SELECT {RECORD_COLUMNS} FROM tasks WHERE {self._sound()} ORDER BY jid"
            ).fetchall()
        return [decode_record(row) for row in rows]

    def record(self, uid: int) -> JournalRecord:
        """The record of a persistent task of this run.  Any thread.

        Args:
            uid: The task's manager uid in this run.

        Raises:
            KeyError: no persistent task of this run has this uid.
            RuntimeError: the journal is closed.
        """
        with self._lock:
            self._check_open()
            jid = self._uid_to_jid.get(uid)
            if jid is None:
                raise KeyError(uid)
            row = self._row(jid)
        return decode_record(row)

    @property
    def needs_restore(self) -> bool:
        """True while tasks of a previous run wait for ``restore`` or ``discard``.

        Any thread.
        """
        return self._needs_restore

    # ------------------------------------------------------------------ restoring

    def restore(self, rerun_interrupted: RerunInterrupted = True) -> RestoreReport:
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
        ``persistable`` is skipped too, reported and logged: the journal
        never imports a module by a name it holds.  Nothing is done a second
        time: a second call finds nothing to restore.  Any thread; the
        restored tasks' signals arrive on the manager's thread.

        Args:
            rerun_interrupted: Whether the interrupted tasks run again: a bool,
                or a function called with each one's ``JournalRecord``.

        Returns:
            What was re-submitted, skipped and quarantined.

        Raises:
            TypeError: ``rerun_interrupted`` is neither a bool nor callable.
            RuntimeError: the journal is closed.
        """
        check_rerun_interrupted(rerun_interrupted)
        with self._lock:
            self._check_open()
            todo = self._unfinished(this_session=False)
            needed = {j for r in todo for j in r.upstream} - {r.jid for r in todo}
            ended = {}
            for jid in needed - set(self._damaged):
                row = self._row(jid)
                if row is not None:
                    ended[jid] = decode_record(row)
            report = RestoreReport()
            plan = plan_restore(todo, ended, self._damaged, rerun_interrupted, report, self.path)
            row_of = self._commit_restore(plan, report, reuse_rows=True)
            self._launch_restored(plan, row_of, report)
        self._watch_restored(report)
        return report

    def restore_snapshot(
        self, data: Mapping[str, Any], rerun_interrupted: RerunInterrupted = True
    ) -> RestoreReport:
        """Submit the tasks of a ``snapshot`` again, as new persistent tasks.

        Same rules and report as ``restore`` (tasks running when the
        snapshot was taken count as interrupted).  Any thread.

        Args:
            data: What ``snapshot`` returned (possibly through JSON).
            rerun_interrupted: As for ``restore``.

        Returns:
            What was submitted and skipped; keys are the snapshot's uids.

        Raises:
            ValueError: ``data`` is not a snapshot, or has a version this
                bgtasks cannot read; nothing is submitted then.
            RuntimeError: the journal is closed.
        """
        todo = parse_snapshot(data)
        report = RestoreReport()
        with self._lock:
            self._check_open()
            plan = plan_restore(todo, {}, self._damaged, rerun_interrupted, report, self.path)
            row_of = self._commit_restore(plan, report, reuse_rows=False)
            self._launch_restored(plan, row_of, report)
        self._watch_restored(report)
        return report

    def discard(self) -> list[JournalRecord]:
        """Give up the tasks of previous runs that did not end: they become ``skipped``.

        Returns their records (as they were).  Damaged rows are moved to the
        ``quarantine`` table, as by ``restore``.  Any thread.
        """
        with self._lock:
            self._check_open()
            records = self._unfinished(this_session=False)
            with self._writing():
                quarantine_rows(self._db, self._damaged, self.path)
                self._db.executemany(
                    SQL_SKIP,
                    [{"error": "discarded", "t": time.time(), "jid": r.jid} for r in records],
                )
            self._needs_restore = False
            self._damaged.clear()
        return records

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
            return build_snapshot(live, lambda jid: decode_record(self._row(jid)))

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
                self._db.executemany(SQL_RESET, [{"t": time.time(), "jid": jid} for jid, _ in rows])
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
                    f"SELECT upstream FROM tasks WHERE {LIVE} AND {self._sound()}"
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


@dataclasses.dataclass(frozen=True)
class JournalOptions:
    """The options of one persistent task (see ``TaskJournal.options``).

    Frozen: any thread may read and share it.

    Attributes:
        priority: A number or None (0), as the manager's option.
        group: None, a str or an int (what the journal can store).
        upstream_task_ids: Uids of persistent tasks this journal submitted in
            this run, or None.
        name: A str or None (the function's name).
        enduring: The task survives ``TaskJournal.reset``.
        store_result: Keep the result in the journal (if it is JSON data).
    """

    priority: float | None = None
    group: str | int | None = None
    upstream_task_ids: tuple[int, ...] | None = None
    name: str | None = None
    enduring: bool = False
    store_result: bool = False

    def merged(self, more: Mapping[str, Any]) -> JournalOptions:
        """These options with ``more`` replacing them, checked.  Any thread.

        Args:
            more: Journal task options by name; they win over these.

        Returns:
            New options, or these if ``more`` is empty.

        Raises:
            TypeError: a name that is not an option (the message lists them),
                or a value the journal cannot hold (the message names it).
        """
        unknown = sorted(set(more) - _OPTION_NAMES)
        if unknown:
            raise TypeError(
                f"unknown journal task option {unknown[0]!r}; the options are "
                + ", ".join(sorted(_OPTION_NAMES))
            )
        if not more:
            return self
        options = dataclasses.replace(self, **more)
        check_priority(options.priority)
        check_group(options.group)
        if options.name is not None and not isinstance(options.name, str):
            raise TypeError(f"name must be a string, got {options.name!r}")
        for flag in ("enduring", "store_result"):
            value = getattr(options, flag)
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be True or False, got {value!r}")
        upstream = options.upstream_task_ids
        if upstream is not None:
            if isinstance(upstream, (str, bytes, Mapping)) or not isinstance(upstream, Iterable):
                raise TypeError(f"upstream_task_ids must be a list of task ids, got {upstream!r}")
            options = dataclasses.replace(options, upstream_task_ids=tuple(upstream))
        return options


class JournalSubmitter(Immutable):
    """A journal with task options bound: ``journal.options(...).submit(fn, *args, **kwargs)``.

    Made by ``TaskJournal.options``; immutable, so it can be kept and
    shared between threads.  Any thread may call its methods.
    """

    __slots__ = ("_journal", "_options")

    _journal: TaskJournal
    _options: JournalOptions

    def __init__(self, journal: TaskJournal, options: JournalOptions) -> None:
        """Made by ``journal.options(...)`` (any thread).

        Args:
            journal: The journal the tasks go to.
            options: The bound options, already checked.
        """
        object.__setattr__(self, "_journal", journal)
        object.__setattr__(self, "_options", options)

    @property
    def task_options(self) -> JournalOptions:
        """The bound options (checked).  Any thread."""
        return self._options

    def options(self, **task_options: Any) -> JournalSubmitter:
        """A new submitter with ``task_options`` merged in (later wins).  Any thread.

        Args:
            **task_options: Journal task options by name, as for
                ``TaskJournal.options``.

        Returns:
            A new ``JournalSubmitter``; this one is unchanged.

        Raises:
            TypeError: as ``TaskJournal.options``.
        """
        return JournalSubmitter(self._journal, self._options.merged(task_options))

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[T]:
        """Queue ``fn(*args, **kwargs)`` with the bound options, as ``TaskJournal.submit``.

        Any thread, a running task included; the task's signals and its
        handle's callbacks arrive on the manager's thread.

        Args:
            fn: A function registered with ``persistable`` (positional-only).
            *args: JSON data, the positional arguments of ``fn``.
            **kwargs: JSON data, the keyword arguments of ``fn`` (every keyword
                goes to ``fn``).

        Returns:
            The manager's ``TaskHandle`` of the task.

        Raises:
            TypeError: as ``TaskJournal.submit``.
            ValueError: an upstream uid that is not a persistent task of this
                journal in this run.
            RuntimeError: as ``TaskJournal.submit``.
        """
        return self._journal._submit_with(self._options, fn, args, kwargs)

    def __repr__(self) -> str:
        bound = ", ".join(
            f"{field.name}={getattr(self._options, field.name)!r}"
            for field in dataclasses.fields(self._options)
            if getattr(self._options, field.name) != field.default
        )
        return f"<JournalSubmitter of {self._journal!r}: {bound or 'default options'}>"


_OPTION_NAMES = frozenset(field.name for field in dataclasses.fields(JournalOptions))
_DEFAULT_OPTIONS = JournalOptions()
