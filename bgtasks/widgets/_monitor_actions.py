"""What the ``TaskMonitor``'s Retry does with a selection, and how it says so.

Retry goes through the whole selection: a task that cannot run again (its
key's shared run keeps no function, it was forgotten meanwhile, it is not
failed or cancelled any more) is skipped with its reason, and the others
run.  The reasons are logged on the ``bgtasks`` logger and shown by the
monitor.  GUI thread only, as the monitor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import NamedTuple

from ..qt._manager import BackgroundTaskManager
from ._selection import RETRYABLE

log = logging.getLogger("bgtasks")

#: Most reasons listed in a message (the rest are counted).
MAX_REASONS = 10


class RetryOutcome(NamedTuple):
    """How many tasks ``retry_tasks`` ran again, and why each of the others could not."""

    retried: int
    refused: list[str]


def retry_tasks(manager: BackgroundTaskManager, uids: Iterable[int]) -> RetryOutcome:
    """Retry each failed or cancelled task of ``uids``; skip (with its reason) any
    that cannot be, and go on.  Tasks that are neither are left alone, silently:
    a selection may hold them.  A shut-down manager stops the walk (its reason
    is the last)."""
    retried = 0
    refused: list[str] = []
    for uid in uids:
        try:
            state = manager.task_state(uid)
        except KeyError as exc:
            refused.append(str(exc.args[0]) if exc.args else f"task {uid} was forgotten")
            continue
        if state not in RETRYABLE:
            continue
        try:
            manager.retry(uid)
        except (KeyError, ValueError) as exc:
            refused.append(str(exc.args[0]) if exc.args else repr(exc))
            continue
        except RuntimeError as exc:  # shut down meanwhile: no order is taken any more
            refused.append(str(exc))
            break
        retried += 1
    return RetryOutcome(retried, refused)


def tasks_text(n: int) -> str:
    """``"1 task"``, ``"3 tasks"``."""
    return f"{n} task" if n == 1 else f"{n} tasks"


def reasons_text(reasons: list[str]) -> str:
    """The reasons, one a line, at most ``MAX_REASONS`` and a count of the rest."""
    shown = reasons[:MAX_REASONS]
    more = len(reasons) - len(shown)
    return "\n".join(shown + ([f"... and {more} more"] if more else []))


def report_refusals(selected: int, outcome: RetryOutcome) -> None:
    """Log at WARNING, on the ``bgtasks`` logger, the tasks Retry could not run again."""
    if outcome.refused:
        log.warning(
            "TaskMonitor: %s of %d selected tasks could not be retried: %s",
            len(outcome.refused),
            selected,
            "; ".join(reasons_text(outcome.refused).splitlines()),
        )
