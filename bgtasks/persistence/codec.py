"""The value codec: task values as JSON text, row checksums, rows decoded into records."""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

from ..core._errors import repr_of
from .records import JournalRecord


def crc(*values: Any) -> int:
    """A row's checksum: CRC-32 of the repr of its values (SQLite function ``bgtasks_crc``)."""
    return zlib.crc32(repr(values).encode("utf-8", "surrogatepass"))


def to_json(what: str, value: Any) -> str:
    """JSON text of ``value``; ``TypeError`` if it does not come back equal."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
        same = _same(json.loads(text), value)
    except (TypeError, ValueError, RecursionError):
        same = False
    if not same:
        raise TypeError(
            f"{what} must be JSON data (None, bool, int, float, str, list, dict with str keys), got {value!r}"
        )
    return text


def _same(a: Any, b: Any) -> bool:
    # Exact round trip: types too (a tuple would come back a list, 1.0 would stay 1.0).
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return a == b and math.isfinite(a)
    return bool(a == b)


def check_group(group: Any) -> None:
    """``TypeError`` unless ``group`` is a value a row can hold: None, a str or an int."""
    if group is not None and (isinstance(group, bool) or not isinstance(group, (str, int))):
        raise TypeError(
            f"a persistent task's group must be None, a str or an int, got {repr_of(group)}"
        )


def check_priority(priority: Any) -> None:
    """``TypeError`` unless ``priority`` is None or a finite number."""
    if priority is not None and (
        isinstance(priority, bool)
        or not isinstance(priority, (int, float))
        or not math.isfinite(priority)
    ):
        raise TypeError(f"priority must be a finite number or None, got {priority!r}")


#: The columns ``decode_record`` reads, in its order.
RECORD_COLUMNS = (
    "jid, uid, session, state, function, args, kwargs, name, grp, priority, upstream, "
    "enduring, store_result, runs, result, error"
)


def decode_record(row: tuple[Any, ...]) -> JournalRecord:
    """The record of a row selected as ``RECORD_COLUMNS``."""
    (jid, uid, session, state, function, args, kwargs, name, grp, priority, upstream,
     enduring, store_result, runs, result, error) = row  # fmt: skip
    return JournalRecord(
        jid=jid, uid=uid, session=session, state=state, function=function,
        args=json.loads(args), kwargs=json.loads(kwargs), name=name, group=json.loads(grp),
        priority=priority, upstream=json.loads(upstream), enduring=bool(enduring),
        store_result=bool(store_result), runs=runs,
        result=None if result is None else json.loads(result), error=error,
    )  # fmt: skip
