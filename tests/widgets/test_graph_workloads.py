"""Three task graphs for TaskGraphView (30, 300 and 5,000 tasks), their structure
tests, and the script that takes the guide's screenshots of them.

Screenshots (docs/images/graph-30.png, graph-300.png, graph-5000.png):

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python tests/widgets/test_graph_workloads.py

The UI's worst stall during a flood of 1,000-3,000 tasks with the view shown
(``--baseline``: the same flood without a view; ``--freeze``: ``gc.freeze()``
after a warm-up flood, as an app does once started):

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/widgets/test_graph_workloads.py --stall
"""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QPointF

from bgtasks import TaskState
from bgtasks.widgets import TaskGraphView
from bgtasks.widgets._graph_route import segments_cross


def ok(**_) -> int:
    return 1


def boom(**_) -> None:
    raise RuntimeError("boom")


def hold(gate: threading.Event) -> int:
    gate.wait(30)
    return 1


def _submit(m, name, fn=ok, upstream=(), group=None, held=None):
    """Submit a task; ``held``: a gate it runs until (at priority -10, so it starts last)."""
    extra = {"group": group} if group is not None else {}
    options = m.options(
        name=name, upstream_task_ids=list(upstream) or None, priority=-10 if held else 0, **extra
    )
    return options.submit(hold, held).uid if held else options.submit(fn).uid


def build_30(m, gate):
    """A photo import: scan, 8 decodes and 8 thumbnails (a group of 16), a contact
    sheet, checks and an upload; 30 tasks."""
    scan = _submit(m, "scan folder")
    config = _submit(m, "read config")
    decodes = [_submit(m, f"decode {i}", upstream=[scan], group="photos") for i in range(8)]
    thumbs = [
        _submit(m, f"thumbnail {i}", upstream=[d], group="photos", held=gate if i >= 6 else None)
        for i, d in enumerate(decodes)
    ]
    sheet = _submit(m, "contact sheet", upstream=thumbs)
    exif = _submit(m, "read EXIF", upstream=decodes[:4])
    faces = _submit(m, "find faces", boom, upstream=decodes[4:])
    tags = _submit(m, "tag photos", upstream=[exif, faces, config])
    upload = _submit(m, "upload sheet", upstream=[sheet, config])
    index = _submit(m, "update index", upstream=[tags])
    report = _submit(m, "report", upstream=[upload, index])
    extra = [_submit(m, f"prefetch {i}", held=gate if i < 2 else None) for i in range(4)]
    notify = _submit(m, "notify", upstream=[report, *extra])
    return [scan, config, *decodes, *thumbs, sheet, exif, faces, tags, upload, index, report] + [
        *extra,
        notify,
    ]


def build_300(m, gate):
    """The demo's pipeline: a chain of 10 with a fan-in (13), 160 thumbnails, 60
    reads each parsed (60 + 60), a merge, a publish and five exports; 300 tasks."""
    uids = []
    prev = []
    for i in range(10):
        held = gate if i == 6 else None
        prev = [_submit(m, f"step {i + 1}", upstream=prev, group="chain", held=held)]
        uids += prev
    sides = [_submit(m, name, group="chain") for name in ("checksum", "label")]
    fan_in = _submit(m, "fan-in", upstream=[*prev, *sides], group="chain")
    uids += [*sides, fan_in]
    uids += [
        _submit(m, f"img_{i:03d}.jpg", boom if i == 37 else ok, group="thumbnails",
                held=gate if i >= 158 else None)
        for i in range(160)
    ]  # fmt: skip
    reads = [_submit(m, f"read file_{i:03d}", boom if i in (3, 17) else ok, group="io")
             for i in range(60)]  # fmt: skip
    parses = [_submit(m, f"parse file_{i:03d}", upstream=[r], group="compute",
                      held=gate if i >= 59 else None) for i, r in enumerate(reads)]  # fmt: skip
    merge = _submit(m, "merge records", upstream=parses)
    publish = _submit(m, "publish", upstream=[merge, fan_in])
    exports = [_submit(m, f"export {f}", upstream=[publish]) for f in ("pdf", "csv", "json", "xml")]
    summary = _submit(m, "summary", upstream=exports)
    return uids + reads + parses + [merge, publish, *exports, summary]


def build_5000(m, gate):
    """A render farm: 400 ingests, 24 shots of 180 frames (each shot after its
    ingests), 24 encodes and 24 checks, a publish and a report, 230 cache
    warm-ups; 5,000 tasks."""
    uids = []
    ingests = [_submit(m, f"ingest {i:03d}", group="ingest", held=gate if i >= 396 else None)
               for i in range(400)]  # fmt: skip
    uids += ingests
    encodes = []
    for shot in range(24):
        source = ingests[shot * 16 : shot * 16 + 16]
        frames = [
            _submit(m, f"sh{shot:02d} frame {f:03d}", boom if (shot, f) == (5, 77) else ok,
                    upstream=[source[f % 16]], group=f"shot {shot:02d}")
            for f in range(180)
        ]  # fmt: skip
        uids += frames
        encodes.append(_submit(m, f"encode shot {shot:02d}", upstream=frames, group="encode"))
    checks = [_submit(m, f"check shot {i:02d}", upstream=[e], group="checks")
              for i, e in enumerate(encodes)]  # fmt: skip
    publish = _submit(m, "publish", upstream=checks)
    report = _submit(m, "report", upstream=[publish])
    cache = [_submit(m, f"warm cache {i:03d}", group="cache", )
             for i in range(230)]  # fmt: skip
    return uids + encodes + checks + [publish, report] + cache


WORKLOADS = {30: build_30, 300: build_300, 5000: build_5000}
HELD = 4  # tasks each workload holds running (priority -10)


def settle(qtbot, m, timeout=60_000):
    """Wait until only the held tasks run and nothing is queued (with HELD + 2 threads)."""

    def quiet():
        live = m.tasks(state=TaskState.RUNNING) + m.tasks(state=TaskState.QUEUED)
        return len(live) == HELD and all(
            i.state is TaskState.RUNNING and i.priority == -10 for i in live
        )

    qtbot.waitUntil(quiet, timeout=timeout)


# ---------------------------------------------------------------------- structure tests


@pytest.fixture
def shown(qtbot, make_manager, gate):
    """A view of 1200 x 760 on workload ``n``, run until only the held tasks are left."""

    def make(n):
        m = make_manager(start_processing=True, max_threads=HELD + 2)
        WORKLOADS[n](m, gate)
        settle(qtbot, m)
        view = TaskGraphView(m)
        qtbot.addWidget(view)
        view.resize(1200, 760)
        view.show()
        qtbot.waitExposed(view)
        view.refresh()
        return m, view

    return make


def by_name(m):
    return {info.name: info.uid for info in m.tasks()}


def check_readable(view):
    """Fit is legible, the scene has the viewport's shape, and no arrow crosses a node."""
    view.fit_to_view()
    assert view.zoom() >= view.min_legible_scale
    assert view.fit_note() == ""
    rect = view.scene().sceneRect()
    port = view.viewport().rect()
    shape = (rect.width() / rect.height()) / (port.width() / port.height())
    assert 0.4 <= shape <= 2.5, shape
    nodes = view.node_items()
    boxes = {key: item.sceneBoundingRect().adjusted(4, 4, -4, -4) for key, item in nodes.items()}
    for (up, down), edge in view.edge_items().items():
        for key, box in boxes.items():
            if key not in (up, down):
                rect_tuple = (box.x(), box.y(), box.width(), box.height())
                assert not segments_cross(list(edge.points), rect_tuple), (up, down, key)
        # the route really joins its two nodes (whichever way it was turned)
        ends = {edge.points[0], edge.points[-1]}
        for key in (up, down):
            box = nodes[key].sceneBoundingRect()
            assert any(box.adjusted(-1, -1, 1, 1).contains(QPointF(*p)) for p in ends)


def test_30_tasks_are_drawn_one_by_one(shown):
    m, view = shown(30)
    uids = {info.uid for info in m.tasks()}
    assert len(uids) == 30
    assert set(view.nodes()) == uids and view.group_nodes() == {}  # "photos": 16 <= 20
    task_edges = {(up, info.uid) for info in m.tasks() for up in info.upstream}
    assert view.edges() == task_edges and len(task_edges) == 45
    assert set(view.links().values()) == {1}
    check_readable(view)
    names = by_name(m)
    assert view.nodes()[names["find faces"]].state is TaskState.FAILED
    assert view.nodes()[names["thumbnail 7"]].state is TaskState.RUNNING


def test_300_tasks_collapse_their_big_groups(shown):
    m, view = shown(300)
    assert len(m.tasks()) == 300
    groups = view.group_nodes()
    assert set(groups) == {"thumbnails", "io", "compute"}  # "chain" has 13: drawn
    assert len(view.node_items()) == 3 + 13 + 7
    assert groups["io"].text() == "io · 58 done, 2 failed"
    assert groups["compute"].text() == "compute · 57 done, 1 running, 2 failed"
    assert groups["thumbnails"].text() == "thumbnails · 157 done, 2 running, 1 failed"
    assert groups["io"].title() == "io · 60 tasks"
    merge = ("task", by_name(m)["merge records"])
    links = view.links()
    assert links[(("group", "io"), ("group", "compute"))] == 60
    assert links[(("group", "compute"), merge)] == 60
    assert not any(("group", "thumbnails") in link for link in links)
    assert view.edges() == {
        (up, info.uid)
        for info in m.tasks()
        for up in info.upstream
        if info.uid in view.nodes() and up in view.nodes()
    }
    check_readable(view)


def test_5000_tasks_collapse_into_30_nodes(shown):
    m, view = shown(5000)
    assert len(m.tasks()) == 5000
    shots = {f"shot {i:02d}" for i in range(24)}
    assert set(view.group_nodes()) == shots | {"ingest", "encode", "checks", "cache"}
    names = by_name(m)
    assert set(view.nodes()) == {names["publish"], names["report"]}
    links = view.links()
    for shot in shots:
        assert links[(("group", "ingest"), ("group", shot))] == 180
        assert links[(("group", shot), ("group", "encode"))] == 180
    assert links[(("group", "encode"), ("group", "checks"))] == 24
    assert links[(("group", "checks"), ("task", names["publish"]))] == 24
    assert len(links) == 2 * 24 + 2 + 1
    groups = view.group_nodes()
    assert groups["ingest"].subtitle() == "396 done, 4 running"
    assert groups["shot 05"].subtitle() == "179 done, 1 failed"
    assert groups["encode"].subtitle() == "23 done, 1 failed"
    check_readable(view)


def shoot(size: int, path: str) -> None:
    """Render workload ``size`` in a 1200 x 760 view and save it to ``path``."""
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from bgtasks import BackgroundTaskManager

    app = QApplication.instance() or QApplication([])
    gate = threading.Event()
    m = BackgroundTaskManager(start_processing=True, max_threads=HELD + 2)
    try:
        WORKLOADS[size](m, gate)

        class Bot:  # the part of qtbot that settle uses
            @staticmethod
            def waitUntil(check, timeout):  # noqa: N802 - qtbot's name
                while not check():
                    loop = QEventLoop()
                    QTimer.singleShot(20, loop.quit)
                    loop.exec()

        settle(Bot, m)
        view = TaskGraphView(m)
        view.resize(1200, 760)
        view.show()
        view.refresh()
        for _ in range(20):
            app.processEvents()
        view.grab().save(path)
        print(size, "tasks:", len(view.node_items()), "nodes, zoom", round(view.zoom(), 3),
              "note:", view.fit_note() or "-")  # fmt: skip
        view.close()
    finally:
        gate.set()
        m.shut_down(timeout=5)


TIMELINE: list[tuple[float, float]] = []  # stall(): (tick, next tick), for profiling


def stall(size: int, batch: int = 100, every_ms: int = 20, shown: bool = True) -> dict[str, float]:
    """The UI's worst stall while ``size`` tasks (chains of 10) are added, ``batch``
    every ``every_ms`` ms, and finish, with the view shown: the largest gap
    between two ticks of a 1 ms timer, from the first batch until the view
    shows every task.  ``shown=False``: the same flood with no view at all
    (until every task ended), the baseline."""
    import gc
    import time

    from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from bgtasks import BackgroundTaskManager

    app = QApplication.instance() or QApplication([])
    m = BackgroundTaskManager(start_processing=True, max_threads=8)
    view = TaskGraphView(m)
    view.resize(1200, 760)
    if shown:
        view.show()
    else:
        view.deleteLater()
        view = None
    for _ in range(10):
        app.processEvents()
    gaps: list[float] = []
    submits: list[float] = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        TIMELINE.append((last[0], now))
        last[0] = now

    ticker = QTimer()
    ticker.setTimerType(Qt.TimerType.PreciseTimer)
    ticker.setInterval(1)
    ticker.timeout.connect(tick)
    added = []

    def submit():
        start = time.perf_counter()
        for _ in range(min(batch, size - len(added))):
            i = len(added)
            up = [added[-1]] if i % 10 else None
            added.append(m.options(name=f"t{i}", upstream_task_ids=up).submit(ok).uid)
        submits.append(time.perf_counter() - start)
        if len(added) >= size:
            feeder.stop()

    feeder = QTimer()
    feeder.setInterval(every_ms)
    feeder.timeout.connect(submit)
    last[0] = time.perf_counter()
    ticker.start()
    feeder.start()
    started = time.perf_counter()

    def done():
        if view is None:
            return len(added) >= size and all(i.state.is_terminal for i in m.tasks())
        laying = getattr(view, "is_laying_out", lambda: False)()
        return len(added) >= size and len(view.nodes()) == size and not laying

    while not done():
        loop = QEventLoop()
        QTimer.singleShot(5, loop.quit)
        loop.exec()
    took = time.perf_counter() - started
    ticker.stop()
    m.shut_down(timeout=5)
    result = {
        "tasks": size,
        "worst_gap_ms": max(gaps) * 1000,
        "p99_gap_ms": sorted(gaps)[int(len(gaps) * 0.99)] * 1000,
        "worst_submit_ms": max(submits) * 1000,
        "layouts": view.layout_count if view is not None else 0,
        "seconds": took,
    }
    # Deleted now, on this thread: left to the collector, the view and the
    # manager of this run were deleted inside the next run's flood (a 30 ms gap).
    if view is not None:
        view.close()
        view.deleteLater()
    m.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    return result


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] in (["--stall"], ["--baseline"]):
        import gc

        stall(300, shown=sys.argv[1] == "--stall")  # warm-up: first-use costs (enums, fonts)
        if "--freeze" in sys.argv:  # what an app does once started (the demo does)
            gc.freeze()
        for n in [a for a in sys.argv[2:] if a.isdigit()] or ("1000", "2000", "3000"):
            print(stall(int(n), shown=sys.argv[1] == "--stall"))
        raise SystemExit
    out = sys.argv[1] if len(sys.argv) > 1 else "docs/images"
    for n in (30, 300, 5000):
        shoot(n, f"{out}/graph-{n}.png")
