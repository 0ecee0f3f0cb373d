"""Fixtures of the widget tests."""

from __future__ import annotations

import threading

import pytest


@pytest.fixture
def gate():
    event = threading.Event()
    yield event
    event.set()  # whatever the test did, let every held task end
