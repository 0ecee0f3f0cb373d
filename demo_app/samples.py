"""Sample images for the Thumbnails tab when no folder is given.

``generate_samples`` runs in a worker thread: it only makes ``QImage`` objects
(allowed off the UI thread) and saves them as PNG files.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen

from bgtasks import current_task

N_SAMPLES = 300
SAMPLE_SIZE = 256
BATCH = 25

#: File name suffixes shown when browsing a folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")


def sample_path(folder: str | os.PathLike[str], number: int) -> str:
    return os.path.join(os.fspath(folder), f"sample_{number:03d}.png")


def draw_sample(number: int, size: int = SAMPLE_SIZE) -> QImage:
    """A coloured square with ``number`` drawn on it (hue by number)."""
    image = QImage(size, size, QImage.Format.Format_RGB32)
    colour = QColor.fromHsv((number * 37) % 360, 150 + number % 3 * 40, 230)
    image.fill(colour)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(colour.darker(160), size // 32))
    painter.drawEllipse(size // 8, size // 8, size * 3 // 4, size * 3 // 4)
    font = QFont()
    font.setPixelSize(size // 3)
    font.setBold(True)
    painter.setFont(font)
    painter.setPen(QColor("white") if colour.lightness() < 140 else QColor("#202020"))
    painter.drawText(QRect(0, 0, size, size), Qt.AlignmentFlag.AlignCenter, str(number))
    painter.end()
    return image


def generate_samples(folder: str, first: int, stop: int) -> list[str]:
    """Write samples ``first`` .. ``stop - 1`` into ``folder``; a task function."""
    task = current_task()
    written = []
    for number in range(first, stop):
        task.raise_if_cancelled()
        path = sample_path(folder, number)
        if not draw_sample(number).save(path, "PNG"):
            raise OSError(f"cannot write {path}")
        written.append(path)
        task.report_progress(number - first + 1, stop - first, f"sample_{number:03d}.png")
    return written


def list_images(folder: str | os.PathLike[str]) -> list[str]:
    """The image files directly in ``folder``, sorted by name."""
    return sorted(
        str(p) for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
