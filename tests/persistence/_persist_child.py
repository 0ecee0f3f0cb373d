"""Child process of the crash test: works through a persistent queue, may SIGKILL itself.

Usage: python tests/persistence/_persist_child.py DB RESULTS COUNT KILL

KILL is ``none`` or ``STAGE:K``: the process kills itself (SIGKILL) at the
K-th event of STAGE in this run: ``submit`` (after the K-th new submit
returned), ``start`` (inside the K-th task, after the journal wrote
"started", before its line), ``append`` (after the K-th line was appended and
fsynced, before the journal wrote "finished"), ``finish`` (in the K-th done
callback, after "finished" was written).  Tasks form chains of three: each
task but the first of a chain depends on the previous one and gets its key as
``after`` (a merged dict result).

Prints ``REPORT {json}`` after restore (keys interrupted, rerun, skipped, restored),
``STARTED key`` as each task starts, and ``ALL DONE`` at the end.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import _persist_funcs as funcs  # noqa: E402
from PySide6.QtCore import QCoreApplication  # noqa: E402

from bgtasks import BackgroundTaskManager  # noqa: E402
from bgtasks.persistence import TaskJournal  # noqa: E402


def main() -> None:
    db, results, count, kill = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    stage, _, nth = kill.partition(":")
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def event(name: str) -> None:
        with lock:
            counts[name] = counts.get(name, 0) + 1
            if name == stage and counts[name] == int(nth):
                os.kill(os.getpid(), signal.SIGKILL)

    def hook(name: str, key: str) -> None:
        if name == "start":
            print("STARTED", key, flush=True)
        event(name)

    funcs.hook = hook
    app = QCoreApplication(sys.argv[:1])
    manager = BackgroundTaskManager(max_threads=2)
    journal = TaskJournal(manager, db)
    before = journal.records()
    key_of = {(r.uid if r.uid is not None else -r.jid): r.args[1] for r in before}
    report = journal.restore()
    print(
        "REPORT",
        json.dumps(
            {
                "interrupted": [key_of[u] for u in report.interrupted],
                "rerun": [key_of[u] for u in report.handles if u in report.interrupted],
                "skipped": [key_of[u] for u in report.skipped],
                "restored": sorted(key_of[u] for u in report.handles),
            }
        ),
        flush=True,
    )
    handles = {key_of[old]: h for old, h in report.handles.items()}
    state = {r.args[1]: r.state for r in before}
    for i in range(count):
        key = f"t{i:02d}"
        if key in state:
            continue
        upstream, extra = None, {}
        if i % 3:
            prev = f"t{i - 1:02d}"
            if prev in handles:
                upstream = [handles[prev].uid]
            else:  # finished in an earlier run
                extra = {"after": prev}
        handles[key] = journal.options(upstream_task_ids=upstream, priority=i % 4).submit(
            funcs.crash_step, results, key, **extra
        )
        event("submit")
    live = [h for h in handles.values() if not h.done()]
    remaining = [len(live)]

    def done(_handle: object) -> None:
        event("finish")
        remaining[0] -= 1
        if remaining[0] == 0:
            app.quit()

    for h in live:
        h.add_done_callback(done)
    manager.start_processing()
    if live:
        app.exec()
    manager.shut_down()
    journal.close()
    print("ALL DONE", flush=True)


if __name__ == "__main__":
    main()
