"""What the benchmarks share, one implementation each.

* the trivial task functions and a pure-Python spin;
* ``StallMeter``: the UI-stall meter (a 1 ms timer on the UI thread);
* ``Waiter``: the event loop until a benchmark's condition, with a watchdog;
* ``dispose``: shut a manager down and let Qt delete it;
* ``arguments``: the command line (``--quick``, ``--out``, ``--strict``);
* ``machine``, ``commit``, ``Clock``: the facts of a report's first line;
* ``verdict``, ``Verdicts``: a target's PASS/FAIL cell;
* ``Doc``, ``write_block``: the block a benchmark's ``--out`` rewrites in a markdown file;
* ``finish``: print the report, write it, say whether the targets passed, the exit status.

Import it after setting ``QT_QPA_PLATFORM``: it imports PySide6.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import PySide6
from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Qt, QTimer

import bgtasks

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


# --------------------------------------------------------------------------- task functions
# Module-level, so that every benchmark (and both systems of one) runs the same code, and
# process workers can import them.


def trivial(i: int) -> dict[str, int]:
    """The trivial task of bench_core, bench_control and bench_widgets."""
    return {"x": i}


def identity(i: int) -> int:
    """The trivial task of bench_processes and bench_dask: it returns its argument."""
    return i


def spin(seconds: float) -> float:
    """Run pure Python (holding the GIL) for ``seconds``."""
    end = perf_counter() + seconds
    while perf_counter() < end:
        pass
    return seconds


# --------------------------------------------------------------------------- the event loop


class StallMeter(QObject):
    """A 1 ms precise timer on the UI thread that records when it fires.

    The largest gap between its ticks is the worst UI stall: the longest time the UI
    thread did not get back to its event loop.
    """

    def __init__(self) -> None:
        super().__init__()
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(1)
        self.timer.timeout.connect(self._tick)
        self.ticks: list[float] = []
        self.started = 0.0

    def _tick(self) -> None:
        self.ticks.append(perf_counter())

    def start(self) -> None:
        self.ticks = []
        self.started = perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def worst_gap(self, t_from: float, t_to: float) -> tuple[float, float, float]:
        """(seconds, start, end) of the largest gap between the ticks in [t_from, t_to],
        the window's ends counted as ticks."""
        pts = [t_from, *(t for t in self.ticks if t_from <= t <= t_to), t_to]
        return max((b - a, a, b) for a, b in zip(pts, pts[1:], strict=False))

    def stall_ms(self, t_from: float, t_to: float) -> float:
        """The largest gap (ms) between ticks, and the window's ends, in [t_from, t_to]."""
        return 1000.0 * self.worst_gap(t_from, t_to)[0]

    def worst_since_ms(self, since: float = 0.0) -> float:
        """The largest gap (ms) between two ticks (``start()`` counts as one) that began at
        or after ``since``; 0.0 without one."""
        points = [t for t in (self.started, *self.ticks) if t >= since]
        return self.stall_ms(points[0], points[-1]) if points else 0.0


class Waiter:
    """Run the event loop until ``done()`` is called or ``timeout`` seconds pass."""

    def __init__(self) -> None:
        self.loop = QEventLoop()
        self.finished = False
        self.timed_out = False

    def done(self) -> None:
        self.finished = True
        self.loop.quit()

    def wait(self, timeout: float) -> bool:
        """True when ``done()`` was called (before or while waiting), False on the timeout."""
        if self.finished:
            return True
        watchdog = QTimer()
        watchdog.setSingleShot(True)

        def give_up() -> None:
            self.timed_out = True
            self.loop.quit()

        watchdog.timeout.connect(give_up)
        watchdog.start(int(timeout * 1000))
        self.loop.exec()
        watchdog.stop()
        return self.finished


def dispose(manager: Any, collect: bool = False) -> None:
    """Shut ``manager`` down, let Qt delete it (and, with ``collect``, collect garbage)."""
    manager.shut_down(timeout=5)
    manager.deleteLater()
    QCoreApplication.processEvents()
    if collect:
        gc.collect()


# --------------------------------------------------------------------------- command line


def arguments(
    doc: str | None,
    quick: str | None = None,
    out: str | None = "the tables",
    strict: bool = True,
) -> argparse.ArgumentParser:
    """The parser every benchmark starts from: its description is the docstring's first
    paragraph; ``--quick`` with the help ``quick``, ``--out FILE`` (writing ``out``) and
    ``--strict``, each when asked for."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    if quick:
        parser.add_argument("--quick", action="store_true", help=quick)
    if out:
        parser.add_argument("--out", metavar="FILE", help=f"write {out} into FILE (markdown)")
    if strict:
        parser.add_argument(
            "--strict",
            action="store_true",
            help="exit 1 when a target fails, not only on a wrong result",
        )
    return parser


# --------------------------------------------------------------------------- report facts


def machine(*more: str, qpa: bool = False) -> str:
    """The machine line: cores, Python, PySide6, bgtasks, then ``more``; with ``qpa``,
    the Qt platform plugin as well."""
    parts = [
        f"{os.cpu_count()} cores ({platform.machine()} {platform.system()})",
        f"Python {platform.python_version()}",
        f"PySide6 {PySide6.__version__}",
        f"bgtasks {bgtasks.__version__}",
    ]
    if qpa:
        parts.append(f"QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM', '')}")
    return ", ".join([*parts, *more])


def commit() -> str:
    """The checkout's short commit, or "unknown"."""
    try:
        out = subprocess.run(
            ["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


class Clock:
    """When the run started and the load average then."""

    def __init__(self) -> None:
        self.started = perf_counter()
        self.load_before = os.getloadavg()[0]

    def meta(self, **more: Any) -> dict[str, Any]:
        """The date, seconds since the start, load average (before, now), and ``more``."""
        return {
            "date": datetime.date.today().isoformat(),
            "elapsed": perf_counter() - self.started,
            "load": (self.load_before, os.getloadavg()[0]),
            **more,
        }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


class Verdicts:
    """Verdict cells of a targets table that remember whether every target passed."""

    def __init__(self, all_pass: bool = True) -> None:
        self.all_pass = all_pass

    def __call__(self, ok: bool) -> str:
        self.all_pass &= ok
        return verdict(ok)


# --------------------------------------------------------------------------- --out


def write_block(path: str, begin: str, end: str, report: str, new_file: str) -> None:
    """Put ``report`` between ``begin`` and ``end`` in ``path``; the rest of the file stays.

    A missing file starts as ``new_file``; a file without the markers gets the block appended.
    """
    block = f"{begin}\n{report}{end}"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = new_file
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


@dataclass(frozen=True)
class Doc:
    """The markdown file a benchmark's ``--out`` writes: its title, when it is new, and the
    markers of the block it rewrites (``note`` ends the begin marker's comment)."""

    name: str
    title: str
    note: str = ": edits inside are lost"

    @property
    def begin(self) -> str:
        return f"<!-- {self.name}:begin (written by benchmarks/{self.name}.py --out{self.note}) -->"

    @property
    def end(self) -> str:
        return f"<!-- {self.name}:end -->"

    def write(self, path: str, report: str) -> None:
        new_file = f"# {self.title}\n\n{self.begin}\n{self.end}\n"
        write_block(path, self.begin, self.end, report, new_file)


def finish(
    args: argparse.Namespace,
    doc: Doc,
    report: str,
    targets_ok: bool,
    wrong: str | None = None,
) -> int:
    """Print the report, write it to ``args.out``, say whether every target passed; the exit
    status: 2 with ``wrong`` (printed: a result was wrong), 1 with ``--strict`` when a target
    failed, else 0."""
    print()
    print(report)
    if args.out:
        doc.write(args.out, report)
        print(f"wrote {args.out}")
    print("all targets PASS" if targets_ok else "some targets FAIL (see the table above)")
    if wrong:
        print(wrong, file=sys.stderr)
        return 2
    return 1 if args.strict and not targets_ok else 0
