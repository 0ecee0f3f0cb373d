"""Benchmark: a thumbnail grid of 5,000 images, offscreen.

A QListView in IconMode shows a ThumbnailModel over 5,000 generated 256x256
images (half PNG, half JPEG, made once and kept in a temp dir).  For each
mode it measures:

* time to the first screen: from ``view.show()`` until every row in the
  viewport has its thumbnail;
* the worst UI stall while loading: the largest gap between ticks of a 1 ms
  QTimer (target <= 16 ms);
* wasted decodes after a fast scroll: the view is scrolled from top to bottom
  by ``--screens-per-frame`` (4) screens per 16 ms frame, like a flick or a
  scroll-bar drag.  A decode is wasted if its row was never in the viewport
  at any frame, or (the stricter count) if its thumbnail never was: it
  arrived after its row had scrolled away and the row did not come back.

Modes: ``visible-first`` (``loader.attach_view(view)``: visible rows first,
far queued ones cancelled) and ``paint-driven`` (no ``attach_view``: the model
requests whatever the view paints, nothing is ever cancelled), the naive way.

    python benchmarks/bench_thumbnails.py [--count 5000] [--threads 2] [--screens-per-frame 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from _common import StallMeter, machine  # noqa: E402
from PySide6.QtCore import QEventLoop, QSize, QTimer  # noqa: E402
from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication, QListView  # noqa: E402

import bgtasks.thumbnails._loader as thumbnails  # noqa: E402  (where the workers call decode_thumbnail)
from bgtasks import BackgroundTaskManager  # noqa: E402
from bgtasks.thumbnails import ThumbnailLoader, ThumbnailModel  # noqa: E402


def make_images(count: int) -> tuple[list[str], float]:
    """The image folder, generated on first use; returns paths and seconds spent."""
    folder = Path(tempfile.gettempdir()) / f"bgtasks-thumb-bench-{count}"
    marker = folder / ".complete"
    paths = [str(folder / f"img{i:05}.{'png' if i % 2 else 'jpg'}") for i in range(count)]
    if marker.exists():
        return paths, 0.0
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    image = QImage(256, 256, QImage.Format.Format_RGB32)
    for i, path in enumerate(paths):
        gradient = QLinearGradient(0, 0, 256, 256)
        gradient.setColorAt(0, QColor.fromHsv(i % 360, 200, 230))
        gradient.setColorAt(1, QColor.fromHsv((i * 7) % 360, 255, 90))
        painter = QPainter(image)
        painter.fillRect(image.rect(), gradient)
        painter.setPen(QColor("white"))
        painter.drawText(image.rect().adjusted(8, 8, -8, -8), 0, f"image {i}\n" * 12)
        painter.drawEllipse(40 + i % 100, 60, 120, 90)
        painter.end()
        if not image.save(path):
            raise OSError(f"cannot write {path}")
    marker.write_text("ok")
    return paths, time.perf_counter() - start


def run_until(condition, timeout: float) -> bool:
    """Run the event loop until ``condition()`` holds (checked every 2 ms)."""
    if condition():
        return True
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(2)
    poll.timeout.connect(lambda: condition() and loop.quit())
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    poll.start()
    loop.exec()
    poll.stop()
    return condition()


def visible_rows(view: QListView) -> list[int]:
    """Rows intersecting the viewport (binary search over the grid layout)."""
    model = view.model()
    count = model.rowCount()
    area = view.viewport().rect()

    def rect(row):
        return view.visualRect(model.index(row, 0))

    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi) // 2
        if rect(mid).bottom() >= 0:
            hi = mid
        else:
            lo = mid + 1
    rows = []
    row = lo
    while row < count and rect(row).top() < area.height():
        if rect(row).intersects(area):
            rows.append(row)
        row += 1
    return rows


def run_mode(app, paths, mode: str, threads: int, speed: float) -> dict[str, float]:
    decoded: list[str] = []
    lock = threading.Lock()
    real = thumbnails.decode_thumbnail

    def counting_decode(path, size):
        with lock:
            decoded.append(path)
        return real(path, size)

    thumbnails.decode_thumbnail = counting_decode
    manager = BackgroundTaskManager(start_processing=True, max_threads=threads)
    loader = ThumbnailLoader(manager, QSize(128, 128))
    model = ThumbnailModel(paths, loader)
    view = QListView()
    view.setViewMode(QListView.ViewMode.IconMode)
    view.setUniformItemSizes(True)
    view.setIconSize(QSize(128, 128))
    view.setGridSize(QSize(150, 150))
    view.setResizeMode(QListView.ResizeMode.Adjust)
    view.resize(1000, 700)
    view.setModel(model)
    if mode == "visible-first":
        loader.attach_view(view)
    stall = StallMeter()
    result: dict[str, float] = {}
    try:
        # ---- first screen
        stall.start()
        t0 = time.perf_counter()
        view.show()
        result["show_ms"] = (time.perf_counter() - t0) * 1000  # Qt lays out 5,000 items
        run_until(lambda: view.isVisible() and bool(visible_rows(view)), 10)
        laid_out = time.perf_counter()
        first = [paths[r] for r in visible_rows(view)]
        ok = run_until(lambda: all(loader.cached(p) is not None for p in first), 60)
        result["first_screen_ms"] = (time.perf_counter() - t0) * 1000 if ok else float("nan")
        result["first_screen_rows"] = len(first)
        result["decodes_at_first_screen"] = len(decoded)
        stall.stop()
        result["stall_show_ms"] = stall.worst_since_ms()
        result["stall_first_screen_ms"] = stall.worst_since_ms(laid_out)

        # ---- fast scroll: several screens per 16 ms frame, top to bottom
        run_until(lambda: not loader.pending(), 30)  # settle: nothing in flight
        decoded.clear()
        seen: set[int] = set(visible_rows(view))
        arrived: set[str] = set()  # thumbnails delivered so far
        shown: set[str] = set()  # thumbnails that were on screen at some frame
        loader.thumbnail_ready.connect(lambda path, _pm: arrived.add(path))

        def look():
            rows = visible_rows(view)
            seen.update(rows)
            shown.update(p for p in (paths[r] for r in rows) if p in arrived)

        bar = view.verticalScrollBar()
        step = int(view.viewport().height() * speed)
        frames = 0
        done = threading.Event()

        def frame():
            nonlocal frames
            frames += 1
            look()  # what this frame showed, before moving on
            bar.setValue(min(bar.maximum(), bar.value() + step))
            look()
            if bar.value() >= bar.maximum():
                scroller.stop()
                done.set()

        scroller = QTimer()
        scroller.setInterval(16)
        scroller.timeout.connect(frame)
        stall.start()
        t1 = time.perf_counter()
        scroller.start()
        run_until(done.is_set, 60)
        result["scroll_s"] = time.perf_counter() - t1
        result["scroll_frames"] = frames
        last = [paths[r] for r in visible_rows(view)]
        ok = run_until(lambda: all(loader.cached(p) is not None for p in last), 60)
        result["last_screen_after_scroll_ms"] = (time.perf_counter() - t1) * 1000 - result[
            "scroll_s"
        ] * 1000
        run_until(lambda: not loader.pending(), 60)
        look()
        stall.stop()
        result["stall_scroll_ms"] = stall.worst_since_ms()
        seen_paths = {paths[r] for r in seen}
        result["rows_seen_while_scrolling"] = len(seen_paths)
        result["decodes_while_scrolling"] = len(decoded)
        result["wasted_decodes"] = sum(1 for p in decoded if p not in seen_paths)
        result["never_shown_decodes"] = sum(1 for p in decoded if p not in shown)
    finally:
        thumbnails.decode_thumbnail = real
        view.close()
        view.deleteLater()
        manager.shut_down(timeout=10)
        loader.deleteLater()
        app.processEvents()
    return result


#: The report's rows: a result's key and its label ("{screens}": screens per scroll frame).
ROWS = [
    ("first_screen_rows", "rows on the first screen"),
    ("show_ms", "view.show() of 5,000 rows, Qt's layout (ms)"),
    ("first_screen_ms", "time to the first screen (ms)"),
    ("decodes_at_first_screen", "decodes started by then"),
    ("stall_show_ms", "worst UI stall incl. show() and first layout (ms)"),
    ("stall_first_screen_ms", "worst UI stall, loading the first screen (ms; target <= 16)"),
    ("scroll_frames", "fast scroll: 16 ms frames ({screens:g} screens each)"),
    ("rows_seen_while_scrolling", "rows that were on screen at some frame"),
    ("decodes_while_scrolling", "decodes started from the scroll on"),
    ("wasted_decodes", "wasted decodes: row never on screen"),
    ("never_shown_decodes", "wasted decodes: thumbnail never on screen (arrived too late)"),
    ("last_screen_after_scroll_ms", "last screen complete after the scroll stopped (ms)"),
    ("stall_scroll_ms", "worst UI stall, scroll and drain (ms; target <= 16)"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--screens-per-frame", type=float, default=4.0)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per mode; the table shows the median"
    )
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    start = time.perf_counter()
    paths, made = make_images(args.count)
    for path in paths:  # warm the OS file cache so both modes read from memory
        with open(path, "rb") as f:
            f.read()
    size = sum(os.path.getsize(p) for p in paths) / 1e6
    print(
        f"# bench_thumbnails: {args.count} images of 256x256 ({size:.0f} MB, half PNG, half JPEG)"
        f"{f', generated in {made:.1f} s' if made else ' (cached)'}"
    )
    print(f"# {machine(f'max_threads={args.threads}', qpa=True)}")
    modes = ("paint-driven", "visible-first")
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for _ in range(args.repeat):
        for mode in modes:
            runs[mode].append(run_mode(app, paths, mode, args.threads, args.screens_per_frame))
    results = {m: {k: statistics.median(r[k] for r in runs[m]) for k in runs[m][0]} for m in modes}
    worst = {m: {k: max(r[k] for r in runs[m]) for k in runs[m][0]} for m in modes}
    print()
    print(f"median of {args.repeat} runs per mode (worst run in brackets)\n")
    print("| measure | paint-driven (no attach_view) | visible-first (attach_view) |")
    print("|---|---:|---:|")
    for key, label in ROWS:
        label = label.format(screens=args.screens_per_frame)
        fmt = "{:.1f}" if key.startswith("stall") else "{:.0f}"  # stalls to 0.1 ms
        cells = [f"{fmt.format(results[m][key])} ({fmt.format(worst[m][key])})" for m in modes]
        print(f"| {label} | {cells[0]} | {cells[1]} |")
    print(f"\n# total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
