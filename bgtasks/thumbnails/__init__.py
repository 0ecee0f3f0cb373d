"""Thumbnails: decode images in the background, visible rows first.

``ThumbnailLoader`` decodes an image file to a small ``QImage`` in a worker of
a ``BackgroundTaskManager`` and converts it to a ``QPixmap`` on
the UI thread; repeats come from a byte-bounded cache, and requests for a path
in flight share one decode.  ``loader.attach_view(view)`` loads the rows in the
viewport first and cancels the queued ones scrolled far away.
``ThumbnailModel`` is a list model over paths whose ``DecorationRole`` is the
thumbnail: ``view.setModel(ThumbnailModel(paths, loader))``.

Threads: everything here belongs to the UI thread (the loader's thread), and
every signal is emitted there, except ``decode_thumbnail``, which any
thread may call (it makes ``QImage`` objects only).

The modules, each importing only the ones listed before it:

* ``_view_tracker``: ``ViewTracker``, which rows of a view are on
  screen and which are near (it knows nothing of the loader);
* ``_loader``: decoding (``decode_thumbnail``, the worker's task) and
  ``ThumbnailLoader`` (requests, outcomes, attached views; its cache
  in the mixin ``_Cache``);
* ``_model``: ``ThumbnailModel``, the item model over a loader.
"""

from __future__ import annotations

from ._loader import (
    VISIBLE_PRIORITY,
    ThumbnailError,
    ThumbnailLoader,
    decode_thumbnail,
    fit_size,
)
from ._model import ThumbnailModel
from ._view_tracker import ViewTracker

__all__ = [
    "VISIBLE_PRIORITY",
    "ThumbnailError",
    "ThumbnailLoader",
    "ThumbnailModel",
    "ViewTracker",
    "decode_thumbnail",
    "fit_size",
]

# The public names keep the module they had before the package was split
# (reprs, tracebacks, pickles and docs name bgtasks.thumbnails.X).
for _name in __all__:
    if _name != "VISIBLE_PRIORITY":  # a float: no module of its own
        globals()[_name].__module__ = __name__
del _name
