"""Thumbnails in a view: captions that fit under any image, HiDPI pixmaps,
and the signal that the visible rows are loaded."""

from __future__ import annotations

import pytest
from _images import make_image
from PySide6.QtCore import QRect, QSize, QSizeF, QThread
from PySide6.QtGui import QColor, QFontMetrics, QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
)

from bgtasks.thumbnails import ThumbnailDelegate, ThumbnailLoader, ThumbnailModel


@pytest.fixture
def shapes(tmp_path):
    """Portrait, landscape, square and broken images, with long and short names."""
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image" * 4)
    return [
        make_image(tmp_path / "portrait with a long name to elide.png", 60, 240, "blue"),
        make_image(tmp_path / "landscape.jpg", 300, 75, "red"),
        make_image(tmp_path / "square.png", 90, 90, "green"),
        str(broken),
        make_image(tmp_path / "p.png", 10, 400, "magenta"),
        make_image(tmp_path / "wide strip.png", 500, 10, "yellow"),
    ]


def icon_view(qtbot, model, size, uniform):
    view = QListView()
    view.setViewMode(QListView.ViewMode.IconMode)
    view.setUniformItemSizes(uniform)
    view.setIconSize(size)
    view.setItemDelegate(QStyledItemDelegate(view))  # made here: its initStyleOption is callable
    view.resize(520, 400)
    view.setModel(model)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    return view


def item_rects(view, index):
    """The item's rectangle, and where the style puts its image and its caption."""
    option = QStyleOptionViewItem()
    view.initViewItemOption(option)
    option.rect = view.visualRect(index)
    view.itemDelegate().initStyleOption(option, index)
    style = view.style()
    image = style.subElementRect(QStyle.SubElement.SE_ItemViewItemDecoration, option, view)
    caption = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, option, view)
    return QRect(option.rect), image, caption


@pytest.mark.parametrize("uniform", [True, False], ids=["uniform", "per-item"])
def test_size_hint_holds_image_and_caption_for_any_aspect_ratio(
    qtbot, make_manager, shapes, uniform
):
    m = make_manager(start_processing=True)
    size = QSize(96, 96)
    loader = ThumbnailLoader(m, size, disk_cache=False)
    model = ThumbnailModel(shapes, loader)
    view = icon_view(qtbot, model, size, uniform)
    loader.attach_view(view)
    with qtbot.waitSignal(loader.visible_loaded, timeout=10000):
        pass
    assert loader.error(shapes[3]) is not None  # the broken one shows the placeholder
    caption_height = QFontMetrics(view.font()).height()
    shot = view.viewport().grab().toImage()
    rects = []
    for row, path in enumerate(shapes):
        index = model.index(row, 0)
        item, image, caption = item_rects(view, index)
        pixmap = index.data(0x1)  # DecorationRole
        shown = pixmap.deviceIndependentSize().toSize()
        assert image.size() == shown, (path, image, shown)  # not squashed
        assert shown.width() <= 96 and shown.height() <= 96
        assert item.contains(image) and item.contains(caption), (path, item, image, caption)
        assert not image.intersects(caption), (path, image, caption)
        assert caption.height() >= caption_height, (path, caption)
        if row != 3:  # the image is painted where the style says
            expected = QColor(["blue", "red", "green", "", "magenta", "yellow"][row])
            painted = shot.pixelColor(image.center())
            assert max(abs(painted.red() - expected.red()), abs(painted.green() - expected.green()),
                       abs(painted.blue() - expected.blue())) <= 4, (path, painted)  # fmt: skip
        rects.append(item)
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert not a.intersects(b), (a, b)


def test_the_caption_can_be_two_lines_or_none(make_manager):
    m = make_manager()
    loader = ThumbnailLoader(m, QSize(64, 64), disk_cache=False)
    line = QFontMetrics(QApplication.font("QListView")).height()
    one = ThumbnailModel([], loader).item_size()
    two = ThumbnailModel([], loader, caption_lines=2).item_size()
    assert two.height() - one.height() >= line - 1
    assert ThumbnailModel([], loader, caption_lines=0).item_size() == QSize(72, 72)
    assert ThumbnailModel(["a/b.png"], loader, caption_lines=0).index(0, 0).data() is None
    with pytest.raises(ValueError, match=r"^caption_lines must be a non-negative integer, got -1$"):
        ThumbnailModel([], loader, caption_lines=-1)


# ---------------------------------------------------------------- HiDPI


def test_hidpi_decodes_at_twice_the_size_and_marks_the_pixmap(qtbot, make_manager, tmp_path):
    wide = make_image(tmp_path / "wide.png", 400, 200)
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m, QSize(64, 64), device_pixel_ratio=2, disk_cache=False)
    assert loader.device_pixel_ratio == 2.0
    with qtbot.waitSignal(loader.thumbnail_ready, timeout=10000) as blocker:
        loader.request(wide)
    pixmap = blocker.args[1]
    assert pixmap.size() == QSize(128, 64)  # device pixels
    assert pixmap.devicePixelRatio() == 2.0
    assert pixmap.deviceIndependentSize() == QSizeF(64, 32)  # the thumbnail size
    assert loader.cache_used == 128 * 64 * 4
    placeholder = loader.placeholder()
    assert placeholder.size() == QSize(128, 128)
    assert placeholder.deviceIndependentSize() == QSizeF(64, 64)


def test_the_default_ratio_is_the_screens_and_bad_ratios_are_refused(make_manager):
    m = make_manager()
    loader = ThumbnailLoader(m, disk_cache=False)
    assert loader.device_pixel_ratio == QGuiApplication.instance().devicePixelRatio()
    for bad in (0, -1.5, "2", True):
        with pytest.raises(ValueError) as info:
            ThumbnailLoader(m, device_pixel_ratio=bad)
        assert str(info.value) == (
            f"device_pixel_ratio must be a positive number or None, got {bad!r}"
        )


# ---------------------------------------------------------------- visible_loaded


@pytest.fixture
def grid(tmp_path):
    paths = [make_image(tmp_path / f"g{i:03}.png", 48, 36, "teal") for i in range(300)]
    broken = tmp_path / "g005.png"  # one broken file on the first screen
    broken.write_bytes(b"broken")
    return paths


def test_visible_loaded_follows_the_screen(qtbot, make_manager, grid):
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m, QSize(32, 32), disk_cache=False)
    model = ThumbnailModel(grid, loader)
    view = icon_view(qtbot, model, QSize(32, 32), True)
    heard = []

    def visible_loaded(shown):
        tracker = loader.view_tracker(shown)
        heard.append((shown, QThread.currentThread(), list(tracker.visible)))
        # every visible row has its thumbnail or its failure when it is emitted
        assert all(loader.cached(p) is not None or loader.error(p) for p in tracker.visible)

    loader.visible_loaded.connect(visible_loaded)
    loader.attach_view(view)
    qtbot.waitUntil(lambda: len(heard) == 1, timeout=10000)
    shown, thread, top = heard[0]
    assert shown is view and thread is QApplication.instance().thread()
    assert 20 <= len(top) < len(grid) and grid[0] in top and grid[-1] not in top
    assert loader.error(grid[5]) is not None
    view.scrollToBottom()
    qtbot.waitUntil(lambda: len(heard) == 2, timeout=10000)
    bottom = heard[1][2]
    assert grid[-1] in bottom and not set(bottom) & set(top)
    view.scrollToTop()  # already loaded: announced at once
    qtbot.waitUntil(lambda: len(heard) == 3, timeout=10000)
    assert heard[2][2] == top
    # no repeat while the same screen stays
    view.resize(view.width(), view.height())
    loader.view_tracker(view).update_now()
    assert len(heard) == 3


def test_the_delegate_centres_images_in_one_box_and_aligns_the_captions(
    qtbot, make_manager, shapes
):
    m = make_manager()  # paused first: items without an image keep the box
    size = QSize(96, 96)
    loader = ThumbnailLoader(m, size, disk_cache=False)
    model = ThumbnailModel(shapes, loader)
    view = icon_view(qtbot, model, size, True)
    view.setItemDelegate(ThumbnailDelegate(size, view))
    assert view.itemDelegate().box == size
    loader.attach_view(view)
    before = [item_rects(view, model.index(row, 0)) for row in range(len(shapes))]
    with qtbot.waitSignal(loader.visible_loaded, timeout=10000):
        m.start_processing()
    after = [item_rects(view, model.index(row, 0)) for row in range(len(shapes))]
    assert [c for _, _, c in after] == [c for _, _, c in before]  # no caption moved
    shot = view.viewport().grab().toImage()
    tops = {}
    for row, (item, image, caption) in enumerate(after):
        assert image.size() == size and item.contains(image) and item.contains(caption)
        assert not image.intersects(caption)
        tops.setdefault(item.top(), set()).add(caption.top())
        if row != 3:  # the image is centred in the box (the 2 px strip: within a pixel)
            expected = QColor(["blue", "red", "green", "", "magenta", "yellow"][row]).rgb()
            centre = image.center()
            near = {shot.pixel(centre.x(), centre.y() + dy) & 0xF0F0F0 for dy in (-1, 0, 1)}
            assert expected & 0xF0F0F0 in near, (shapes[row], near)
    assert all(len(captions) == 1 for captions in tops.values()), tops  # one line per row
    with pytest.raises(ValueError, match=r"^size must be at least 1x1, got 0x9$"):
        ThumbnailDelegate(QSize(0, 9))


def test_thumbnails_too_large_for_an_image_are_refused(make_manager):
    # A ratio of 1e6 (or inf) was taken: the placeholder and every decode then
    # asked Qt for an image of 128,000,000 pixels a side (or int(inf)).
    m = make_manager()
    with pytest.raises(ValueError) as info:
        ThumbnailLoader(m, device_pixel_ratio=float("inf"))
    assert str(info.value) == "device_pixel_ratio must be a positive number or None, got inf"
    with pytest.raises(ValueError) as info:
        ThumbnailLoader(m, device_pixel_ratio=1e6, disk_cache=False)
    assert str(info.value) == (
        "thumbnails of 128x128 at device_pixel_ratio 1000000.0 would be 128000000x128000000 "
        "device pixels; at most 8192 a side fit Qt's image allocation limit"
    )
    with pytest.raises(ValueError) as info:
        ThumbnailLoader(m, QSize(9000, 10), device_pixel_ratio=1.0, disk_cache=False)
    assert str(info.value).startswith("thumbnails of 9000x10 at device_pixel_ratio 1.0 would be ")
    ok = ThumbnailLoader(m, QSize(4096, 4096), device_pixel_ratio=2.0, disk_cache=False)
    assert ok.placeholder().size() == QSize(8192, 8192)
    with pytest.raises(ValueError):
        ThumbnailLoader(m, QSize(4096, 4096), device_pixel_ratio=2.01, disk_cache=False)


def test_keep_screens_cache_bytes_and_default_priority_are_checked_when_set(make_manager):
    m = make_manager()
    for bad in (float("nan"), -1, "2", True, None):
        with pytest.raises(ValueError) as info:
            ThumbnailLoader(m, keep_screens=bad, disk_cache=False)
        assert str(info.value) == f"keep_screens must be a non-negative number, got {bad!r}"
    loader = ThumbnailLoader(m, keep_screens=float("inf"), disk_cache=False)  # never cancel
    assert loader.keep_screens == float("inf")
    loader.keep_screens = 0.5
    with pytest.raises(ValueError, match=r"^keep_screens must be a non-negative number, got -2$"):
        loader.keep_screens = -2
    assert loader.keep_screens == 0.5  # a refused value changes nothing
    loader.cache_bytes = 0
    with pytest.raises(ValueError, match=r"^cache_bytes must be a non-negative integer, got 1.5$"):
        loader.cache_bytes = 1.5
    assert loader.cache_bytes == 0
    # a NaN default priority was taken, and failed later in every request (in
    # a view's slot, for the rows it asks for)
    with pytest.raises(TypeError, match=r"^default_priority must be a number or None, got nan$"):
        loader.default_priority = float("nan")
    loader.default_priority = None  # None means 0, as for a task's priority
    assert loader.default_priority == 0
    loader.default_priority = 2.5
    assert loader.default_priority == 2.5
