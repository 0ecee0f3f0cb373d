"""Test setup: headless Qt, and a guard that no test leaks a live manager."""

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import

import pytest  # noqa: E402

from bgtasks import BackgroundTaskManager  # noqa: E402


@pytest.fixture(autouse=True)
def _close_schedulers(monkeypatch):
    """Close every scheduler a test made and left open (the core's tests drive
    bare schedulers): an open scheduler that used a timer keeps its timer thread
    for ever, and a crash dump of a suite with ~100 of them stopped at
    faulthandler's 100-thread limit before the crashing thread."""
    import weakref

    from bgtasks.core import Scheduler

    made: weakref.WeakSet[Scheduler] = weakref.WeakSet()
    init = Scheduler.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.add(self)

    monkeypatch.setattr(Scheduler, "__init__", recording_init)
    yield
    for scheduler in list(made):
        scheduler.close()


@pytest.fixture(autouse=True)
def _private_thumbnail_cache(monkeypatch, tmp_path_factory):
    """Thumbnail loaders keep a disk cache in $XDG_CACHE_HOME/thumbnails: every
    test (and the programs it starts) writes it to a temp dir, never ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


@pytest.fixture
def make_manager(qtbot):
    """Build managers that are shut down (with a short timeout) when the test ends."""
    made = []

    def make(**kwargs):
        manager = BackgroundTaskManager(**kwargs)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.shut_down(timeout=5)


# ---------------------------------------------------------------- crash evidence (issue 11)
#
# A native crash (segfault, abort, "Fatal Python error") kills pytest before it can
# report anything.  faulthandler then writes every thread's stack to
# $BGTASKS_CRASH_DIR/pytest-<pid>.log (default: .crash/ in the repository), which
# .ci/run prints when the suite fails.  The file's first line names the test that
# was running (kept up to date per test), so even a SIGKILL leaves that much.
#
# pytest's own faulthandler plugin points the (single) fatal-error handler at stderr
# in its pytest_configure; its per-test timeout dump (faulthandler_timeout) writes to
# stderr too, which CI shows anyway.  The hooks below run after that plugin's
# (trylast), so native crashes go to the file while the timeout dumps stay on stderr;
# and after its pytest_unconfigure (which disables the handler, or puts back the one
# -X faulthandler / PYTHONFAULTHANDLER installed on stderr) the file is installed
# again, so a crash during interpreter exit (Qt objects torn down, atexit hooks,
# threads still running) leaves its stacks as well.

import faulthandler  # noqa: E402
import glob  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CLEAN_EXIT = "pytest finished"  # the last note of a run that reached interpreter exit
_crash_file = None  # kept open until the process ends: faulthandler writes to its fd


def crash_dir() -> str:
    return os.environ.get("BGTASKS_CRASH_DIR") or os.path.join(_REPO, ".crash")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _forget_clean_runs(folder: str) -> None:
    """Delete the logs of earlier runs that exited cleanly (a note and no stacks)."""
    for old in glob.glob(os.path.join(folder, "pytest-*.log")):
        pid = os.path.basename(old)[len("pytest-") : -len(".log")]
        if not pid.isdigit() or _pid_alive(int(pid)):
            continue
        try:
            with open(old) as f:
                lines = f.read().splitlines()
            if len(lines) <= 1 and (not lines or _CLEAN_EXIT in lines[0]):
                os.remove(old)
        except OSError:
            pass


def _enable_crash_log() -> None:
    global _crash_file
    if _crash_file is None:
        folder = crash_dir()
        try:
            os.makedirs(folder, exist_ok=True)
            _forget_clean_runs(folder)
            _crash_file = open(os.path.join(folder, f"pytest-{os.getpid()}.log"), "w")  # noqa: SIM115
        except OSError as exc:  # e.g. a read-only checkout: pytest's handler on stderr stays
            print(f"conftest: no crash log in {folder}: {exc}", file=sys.stderr)
            return
    faulthandler.enable(file=_crash_file, all_threads=True)


def _note(text: str) -> None:
    """Replace the crash log's one line (stacks of a fatal error would follow it)."""
    f = _crash_file
    if f is None or f.closed:
        return
    try:
        f.seek(0)
        f.truncate()
        f.write(f"[{time.strftime('%H:%M:%S')} pid {os.getpid()}] {text}\n")
        f.flush()
    except OSError:
        pass


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    _enable_crash_log()
    _note("pytest started: " + " ".join(sys.argv))


def pytest_runtest_logstart(nodeid, location):
    _note(f"running {nodeid} (setup, call or teardown)")


def pytest_sessionfinish(session, exitstatus):
    _note(f"session finished (exit status {int(exitstatus)}); after the last test")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    _enable_crash_log()
    _note(f"{_CLEAN_EXIT}; interpreter exit (Qt teardown, atexit hooks)")
