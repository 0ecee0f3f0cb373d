"""Image files the thumbnail tests make."""

from __future__ import annotations

from PySide6.QtGui import QColor, QImage


def make_image(path, width, height, color="red"):
    """A ``width`` x ``height`` image of one colour saved at ``path``; returns the path as str."""
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(color))
    assert image.save(str(path))
    return str(path)


def wait_ready(qtbot, loader, path, timeout=10000):
    """Request ``path`` from ``loader`` and wait for its thumbnail; returns the pixmap."""
    with qtbot.waitSignal(
        loader.thumbnail_ready, timeout=timeout, check_params_cb=lambda p, _pm: p == path
    ) as blocker:
        loader.request(path)
    return blocker.args[1]
