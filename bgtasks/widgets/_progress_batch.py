"""What a progress dialog knows of its batch, and how long the rest may take.

Both classes are plain Python (no Qt), fed by the dialog on the GUI thread.

* ``Batch``: the batch's tasks, each task's latest progress fraction and
  message, and how each one ended.  The overall fraction is the mean of the
  tasks' fractions, an ended task counting 1 whatever its outcome: a
  cancelled or failed task will do no more work.  A running sum keeps every
  update O(1), so a batch of thousands of tasks that report often costs no
  more than a small one.
* ``RemainingTime``: an estimate of the seconds left from the overall
  fraction over time.  The rate (fraction per second) is smoothed
  exponentially with a time constant, so one slow or fast task does not make
  the estimate jump; no estimate is given until ``min_elapsed`` seconds and
  ``min_fraction`` of the work have passed (early rates mislead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: How a task of the batch ended.
COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"
OUTCOMES = (COMPLETED, FAILED, CANCELLED)


@dataclass(frozen=True)
class BatchFailure:
    """A failed task of the batch.

    Attributes:
        uid: The task's uid.
        name: The task's name.
        error: Its error message.
        traceback: Its traceback ("" if the manager had none).
    """

    uid: int
    name: str
    error: str
    traceback: str


class Batch:
    """The tasks of one batch: fractions, latest messages, outcomes."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}
        self._fraction: dict[int, float] = {}  # counts 1.0 once ended
        self._sum = 0.0  # sum of _fraction's values
        self._ended: dict[int, str] = {}  # uid -> outcome
        self._counts = dict.fromkeys(OUTCOMES, 0)  # of _ended's values, kept as it changes
        self._failures: dict[int, BatchFailure] = {}
        self._messages: dict[int, str] = {}  # live tasks' latest messages, oldest first

    def __contains__(self, uid: object) -> bool:
        return uid in self._names

    def __len__(self) -> int:
        return len(self._names)

    def uids(self) -> list[int]:
        """The batch's tasks, in the order they joined it."""
        return list(self._names)

    def add(self, uid: int, name: str) -> bool:
        """Add a task (live, no progress yet); False if it is in the batch already."""
        if uid in self._names:
            return False
        self._names[uid] = name
        self._set_fraction(uid, 0.0)
        return True

    def name(self, uid: int) -> str:
        """The task's name."""
        return self._names[uid]

    def report(self, uid: int, fraction: float, message: str) -> None:
        """A live task's progress (``fraction`` is clamped to 0..1)."""
        if uid not in self._names or uid in self._ended:
            return
        if math.isfinite(fraction):
            self._set_fraction(uid, min(max(fraction, 0.0), 1.0))
        if message:
            self._messages.pop(uid, None)
            self._messages[uid] = message  # the newest last

    def end(self, uid: int, outcome: str, error: str = "", traceback: str = "") -> bool:
        """Record how a task ended; False if it is not in the batch or had ended.

        A failure's traceback is filled in when a later report has one.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome {outcome!r} is not one of {OUTCOMES}")
        if uid not in self._names:
            return False
        if outcome == FAILED and (uid not in self._failures or traceback):
            self._failures[uid] = BatchFailure(uid, self._names[uid], error, traceback)
        if uid in self._ended:
            return False
        self._ended[uid] = outcome
        self._counts[outcome] += 1
        self._set_fraction(uid, 1.0)
        self._messages.pop(uid, None)
        return True

    def reopen(self, uid: int) -> bool:
        """A task that ended runs again (a retry); False if it had not ended."""
        outcome = self._ended.pop(uid, None)
        if outcome is None:
            return False
        self._counts[outcome] -= 1
        self._failures.pop(uid, None)
        self._set_fraction(uid, 0.0)
        return True

    def fraction(self) -> float:
        """The overall fraction done, 0..1 (1 for an empty batch)."""
        if not self._names:
            return 1.0
        return min(max(self._sum / len(self._names), 0.0), 1.0)

    def is_over(self) -> bool:
        """Whether every task of the batch has ended."""
        return len(self._ended) == len(self._names)

    def live(self) -> list[int]:
        """The tasks that have not ended."""
        return [uid for uid in self._names if uid not in self._ended]

    def counts(self) -> dict[str, int]:
        """How many tasks ended in each way, and how many are ``"live"``."""
        counts = dict(self._counts)
        counts["live"] = len(self._names) - len(self._ended)
        return counts

    def outcome(self, uid: int) -> str | None:
        """How the task ended, or None while it has not."""
        return self._ended.get(uid)

    def failures(self) -> list[BatchFailure]:
        """The failed tasks, in the order they failed."""
        return [f for uid, f in self._failures.items() if self._ended.get(uid) == FAILED]

    def current(self) -> tuple[int, str] | None:
        """The live task that reported a message last, and that message."""
        if not self._messages:
            return None
        uid = next(reversed(self._messages))
        return uid, self._messages[uid]

    def _set_fraction(self, uid: int, value: float) -> None:
        self._sum += value - self._fraction.get(uid, 0.0)
        self._fraction[uid] = value


class RemainingTime:
    """A smoothed estimate of the seconds left, from the overall fraction over time.

    Args:
        time_constant: Seconds over which the rate is smoothed.
        min_elapsed: No estimate before this many seconds since the first update.
        min_fraction: No estimate before this fraction of the work is done.
    """

    def __init__(
        self, time_constant: float = 5.0, min_elapsed: float = 2.0, min_fraction: float = 0.02
    ) -> None:
        for name, value in (
            ("time_constant", time_constant),
            ("min_elapsed", min_elapsed),
            ("min_fraction", min_fraction),
        ):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
        self.time_constant = float(time_constant)
        self.min_elapsed = float(min_elapsed)
        self.min_fraction = float(min_fraction)
        self.reset()

    def reset(self) -> None:
        """Forget every update (the batch started again)."""
        self._start: float | None = None
        self._last: tuple[float, float] | None = None  # (time, fraction)
        self._rate: float | None = None  # smoothed fraction per second

    def update(self, now: float, fraction: float) -> None:
        """The overall ``fraction`` at time ``now`` (seconds, any monotonic clock)."""
        if self._last is None:
            self._start = now
            self._last = (now, fraction)
            return
        then, before = self._last
        dt = now - then
        if dt <= 0:
            return
        rate = max(fraction - before, 0.0) / dt
        if self._rate is None:
            # The first rate: the mean since the start, not one noisy step.
            assert self._start is not None
            self._rate = max(fraction, 0.0) / max(now - self._start, dt)
        else:
            weight = 1.0 - math.exp(-dt / self.time_constant) if self.time_constant else 1.0
            self._rate += weight * (rate - self._rate)
        self._last = (now, fraction)

    def seconds_left(self) -> float | None:
        """The estimate, or None until there is enough data (or while nothing moves)."""
        if self._last is None or self._start is None or self._rate is None:
            return None
        now, fraction = self._last
        if now - self._start < self.min_elapsed or fraction < self.min_fraction:
            return None
        if fraction >= 1.0:
            return 0.0
        if self._rate <= 1e-9:
            return None
        return (1.0 - fraction) / self._rate


def remaining_text(seconds: float | None) -> str:
    """``"about 2 min left"``, ``"about 40 s left"``, ``"a few seconds left"``; "" for None."""
    if seconds is None:
        return ""
    if seconds < 10:
        return "a few seconds left"
    if seconds < 55:
        return f"about {max(10, 5 * round(seconds / 5))} s left"
    if seconds < 90:
        return "about 1 min left"
    if seconds < 60 * 60:
        return f"about {round(seconds / 60)} min left"
    hours = seconds / 3600
    return f"about {hours:.0f} h left" if hours >= 10 else f"about {hours:.1f} h left"
