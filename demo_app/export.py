"""The Export action's task: copy one image, scaled down, into a folder.

``export_image`` runs in a worker thread: it only uses ``QImage`` (allowed
off the UI thread).  It takes a little time on purpose, in cancellable
slices, so the progress dialog has something to show.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from bgtasks import current_task

#: Seconds one export takes at least (in four cancellable steps).
EXPORT_DELAY = 0.3
#: Longest side of an exported image, in pixels.
EXPORT_SIZE = 192
#: This sample's export fails on purpose, to show how the dialog lists failures.
FAILING_SAMPLE = "sample_013.png"


def export_name(path: str) -> str:
    """The exported file's name: ``sample_013.png`` -> ``sample_013.jpg``."""
    return os.path.splitext(os.path.basename(path))[0] + ".jpg"


def export_image(source: str, folder: str, delay: float = EXPORT_DELAY) -> str:
    """Write ``source`` scaled to ``EXPORT_SIZE`` as a JPEG in ``folder``; a task function."""
    task = current_task()
    target = os.path.join(folder, export_name(source))
    task.report_progress(0, 4, "reading")
    image = QImage(source)
    if image.isNull():
        raise OSError(f"cannot read {source}")
    task.sleep(delay / 4)
    task.report_progress(1, 4, "scaling")
    small = image.scaled(
        EXPORT_SIZE,
        EXPORT_SIZE,
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
    task.sleep(delay / 4)
    task.report_progress(2, 4, "writing")
    task.sleep(delay / 4)
    if os.path.basename(source) == FAILING_SAMPLE:
        raise OSError(
            f"cannot write {export_name(source)}: no space left on device (a deliberate failure)"
        )
    if not small.save(target, "JPG", 85):
        raise OSError(f"cannot write {target}")
    task.sleep(delay / 4)
    task.report_progress(4, 4, "written")
    return target
