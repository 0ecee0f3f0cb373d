"""The demo application: a full run, stopping a group, pausing, restarting, retrying,
the thumbnails tab, the task monitor dock and status indicator, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap

from bgtasks import TaskState
from bgtasks.widgets import CloseChoice
from demo_app import DemoWindow
from demo_app.samples import N_SAMPLES
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
    assert window.pipeline.pause_button.text() == "&Resume"
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
    assert window.pipeline.pause_button.text() == "&Pause"
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
    assert window.tabs.currentIndex() == 0 and window.tabs.tabText(0) == "&Thumbnails"
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
    assert window.monitor_dock.widget() is monitor
    qtbot.waitUntil(lambda: monitor.model.rowCount() > 0, timeout=5_000)

    def names() -> set[str]:  # the model inserts rows in time-capped batches
        return {monitor.model.task_info(uid).name for uid in monitor.model.uids()}

    qtbot.waitUntil(lambda: {"fan-in", "step 1", "generate samples 0-24"} <= names(), timeout=5_000)
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
