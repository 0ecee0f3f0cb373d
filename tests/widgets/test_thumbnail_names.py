"""A thumbnail's task is named for its image, so a task monitor says which image it is."""

from __future__ import annotations

import os

from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QImage

from bgtasks.thumbnails import ThumbnailLoader


def _image(path: str) -> None:
    image = QImage(8, 8, QImage.Format.Format_RGB32)
    image.fill(QColor("red"))
    assert image.save(path)


def test_each_thumbnail_task_names_its_file(qtbot, make_manager, tmp_path) -> None:
    m = make_manager()  # not started: the tasks stay queued while the test reads them
    loader = ThumbnailLoader(m, size=QSize(32, 32), disk_cache=False)
    plain = str(tmp_path / "beach.png")
    _image(plain)
    _image(str(tmp_path / "tmp.png"))
    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.png")  # not UTF-8, as listdir gives
    os.rename(tmp_path / "tmp.png", os.fsencode(odd))
    uids = [loader.request(plain), loader.request(odd)]
    assert [m.info(uid).name for uid in uids if uid is not None] == [
        "thumbnail beach.png",
        "thumbnail caf\\udce9.png",
    ]
    loader.cancel_all()
