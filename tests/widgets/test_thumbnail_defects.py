"""Regression tests of thumbnail defects (issue 14), each named for its bug:
leaked view trackers, hidden rows, a refresh served from the manager's result
cache, non-UTF-8 file names, and images over Qt's allocation limit."""

from __future__ import annotations

import os
import struct
import zlib

import pytest
from _images import make_image, wait_ready
from PySide6.QtCore import SIGNAL, QBuffer, QCoreApplication, QEvent, QIODevice, QSize
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QListView

from bgtasks.thumbnails import (
    ThumbnailError,
    ThumbnailLoader,
    ThumbnailModel,
    ViewTracker,
    decode_thumbnail,
)


def png_bytes(width, height, color):
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(color))
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    assert image.save(buffer, "PNG")
    return bytes(buffer.data().data())


def delete_later_now():
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def paths(tmp_path):
    return [make_image(tmp_path / f"img{i:03}.png", 32, 24, "teal") for i in range(60)]


def icon_view(qtbot, model, width=400, height=300):
    view = QListView()
    view.setViewMode(QListView.ViewMode.IconMode)
    view.setUniformItemSizes(True)
    view.resize(width, height)
    view.setModel(model)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    return view


# ---------------------------------------------------------------- leaked trackers


def test_attach_detach_cycles_leak_no_tracker_and_no_destroyed_receivers(
    qtbot, make_manager, paths
):
    m = make_manager()
    loader = ThumbnailLoader(m, QSize(16, 16))
    view = icon_view(qtbot, ThumbnailModel(paths, loader))
    destroyed = SIGNAL("destroyed(QObject*)")
    receivers = view.receivers(destroyed)
    for _ in range(25):
        loader.attach_view(view)
        loader.detach_view(view)
    delete_later_now()
    assert loader.findChildren(ViewTracker) == []
    assert view.receivers(destroyed) == receivers
    loader.attach_view(view)  # attached again: exactly one tracker
    assert len(loader.findChildren(ViewTracker)) == 1
    assert view.receivers(destroyed) == receivers + 1


def test_the_tracker_of_a_view_destroyed_while_attached_is_deleted(qtbot, make_manager, paths):
    m = make_manager()
    loader = ThumbnailLoader(m, QSize(16, 16))
    model = ThumbnailModel(paths, loader)
    for _ in range(5):
        view = QListView()
        view.setModel(model)
        loader.attach_view(view)
        with qtbot.waitSignal(view.destroyed, timeout=5000):
            view.deleteLater()
    delete_later_now()
    assert loader.findChildren(ViewTracker) == []
    assert loader.views() == [] and not loader.has_views()


# ---------------------------------------------------------------- hidden rows


def on_screen(view, model):
    """Every row shown and intersecting the viewport, by brute force."""
    area, paths = view.viewport().rect(), model.paths()
    return [
        paths[row]
        for row in range(model.rowCount())
        if not view.isRowHidden(row) and view.visualRect(model.index(row, 0)).intersects(area)
    ]


@pytest.mark.parametrize("mode", [QListView.ViewMode.IconMode, QListView.ViewMode.ListMode])
def test_hidden_rows_do_not_stop_the_visible_rows_loading(qtbot, make_manager, tmp_path, mode):
    image = make_image(tmp_path / "one.png", 32, 24, "navy")
    rows = [image] + [str(tmp_path / f"r{i:03}.png") for i in range(527)]
    for path in rows[1:]:
        os.link(image, path)  # 528 files, one image
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m, QSize(24, 24))
    model = ThumbnailModel(rows, loader)
    view = icon_view(qtbot, model)
    view.setViewMode(mode)
    for row in range(0, len(rows), 3):
        view.setRowHidden(row, True)
    loader.attach_view(view)
    tracker = loader.view_tracker(view)
    expected = on_screen(view, model)
    assert len(expected) > 5
    qtbot.waitUntil(lambda: tracker.visible == expected, timeout=5000)
    qtbot.waitUntil(lambda: all(loader.cached(p) is not None for p in expected), timeout=10000)
    bar = view.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)  # the middle: hidden rows above and below
    middle = on_screen(view, model)
    assert middle and middle != expected
    qtbot.waitUntil(lambda: tracker.visible == middle, timeout=5000)
    qtbot.waitUntil(lambda: all(loader.cached(p) is not None for p in middle), timeout=10000)


# ---------------------------------------------------------------- refresh vs the result cache


@pytest.mark.parametrize("how", ["forget", "clear_cache"])
def test_forget_refreshes_a_changed_file_when_the_manager_caches_results(
    qtbot, make_manager, tmp_path, how
):
    m = make_manager(start_processing=True)
    m.cache_size = 100  # the manager keeps finished results by key
    loader = ThumbnailLoader(m, QSize(32, 32))
    path = make_image(tmp_path / "photo.png", 64, 64, "red")
    assert wait_ready(qtbot, loader, path).toImage().pixelColor(5, 5) == QColor("red")
    make_image(path, 64, 64, "blue")  # the file changes (and its time with it)
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    getattr(loader, how)(*([path] if how == "forget" else []))
    assert loader.cached(path) is None
    assert wait_ready(qtbot, loader, path).toImage().pixelColor(5, 5) == QColor("blue")


# ---------------------------------------------------------------- non-UTF-8 file names


@pytest.fixture
def latin1_names(tmp_path):
    """A good and a broken image whose names are Latin-1 bytes, as os.listdir(str) gives them."""
    folder = os.fsencode(tmp_path)
    good = folder + b"/caf\xe9.png"
    broken = folder + b"/d\xe9fect.png"
    with open(good, "wb") as f:
        f.write(png_bytes(40, 20, "green"))
    with open(broken, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + b"garbage" * 8)
    names = sorted(n for n in os.listdir(str(tmp_path)))
    assert any("\udce9" in n for n in names)  # surrogate escapes: not UTF-8
    return os.fsdecode(good), os.fsdecode(broken)


def test_a_file_name_that_is_not_utf8_loads_and_its_row_hears_of_it(
    qtbot, make_manager, latin1_names
):
    good, broken = latin1_names
    assert decode_thumbnail(good, QSize(16, 16)).size() == QSize(16, 8)
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m, QSize(16, 16))
    pixmap = wait_ready(qtbot, loader, good)  # exactly the string asked for
    assert pixmap.toImage().pixelColor(4, 4) == QColor("green")
    with qtbot.waitSignal(loader.thumbnail_failed, timeout=10000) as blocker:
        loader.request(broken)
    assert blocker.args[0] == broken
    assert blocker.args[1] == loader.error(broken)
    assert (
        blocker.args[1].startswith("cannot read image ") and "d\\udce9fect.png" in blocker.args[1]
    )

    model = ThumbnailModel([good, broken], ThumbnailLoader(m, QSize(16, 16)))
    changed = []
    model.dataChanged.connect(lambda a, b, roles: changed.append(a.row()))
    view = icon_view(qtbot, model)
    model.loader.attach_view(view)
    qtbot.waitUntil(lambda: sorted(changed) == [0, 1], timeout=10000)
    assert model.index(0, 0).data() == "caf\ufffd.png"  # shown with a replacement character
    assert model.loader.cached(good) is not None and model.loader.error(broken) is not None


# ---------------------------------------------------------------- over the allocation limit


def write_uniform_png(path, width, height, rgb):
    """A PNG of one colour, written row by row with zlib (no image in memory)."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + bytes(rgb) * width
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data))
        f.write(chunk(b"IEND", b""))
    return str(path)


@pytest.fixture(scope="session")
def huge_png(tmp_path_factory):
    """9000x9000 RGB: 324 MB decoded, over QImageReader's 256 MB limit; ~250 KB on disk."""
    return write_uniform_png(
        tmp_path_factory.mktemp("huge") / "huge.png", 9000, 9000, (200, 80, 20)
    )


def test_an_image_over_the_allocation_limit_gets_a_thumbnail(qtbot, make_manager, huge_png):
    image = decode_thumbnail(huge_png, QSize(64, 48))
    assert image.size() == QSize(48, 48)
    assert image.pixelColor(10, 10) == QColor(200, 80, 20)
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m, QSize(128, 128))
    pixmap = wait_ready(qtbot, loader, huge_png, timeout=30000)
    assert pixmap.size() == QSize(128, 128)
    assert pixmap.toImage().pixelColor(64, 64) == QColor(200, 80, 20)


def test_an_image_over_the_decode_ceiling_fails_with_a_message_that_says_so(huge_png, monkeypatch):
    # The ceiling (1 GB) lowered to 100 MB for the test: the 9000x9000 image needs 309 MB.
    import bgtasks.thumbnails._decode as decoding

    monkeypatch.setattr(decoding, "MAX_DECODE_MEGABYTES", 100)
    with pytest.raises(ThumbnailError) as info:
        decode_thumbnail(huge_png, QSize(64, 64))
    assert str(info.value) == (
        f"cannot read image {huge_png}: the image is 9000x9000: decoding it needs 309 MB, "
        "over the 100 MB a thumbnail may use"
    )
