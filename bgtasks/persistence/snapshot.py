"""Snapshots: the live persistent tasks as plain (JSON) data, and back to records."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .records import STARTED, SUBMITTED, JournalRecord
from .schema import FORMAT_NAME

SNAPSHOT_VERSION = 1


def build_snapshot(
    live: list[JournalRecord], ended_record: Callable[[int], JournalRecord]
) -> dict[str, Any]:
    """The snapshot of the ``live`` tasks of a run; ``ended_record(jid)`` reads an ended upstream."""
    uid_of = {r.jid: r.uid for r in live}
    tasks = []
    for rec in live:
        upstream, merged = [], {}
        for up in rec.upstream:
            if up in uid_of:
                upstream.append(uid_of[up])
                continue
            done = ended_record(up)
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


def parse_snapshot(data: Any) -> list[JournalRecord]:
    """The records of a snapshot's tasks (jids 1, 2, ...); ``ValueError`` for bad data."""
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
        rec = _snapshot_record(index, task, jid_of)
        jid_of[rec.uid] = index  # type: ignore[index]
        records.append(rec)
    return records


def _snapshot_record(index: int, task: Any, jid_of: dict[int, int]) -> JournalRecord:
    try:
        uid = task["uid"]
        upstream = [jid_of[u] for u in task["upstream"]]
        return JournalRecord(
            jid=index, uid=uid, session=0,
            state=STARTED if task["running"] else SUBMITTED,
            function=task["function"], args=list(task["args"]), kwargs=dict(task["kwargs"]),
            name=task["name"], group=task["group"], priority=task["priority"],
            upstream=upstream, enduring=bool(task["enduring"]),
            store_result=bool(task["store_result"]), runs=0, result=None, error=None,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad snapshot task #{index}: {task!r:.200} ({exc!r})") from exc
