"""The demo application: a full run, stopping a group, pausing, restarting, retrying,
the thumbnails tab, the task monitor dock and status indicator, the CLI."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PySide6 import QtGui
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPalette, QPixmap, QTextDocument
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QDialog,
    QLabel,
    QTabWidget,
    QWidget,
)

from bgtasks import TaskState
from bgtasks.widgets import CloseChoice
from demo_app import DemoWindow
from demo_app.export import EXPORT_SIZE, FAILING_SAMPLE, export_name
from demo_app.samples import IMAGE_SUFFIXES, N_SAMPLES
from demo_app.workload import GROUPS, build_workload, expected_chain_result

REPO = Path(__file__).resolve().parents[2]
PLAN = build_workload(seed=0)
#: Stopping chain step 3 stops steps 3..10 and the fan-in.
CHAIN_STOPPED = 10 - 2 + 1


def planned(group: str) -> tuple[int, int]:
    """(tasks, expected failures) of a group in the seed-0 workload."""
    specs = [spec for spec in PLAN if spec.group == group]
    return len(specs), sum(spec.fails for spec in specs)


def make_window(qtbot, **kwargs) -> DemoWindow:
    win = DemoWindow(seed=0, max_threads=8, **kwargs)
    # pytest-qt closes the window before the fixture ends: no question then.
    win.close_guard.ask = lambda *_: CloseChoice.CANCEL_AND_QUIT
    qtbot.addWidget(win)
    return win


@pytest.fixture
def window(qtbot):
    win = make_window(qtbot)
    yield win
    win.shut_down()


def wait_until_finished(qtbot, win: DemoWindow) -> None:
    qtbot.waitUntil(lambda: win.run.finished_at is not None, timeout=10_000)


def assert_all_accounted_for(win: DemoWindow) -> dict[str, dict[str, int]]:
    shown = {name: win.shown_counts(name) for name in GROUPS}
    for name, counts in shown.items():
        assert counts["tasks"] == planned(name)[0], name
        assert counts["waiting"] == counts["running"] == 0, name
        assert counts["completed"] + counts["failed"] + counts["stopped"] == counts["tasks"], name
    assert win.pipeline.overall.value() == win.pipeline.overall.maximum() == len(PLAN)
    return shown


def test_full_run_shows_every_outcome(qtbot, window):
    wait_until_finished(qtbot, window)
    shown = assert_all_accounted_for(window)
    for name in GROUPS:
        tasks, failures = planned(name)
        assert shown[name]["failed"] == failures, name
        assert shown[name]["stopped"] == 0, name
        assert shown[name]["completed"] == tasks - failures, name
        assert window.pipeline.rows[name].status.text() == "finished"
    assert shown["compute"]["failed"] > shown["io"]["failed"] > 0  # the cascade

    # The failures table lists exactly the deliberate failures, cascades marked as such.
    table = window.pipeline.failures_table
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert set(rows) == {spec.label for spec in PLAN if spec.fails}
    for spec in PLAN:
        if (
            spec.fails
            and spec.group == "compute"
            and spec.upstream[0] in {s.key for s in PLAN if s.fails}
        ):
            assert rows[spec.label].startswith("via read "), spec.label

    # The chain passed its dict along all ten steps and the fan-in merged the side inputs.
    assert window.run.chain_result == expected_chain_result()
    assert window.pipeline.chain_result_label.text().startswith("Fan-in result")
    assert "as expected" in window.pipeline.chain_result_label.text()
    assert "total = 55" in window.pipeline.chain_result_label.text()
    assert window.pipeline.chain_progress.text() == "Steps completed: 10 / 10"
    assert f"all {len(PLAN)} pipeline tasks ended" in window.pipeline.status_label.text()
    # Every count says what it counts: the pipeline's tasks, or all of the manager's.
    assert window.pipeline.overall.text() == f"{len(PLAN)} / {len(PLAN)} pipeline tasks ended"
    assert (
        window.statusBar()
        .currentMessage()
        .startswith(f"Pipeline run 1: all {len(PLAN)} pipeline tasks ended in ")
    )
    assert window.monitor_dock.windowTitle() == "All background tasks"
    assert window.indicator.toolTip().startswith("All background tasks")
    tabs = window.pipeline.bottom_tabs
    failed = sum(spec.fails for spec in PLAN)
    assert tabs.tabText(tabs.indexOf(table)) == f"Failed pipeline tasks ({failed})"

    # The chain's steps report progress (and wait with the cancellable current_task().sleep).
    info = window.manager.info(window.run.uid_by_key["chain/step03"])
    assert info.progress == 1.0 and info.message == "step 3"


def test_stop_group_stops_it_and_its_downstream_tasks(qtbot, window):
    window.pipeline.group_combo.setCurrentText("io")
    window.pipeline.stop_button.click()
    wait_until_finished(qtbot, window)
    shown = assert_all_accounted_for(window)
    assert shown["io"]["stopped"] > 0
    # A parse whose read was stopped can never run: it is stopped too.
    run = window.run
    for i in range(60):
        read, parse = run.uid_by_key[f"io/{i:03d}"], run.uid_by_key[f"compute/{i:03d}"]
        if run.outcome[read] == "stopped":
            assert run.outcome[parse] == "stopped", i
    assert shown["compute"]["stopped"] >= shown["io"]["stopped"]
    # Groups without a link to io are left alone.
    for name in ("render", "chain"):
        assert shown[name]["stopped"] == 0
        assert shown[name]["failed"] == planned(name)[1]


def test_pause_holds_queued_tasks_until_resumed(qtbot, window):
    window.pipeline.pause_button.click()
    assert window.pipeline.pause_button.text() == "Res&ume"
    run, manager = window.run, window.manager
    # Tasks already running finish; nothing new starts.
    qtbot.waitUntil(
        lambda: all(manager.task_state(uid) is not TaskState.RUNNING for uid in run.outstanding),
        timeout=5_000,
    )
    assert run.outstanding, "the run ended although processing was paused"
    assert {manager.task_state(uid) for uid in run.outstanding} <= {
        TaskState.PENDING,
        TaskState.QUEUED,
        TaskState.COMPLETED,  # finished, report under way
        TaskState.FAILED,
        None,
    }
    window.pipeline.pause_button.click()
    assert window.pipeline.pause_button.text() == "Pa&use"
    wait_until_finished(qtbot, window)
    shown = assert_all_accounted_for(window)
    assert sum(counts["stopped"] for counts in shown.values()) == 0


def test_restart_ignores_the_previous_run(qtbot, window):
    qtbot.waitUntil(lambda: window.run.totals()["completed"] >= 20, timeout=5_000)
    window.pipeline.restart_button.click()
    assert window.run.number == 2
    wait_until_finished(qtbot, window)
    shown = assert_all_accounted_for(window)
    for name in GROUPS:
        tasks, failures = planned(name)
        assert (shown[name]["completed"], shown[name]["failed"]) == (tasks - failures, failures)
    assert window.run.chain_result == expected_chain_result()


def test_a_running_task_stops_at_once(qtbot, window):
    """Chain steps wait with current_task().sleep: a stop ends them while running."""
    run, manager = window.run, window.manager
    uid = run.uid_by_key["chain/step03"]
    qtbot.waitUntil(lambda: manager.task_state(uid) is TaskState.RUNNING, timeout=5_000)
    manager.stop_task(uid, stop_upstream=False)
    wait_until_finished(qtbot, window)
    assert manager.task_state(uid) is TaskState.CANCELLED
    assert (manager.info(uid).progress or 0.0) < 1.0  # it did not run to its end
    assert run.outcome[uid] == "stopped"
    assert run.outcome[run.uid_by_key["chain/step02"]] == "completed"
    assert run.outcome[run.uid_by_key["chain/step04"]] == "stopped"  # downstream
    assert window.shown_counts("chain")["stopped"] == CHAIN_STOPPED
    assert "Fan-in result: stopped" in window.pipeline.chain_result_label.text()


def test_retry_failed_runs_the_failures_again(qtbot, window):
    wait_until_finished(qtbot, window)
    run = window.run
    failed = {uid for uid, outcome in run.outcome.items() if outcome == "failed"}
    attempts = {uid: window.manager.info(uid).attempts for uid in failed}
    window.pipeline.retry_button.click()
    assert run.finished_at is None and run.outstanding == failed
    wait_until_finished(qtbot, window)
    # The deliberate failures fail again; everything else stays as it was.
    shown = assert_all_accounted_for(window)
    for name in GROUPS:
        tasks, failures = planned(name)
        assert (shown[name]["completed"], shown[name]["failed"]) == (tasks - failures, failures)
    assert window.pipeline.failures_table.rowCount() == len(failed)
    ran_again = [uid for uid in failed if window.manager.info(uid).attempts > attempts[uid]]
    assert ran_again, "no failed task ran again"


def test_thumbnails_tab_shows_the_generated_samples(qtbot, window):
    assert window.tabs.currentIndex() == 0 and window.tabs.tabText(0) == "T&humbnails"
    window.show()
    qtbot.waitExposed(window)
    with qtbot.waitSignal(window.thumbnails_shown, timeout=10_000):
        pass
    model = window.thumbnail_model
    assert model.rowCount() == N_SAMPLES
    rows = window.visible_thumbnail_rows()
    assert 4 <= len(rows) < N_SAMPLES
    for row in rows:
        pixmap = model.data(model.index(row, 0), Qt.ItemDataRole.DecorationRole)
        assert isinstance(pixmap, QPixmap) and not pixmap.isNull(), row
        assert max(pixmap.width(), pixmap.height()) == 128, row
    assert model.data(model.index(0, 0)) == "sample_000.png"


def test_monitor_dock_and_status_indicator(qtbot, window):
    window.show()
    qtbot.waitExposed(window)
    monitor = window.monitor
    assert window.monitor_dock.isAncestorOf(monitor)
    assert window.monitor_dock.isAncestorOf(monitor.summary_label)
    qtbot.waitUntil(lambda: monitor.model.rowCount() > 0, timeout=5_000)

    def names() -> set[str]:  # the model inserts rows in time-capped batches
        return {monitor.model.task_info(uid).name for uid in monitor.model.uids()}

    qtbot.waitUntil(lambda: {"fan-in", "step 1", "samples 0-24"} <= names(), timeout=5_000)
    assert window.statusBar().isAncestorOf(window.indicator)
    window.monitor_dock.close()
    assert not window.monitor_dock.isVisible()
    window.indicator.activate()
    assert window.monitor_dock.isVisible()


def test_graph_tab_draws_the_chain(qtbot, window):
    assert window.graph_view is None  # built on demand
    window.tabs.setCurrentIndex(window.tabs.indexOf(window.graph_tab))
    graph = window.graph_view
    assert graph is not None and graph.isVisibleTo(window)
    run = window.run
    step1, step2 = run.uid_by_key["chain/step01"], run.uid_by_key["chain/step02"]
    graph.refresh()
    assert {step1, step2} <= set(graph.nodes()) and (step1, step2) in graph.edges()
    window.show_chain_in_graph()  # readable: not the whole graph fitted in the view
    assert graph.zoom() == pytest.approx(0.6)


def test_close_guard_asks_while_pipeline_tasks_are_live(qtbot, window):
    asked = []
    window.close_guard.ask = lambda win, tasks: asked.append(tasks) or CloseChoice.STAY
    window.show()
    qtbot.waitExposed(window)
    assert not window.close()
    assert asked and window.isVisible()
    wait_until_finished(qtbot, window)
    # Only the pipeline counts: once it has ended, the window closes without a question.
    qtbot.waitUntil(lambda: not window.close_guard.important_tasks(), timeout=5_000)
    assert window.close()
    assert len(asked) == 1


def test_folder_argument_browses_its_images(qtbot, tmp_path):
    from demo_app.samples import draw_sample

    for n in range(3):
        assert draw_sample(n, 64).save(str(tmp_path / f"pic{n}.png"))
    (tmp_path / "notes.txt").write_text("not an image")
    win = make_window(qtbot, folder=tmp_path)
    try:
        assert win.thumbnail_model.paths() == [str(tmp_path / f"pic{n}.png") for n in range(3)]
        win.show()
        with qtbot.waitSignal(win.thumbnails_shown, timeout=10_000):
            pass
    finally:
        win.shut_down()


@pytest.mark.slow
def test_cli_screenshot(tmp_path):
    png = tmp_path / "demo.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-m", "demo_app", "--screenshot", str(png), "--threads", "8"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


# ---------------------------------------------------------------- what a person sees (issue 14)

DEMO_DIR = REPO / "demo_app"


def _plain(label: QLabel) -> str:
    """The text a label shows: rich text rendered to plain, mnemonics' & removed."""
    text = label.text()
    rich = label.textFormat() == Qt.TextFormat.RichText or (
        label.textFormat() == Qt.TextFormat.AutoText and QtGui.Qt.mightBeRichText(text)
    )
    if rich:
        doc = QTextDocument()
        doc.setDefaultFont(label.font())
        doc.setHtml(text)
        return doc.toPlainText()
    if label.buddy() is not None:
        text = text.replace("&&", "\0").replace("&", "").replace("\0", "&")
    return text


def _clipped_labels(root: QWidget) -> list[str]:
    """Visible labels of ``root`` whose text does not fit their width (or height, wrapped)."""
    clipped = []
    for label in root.findChildren(QLabel):
        if not label.isVisible() or not label.text():
            continue
        hidden_by = _clipping_ancestor(label)
        if hidden_by is not None:
            clipped.append(f"{_plain(label)!r}: cut off by a {type(hidden_by).__name__}")
            continue
        rect = label.contentsRect()
        if label.wordWrap():
            needed = label.heightForWidth(label.width())
            if needed > label.height():
                clipped.append(f"{_plain(label)!r}: {needed} px high in {label.height()}")
            continue
        metrics = label.fontMetrics()
        for line in _plain(label).splitlines():
            advance = metrics.horizontalAdvance(line)
            if advance > rect.width():
                clipped.append(f"{line!r}: {advance} px wide in {rect.width()}")
    return clipped


def _clipping_ancestor(widget: QWidget) -> QWidget | None:
    """The first ancestor whose rectangle does not hold all of ``widget`` (a scroll
    area's viewport, say), or None."""
    rect = widget.rect()
    parent = widget.parentWidget()
    while parent is not None and not widget.isWindow():
        top_left = widget.mapTo(parent, rect.topLeft())
        if not parent.rect().contains(QRect(top_left, rect.size())):
            return parent
        parent = parent.parentWidget()
    return None


def _luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * channel(colour.redF())
        + 0.7152 * channel(colour.greenF())
        + 0.0722 * channel(colour.blueF())
    )


def contrast(fg: QColor, bg: QColor) -> float:
    """The WCAG 2 contrast ratio of two colours (1 to 21)."""
    light, dark = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_formula():
    assert contrast(QColor("black"), QColor("white")) == pytest.approx(21)
    assert contrast(QColor("#777777"), QColor("white")) == pytest.approx(4.48, abs=0.01)


@pytest.fixture
def shown_window(qtbot):
    """The demo at 1280x800 with the dock open, its run over and its thumbnails shown."""
    win = make_window(qtbot)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.thumbnails_shown, timeout=10_000):
        pass
    wait_until_finished(qtbot, win)
    assert win.monitor_dock.isVisible() and not win.monitor_dock.isFloating()
    assert (win.width(), win.height()) == (1280, 800)
    yield win
    win.shut_down()


def test_nothing_is_clipped_at_1280x800_with_the_dock_open(qtbot, shown_window):
    win = shown_window
    assert win.show_first_failure()  # a traceback in the dock's pane
    for index in range(2):  # Thumbnails, Pipeline
        win.tabs.setCurrentIndex(index)
        qtbot.waitUntil(lambda: win.tabs.currentWidget().isVisible())
        QApplication.processEvents()
        assert _clipped_labels(win) == [], win.tabs.tabText(index)
    # The pipeline fits beside the dock: no sideways scrolling, its widest row included.
    scroll = win.pipeline_scroll
    assert win.tabs.currentWidget() is scroll
    assert not scroll.horizontalScrollBar().isVisible()
    assert win.pipeline.minimumSizeHint().width() <= scroll.viewport().width()
    # The failures table shows its Error column whole; the dock's table and traceback too.
    win.pipeline.bottom_tabs.setCurrentWidget(win.pipeline.failures_table)
    QApplication.processEvents()
    for table in (win.pipeline.failures_table, win.pipeline.log_table, win.monitor.view):
        assert not table.horizontalScrollBar().isVisible(), table.accessibleName()
    table = win.pipeline.failures_table
    metrics = table.fontMetrics()
    for row in range(table.rowCount()):
        text = table.item(row, 2).text()
        assert metrics.horizontalAdvance(text) < table.columnWidth(2), text
    panel = win.monitor.error_panel
    assert panel.toPlainText().startswith("Traceback")
    assert not panel.horizontalScrollBar().isVisible()
    assert _clipped_labels(win.statusBar()) == []


def test_the_docks_columns_show_their_texts_whole(qtbot, shown_window):
    """Name, Group, State and Message of every task fit their columns in the dock."""
    win = shown_window
    view, model = win.monitor.view, win.monitor.model
    model.flush()
    metrics = view.fontMetrics()
    shown = [c for c in range(model.columnCount()) if not view.isColumnHidden(c)]
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in shown]
    assert headers == ["Name", "Group", "State", "Progress", "Message"]
    assert not view.horizontalScrollBar().isVisible()
    assert sum(view.columnWidth(c) for c in shown) <= view.viewport().width()
    too_wide = set()
    for row in range(model.rowCount()):
        for column in shown:
            text = model.index(row, column).data()
            if isinstance(text, str) and text and headers[shown.index(column)] != "Progress":
                # a cell has a few pixels of padding on each side
                if metrics.horizontalAdvance(text) + 8 > view.columnWidth(column):
                    too_wide.add(f"{headers[shown.index(column)]}: {text!r}")
    assert model.rowCount() > 300 and too_wide == set()
    # "cancelling" is the widest state, "export sample_000.png" the widest name.
    assert metrics.horizontalAdvance("cancelling") + 8 <= view.columnWidth(shown[2])


def _mnemonics(window: QWidget) -> list[str]:
    """The Alt+letter keys of what is visible now: buttons, buddied labels, tabs."""
    keys = []

    def key(text: str) -> None:
        found = re.search(r"&([^&])", text.replace("&&", ""))
        if found:
            keys.append(found.group(1).lower())

    for button in window.findChildren(QAbstractButton):
        if button.isVisible():
            key(button.text())
    for label in window.findChildren(QLabel):
        if label.isVisible() and label.buddy() is not None:
            key(label.text())
    for tabs in window.findChildren(QTabWidget):
        if tabs.isVisible():
            for index in range(tabs.count()):
                key(tabs.tabText(index))
    return keys


def test_keyboard_mnemonics_are_unique_on_each_tab(qtbot, shown_window):
    win = shown_window
    for index in range(win.tabs.count()):
        win.tabs.setCurrentIndex(index)
        QApplication.processEvents()
        keys = _mnemonics(win)
        assert len(keys) >= 8, keys
        twice = sorted(k for k, n in Counter(keys).items() if n > 1)
        assert twice == [], (win.tabs.tabText(index), keys)


def test_nothing_is_clipped_while_the_run_is_live_or_paused(qtbot):
    win = make_window(qtbot)
    try:
        win.resize(1280, 800)
        win.show()
        qtbot.waitExposed(win)
        win.tabs.setCurrentWidget(win.pipeline_scroll)
        # Texts change as tasks end, and a layout follows a text on the next turn of
        # the event loop: what is checked is that no label stays clipped.
        qtbot.waitUntil(lambda: _clipped_labels(win) == [], timeout=2000)
        win.toggle_pause()
        assert {row.status.text() for row in win.pipeline.rows.values()} <= {"paused", "finished"}
        qtbot.waitUntil(lambda: _clipped_labels(win) == [], timeout=2000)
        win.toggle_pause()
        wait_until_finished(qtbot, win)
    finally:
        win.shut_down()


def test_status_texts_have_a_contrast_of_at_least_4_5(qtbot, shown_window):
    win = shown_window
    win.tabs.setCurrentIndex(1)
    QApplication.processEvents()
    pairs: list[tuple[str, QColor, QColor]] = []

    def on_window(name: str, widget: QWidget, group: QPalette.ColorGroup | None = None) -> None:
        if group is None:
            group = (
                QPalette.ColorGroup.Active if widget.isEnabled() else QPalette.ColorGroup.Disabled
            )
        palette = widget.palette()
        pairs.append(
            (
                name,
                palette.color(group, widget.foregroundRole()),
                palette.color(QPalette.ColorGroup.Active, widget.backgroundRole()),
            )
        )

    bar = win.statusBar()
    on_window("status bar message", bar)
    for label in win.indicator.findChildren(QLabel):  # "Idle" is drawn disabled
        for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Disabled):
            on_window(f"indicator {label.text()!r} ({group.name})", label, group)
    pipeline = win.pipeline
    on_window("pipeline status", pipeline.status_label)
    on_window("chain result", pipeline.chain_result_label)
    on_window("monitor summary", win.monitor.summary_label)
    for name, row in pipeline.rows.items():
        for field in ("failed", "status"):
            on_window(f"{name} {field}", getattr(row, field))
    for table in (pipeline.log_table, pipeline.failures_table):
        base = table.palette().color(QPalette.ColorGroup.Active, QPalette.ColorRole.Base)
        colours = {
            table.item(r, c).foreground().color().name()
            for r in range(table.rowCount())
            for c in range(table.columnCount())
            if table.item(r, c) is not None and table.item(r, c).foreground().style()
        }
        assert colours, "no coloured text in the table"
        pairs += [(f"table text {colour}", QColor(colour), base) for colour in colours]
    # The failed counts are coloured (the run has failures): they are in the list.
    assert any(fg.name() == "#b3261e" for _, fg, _ in pairs)
    low = [
        f"{name}: {fg.name()} on {bg.name()} = {contrast(fg, bg):.2f}"
        for name, fg, bg in pairs
        if contrast(fg, bg) < 4.5
    ]
    assert low == []


def test_demo_imports_only_public_modules():
    found = []
    for path in sorted(DEMO_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
                names: list[str] = []
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
                names = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                if module.split(".")[0] != "bgtasks":
                    continue
                private = [part for part in module.split(".") if part.startswith("_")]
                private += [name for name in names if name.startswith("_")]
                if private:
                    found.append(f"{path.name}:{node.lineno}: {module} {names}")
    assert found == []
    assert len(list(DEMO_DIR.rglob("*.py"))) >= 5  # the check saw the demo's modules


def test_groups_have_names_and_task_names_match_the_screen(qtbot, shown_window):
    win = shown_window
    manager, run = win.manager, win.run
    assert {manager.group_name(gid) for gid in run.group_ids.values()} == set(GROUPS)
    assert manager.group_name(win.loader.group) == "thumbnails"
    names = {info.name for info in manager.tasks()}
    assert "samples 0-24" in names and "render frame_000" in names
    # A task named after an image file names one of the images on screen.
    shown = {os.path.basename(path) for path in win.thumbnail_model.paths()}
    images = {
        word
        for name in names
        for word in name.split()
        if os.path.splitext(word)[1].lower() in IMAGE_SUFFIXES
    }
    assert images <= shown, sorted(images - shown)[:5]
    # The monitor shows the groups by name.
    model = win.monitor.model
    model.flush()
    groups_shown = {model.index(row, 1).data() for row in range(model.rowCount())}
    assert {"render", "io", "compute", "chain", "samples"} <= groups_shown


def test_export_shows_a_progress_dialog_and_closes_on_success(qtbot, shown_window):
    win = shown_window
    paths = win.thumbnail_model.paths()[:6]
    dialog = win.export_images(paths)
    assert dialog is not None and dialog.isVisible()
    assert dialog.windowModality() is Qt.WindowModality.WindowModal
    assert dialog.heading.text().startswith("Exporting 6 images to ")
    group = dialog.group()
    assert win.manager.group_name(group) == "export 1"
    with qtbot.waitSignal(dialog.finished, timeout=10_000) as finished:
        pass
    assert finished.args == [QDialog.DialogCode.Accepted.value]
    folder = dialog.heading.text().removeprefix("Exporting 6 images to ").removesuffix("…")
    written = sorted(os.listdir(folder))
    assert written == [export_name(path) for path in paths]
    assert QImage(os.path.join(folder, written[0])).width() == EXPORT_SIZE
    assert win.statusBar().currentMessage() == "Export: 6 images (6 completed)"


def test_export_lists_a_failure_and_cancel_stops_the_rest(qtbot, shown_window):
    win = shown_window
    by_name = {os.path.basename(p): p for p in win.thumbnail_model.paths()}
    dialog = win.export_images([by_name["sample_012.png"], by_name[FAILING_SAMPLE]])
    qtbot.waitUntil(lambda: dialog.button.text() == "&Close", timeout=10_000)
    assert dialog.isVisible()
    assert dialog.heading.text() == "1 of 2 tasks failed (1 completed)."
    [failure] = dialog.failures()
    assert failure.name == f"export {FAILING_SAMPLE}"
    assert failure.error == (
        "cannot write sample_013.jpg: no space left on device (a deliberate failure)"
    )
    dialog.button.click()
    assert not dialog.isVisible() and dialog.result() == QDialog.DialogCode.Rejected.value

    everything = win.export_images()  # nothing selected: all of them
    assert len(everything.uids()) == N_SAMPLES
    qtbot.waitUntil(lambda: everything.counts()["completed"] >= 1, timeout=10_000)
    with qtbot.waitSignal(everything.finished, timeout=10_000) as finished:
        qtbot.keyClick(everything, Qt.Key.Key_Escape)
        assert everything.button.text() == "Cancelling…"
    assert finished.args == [QDialog.DialogCode.Rejected.value]
    states = Counter(win.manager.task_state(uid) for uid in everything.uids())
    assert set(states) <= {TaskState.COMPLETED, TaskState.CANCELLED, TaskState.FAILED}
    assert states[TaskState.CANCELLED] > N_SAMPLES // 2, states
