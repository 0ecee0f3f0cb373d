#!/usr/bin/env python3
"""Benchmark: a TaskModel in a visible view while 20,000 short tasks run.

For each configuration (flat table / grouped tree, 8 / 2 threads) a fresh
manager and a ``TaskModel`` shown in a ``QTreeView`` (offscreen, 900x600)
watch N trivial tasks (``return {"x": i}``, groups of 100).  Measured:

* the worst UI stall: the largest gap between ticks of a 1 ms QTimer from the
  moment the submitting loop returned until the model shows every task
  COMPLETED (target: <= 16 ms, one frame at 60 Hz, in every run with
  ``gc.freeze()`` after start-up; <= 25 ms with Python's collector as it comes);
* the time until then, and the tasks/s this makes;
* the model's passes per second (its repaint rate: bounded by
  ``refresh_interval``), the largest pass in tasks and milliseconds;
* how much of the worst stall the drain, the model's passes and the view's
  paints took (what ran on the UI thread during the gap).

    python benchmarks/bench_widgets.py [--count 20000] [--repeats 3] [--out docs/benchmarks-widgets.md]
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import gc  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from time import perf_counter  # noqa: E402
from typing import Any  # noqa: E402

import _common  # noqa: E402
from _common import Clock, Doc, StallMeter, Waiter, arguments, dispose, machine, trivial  # noqa: E402
from PySide6.QtCore import QCoreApplication, QEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QTableView, QTreeView, QWidget  # noqa: E402

from bgtasks import BackgroundTaskManager, TaskState  # noqa: E402
from bgtasks.widgets import TaskModel, TaskMonitor  # noqa: E402

TARGET_STALL_MS = 16.0  # one frame at 60 Hz: with gc.freeze() after start-up
#: The worst stall allowed in every run, by gc mode: a full collection of an
#: unfrozen heap (15-20 ms here) cannot be split, so Python's collector as it
#: comes gets 25 ms (issue 14).
TARGETS_MS = {"freeze": TARGET_STALL_MS, "default": 25.0}
WARM_UP = 300  # tasks of the untimed first run through each view
TIMEOUT_S = 120.0


@dataclass
class Result:
    mode: str
    threads: int
    n: int
    gc: str = "default"
    seconds: float = 0.0
    stall_ms: float = 0.0
    passes: int = 0
    largest_pass_items: int = 0
    largest_pass_ms: float = 0.0
    slices: dict[str, float] = field(default_factory=dict)  # ms of each kind in the worst gap
    ok: bool = False
    why: str = ""


class Spans:
    """Records (start, end, kind) of the UI thread's work that matters here."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float, str]] = []

    def wrap(self, obj: object, attr: str, kind: str) -> None:
        fn = getattr(obj, attr)
        spans = self.spans

        def timed(*args: object, **kwargs: object) -> object:
            t = perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spans.append((t, perf_counter(), kind))

        setattr(obj, attr, timed)

    def trace_gc(self) -> None:
        """Record Python's collections as spans too ("gc0", "gc1", "gc2"), on
        whatever thread ran them: a collection holds the GIL, so the UI thread waits."""
        started: list[float] = [0.0]
        spans = self.spans

        def callback(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[0] = perf_counter()
            else:
                spans.append((started[0], perf_counter(), f"gc{info['generation']}"))

        self._gc_callback = callback
        gc.callbacks.append(callback)

    def untrace_gc(self) -> None:
        """Stop recording collections."""
        callback = getattr(self, "_gc_callback", None)
        if callback in gc.callbacks:
            gc.callbacks.remove(callback)

    def inside(self, a: float, b: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for s, e, kind in self.spans:
            lo, hi = max(s, a), min(e, b)
            if hi > lo:
                out[kind] = out.get(kind, 0.0) + 1000.0 * (hi - lo)
        return out


class TimedTree(QTreeView):
    """A tree view whose paints are recorded as spans."""

    def __init__(self, spans: Spans) -> None:
        super().__init__()
        self._spans = spans
        self.setUniformRowHeights(True)

    def paintEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        t = perf_counter()
        super().paintEvent(event)
        self._spans.spans.append((t, perf_counter(), "paint"))


class TimedTable(QTableView):
    """A table view whose paints are recorded as spans."""

    def __init__(self, spans: Spans) -> None:
        super().__init__()
        self._spans = spans

    def paintEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        t = perf_counter()
        super().paintEvent(event)
        self._spans.spans.append((t, perf_counter(), "paint"))


class TracingApp(QApplication):
    """A QApplication that records every event that took 0.5 ms or more as a span
    ``"<event type> to <receiver class>"`` (``--trace-events``; it slows every event
    a little: for finding where the time goes, not for the table)."""

    spans: list[tuple[float, float, str]] = []

    def notify(self, receiver: Any, event: Any) -> bool:  # noqa: D102 - Qt override
        t = perf_counter()
        try:
            return super().notify(receiver, event)
        finally:
            end = perf_counter()
            if end - t >= 0.0005:
                kind = event.type().name if hasattr(event.type(), "name") else str(event.type())
                TracingApp.spans.append((t, end, f"{kind} to {type(receiver).__name__}"))


def show_view(mode: str, manager: BackgroundTaskManager, spans: Spans) -> tuple[QWidget, Any]:
    """The view of ``mode`` over a model of ``manager``, shown; its UI-thread work timed."""
    view: QWidget
    if mode.startswith("monitor"):  # the whole TaskMonitor: proxy, filters, summary
        view = TaskMonitor(manager, grouped=mode == "monitor-grouped")
        model = view.model
    else:
        model = TaskModel(manager, grouped=(mode == "grouped"))
        view = (TimedTable if mode == "table" else TimedTree)(spans)
        view.setModel(model)
    view.resize(900, 600)
    view.show()
    # time the UI thread's work: the manager's drain passes and the model's passes
    # (their timers were connected to the unwrapped methods: reconnect them)
    spans.wrap(manager, "_drain", "drain")
    manager._resume.timeout.disconnect()
    manager._resume.timeout.connect(manager._drain)
    spans.wrap(model, "_apply", "model pass")
    model._timer.timeout.disconnect()
    model._timer.timeout.connect(model._apply)
    return view, model


def run_one(
    mode: str,
    threads: int,
    n: int,
    ticker: StallMeter,
    gc_mode: str = "default",
    show_gaps: float | None = None,
) -> Result:
    res = Result(mode, threads, n, gc_mode)
    manager = BackgroundTaskManager(max_threads=threads)
    spans = Spans()
    spans.trace_gc()
    if isinstance(QApplication.instance(), TracingApp):
        TracingApp.spans = spans.spans  # events recorded with the rest
    view, model = show_view(mode, manager, spans)
    QApplication.processEvents()
    if gc_mode == "freeze":  # what an app does once started: gc.freeze() its heap
        gc.collect()
        gc.freeze()

    waiter = Waiter()
    done = {"t": 0.0, "completed": 0}

    def completed(*_: object) -> None:
        done["completed"] += 1

    def check() -> None:
        # every task completed, and the model shows no task still queued or running
        # (finished tasks beyond the manager's keep_finished leave the model)
        if done["t"] or done["completed"] < n or model.has_pending():
            return
        # every row shown COMPLETED (the model's counts: O(1), not a scan of 20k rows)
        if model.state_counts()[TaskState.COMPLETED] == model.task_count():
            done["t"] = perf_counter()
            waiter.done()

    manager.task_completed.connect(completed)
    model.batch_applied.connect(check)
    t0 = perf_counter()
    manager.start_processing()
    for i in range(n):
        manager.add_task(trivial, group=i // 100, task_args=(i,))
    t_sub = perf_counter()
    ticker.start()
    waiter.wait(TIMEOUT_S)
    ticker.stop()
    spans.untrace_gc()
    t_end = done["t"] or perf_counter()
    if not done["t"]:
        res.why = f"timed out: {done['completed']} of {n} completed"
    else:
        res.ok = True
    worst, a, b = ticker.worst_gap(t_sub, t_end)
    res.stall_ms = 1000.0 * worst
    res.slices = spans.inside(a, b)
    if show_gaps is not None and res.stall_ms >= show_gaps:
        print(f"worst gap {res.stall_ms:.1f} ms ({mode}, {threads} threads, gc {gc_mode}):")
        for s0, e0, kind in sorted(spans.spans):
            if e0 > a and s0 < b:
                print(f"  {1e3 * (s0 - a):6.1f} .. {1e3 * (e0 - a):6.1f} ms  {kind}")
    res.seconds = t_end - t0
    res.passes = model.pass_count
    res.largest_pass_items = model.largest_pass_items
    res.largest_pass_ms = 1000.0 * model.largest_pass_seconds
    view.hide()
    view.deleteLater()
    model.deleteLater()
    dispose(manager)
    # deleted now, not during the next run's flood (processEvents leaves deferred deletes)
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    if gc_mode == "freeze":
        gc.unfreeze()
    return res


def report(results: dict[tuple[str, int, str], list[Result]], extra: dict) -> tuple[str, bool]:
    lines = [
        f"Run on {extra['date']}: {extra['machine']}. {extra['n']:,} trivial tasks in groups of "
        f"100, a TaskModel (refresh_interval {extra['interval']} ms, pass_budget "
        f"{extra['budget']} ms; a TaskMonitor's: pass_budget {extra['monitor_budget']} ms, "
        f"finished_rows {extra['finished_rows']}) in a visible 900x600 view, after a warm-up "
        f"flood of {WARM_UP} tasks through each kind of view; {extra['repeats']} run(s) each. "
        f"gc: `default` is Python's collector as it comes, `freeze` calls `gc.freeze()` "
        f"once the window is up, as an app does after its start-up. "
        f"Load average (1 min) {extra['load'][0]:.2f} before, {extra['load'][1]:.2f} after.",
        "",
        "| model | threads | gc | worst UI stall ms (runs) | tasks/s until the model shows all "
        "| passes/s | largest pass | in the worst gap |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    passed = {"default": True, "freeze": True}
    for (mode, threads, gc_mode), runs in results.items():
        stalls = [r.stall_ms for r in runs]
        worst = max(runs, key=lambda r: r.stall_ms)
        passed[gc_mode] &= all(r.ok for r in runs) and max(stalls) <= TARGETS_MS[gc_mode]
        rate = statistics.median(r.n / r.seconds for r in runs)
        pps = statistics.median(r.passes / r.seconds for r in runs)
        big = max(runs, key=lambda r: r.largest_pass_ms)
        where = ", ".join(f"{k} {v:.1f} ms" for k, v in sorted(worst.slices.items())) or "—"
        lines.append(
            f"| {mode} | {threads} | {gc_mode} "
            f"| {max(stalls):.1f} ({', '.join(f'{s:.1f}' for s in stalls)}) "
            f"| {rate:,.0f} | {pps:.0f} | {big.largest_pass_items} tasks, "
            f"{big.largest_pass_ms:.1f} ms | {where} |"
        )
    wrong = [
        f"{r.mode}/{r.threads}: {r.why}" for runs in results.values() for r in runs if not r.ok
    ]
    modes = sorted({gc_mode for (_, _, gc_mode) in results})
    verdicts = ", ".join(
        f"gc {m} (<= {TARGETS_MS[m]:g} ms in every run): {_common.verdict(passed[m])}"
        for m in modes
    )
    lines += [
        "",
        f"Target, the worst UI stall: {verdicts}" + (f" ({'; '.join(wrong)})" if wrong else ""),
        "",
    ]
    return "\n".join(lines), all(passed[m] for m in modes)


DOC = Doc("bench_widgets", "TaskModel benchmark", "")


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, out=None, strict=False)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", metavar="FILE")
    parser.add_argument(
        "--modes",
        default="flat,grouped,table,monitor,monitor-grouped",
        help="flat (QTreeView), grouped (QTreeView), table (flat model in a QTableView), "
        "monitor and monitor-grouped (the TaskMonitor widget)",
    )
    parser.add_argument(
        "--gc",
        default="default,freeze",
        help="default (Python's collector as it comes) and/or freeze (gc.freeze() once the "
        "window is up)",
    )
    parser.add_argument(
        "--trace-events",
        action="store_true",
        help="record every Qt event of 0.5 ms or more (slower; shows where a gap's time went)",
    )
    parser.add_argument(
        "--show-gaps",
        type=float,
        metavar="MS",
        help="print what the UI thread did, in order, in every worst gap of MS or more "
        "(with --trace-events: every Qt event of the gap)",
    )
    args = parser.parse_args(argv)
    if args.count < 1 or args.repeats < 1:
        parser.error("--count and --repeats must be positive")
    gc_modes = args.gc.split(",")
    if not set(gc_modes) <= {"default", "freeze"}:
        parser.error(f"--gc takes default and/or freeze, got {args.gc!r}")
    modes = args.modes.split(",")
    app = QApplication.instance() or (TracingApp if args.trace_events else QApplication)(
        sys.argv[:1]
    )
    ticker = StallMeter()
    # a running app has painted task rows before: fonts, glyphs and first layouts
    for mode in modes:
        run_one(mode, 2, WARM_UP, ticker)
    clock = Clock()
    results: dict[tuple[str, int, str], list[Result]] = {}
    for _ in range(args.repeats):
        for mode in modes:
            for threads in (8, 2):
                for gc_mode in gc_modes:
                    gc.collect()
                    r = run_one(mode, threads, args.count, ticker, gc_mode, args.show_gaps)
                    results.setdefault((mode, threads, gc_mode), []).append(r)
                    print(
                        f"{mode:8s} {threads} threads gc {gc_mode:7s}: stall {r.stall_ms:5.1f} ms, "
                        f"{r.n / r.seconds:8,.0f} tasks/s, {r.passes} passes, largest "
                        f"{r.largest_pass_items} / {r.largest_pass_ms:.1f} ms, gap: "
                        f"{ {k: round(v, 1) for k, v in r.slices.items()} } {r.why}",
                        flush=True,
                    )
    probe = TaskModel(BackgroundTaskManager())
    monitor = TaskMonitor(probe.manager)
    extra = clock.meta(
        machine=machine(qpa=True),
        n=args.count,
        repeats=args.repeats,
        interval=probe.refresh_interval,
        budget=probe.pass_budget * 1000,
        monitor_budget=monitor.model.pass_budget * 1000,
        finished_rows=monitor.model.finished_rows,
    )
    probe.manager.shut_down(timeout=1)
    monitor.deleteLater()
    text, passed = report(results, extra)
    print(text)
    if args.out:
        DOC.write(args.out, text)
        print(f"wrote {args.out}")
    del app
    return 0 if all(r.ok for runs in results.values() for r in runs) else 2


if __name__ == "__main__":
    sys.exit(main())
