"""Child process of tests/persistence/test_journal_faults.py.

Usage: python tests/persistence/_journal_child.py MODE DB [ARGS...]

* ``diskfull DB``: submits "a", then, with RLIMIT_FSIZE at the journal's
  current size (SIGXFSZ ignored: writes fail with EFBIG, as on a full disk),
  submits "refused"; then with the limit lifted submits "c" and runs the queue.
* ``prepare DB``: leaves two submitted tasks ("p1", "p2") in the journal.
* ``diskfull-restore DB``: opens the journal, restores with the limit at the
  journal's size, then again without the limit, and runs the queue.
* ``hold DB``: opens the journal, submits "held", prints READY, and waits
  for a line on stdin before it closes (without running "held").
* ``race DB KEY``: opens the journal (restoring what is there), submits KEY
  and runs it.

Prints one line ``RESULT {json}``.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import _journal_funcs as jf  # noqa: E402
from PySide6.QtCore import QCoreApplication  # noqa: E402

from bgtasks import BackgroundTaskManager  # noqa: E402
from bgtasks.persistence import TaskJournal  # noqa: E402


def limit_to_current_size(db: str) -> None:
    sizes = [os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p)]
    resource.setrlimit(resource.RLIMIT_FSIZE, (min(sizes), resource.RLIM_INFINITY))


def lift_limit() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def attempt(what, *args, **kwargs):
    try:
        return what(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        return None, f"{type(exc).__name__}: {exc}"


def finish(manager: BackgroundTaskManager, handles: list) -> list:
    manager.start_processing()
    return [h.result(30) for h in handles]


def main() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    mode, db = sys.argv[1], sys.argv[2]
    app = QCoreApplication(sys.argv[:1])  # noqa: F841 - the manager needs it
    manager = BackgroundTaskManager(max_threads=1)
    out: dict = {}
    if mode == "diskfull":
        journal = TaskJournal(manager, db)
        handles = [journal.submit(jf.record, "a")]
        limit_to_current_size(db)
        _, out["error"] = attempt(journal.submit, jf.record, "refused")
        out["tasks_after_refusal"] = len(manager.tasks())
        lift_limit()
        handles.append(journal.submit(jf.record, "c"))
        out["results"] = finish(manager, handles)
    elif mode == "prepare":
        journal = TaskJournal(manager, db)
        journal.submit(jf.record, "p1")
        journal.submit(jf.record, "p2")
    elif mode == "diskfull-restore":
        journal = TaskJournal(manager, db)
        limit_to_current_size(db)
        _, out["error"] = attempt(journal.restore)
        out["tasks_after_refusal"] = len(manager.tasks())
        out["needs_restore"] = journal.needs_restore
        lift_limit()
        report = journal.restore()
        out["results"] = finish(manager, list(report.handles.values()))
    elif mode == "hold":
        journal = TaskJournal(manager, db)
        journal.submit(jf.record, "held")
        print("READY", flush=True)
        sys.stdin.readline()
    elif mode == "race":
        journal, out["error"] = attempt(TaskJournal, manager, db)
        if journal is not None:
            report = journal.restore()
            handles = [*report.handles.values(), journal.submit(jf.record, sys.argv[3])]
            out["results"] = finish(manager, handles)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    out["calls"] = [list(args) for _, args in jf.calls]
    if mode != "race" or out.get("error") is None:
        out["records"] = [[r.args, r.state] for r in journal.records()]
        journal.close()
    manager.shut_down(timeout=10)
    print("RESULT", json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
