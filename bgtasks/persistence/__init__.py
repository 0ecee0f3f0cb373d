"""Saved and restored task queues: ``TaskJournal`` journals persistent tasks to SQLite.

A persistent task is submitted through a ``TaskJournal`` instead of the
manager.  Its function must be registered with ``persistable`` (the
journal stores its name, ``module:qualname`` or an explicit one) and its
arguments JSON data (``None``, bools, numbers, strings, lists and dicts with
string keys, nested), so that the journal can be read by any tool and a
foreign or tampered file can never run code: restore runs only functions the
application registered, and never imports a module a file names.  The journal writes each task's
life (submitted, started, finished, failed, cancelled) to an embedded SQLite
database, and ``TaskJournal.restore`` re-submits on the next start the
tasks that did not end, with their priorities, groups and dependencies.

File format: SQLite in WAL mode, ``PRAGMA application_id`` = 0x62677461
("bgta"), ``PRAGMA user_version`` = the format version, a ``meta`` table with
``format = 'bgtasks-journal'``.  Any other file is refused with
``JournalError`` and left untouched.  One process at a time owns a
journal file (exclusive locking mode); another one gets ``JournalError``.

The package's modules:

* ``.journal``: ``TaskJournal``, the API;
* ``.protocol``: ``JournalManager``, what the journal needs
  from a manager (it never imports the manager);
* ``.records``: ``JournalError``, ``JournalRecord``,
  ``RestoreReport`` and the row states;
* ``.registry``: ``persistable`` and the registry of persistable functions;
* ``.codec``: task values as JSON text, row checksums, rows decoded into records;
* ``.schema``: the file format, its tables and the SQL that writes rows;
* ``.store``: opening, creating and upgrading a file, transactions, quarantine;
* ``.integrity``: the checks of an existing file before it is written to;
* ``.restore``: restore planning; ``.snapshot``: snapshots;
* ``.paths``: ``default_journal_path``.
"""

from __future__ import annotations

from .codec import crc as _crc
from .journal import JournalOptions, JournalSubmitter, TaskJournal
from .paths import default_journal_path
from .records import JournalError, JournalRecord, RestoreReport
from .registry import _registry, _unregister, persistable, persistable_functions
from .schema import CRC_COLUMNS as _CRC_COLUMNS

__all__ = [
    "JournalError",
    "JournalOptions",
    "JournalRecord",
    "JournalSubmitter",
    "RestoreReport",
    "TaskJournal",
    "default_journal_path",
    "persistable",
    "persistable_functions",
]

# Private names the tests use (checksums of rows they edit, the registry).
_for_tests = (_crc, _CRC_COLUMNS, _registry, _unregister)

# The public names keep the module they had before the package was split
# (reprs, tracebacks, pickles and docs name bgtasks.persistence.X).
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
