#!/usr/bin/env python3
"""Overhead of executor="dask": trivial tasks on a Dask LocalCluster beside the thread pool.

Run from a checkout with the dask extra (see docs/benchmarks-dask.md)::

    .venv/bin/python benchmarks/bench_dask.py                 # 1k tasks, 3 runs, ~15 s
    .venv/bin/python benchmarks/bench_dask.py --quick         # 200 tasks, 2 runs
    .venv/bin/python benchmarks/bench_dask.py --processes     # also a worker-process cluster
    .venv/bin/python benchmarks/bench_dask.py --out docs/benchmarks-dask.md

Every row submits N trivial tasks (``lambda i: i``) through one path, waits for all
N results, and checks them; the figure is wall time per task (us/task) from the
first submit to the last result, median (and best) of the runs, rows interleaved
run by run in this one process:

* ``thread``: ``manager.submit(fn, i)`` on the manager's pool (8 threads);
* ``dask``: ``manager.options(executor="dask").submit(fn, i)`` with the default
  ``DaskExecutor()`` (in-process LocalCluster, one thread per core, slots = threads);
* ``dask, no slot cap``: the same cluster given as ``client=``, so all 8
  manager threads hand calls to Dask at once;
* ``raw Dask``: ``client.submit`` x N + ``client.gather`` on that cluster, no manager
  (what Dask itself costs);
* ``raw Dask, one call at a time``: ``client.submit(...).result()`` in a loop (at most 200
  calls, scaled to N): Dask's round trip;
* ``dask, processes`` (``--processes``): ``DaskExecutor(processes=True)``, 2 worker processes.

Exit status 2 if a result was wrong.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import

import datetime  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from time import perf_counter  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import distributed  # noqa: E402
from _common import Doc, Waiter, arguments, commit  # noqa: E402
from _common import identity as trivial  # noqa: E402
from PySide6.QtCore import QCoreApplication  # noqa: E402

from bgtasks import BackgroundTaskManager  # noqa: E402
from bgtasks.dask_executor import DaskExecutor  # noqa: E402


def through_manager(n: int, executor: str | DaskExecutor | None) -> float:
    """Seconds from the first submit to the n-th result, all through one manager."""
    manager = BackgroundTaskManager(max_threads=8, start_processing=True)
    try:
        if isinstance(executor, DaskExecutor):
            manager.set_executor("bench", executor)
            executor = "bench"
        results: list[int] = []
        waiter = Waiter()

        def completed(uid: int, group: object, result: int) -> None:
            results.append(result)
            if len(results) == n:
                waiter.done()

        failed: list[str] = []
        manager.task_completed.connect(completed)
        manager.task_failed.connect(lambda uid, g, message, tb: (failed.append(tb), waiter.done()))
        start = perf_counter()
        for i in range(n):
            manager.options(executor=executor).submit(trivial, i)
        waiter.wait(120)
        elapsed = perf_counter() - start
        if failed or sorted(results) != list(range(n)):
            raise AssertionError(f"wrong results: {len(results)} of {n}, failures: {failed[:1]}")
        return elapsed
    finally:
        manager.shut_down(timeout=10)


def raw_dask(n: int, client: distributed.Client) -> float:
    start = perf_counter()
    futures = [client.submit(trivial, i, pure=False) for i in range(n)]
    results = client.gather(futures)
    elapsed = perf_counter() - start
    if results != list(range(n)):
        raise AssertionError("raw Dask returned wrong results")
    return elapsed


def raw_dask_serial(n: int, client: distributed.Client) -> float:
    """One call at a time: Dask's round trip (scaled to n calls)."""
    calls = min(n, 200)
    start = perf_counter()
    for i in range(calls):
        if client.submit(trivial, i, pure=False).result() != i:
            raise AssertionError("raw Dask returned a wrong result")
    return (perf_counter() - start) * n / calls


def measure(n: int, runs: int, processes: bool) -> tuple[list[tuple[str, list[float]]], str]:
    cluster = distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=os.cpu_count() or 1,
        processes=False,
        dashboard_address="127.0.0.1:0",
    )
    client = distributed.Client(cluster, set_as_default=False)
    rows: dict[str, Callable[[], float]] = {
        "thread": lambda: through_manager(n, None),
        "dask (default DaskExecutor)": lambda: through_manager(n, "dask"),
        "dask, no slot cap (client=)": lambda: through_manager(n, DaskExecutor(client=client)),
        "raw Dask (client.submit + gather)": lambda: raw_dask(n, client),
        "raw Dask, one call at a time (.result())": lambda: raw_dask_serial(n, client),
    }
    if processes:
        rows["dask, 2 worker processes"] = lambda: through_manager(
            n, DaskExecutor(n_workers=2, threads_per_worker=1, processes=True)
        )
    times: dict[str, list[float]] = {name: [] for name in rows}
    try:
        for name in rows:  # warm-up: imports, first cluster start, code paths
            rows[name]()
        for _ in range(runs):
            for name, run in rows.items():
                times[name].append(run())
    finally:
        client.close()
        cluster.close()
    return list(times.items()), distributed.__version__


def report(n: int, runs: int, results: list[tuple[str, list[float]]], version: str) -> str:
    thread = statistics.median(results[0][1])
    lines = [
        f"{datetime.date.today()}, bgtasks at {commit()}, dask/distributed {version}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores; "
        f"{n} trivial tasks, median (best) of {runs} runs.",
        "",
        "| path | us/task | ratio to thread |",
        "|---|---:|---:|",
    ]
    for name, times in results:
        median, best = statistics.median(times), min(times)
        lines.append(
            f"| {name} | {median / n * 1e6:,.0f} ({best / n * 1e6:,.0f}) | {median / thread:.1f}x |"
        )
    return "\n".join(lines) + "\n"


DOC = Doc("bench_dask", "Dask backend benchmark", ": edits between the markers are overwritten")


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, quick="200 tasks, 2 runs", out=None, strict=False)
    parser.add_argument("--tasks", type=int, help="tasks per run (default 1000)")
    parser.add_argument("--runs", type=int, help="runs per row (default 3)")
    parser.add_argument("--processes", action="store_true", help="add a worker-process row")
    parser.add_argument("--out", metavar="FILE", help="write the table into FILE (markdown)")
    args = parser.parse_args(argv)
    n = args.tasks or (200 if args.quick else 1000)
    runs = args.runs or (2 if args.quick else 3)
    app = QCoreApplication.instance() or QCoreApplication(sys.argv)  # noqa: F841 - keep alive
    try:
        results, version = measure(n, runs, args.processes)
    except AssertionError as exc:
        print(f"WRONG: {exc}", file=sys.stderr)
        return 2
    text = report(n, runs, results, version)
    print(text)
    if args.out:
        DOC.write(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
