"""The journal file's format: identifiers, tables, and the SQL that writes rows.

File format: SQLite in WAL mode, ``PRAGMA application_id`` = 0x62677461
("bgta"), ``PRAGMA user_version`` = the format version, a ``meta`` table with
``format = 'bgtasks-journal'``.  Every write of a ``tasks`` row recomputes
its checksum (``crc``, the SQLite function ``bgtasks_crc``).
"""

from __future__ import annotations

APPLICATION_ID = 0x62677461  # "bgta"
FORMAT_NAME = "bgtasks-journal"
FORMAT_VERSION = 2  # 2: row checksums (crc) and the quarantine table

#: The columns a row's checksum covers, in order.
CRC_COLUMNS = (
    "jid", "session", "uid", "state", "function", "args", "kwargs", "name", "grp", "priority",
    "upstream", "enduring", "store_result", "runs", "result", "error", "submitted_at",
    "started_at", "ended_at",
)  # fmt: skip

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tasks (
    jid INTEGER PRIMARY KEY,
    session INTEGER NOT NULL,
    uid INTEGER,
    state TEXT NOT NULL,
    function TEXT NOT NULL,
    args TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    name TEXT,
    grp TEXT NOT NULL,
    priority,
    upstream TEXT NOT NULL,
    enduring INTEGER NOT NULL,
    store_result INTEGER NOT NULL,
    runs INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    submitted_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    crc INTEGER
);
CREATE INDEX tasks_live ON tasks (state) WHERE state IN ('submitted', 'started');
"""

QUARANTINE_TABLE = (
    "CREATE TABLE IF NOT EXISTS quarantine (reason TEXT NOT NULL, quarantined_at REAL NOT NULL, "
    + ", ".join(CRC_COLUMNS) + ", crc)"
)  # fmt: skip
DAMAGED_ROW = "checksum mismatch (damaged, or edited outside bgtasks)"

#: An SQL condition: the row's task did not end.
LIVE = "state IN ('submitted','started')"


def _update(sets: dict[str, str], where: str) -> str:
    """``UPDATE tasks SET ... WHERE ...`` that also recomputes the row's checksum."""
    assigns = ", ".join(f"{column}={expr}" for column, expr in sets.items())
    values = ", ".join(f"({sets[c]})" if c in sets else c for c in CRC_COLUMNS)
    return f"UPDATE tasks SET {assigns}, crc=bgtasks_crc({values}) WHERE {where}"


SQL_STARTED = _update(
    {"state": "'started'", "runs": "runs+1", "started_at": ":t"}, "jid=:jid AND state='submitted'"
)
SQL_ENDED = _update(
    {"state": ":state", "error": ":error", "ended_at": ":t"}, f"jid=:jid AND {LIVE}"
)
SQL_FINISHED = _update(
    {"state": "'finished'", "result": ":result", "error": ":error", "ended_at": ":t"},
    f"jid=:jid AND {LIVE}",
)
SQL_UID = _update({"uid": ":uid"}, "jid=:jid")
SQL_SKIP = _update({"state": "'skipped'", "error": ":error", "ended_at": ":t"}, "jid=:jid")
SQL_RESUBMIT = _update(
    {"state": "'submitted'", "session": ":session", "uid": "NULL", "started_at": "NULL",
     "ended_at": "NULL", "error": "NULL"},
    "jid=:jid",
)  # fmt: skip
SQL_RESET = _update({"state": "'cancelled'", "error": "'reset'", "ended_at": ":t"}, "jid=:jid")
SQL_INSERT = (
    "INSERT INTO tasks (" + ", ".join(CRC_COLUMNS) + ", crc) SELECT " + ", ".join(
        v := ["n", ":session", "NULL", "'submitted'", ":function", ":args", ":kwargs", ":name",
              ":grp", ":priority", ":upstream", ":enduring", ":store_result", "0", "NULL",
              "NULL", ":t", "NULL", "NULL"]
    ) + f", bgtasks_crc({', '.join(v)}) FROM (SELECT coalesce(max(jid), 0) + 1 AS n FROM tasks)"
)  # fmt: skip
SQL_QUARANTINE = "INSERT INTO quarantine SELECT :reason, :t, * FROM tasks WHERE jid=:jid"
