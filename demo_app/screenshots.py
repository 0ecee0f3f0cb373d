"""Take the documentation's screenshots: ``python -m demo_app.screenshots [FOLDER]``.

Writes ``widget-*.png`` (each widget over a small, held workload) and
``demo-*.png`` (the demo window at 1280x800 with the task monitor docked)
into FOLDER (default ``docs/images``).  Run it under a real display or Xvfb
(``xvfb-run -a -s "-screen 0 1280x800x24" python -m demo_app.screenshots``):
the offscreen platform draws no window frames and no screen to grab.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QStatusBar, QWidget

from bgtasks import BackgroundTaskManager, TaskState, current_task
from bgtasks.widgets import (
    CloseGuard,
    TaskMonitor,
    TaskProgressDialog,
    TaskStatusIndicator,
    ask_with_message_box,
)

from .window import DemoWindow


def wait(ms: int) -> None:
    """Run the event loop for ``ms`` milliseconds."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Run the event loop until ``condition()`` holds."""
    for _ in range(int(timeout * 20)):
        if condition():
            return
        wait(50)
    raise TimeoutError("the screenshot's scene did not come about")


def save(widget: QWidget, folder: str, name: str) -> None:
    path = os.path.join(folder, name)
    if not widget.grab().save(path, "PNG"):
        raise OSError(f"cannot write {path}")
    print(path)


# ------------------------------------------------------------------ a held workload


def hold(gate: threading.Event, fraction: float, message: str) -> str:
    """Report ``fraction`` and ``message``, then wait for ``gate`` (or a stop)."""
    task = current_task()
    task.report_progress(fraction, message=message)
    while not gate.wait(0.02):
        task.raise_if_cancelled()
    return "done"


def done(n: int) -> int:
    return n


def broken(name: str) -> None:
    raise OSError(f"cannot read {name}: permission denied")


def held_workload(manager: BackgroundTaskManager, gate: threading.Event) -> None:
    """Tasks in every state: completed, failed, running at various fractions, queued."""
    photos, exports = manager.next_group_id(), manager.next_group_id()
    manager.set_group_name(photos, "photos")
    manager.set_group_name(exports, "export")
    for n in range(4):
        manager.options(group=photos, name=f"import IMG_{n:04d}.jpg").submit(done, n)
    manager.options(group=photos, name="import IMG_0004.jpg").submit(broken, "IMG_0004.jpg")
    for n, fraction in enumerate((0.8, 0.45, 0.2)):
        manager.options(group=exports, name=f"export page {n + 1}").submit(
            hold, gate, fraction, f"writing page {n + 1}"
        )
    for n in range(3, 6):
        manager.options(group=exports, name=f"export page {n + 1}").submit(hold, gate, 0.0, "")


def scene_ready(manager: BackgroundTaskManager) -> bool:
    counts = manager.state_counts()
    return counts.get(TaskState.RUNNING, 0) == 3 and counts.get(TaskState.FAILED, 0) == 1


# ------------------------------------------------------------------ the shots


def widget_shots(folder: str) -> None:
    gate = threading.Event()
    window = QMainWindow()
    window.setWindowTitle("Photos")
    manager = BackgroundTaskManager(window, max_threads=3)
    manager.task_failed.connect(lambda *_: None)  # the failure is shown: no log line for it
    try:
        held_workload(manager, gate)
        manager.start_processing()
        wait_for(lambda: scene_ready(manager))
        for grouped, name in ((False, "widget-monitor.png"), (True, "widget-monitor-grouped.png")):
            monitor = TaskMonitor(manager, grouped=grouped)
            monitor.resize(1080, 460)
            monitor.show()
            wait_for(lambda m=monitor: m.model.task_count() == 11)  # type: ignore[misc]
            failed = [info.uid for info in manager.tasks(state=TaskState.FAILED)]
            monitor.select_uid(failed[0])
            wait(300)
            save(monitor, folder, name)
            monitor.close()
        bar = QStatusBar()
        bar.showMessage("Ready")
        indicator = TaskStatusIndicator(manager)
        bar.addPermanentWidget(indicator)
        bar.resize(520, bar.sizeHint().height())
        bar.show()
        wait(300)
        save(bar, folder, "widget-indicator.png")
        bar.close()
        guard_shot(window, manager, folder)
        dialog_shots(window, manager, folder)
    finally:
        gate.set()
        manager.shut_down(timeout=5)
        window.close()


def guard_shot(window: QMainWindow, manager: BackgroundTaskManager, folder: str) -> None:
    """The close guard's question, grabbed while it is open."""
    guard = CloseGuard(window, manager)

    def grab_question() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(100, grab_question)
            return
        save(box, folder, "widget-close-guard.png")
        box.reject()  # "Stay"

    window.resize(640, 360)
    window.show()
    wait(200)
    QTimer.singleShot(300, grab_question)
    ask_with_message_box(window, guard.important_tasks())
    guard.uninstall()


def dialog_shots(window: QMainWindow, manager: BackgroundTaskManager, folder: str) -> None:
    """The progress dialog while the export runs, and after one task failed."""
    exports = next(g for g, name in manager.group_names().items() if name == "export")
    dialog = TaskProgressDialog(
        manager, group=exports, parent=window, title="Export", text="Exporting 6 pages…"
    )
    dialog.open()
    wait(400)
    save(dialog, folder, "widget-progress-dialog.png")
    dialog.reject()  # Cancel: the pages stop
    wait_for(lambda: not dialog.isVisible())
    photos = next(g for g, name in manager.group_names().items() if name == "photos")
    failed = TaskProgressDialog(
        manager, group=photos, parent=window, title="Import", text="Importing 5 photos…"
    )
    failed.open()
    wait_for(lambda: failed.button.text() == "&Close")
    failed.failures_view.topLevelItem(0).setExpanded(True)
    wait(300)
    save(failed, folder, "widget-progress-dialog-failures.png")
    failed.done(0)


def demo_shots(folder: str) -> None:
    """The demo at 1280x800, dock open: thumbnails, pipeline, and an export under way."""
    window = DemoWindow(seed=0, max_threads=4)
    window.resize(1280, 800)
    window.show()
    try:
        finished = {"run": False, "thumbnails": False}
        window.run_finished.connect(lambda: finished.update(run=True))
        window.thumbnails_shown.connect(lambda: finished.update(thumbnails=True))
        wait_for(lambda: all(finished.values()), timeout=120)
        window.show_first_failure()
        wait(400)
        save(window, folder, "demo-thumbnails.png")
        window.tabs.setCurrentWidget(window.pipeline_scroll)
        wait(300)
        save(window, folder, "demo-pipeline.png")
        window.tabs.setCurrentIndex(0)
        dialog = window.export_images()
        assert dialog is not None
        wait(3000)
        screen = QApplication.primaryScreen().grabWindow(0)  # the window and its dialog
        path = os.path.join(folder, "demo-export.png")
        screen.copy(window.frameGeometry()).save(path, "PNG")
        print(path)
        dialog.cancel()
        wait_for(dialog.is_over)
        dialog.done(0)  # sample_013.png failed: it would stay open
    finally:
        window.shut_down()
        window.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo_app.screenshots", description=__doc__)
    parser.add_argument("folder", nargs="?", default=os.path.join("docs", "images"))
    args = parser.parse_args(argv)
    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    os.makedirs(args.folder, exist_ok=True)
    widget_shots(args.folder)
    demo_shots(args.folder)
    app.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
