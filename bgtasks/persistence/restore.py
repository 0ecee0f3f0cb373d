"""Restore planning: which unfinished tasks run again, and why the others are skipped.

``plan_restore`` decides everything before the journal writes a row or
hands a task to the manager, so that a refused write or a raising
``rerun_interrupted`` leaves nothing running and nothing changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .records import FINISHED, STARTED, JournalRecord, RestoreReport
from .registry import lookup

log = logging.getLogger("bgtasks.persistence")

#: ``rerun_interrupted`` of ``restore``: rerun them all, none, or those it returns True for.
RerunInterrupted = bool | Callable[[JournalRecord], bool]

#: A task to launch again: its record, function, kwargs (upstream results
#: merged in) and the record jids of the planned tasks it waits for.
Launch = tuple[JournalRecord, Callable[..., Any], dict[str, Any], list[int]]


@dataclass
class RestorePlan:
    launches: list[Launch] = field(default_factory=list)  # in dependency order
    skipped_rows: list[dict[str, Any]] = field(default_factory=list)  # SQL_SKIP parameters


def old_uid(rec: JournalRecord) -> int:
    """The key of a task in a ``RestoreReport``: its uid, or -jid if it had none."""
    return rec.uid if rec.uid is not None else -rec.jid


def check_rerun_interrupted(rerun_interrupted: Any) -> None:
    if not isinstance(rerun_interrupted, bool) and not callable(rerun_interrupted):
        raise TypeError(
            f"rerun_interrupted must be a bool or a callable, got {rerun_interrupted!r}"
        )


def plan_restore(
    todo: list[JournalRecord],
    ended: dict[int, JournalRecord],
    damaged: dict[int, str],
    rerun_interrupted: RerunInterrupted,
    report: RestoreReport,
    path: Path,
) -> RestorePlan:
    """Plan the restore of ``todo`` (in dependency order); note skips in ``report``.

    ``ended`` holds the records of ended upstream tasks (by jid), ``damaged``
    the jids of quarantined rows.  Functions are looked up in the registry,
    never imported.
    """
    plan = RestorePlan()
    planned: set[int] = set()
    given_up: dict[int, str] = {}  # jid -> why
    for rec in todo:
        old = old_uid(rec)
        reason = None
        if rec.state == STARTED:
            report.interrupted.append(old)
            if not _rerun(rec, rerun_interrupted):
                reason = "interrupted"
        merged: dict[str, Any] = {}
        upstream_jids: list[int] = []
        if reason is None:
            reason = _link_upstream(rec, planned, given_up, damaged, ended, merged, upstream_jids)
        fn = lookup(rec.function) if reason is None else None
        if reason is None and fn is None:
            reason = (
                f"function {rec.function!r} is not registered as persistable: not imported, not run"
            )
            log.warning("%s: task %s: %s", path, old, reason)
        if reason is not None:
            given_up[rec.jid] = reason
            report.skipped.append(old)
            report.reasons[old] = reason
            plan.skipped_rows.append({"error": reason, "t": time.time(), "jid": rec.jid})
            continue
        assert fn is not None
        plan.launches.append((rec, fn, {**rec.kwargs, **merged}, upstream_jids))
        planned.add(rec.jid)
    return plan


def _rerun(rec: JournalRecord, rerun_interrupted: RerunInterrupted) -> bool:
    if isinstance(rerun_interrupted, bool):
        return rerun_interrupted
    return bool(rerun_interrupted(rec))


def _link_upstream(
    rec: JournalRecord,
    planned: set[int],
    given_up: dict[int, str],
    damaged: dict[int, str],
    ended: dict[int, JournalRecord],
    merged: dict[str, Any],
    upstream_jids: list[int],
) -> str | None:
    """Why ``rec`` cannot run for its upstream tasks, or None.

    Fills ``upstream_jids`` with the planned upstream tasks it waits for and
    ``merged`` with the stored dict results of the finished ones.
    """
    for up in rec.upstream:
        if up in planned:
            upstream_jids.append(up)
        elif up in given_up:
            return f"upstream task {up} was skipped"
        elif up in damaged:
            return f"upstream task {up} is damaged (quarantined)"
        elif up not in ended:
            return f"upstream task {up} is missing from the journal"
        else:
            upstream = ended[up]
            if upstream.state != FINISHED:
                return f"upstream task {up} {upstream.state}"
            if upstream.error and upstream.error.startswith("result not stored"):
                return f"upstream task {up}: {upstream.error}"
            if isinstance(upstream.result, dict):
                merged.update(upstream.result)
    return None
