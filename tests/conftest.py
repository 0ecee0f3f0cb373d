"""Test setup: headless Qt, and a guard that no test leaks a live manager."""

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import

import pytest  # noqa: E402

from bgtasks import BackgroundTaskManager  # noqa: E402


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
