"""Where a journal lives by default."""

from __future__ import annotations

from pathlib import Path


def default_journal_path() -> Path:
    """``<per-user app data dir>/bgtasks-journal.sqlite3``.

    The directory is ``QStandardPaths.AppLocalDataLocation`` (on Linux
    ``~/.local/share/<organization>/<application>``), or
    ``~/.local/share/bgtasks`` when Qt cannot name one.  Any thread.
    """
    # Qt names the per-user directory; imported only when a path is asked for.
    from PySide6.QtCore import QStandardPaths

    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    base = Path(location) if location else Path.home() / ".local" / "share" / "bgtasks"
    return base / "bgtasks-journal.sqlite3"
