"""Thumbnails: decode images in the background, visible rows first.

``ThumbnailLoader`` decodes an image file to a small ``QImage`` in a worker of
a ``BackgroundTaskManager`` and converts it to a ``QPixmap`` on
the UI thread; repeats come from a byte-bounded cache, and requests for a path
in flight share one decode.  ``loader.attach_view(view)`` loads the rows in the
viewport first and cancels the queued ones scrolled far away.
``ThumbnailModel`` is a list model over paths whose ``DecorationRole`` is the
thumbnail: ``view.setModel(ThumbnailModel(paths, loader))``; a
``ThumbnailDelegate`` centres every image in the same box.

Thumbnails are decoded at the screen's device pixel ratio, and kept on disk in
the shared freedesktop.org cache (``$XDG_CACHE_HOME/thumbnails``), which other
programs read and write too (``disk_cache=False`` opts out).

Threads: everything here belongs to the UI thread (the loader's thread), and
every signal is emitted there, except ``decode_thumbnail`` and ``DiskCache``,
which any thread may call (they make ``QImage`` objects only).

The modules, each importing only the ones listed before it:

* ``_decode``: ``decode_thumbnail`` and ``ThumbnailError`` (what a worker runs);
* ``_disk_cache``: ``DiskCache``, the freedesktop.org thumbnail cache on disk;
* ``_memory_cache``: the loader's pixmap cache (the mixin ``_Cache``);
* ``_view_tracker``: ``ViewTracker``, which rows of a view are on
  screen and which are near (it knows nothing of the loader);
* ``_views``: the loader's attached views and ``visible_loaded`` (the mixin ``_Views``);
* ``_loader``: ``ThumbnailLoader`` (requests, outcomes, the worker's task);
* ``_model``: ``ThumbnailModel``, the item model over a loader;
* ``_delegate``: ``ThumbnailDelegate``, images centred in one box, captions on one line.
"""

from __future__ import annotations

from ._decode import ThumbnailError, decode_thumbnail, fit_size
from ._delegate import ThumbnailDelegate
from ._disk_cache import DiskCache, file_uri, thumbnail_name
from ._loader import ThumbnailLoader
from ._model import ThumbnailModel
from ._view_tracker import ViewTracker
from ._views import VISIBLE_PRIORITY

__all__ = [
    "VISIBLE_PRIORITY",
    "DiskCache",
    "ThumbnailDelegate",
    "ThumbnailError",
    "ThumbnailLoader",
    "ThumbnailModel",
    "ViewTracker",
    "decode_thumbnail",
    "file_uri",
    "fit_size",
    "thumbnail_name",
]

# The public names keep the module they had before the package was split
# (reprs, tracebacks, pickles and docs name bgtasks.thumbnails.X).
for _name in __all__:
    if not _name.isupper():  # constants: no module of their own
        globals()[_name].__module__ = __name__
del _name
