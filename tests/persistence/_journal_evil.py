"""A module a tampered journal names: importing it has a side effect (a file appears)."""

from __future__ import annotations

import os

_marker = os.environ.get("BGTASKS_EVIL_MARKER")
if _marker:
    with open(_marker, "a", encoding="utf-8") as out:
        out.write("imported\n")


def boom(path: str) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write("called\n")
