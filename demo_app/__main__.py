"""Run the demo: ``python -m demo_app [FOLDER] [--screenshot FILE] [--quit-after SECONDS]``."""

from __future__ import annotations

import argparse
import gc
import os
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from .window import DemoWindow

#: With --screenshot and no --quit-after, give up waiting for the run after this long.
SCREENSHOT_DEADLINE = 120.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo_app", description=__doc__)
    parser.add_argument(
        "folder",
        nargs="?",
        help="a folder of images to browse (default: generate sample images)",
    )
    parser.add_argument(
        "--screenshot",
        metavar="FILE",
        help="save the window as a PNG once the pipeline has ended and the first screen of "
        "thumbnails is shown (or after --quit-after), then exit",
    )
    parser.add_argument(
        "--quit-after", type=float, metavar="SECONDS", help="quit after this many seconds"
    )
    parser.add_argument("--seed", type=int, default=0, help="workload seed (default 0)")
    parser.add_argument("--threads", type=int, default=4, help="worker threads (default 4)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    if args.folder is not None and not os.path.isdir(args.folder):
        print(f"not a folder: {args.folder}", file=sys.stderr)
        return 2
    window = DemoWindow(seed=args.seed, max_threads=args.threads, folder=args.folder)
    window.show()
    # Start-up is over: move what it allocated (Qt's wrappers, modules) out of
    # the collector's way, so a full collection during a flood of tasks walks
    # only the objects made since (see README, "A responsive UI thread").
    gc.collect()
    gc.freeze()
    exit_code = 0

    def screenshot() -> None:
        nonlocal exit_code
        if not window.grab().save(args.screenshot, "PNG"):
            print(f"could not write {args.screenshot}", file=sys.stderr)
            exit_code = 1
        quit_now()

    def quit_now() -> None:
        # QApplication.quit() closes the windows: no close-guard question for a scripted quit.
        window.shut_down()
        app.quit()

    def give_up() -> None:
        nonlocal exit_code
        print(f"pipeline or thumbnails not done after {SCREENSHOT_DEADLINE:.0f} s", file=sys.stderr)
        exit_code = 1
        screenshot()

    if args.screenshot and args.quit_after is None:
        waiting = {"pipeline", "thumbnails"}
        shot = QTimer(singleShot=True, interval=300)  # let the last updates paint
        shot.timeout.connect(screenshot)

        def done(what: str) -> None:
            waiting.discard(what)
            if not waiting:
                window.show_first_failure()  # a traceback in the monitor
                shot.start()

        window.run_finished.connect(lambda: done("pipeline"))
        window.thumbnails_shown.connect(lambda: done("thumbnails"))
        QTimer.singleShot(int(SCREENSHOT_DEADLINE * 1000), give_up)
    elif args.quit_after is not None:
        QTimer.singleShot(int(args.quit_after * 1000), screenshot if args.screenshot else quit_now)

    app.exec()
    window.shut_down()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
