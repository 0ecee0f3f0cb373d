"""Bookkeeping for one submission of the pipeline workload (no Qt)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Hashable
from typing import Any

from .workload import GROUPS, TaskSpec

#: How a pipeline task ended, as the demo shows it.
OUTCOMES = ("completed", "failed", "stopped")


class Run:
    """One run of the workload: its tasks' uids, and how each ended."""

    def __init__(self, number: int, specs: list[TaskSpec], group_ids: dict[str, Hashable]):
        self.number = number
        self.group_ids = group_ids
        self.group_names = {gid: name for name, gid in group_ids.items()}
        self.uid_by_key: dict[str, int] = {}
        self.spec_by_uid: dict[int, TaskSpec] = {}
        self.outstanding: set[int] = set()  # submitted, end not yet seen
        self.outcome: dict[int, str] = {}  # uid -> "completed" | "failed" | "stopped"
        self.submitted: Counter[str] = Counter()  # per group name
        self.ended: dict[str, Counter[str]] = {name: Counter() for name in GROUPS}
        self.group_finished: Counter[str] = Counter()
        self.chain_result: dict[str, Any] | None = None
        self.started = time.perf_counter()
        self.finished_at: float | None = None

    def add(self, uid: int, spec: TaskSpec) -> None:
        self.uid_by_key[spec.key] = uid
        self.spec_by_uid[uid] = spec
        self.outstanding.add(uid)
        self.submitted[spec.group] += 1

    def end(self, uid: int, outcome: str) -> TaskSpec | None:
        """Record a task's end; None if it is not this run's or already ended."""
        if uid not in self.outstanding:
            return None
        self.outstanding.discard(uid)
        self.outcome[uid] = outcome
        spec = self.spec_by_uid[uid]
        self.ended[spec.group][outcome] += 1
        return spec

    def reopen(self, uid: int) -> TaskSpec:
        """Forget a task's end: it runs again (retry)."""
        outcome = self.outcome.pop(uid)
        spec = self.spec_by_uid[uid]
        self.ended[spec.group][outcome] -= 1
        self.outstanding.add(uid)
        return spec

    def totals(self) -> Counter[str]:
        return sum(self.ended.values(), Counter())

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.perf_counter()) - self.started
