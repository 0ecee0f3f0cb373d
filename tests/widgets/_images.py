"""Image files the thumbnail tests make."""

from __future__ import annotations

from PySide6.QtGui import QColor, QImage


def make_image(path, width, height, color="red"):
    """A ``width`` x ``height`` image of one colour saved at ``path``; returns the path as str."""
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(color))
    assert image.save(str(path))
    return str(path)
