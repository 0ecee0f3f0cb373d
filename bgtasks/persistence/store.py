"""The SQL store: opening (creating, upgrading) a journal file, transactions, row writes.

One process at a time owns a journal file (exclusive locking mode); another
one gets ``JournalError``.  An existing file is checked first
(``.integrity.probe``), so a damaged or foreign file is refused before
anything writes to it.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .codec import crc
from .integrity import InUse, Opened, probe
from .records import JournalError
from .schema import (
    APPLICATION_ID,
    CRC_COLUMNS,
    FORMAT_NAME,
    FORMAT_VERSION,
    QUARANTINE_TABLE,
    SCHEMA,
    SQL_INSERT,
    SQL_QUARANTINE,
)

log = logging.getLogger("bgtasks.persistence")


class Transaction:
    """``with``: take the lock, BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error).

    A failed BEGIN or COMMIT (a full disk, an I/O error) is rolled back and
    raised as ``JournalError`` naming the file.
    """

    __slots__ = ("_db", "_lock", "_path")

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock, path: Path) -> None:
        self._db = db
        self._lock = lock
        self._path = path

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._lock.release()
            raise JournalError(f"{self._path}: cannot write the journal: {exc}") from exc
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                try:
                    self._db.execute("COMMIT")
                    return
                except sqlite3.Error as error:
                    self._rollback()
                    raise JournalError(
                        f"{self._path}: cannot write the journal: {error}"
                    ) from error
            self._rollback()
            if isinstance(exc, sqlite3.Error):
                raise JournalError(f"{self._path}: cannot write the journal: {exc}") from exc
        finally:
            self._lock.release()

    def _rollback(self) -> None:
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("journal %s: rollback failed", self._path)


# ---------------------------------------------------------------- opening

#: Tries to open a journal another process is opening or holds (see open_journal).
_OPEN_ATTEMPTS = 8


def open_journal(path: Path, synchronous: str) -> tuple[sqlite3.Connection, Opened]:
    """``_open_once``, tried again for ~0.3 s while another process holds the file.

    Two processes opening one file at once briefly lock each other out
    (one probing while the other creates it); a process that keeps the
    journal open still gets "in use".  The waits are jittered: two processes
    that retried in step collided again each time, and both were refused.
    """
    if path.exists() and not path.is_file():  # a folder, a named pipe (opening one blocks)
        raise JournalError(f"{path}: not a regular file (a journal is an SQLite file)")
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            return _open_once(path, synchronous)
        except InUse as exc:
            if attempt == _OPEN_ATTEMPTS - 1:
                raise JournalError(str(exc)) from exc.__cause__
            time.sleep(random.uniform(0.005, 0.015) * (attempt + 1))
    raise AssertionError("unreachable")


def _open_once(path: Path, synchronous: str) -> tuple[sqlite3.Connection, Opened]:
    """Connect to a bgtasks journal, creating it if the file is absent or empty.

    An existing file is checked first on a read-only connection (format,
    ``PRAGMA integrity_check``, metadata, every row's checksum and values), so
    a damaged or foreign file raises ``JournalError`` before anything
    writes to it.  Damaged rows of a sound file are returned, not refused.
    """
    for _ in range(3):
        fresh, opened, version = _inspect(path)
        try:
            db = sqlite3.connect(path, timeout=0.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot open the journal: {exc}") from exc
        try:
            _configure(db, synchronous)  # takes the exclusive lock now: in use -> error
            if fresh:
                if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    db.execute("ROLLBACK")  # another process created it meanwhile: check it
                    db.close()
                    continue
                _create(db)
            elif version < 2:
                _upgrade(db, opened)
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" in str(exc):
                raise InUse(f"{path}: the journal is in use by another process") from exc
            raise JournalError(f"{path}: cannot use the journal: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            db.close()
            raise JournalError(
                f"{path}: not a bgtasks journal (damaged or foreign): {exc}"
            ) from exc
        except BaseException:
            db.close()
            raise
        return db, opened
    raise InUse(f"{path}: the journal is in use by another process")


def _inspect(path: Path) -> tuple[bool, Opened, int]:
    """Whether the journal is to be created, what the file holds, and its format version."""
    if not path.exists() or path.stat().st_size == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        return True, Opened(session=1, damaged={}), FORMAT_VERSION
    probed = probe(path)
    if probed is None:  # an SQLite file with no table yet (being created?)
        return True, Opened(session=1, damaged={}), FORMAT_VERSION
    opened, version = probed
    return False, opened, version


def _configure(db: sqlite3.Connection, synchronous: str) -> None:
    """Checksums, exclusive WAL mode, and a write transaction begun."""
    db.create_function("bgtasks_crc", -1, crc, deterministic=True)
    db.execute("PRAGMA locking_mode=EXCLUSIVE")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous.upper()}")
    db.execute("BEGIN IMMEDIATE")


def _create(db: sqlite3.Connection) -> None:
    # One transaction: a crash while creating leaves an empty file or a journal.
    for statement in (*SCHEMA.split(";"), QUARANTINE_TABLE):
        if statement.strip():
            db.execute(statement)
    db.execute(f"INSERT INTO meta VALUES ('format', '{FORMAT_NAME}')")
    db.execute("INSERT INTO meta VALUES ('next_session', '1')")
    db.execute(f"PRAGMA application_id={APPLICATION_ID}")
    db.execute(f"PRAGMA user_version={FORMAT_VERSION}")


def _upgrade(db: sqlite3.Connection, opened: Opened) -> None:
    # Format 1 had no checksums: seal the rows as they are (the damaged ones stay unsealed).
    db.execute("ALTER TABLE tasks ADD COLUMN crc INTEGER")
    db.execute(f"UPDATE tasks SET crc=bgtasks_crc({', '.join(CRC_COLUMNS)})")
    db.executemany("UPDATE tasks SET crc=NULL WHERE jid=?", [(j,) for j in opened.damaged])
    db.execute(QUARANTINE_TABLE)
    db.execute(f"PRAGMA user_version={FORMAT_VERSION}")


# ---------------------------------------------------------------- rows


def insert_task(
    db: sqlite3.Connection,
    session: int,
    function: str,
    args_text: str,
    kwargs_text: str,
    name: str | None,
    group: Any,
    priority: Any,
    upstream_jids: list[int],
    enduring: bool,
    store_result: bool,
) -> int:
    """Insert a "submitted" row (inside a transaction); returns its jid."""
    cursor = db.execute(
        SQL_INSERT,
        {
            "session": session, "function": function, "args": args_text,
            "kwargs": kwargs_text, "name": name, "grp": json.dumps(group),
            "priority": priority, "upstream": json.dumps(upstream_jids),
            "enduring": int(enduring), "store_result": int(store_result), "t": time.time(),
        },
    )  # fmt: skip
    return int(cursor.lastrowid)  # type: ignore[arg-type]


def quarantine_rows(db: sqlite3.Connection, damaged: dict[int, str], path: Path) -> dict[int, str]:
    """Move damaged rows (jid -> why) to the quarantine table, inside a write transaction."""
    if not damaged:
        return {}
    db.execute(QUARANTINE_TABLE)
    now = time.time()
    for jid, reason in damaged.items():
        db.execute(SQL_QUARANTINE, {"reason": reason, "t": now, "jid": jid})
        db.execute("DELETE FROM tasks WHERE jid=?", (jid,))
        log.warning("%s: %s: moved to the quarantine table, not run", path, reason)
    return dict(damaged)
