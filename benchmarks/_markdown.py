"""Rewrite the block between two markers in a markdown file (the benchmarks' ``--out``)."""

from __future__ import annotations

import os
import re


def write_block(path: str, begin: str, end: str, report: str, new_file: str) -> None:
    """Put ``report`` between ``begin`` and ``end`` in ``path``; the rest of the file stays.

    A missing file starts as ``new_file``; a file without the markers gets the block appended.
    """
    block = f"{begin}\n{report}{end}"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = new_file
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
