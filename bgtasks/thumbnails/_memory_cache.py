"""The loader's memory cache: pixmaps by path, bounded by bytes, and remembered failures.

Threads: the UI thread (the loader's) only.
"""

from __future__ import annotations

import itertools
import os
from collections import OrderedDict

from PySide6.QtGui import QPixmap

from ..core._validate import check_count

# Generations of forgotten paths, for the request keys (see ``forget``).
_GENERATION = itertools.count(1)


class _Cache:
    """The loader's byte-bounded LRU cache of pixmaps and its remembered failures.

    A mixin of ``ThumbnailLoader`` (which sets these attributes); UI thread.
    """

    _cache_bytes: int
    _cache: OrderedDict[str, tuple[QPixmap, int]]
    _cached_bytes: int
    _failed: OrderedDict[str, str]
    _generations: dict[str, int]
    _generation: int

    @property
    def cache_bytes(self) -> int:
        """Bytes of pixmaps the cache keeps; settable (a non-negative int).  UI thread."""
        return self._cache_bytes

    @cache_bytes.setter
    def cache_bytes(self, value: int) -> None:
        self._cache_bytes = check_count("cache_bytes", value)

    def cached(self, path: str | os.PathLike[str]) -> QPixmap | None:
        """The cached thumbnail of ``path``, which becomes the most recently used.  UI thread.

        Args:
            path: The image file.

        Returns:
            The pixmap, or None if it is not cached.
        """
        path = os.fspath(path)
        item = self._cache.get(path)
        if item is None:
            return None
        self._cache.move_to_end(path)
        return item[0]

    def error(self, path: str | os.PathLike[str]) -> str | None:
        """The message of the remembered failure of ``path``.  UI thread.

        Args:
            path: The image file.

        Returns:
            The message ``thumbnail_failed`` gave, or None if none is remembered.
        """
        return self._failed.get(os.fspath(path))

    def forget(self, path: str | os.PathLike[str]) -> None:
        """Drop the cached thumbnail and remembered failure of ``path``.  UI thread.

        The next request decodes again (or reads the disk cache, which holds a
        thumbnail only while the file's modification time and size match).

        Args:
            path: The image file, e.g. one that changed.
        """
        path = os.fspath(path)
        item = self._cache.pop(path, None)
        if item is not None:
            self._cached_bytes -= item[1]
        self._failed.pop(path, None)
        # The next request must decode again: a manager with ``cache_size``
        # keeps finished results by key, so the key changes.
        self._generations[path] = next(_GENERATION)

    def clear_cache(self) -> None:
        """Drop every cached thumbnail and remembered failure.  UI thread.

        The disk cache is left as it is: its entries are checked against each
        file's modification time and size when read.
        """
        self._cache.clear()
        self._cached_bytes = 0
        self._failed.clear()
        self._generations.clear()
        self._generation = next(_GENERATION)

    def _generation_of(self, path: str) -> int:
        """Part of a request's key: it changes when ``path`` is forgotten."""
        return self._generations.get(path, self._generation)

    @property
    def cache_used(self) -> int:
        """Bytes of the cached pixmaps (width * height * 4 each).  UI thread."""
        return self._cached_bytes

    def cached_paths(self) -> list[str]:
        """Cached paths, least recently used first.  UI thread."""
        return list(self._cache)

    def _store(self, path: str, pixmap: QPixmap) -> None:
        nbytes = pixmap.width() * pixmap.height() * 4
        old = self._cache.pop(path, None)
        if old is not None:
            self._cached_bytes -= old[1]
        if nbytes > self.cache_bytes:
            return
        self._cache[path] = (pixmap, nbytes)
        self._cached_bytes += nbytes
        while self._cached_bytes > self.cache_bytes:
            _, (_, freed) = self._cache.popitem(last=False)
            self._cached_bytes -= freed
