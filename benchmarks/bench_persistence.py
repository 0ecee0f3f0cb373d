#!/usr/bin/env python3
"""Cost of persistence per task: ``TaskJournal.submit`` against ``manager.submit``.

Run from a checkout (see docs/benchmarks-persistence.md)::

    .venv/bin/python benchmarks/bench_persistence.py           # 2,000 tasks, 5 rounds
    .venv/bin/python benchmarks/bench_persistence.py --quick   # 500 tasks, 2 rounds
    .venv/bin/python benchmarks/bench_persistence.py --out docs/benchmarks-persistence.md

For each variant (plain ``manager.submit``; ``TaskJournal.submit`` with
``synchronous="normal"``; with ``synchronous="full"``), interleaved round by
round, each with a fresh manager (2 threads) and a fresh journal file:

* submit: microseconds per call, submitting N trivial tasks (``operator.add``)
  to a paused manager (the journal commits one transaction per call);
* finish: microseconds per task from ``start_processing()`` until the N-th
  ``task_completed`` was delivered on this (the UI) thread; the journal writes
  "started" and "finished" in the worker thread, around the function.

Figures are medians over the rounds; ratios are against the plain variant.
Exit status 2 if a result was wrong (a task's result, or a journal row that is
not "finished").
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import

import datetime  # noqa: E402
import operator  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from time import perf_counter  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from _common import Doc, arguments  # noqa: E402
from PySide6.QtCore import QCoreApplication, QEventLoop  # noqa: E402

from bgtasks import BackgroundTaskManager  # noqa: E402
from bgtasks.persistence import TaskJournal, persistable  # noqa: E402

persistable(operator.add)  # persistent tasks run only registered functions

VARIANTS = ("plain", "journal normal", "journal full")
DOC = Doc("bench_persistence", "Persistence benchmark", "")


def one_round(variant: str, count: int, folder: Path) -> tuple[float, float]:
    """(µs per submit, µs per task to finish) for one fresh manager."""
    manager = BackgroundTaskManager(max_threads=2)
    journal = None
    if variant != "plain":
        path = folder / f"{variant.replace(' ', '-')}-{perf_counter()}.sqlite3"
        journal = TaskJournal(manager, path, synchronous=variant.split()[1])
    submit = manager.submit if journal is None else journal.submit
    loop = QEventLoop()
    delivered = [0]

    def completed(*_: object) -> None:
        delivered[0] += 1
        if delivered[0] == count:
            loop.quit()

    manager.task_completed.connect(completed)
    try:
        t0 = perf_counter()
        handles = [submit(operator.add, i, 1) for i in range(count)]
        t1 = perf_counter()
        manager.start_processing()
        loop.exec()
        t2 = perf_counter()
        if [h.result(0) for h in handles] != [i + 1 for i in range(count)]:
            raise SystemExit("wrong results")
        if journal is not None:
            states = {r.state for r in journal.records()}
            if states != {"finished"}:
                raise SystemExit(f"journal rows not all finished: {states}")
    finally:
        manager.shut_down(timeout=5)
        if journal is not None:
            journal.close()
    return (t1 - t0) / count * 1e6, (t2 - t1) / count * 1e6


def main() -> None:
    parser = arguments(__doc__, quick="500 tasks, 2 rounds", out=None, strict=False)
    parser.add_argument("--tasks", type=int, default=None, help="tasks per round (2000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (5)")
    parser.add_argument("--out", help="rewrite the results block of this markdown file")
    args = parser.parse_args()
    count = args.tasks or (500 if args.quick else 2000)
    rounds = args.rounds or (2 if args.quick else 5)
    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    figures: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench-persistence-") as tmp:
        one_round("journal normal", 50, Path(tmp))  # warm up imports and SQLite
        for _ in range(rounds):
            for variant in VARIANTS:
                figures[variant].append(one_round(variant, count, Path(tmp)))
    del app
    medians = {
        v: (statistics.median(s for s, _ in runs), statistics.median(f for _, f in runs))
        for v, runs in figures.items()
    }
    plain_submit, plain_finish = medians["plain"]
    lines = [
        f"{count:,} trivial tasks per round, {rounds} rounds, medians; manager with 2 threads; "
        f"journal on {tempfile.gettempdir()}.",
        "",
        "| variant | submit µs/task | ratio | finish µs/task | ratio | submit+finish µs/task | extra µs/task |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, (sub, fin) in medians.items():
        extra = sub + fin - plain_submit - plain_finish
        lines.append(
            f"| {variant} | {sub:.1f} | {sub / plain_submit:.1f}x | {fin:.1f} | "
            f"{fin / plain_finish:.1f}x | {sub + fin:.1f} | {extra:+.1f} |"
        )
    lines += [
        "",
        f"Run {datetime.date.today()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {__import__('sqlite3').sqlite_version}.",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        DOC.write(args.out, report)


if __name__ == "__main__":
    main()
