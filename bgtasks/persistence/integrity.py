"""Checking an existing journal file before anything writes to it.

``probe`` reads the file on a read-only connection: its format and
version, ``PRAGMA integrity_check``, its metadata, and every row's checksum
and values.  A foreign or damaged file raises ``JournalError``; damaged
rows of a sound file are returned, to be quarantined.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .codec import crc
from .records import STATES, JournalError
from .schema import APPLICATION_ID, CRC_COLUMNS, DAMAGED_ROW, FORMAT_NAME, FORMAT_VERSION


@dataclass
class Opened:
    session: int  # this run's session number
    damaged: dict[int, str]  # jid -> why


class InUse(JournalError):
    """Another process holds the journal file (tried again for a while)."""


def probe(path: Path) -> tuple[Opened, int] | None:
    """What an existing file holds (session, damaged rows) and its format version.

    None for an SQLite file with no table yet (being created by another process?).
    """
    # A read-only connection: closing it never checkpoints or deletes a
    # foreign database's -wal file, so a refused file is left as it was.
    # Without a -wal file to read, it is opened immutable: SQLite then
    # creates no -wal nor -shm file next to it either.
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    had_shm = shm.exists()
    has_wal = wal.exists() and wal.stat().st_size > 0
    mode = "mode=ro" if has_wal else "mode=ro&immutable=1"
    try:
        db = sqlite3.connect(f"file:{quote(str(path))}?{mode}", uri=True, timeout=0.0)
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: cannot open the journal: {exc}") from exc
    try:
        return _check_format(db, path)
    except JournalError:
        db.close()
        if not had_shm:  # one this probe made for a crashed journal's WAL
            shm.unlink(missing_ok=True)
        raise
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise InUse(f"{path}: the journal is in use by another process") from exc
        raise JournalError(f"{path}: damaged bgtasks journal ({exc})") from exc
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path}: not a bgtasks journal (damaged or foreign): {exc}") from exc
    except (ValueError, TypeError, OverflowError) as exc:  # UnicodeDecodeError included
        raise JournalError(f"{path}: damaged bgtasks journal ({exc})") from exc
    finally:
        db.close()


def _check_format(db: sqlite3.Connection, path: Path) -> tuple[Opened, int] | None:
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    if app_id == 0 and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
        return None  # another process creating the journal, or an empty database
    if app_id != APPLICATION_ID:
        raise JournalError(
            f"{path}: not a bgtasks journal (application_id {app_id:#x}); it was left untouched"
        )
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > FORMAT_VERSION:
        raise JournalError(
            f"{path}: journal format {version} is newer than this bgtasks reads ({FORMAT_VERSION})"
        )
    db.text_factory = bytes  # damaged text must not raise while reading
    _check_integrity(db, path)
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    fmt = meta.get(b"format")
    if fmt != FORMAT_NAME.encode() or version < 1:
        raise JournalError(
            f"{path}: damaged bgtasks journal (format {_text(fmt)!r}, version {version})"
        )
    damaged, max_session = _check_rows(db, version)
    session = _next_session(meta.get(b"next_session"), max_session, path)
    return Opened(session=session, damaged=damaged), version


def _check_integrity(db: sqlite3.Connection, path: Path) -> None:
    problems = [
        row[0].decode("utf-8", "replace") if isinstance(row[0], bytes) else str(row[0])
        for row in db.execute("PRAGMA integrity_check(10)")
    ]
    if problems != ["ok"]:
        text = "; ".join(problems).replace("\n", " ")
        raise JournalError(f"{path}: damaged bgtasks journal (integrity check: {text:.300})")


def _next_session(raw: Any, max_session: int, path: Path) -> int:
    text = _text(raw)
    if not isinstance(text, str) or not text.isascii() or not text.isdigit() or int(text) < 1:
        raise JournalError(f"{path}: damaged bgtasks journal (bad next_session {text!r})")
    if int(text) <= max_session:
        raise JournalError(
            f"{path}: damaged bgtasks journal "
            f"(bad next_session {text!r} (rows of session {max_session} exist))"
        )
    return int(text)


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def _check_rows(db: sqlite3.Connection, version: int) -> tuple[dict[int, str], int]:
    """Damaged rows (jid -> why) and the highest session of the sound ones."""
    types = "||','||".join(f"typeof({c})" for c in (*CRC_COLUMNS, "crc"))
    stored_crc = "crc" if version >= 2 else "NULL"
    damaged: dict[int, str] = {}
    max_session = 0
    query = f"SELECT {', '.join(CRC_COLUMNS)}, {stored_crc}, {types} FROM tasks ORDER BY jid"
    for row in db.execute(query):
        jid, values, stored, kinds = row[0], list(row[: len(CRC_COLUMNS)]), row[-2], row[-1]
        why = _decode_texts(values, kinds)
        if why is None and version >= 2 and (type(stored) is not int or stored != crc(*values)):
            why = DAMAGED_ROW
        if why is None:
            why = _check_values(values)
        if why is None:
            max_session = max(max_session, values[1])
        else:
            damaged[jid] = f"row {jid}: {why}"
    return damaged, max_session


def _decode_texts(values: list[Any], kinds: bytes) -> str | None:
    """Decode the row's text values in place; what is wrong with their types, or None."""
    for i, kind in enumerate(kinds.decode("ascii").split(",")[: len(CRC_COLUMNS)]):
        if kind == "blob":
            return f"bad {CRC_COLUMNS[i]}: a blob"
        if kind == "text":
            try:
                values[i] = values[i].decode("utf-8")
            except UnicodeDecodeError:
                return f"not UTF-8 text in {CRC_COLUMNS[i]}"
    return None


def _check_values(values: list[Any]) -> str | None:
    """What is wrong with a row's values, or None."""
    row = dict(zip(CRC_COLUMNS, values, strict=True))
    for column, check in _value_checks(row):
        try:
            good = check()
        except (TypeError, ValueError, RecursionError):
            good = False
        if not good:
            return f"bad {column}: {row[column]!r:.80}"
    return None


def _value_checks(row: dict[str, Any]) -> list[tuple[str, Callable[[], bool]]]:
    """Each column with the check its value must pass (in column order)."""

    def json_of(column: str) -> Any:
        return json.loads(row[column])

    def is_int(v: Any) -> bool:
        return type(v) is int

    def is_number(v: Any) -> bool:
        return type(v) in (int, float) and math.isfinite(v)

    return [
        ("session", lambda: is_int(row["session"]) and row["session"] >= 1),
        ("uid", lambda: row["uid"] is None or is_int(row["uid"])),
        ("state", lambda: row["state"] in STATES),
        ("function", lambda: isinstance(row["function"], str) and bool(row["function"])),
        ("args", lambda: isinstance(json_of("args"), list)),
        ("kwargs", lambda: isinstance(json_of("kwargs"), dict)),
        ("name", lambda: row["name"] is None or isinstance(row["name"], str)),
        ("grp", lambda: (g := json_of("grp")) is None or (type(g) in (str, int))),
        ("priority", lambda: row["priority"] is None or is_number(row["priority"])),
        ("upstream", lambda: isinstance(up := json_of("upstream"), list) and all(
            is_int(j) and 1 <= j < row["jid"] for j in up)),
        ("enduring", lambda: row["enduring"] in (0, 1) and is_int(row["enduring"])),
        ("store_result", lambda: row["store_result"] in (0, 1) and is_int(row["store_result"])),
        ("runs", lambda: is_int(row["runs"]) and row["runs"] >= 0),
        ("result", lambda: row["result"] is None or (json_of("result"), True)[1]),
        ("error", lambda: row["error"] is None or isinstance(row["error"], str)),
        ("submitted_at", lambda: is_number(row["submitted_at"])),
        ("started_at", lambda: row["started_at"] is None or is_number(row["started_at"])),
        ("ended_at", lambda: row["ended_at"] is None or is_number(row["ended_at"])),
    ]  # fmt: skip
