"""Thumbnail loader: decode size, threads, dedupe, cache, cancellation, failures,
visible-first loading in a view, and the thumbnail model."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from _images import make_image, wait_ready
from PySide6.QtCore import QSize, Qt, QThread
from PySide6.QtGui import (
    QColor,
    QFontMetrics,
    QIcon,
    QImage,
    QPixmap,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import QApplication, QListView

import bgtasks.thumbnails._loader as loading
from bgtasks.thumbnails import (
    ThumbnailError,
    ThumbnailLoader,
    ThumbnailModel,
    ViewTracker,
    decode_thumbnail,
)


@pytest.fixture
def files(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    return {
        "wide": make_image(tmp_path / "wide.png", 400, 200),
        "tall": make_image(tmp_path / "tall.jpg", 100, 300, "blue"),
        "small": make_image(tmp_path / "small.png", 40, 30, "green"),
        "broken": str(broken),
        "text": str(text),
        "missing": str(tmp_path / "missing.png"),
    }


class Recorder:
    """Counts decodes per path (thread-safe).  With ``tickets``, each decode
    first takes a ticket (``allow(n)``), so the test decides when they run.

    The one private name these tests use: the decode a worker runs, replaced
    to count and hold decodes (no public behaviour shows a decode starting)."""

    def __init__(self, monkeypatch, tickets=False):
        self.lock = threading.Lock()
        self.decoded = []
        self.started = threading.Semaphore(0)
        self.tickets = threading.Semaphore(0) if tickets else None
        real = loading.decode_thumbnail

        def decode(path, size):
            with self.lock:
                self.decoded.append(path)
            self.started.release()
            if self.tickets is not None:
                assert self.tickets.acquire(timeout=20)
            return real(path, size)

        monkeypatch.setattr(loading, "decode_thumbnail", decode)

    def allow(self, n=10_000):
        self.tickets.release(n)


# ---------------------------------------------------------------- decoding


def test_decode_fits_the_box_and_keeps_the_aspect_ratio(files):
    box = QSize(128, 128)
    assert decode_thumbnail(files["wide"], box).size() == QSize(128, 64)
    assert decode_thumbnail(files["tall"], box).size() == QSize(42, 128)
    assert decode_thumbnail(files["small"], box).size() == QSize(40, 30)  # never enlarged


@pytest.mark.parametrize(
    "name, error",
    [("broken", "Unable to read image data"), ("text", "Unsupported image format"),
     ("missing", "File not found")],
)  # fmt: skip
def test_decode_errors_name_the_path_and_the_reader_error(files, name, error):
    with pytest.raises(ThumbnailError) as info:
        decode_thumbnail(files[name], QSize(64, 64))
    assert str(info.value) == f"cannot read image {files[name]}: {error}"
    assert isinstance(info.value, OSError)


_SPECIAL_FILES = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication
from bgtasks import BackgroundTaskManager
from bgtasks.thumbnails import ThumbnailLoader
app = QApplication([])
m = BackgroundTaskManager(start_processing=True, max_threads=2)
loader = ThumbnailLoader(m, disk_cache=sys.argv[3] == "cache")
failed = {}
loop = QEventLoop()
def on_failed(path, message):
    failed[path] = message
    if len(failed) == 2:
        loop.quit()
loader.thumbnail_failed.connect(on_failed)
for path in sys.argv[1:3]:
    loader.request(path)
QTimer.singleShot(20000, loop.quit)
loop.exec()
for path in sys.argv[1:3]:
    print(failed.get(path, "no answer"))
m.shut_down(timeout=5)
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("cache", ["cache", "no cache"])
def test_a_named_pipe_or_a_folder_fails_at_once_and_freezes_nothing(tmp_path, cache):
    """A named pipe called ``*.jpg`` (or a folder called ``*.png``) in a folder
    of photos: opening the pipe blocks until something writes to it, and Qt's
    reader did that in a worker holding the GIL, which froze the whole app.
    Only regular files are read.  In a child process: if it froze, the test
    fails on its timeout instead of hanging the suite."""
    pipe, folder = tmp_path / "pipe.jpg", tmp_path / "folder.png"
    os.mkfifo(pipe)
    folder.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, "-c", _SPECIAL_FILES, str(pipe), str(folder), cache],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"cannot read image {pipe}: not a regular file",
        f"cannot read image {folder}: not a regular file",
    ]


def test_supported_formats_lists_png_and_jpeg():
    formats = ThumbnailLoader.supported_formats()
    assert "png" in formats and "jpeg" in formats and formats == sorted(formats)


def test_ready_signal_on_the_main_thread_with_a_pixmap_of_the_size(qtbot, make_manager, files):
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m, QSize(100, 100))
    threads = []
    loader.thumbnail_ready.connect(lambda *a: threads.append(QThread.currentThread()))
    pixmap = wait_ready(qtbot, loader, files["wide"])
    assert isinstance(pixmap, QPixmap) and pixmap.size() == QSize(100, 50)
    assert pixmap.toImage().pixelColor(50, 25) == QColor("red")
    assert threads == [qtbot_main_thread()]
    assert loader.pending() == []


def qtbot_main_thread():
    from PySide6.QtWidgets import QApplication

    return QApplication.instance().thread()


def test_loader_tasks_use_its_group_and_it_as_owner(qtbot, make_manager, files, monkeypatch):
    m = make_manager()  # not started: the request stays queued
    loader = ThumbnailLoader(m)
    uid = loader.request(files["wide"])
    assert m.info(uid).group == loader.group
    assert m.info(uid).key[:4] == ("bgtasks.thumbnail", files["wide"], 128, 128)
    cancelled = []
    m.task_cancelled.connect(lambda u, g: cancelled.append(u))
    loader.deleteLater()  # owner destroyed: its tasks are cancelled
    qtbot.waitUntil(lambda: m.task_state(uid).name == "CANCELLED")


# ---------------------------------------------------------------- dedupe and cache


def test_ten_requests_for_one_path_decode_once(qtbot, make_manager, files, monkeypatch):
    rec = Recorder(monkeypatch)
    m = make_manager()
    loader = ThumbnailLoader(m)
    ready = []
    loader.thumbnail_ready.connect(lambda p, pm: ready.append(p))
    uids = {loader.request(files["wide"]) for _ in range(10)}
    assert len(uids) == 1
    m.start_processing()
    qtbot.waitUntil(lambda: ready == [files["wide"]])
    assert rec.decoded == [files["wide"]]


def test_two_loaders_share_one_decode_through_the_manager_key(
    qtbot, make_manager, files, monkeypatch
):
    rec = Recorder(monkeypatch)
    m = make_manager()
    first, second = ThumbnailLoader(m), ThumbnailLoader(m)
    got = []
    first.thumbnail_ready.connect(lambda p, pm: got.append(("first", pm.size())))
    second.thumbnail_ready.connect(lambda p, pm: got.append(("second", pm.size())))
    first.request(files["tall"])
    second.request(files["tall"])
    m.start_processing()
    qtbot.waitUntil(lambda: len(got) == 2)
    assert sorted(got) == [("first", QSize(42, 128)), ("second", QSize(42, 128))]
    assert rec.decoded == [files["tall"]]


def test_a_cache_hit_needs_no_task(qtbot, make_manager, files, monkeypatch):
    rec = Recorder(monkeypatch)
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m)
    first = wait_ready(qtbot, loader, files["wide"])
    before = len(m.tasks())
    got = []
    loader.thumbnail_ready.connect(lambda p, pm: got.append((p, pm)))
    assert loader.request(files["wide"]) is None  # answered at once
    assert [p for p, _ in got] == [files["wide"]] and got[0][1].cacheKey() == first.cacheKey()
    assert len(m.tasks()) == before and rec.decoded == [files["wide"]]
    assert loader.cache_used == 128 * 64 * 4


def test_cache_evicts_least_recently_used_by_bytes(qtbot, make_manager, tmp_path):
    m = make_manager(start_processing=True)
    # Each 64x64 thumbnail is 16 KiB: room for three.
    loader = ThumbnailLoader(m, QSize(64, 64), cache_bytes=3 * 64 * 64 * 4)
    paths = [make_image(tmp_path / f"{i}.png", 64, 64) for i in range(4)]
    for path in paths[:3]:
        wait_ready(qtbot, loader, path)
    assert loader.cached_paths() == paths[:3]
    assert loader.cached(paths[0]) is not None  # used: now the most recent
    wait_ready(qtbot, loader, paths[3])
    assert loader.cached_paths() == [paths[2], paths[0], paths[3]]
    assert loader.cached(paths[1]) is None
    assert loader.cache_used == 3 * 64 * 64 * 4


def test_a_thumbnail_larger_than_the_cache_is_delivered_but_not_kept(qtbot, make_manager, files):
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m, cache_bytes=100)
    wait_ready(qtbot, loader, files["wide"])
    assert loader.cached_paths() == [] and loader.cache_used == 0


# ---------------------------------------------------------------- cancellation


def test_cancel_a_queued_request_never_decodes_it(qtbot, make_manager, files, monkeypatch):
    rec = Recorder(monkeypatch, tickets=True)
    m = make_manager(start_processing=True, max_threads=1)
    loader = ThumbnailLoader(m)
    got = []
    loader.thumbnail_ready.connect(lambda p, pm: got.append(p))
    loader.request(files["wide"])  # occupies the only worker
    assert rec.started.acquire(timeout=10)
    loader.request(files["tall"])
    loader.request(files["small"])
    assert loader.cancel(files["tall"]) is True
    assert loader.cancel(files["tall"]) is False
    rec.allow()
    qtbot.waitUntil(lambda: len(got) == 2)
    assert got == [files["wide"], files["small"]]
    assert rec.decoded == [files["wide"], files["small"]]


def test_cancel_all(qtbot, make_manager, files, monkeypatch):
    rec = Recorder(monkeypatch)
    m = make_manager()
    loader = ThumbnailLoader(m)
    cancelled = []
    m.task_cancelled.connect(lambda uid, group: cancelled.append(group))
    for name in ("wide", "tall", "small"):
        loader.request(files[name])
    assert loader.cancel_all() == 3 and loader.pending() == []
    qtbot.waitUntil(lambda: len(cancelled) == 3)
    assert cancelled == [loader.group] * 3
    m.start_processing()
    with qtbot.waitSignal(m.task_completed, timeout=5000):
        m.submit(lambda: None)
    assert rec.decoded == []


def test_higher_priority_request_jumps_the_queue(qtbot, make_manager, files, monkeypatch):
    rec = Recorder(monkeypatch)
    m = make_manager(max_threads=1)
    loader = ThumbnailLoader(m)
    got = []
    loader.thumbnail_ready.connect(lambda p, pm: got.append(p))
    loader.request(files["wide"])
    loader.request(files["tall"])
    loader.request(files["small"], priority=1)
    loader.request(files["tall"], priority=5)  # already queued: raised above the others
    m.start_processing()
    qtbot.waitUntil(lambda: len(got) == 3)
    assert rec.decoded == [files["tall"], files["small"], files["wide"]]


# ---------------------------------------------------------------- failures


@pytest.mark.parametrize("name", ["broken", "missing", "text"])
def test_failures_are_reported_with_the_path_and_a_placeholder(qtbot, make_manager, files, name):
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m, QSize(96, 64))
    with qtbot.waitSignal(loader.thumbnail_failed, timeout=10000) as blocker:
        loader.request(files[name])
    path, message = blocker.args
    assert path == files[name]
    assert message.startswith(f"cannot read image {files[name]}: ")
    assert loader.error(path) == message
    placeholder = loader.placeholder()
    assert isinstance(placeholder, QPixmap) and placeholder.size() == QSize(96, 64)
    # remembered: asked again, answered at once without a task
    again = []
    loader.thumbnail_failed.connect(lambda p, msg: again.append((p, msg)))
    assert loader.request(path) is None and again == [(path, message)]
    loader.forget(path)
    assert loader.error(path) is None


def test_an_unexpected_exception_still_names_the_path(qtbot, make_manager, files, monkeypatch):
    def boom(path, size):
        raise MemoryError("out of memory")

    monkeypatch.setattr(loading, "decode_thumbnail", boom)
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m)
    with qtbot.waitSignal(loader.thumbnail_failed, timeout=10000) as blocker:
        loader.request(files["wide"])
    assert files["wide"] in blocker.args[1] and "out of memory" in blocker.args[1]


def test_bad_arguments(make_manager):
    m = make_manager()
    with pytest.raises(ValueError, match=r"^size must be at least 1x1, got 0x5$"):
        ThumbnailLoader(m, QSize(0, 5))
    with pytest.raises(ValueError, match=r"^cache_bytes must be a non-negative integer, got -1$"):
        ThumbnailLoader(m, cache_bytes=-1)
    with pytest.raises(TypeError, match=r"^view must be a QAbstractItemView"):
        ThumbnailLoader(m).attach_view(object())


# ---------------------------------------------------------------- visible first


@pytest.fixture
def many(tmp_path):
    image = QImage(32, 32, QImage.Format.Format_RGB32)
    paths = []
    for i in range(500):
        image.fill(QColor.fromHsv(i % 360, 200, 200))
        path = str(tmp_path / f"img{i:03}.png")
        assert image.save(path)
        paths.append(path)
    return paths


def list_view(qtbot, model):
    view = QListView()
    view.setUniformItemSizes(True)
    view.resize(200, 200)  # about 10 rows of 18 px on screen
    view.setModel(model)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    return view


def test_visible_rows_are_decoded_before_a_queue_of_earlier_requests(
    qtbot, make_manager, many, monkeypatch
):
    rec = Recorder(monkeypatch, tickets=True)
    m = make_manager(max_threads=1)
    loader = ThumbnailLoader(m, QSize(16, 16))
    model = QStandardItemModel()
    for path in many:
        item = QStandardItem(path.rsplit("/", 1)[1])
        item.setData(path, Qt.ItemDataRole.UserRole)
        model.appendRow(item)
    # Everything asked for first, bottom up, as a naive app would.
    for path in reversed(many):
        loader.request(path)
    view = list_view(qtbot, model)
    loader.attach_view(view)
    tracker = loader.view_tracker(view)
    qtbot.waitUntil(lambda: len(tracker.visible) > 0)
    top = list(tracker.visible)
    assert top[0] == many[0] and 5 <= len(top) <= 20
    m.start_processing()
    rec.allow(len(top))
    qtbot.waitUntil(lambda: len(rec.decoded) == len(top) + 1)  # the next one waits
    assert rec.decoded[: len(top)] == top  # the screen first, in reading order
    qtbot.waitUntil(lambda: all(loader.cached(p) is not None for p in top))

    # Scroll to the bottom: that screen comes before the rest of the queue.
    view.scrollToBottom()
    qtbot.waitUntil(lambda: tracker.visible and tracker.visible[-1] == many[-1])
    bottom = list(tracker.visible)
    qtbot.waitUntil(lambda: all(loader.pending_priority(p) > 1000 for p in bottom[1:]))
    # explicit requests (not the view's) are never cancelled by scrolling:
    assert loader.is_pending(many[250]) is True
    rec.allow()
    qtbot.waitUntil(lambda: all(loader.cached(p) is not None for p in bottom), timeout=20000)
    held = rec.decoded[len(top)]  # the one that waited for a ticket while we scrolled
    expected = [p for p in bottom if p != held]
    assert rec.decoded[len(top) + 1 : len(top) + 1 + len(expected)] == expected


def test_view_requests_are_cancelled_when_scrolled_far_away(qtbot, make_manager, many, monkeypatch):
    rec = Recorder(monkeypatch)
    m = make_manager()  # not processing: everything stays queued
    loader = ThumbnailLoader(m, QSize(16, 16))
    model = ThumbnailModel(many, loader)
    view = list_view(qtbot, model)
    loader.attach_view(view)
    tracker = loader.view_tracker(view)
    qtbot.waitUntil(lambda: bool(tracker.visible))
    top = list(tracker.visible)
    assert sorted(loader.pending()) == top
    cancelled = []
    m.task_cancelled.connect(lambda uid, group: cancelled.append(uid))
    view.scrollToBottom()
    qtbot.waitUntil(lambda: tracker.visible and tracker.visible[-1] == many[-1])
    bottom = list(tracker.visible)
    qtbot.waitUntil(lambda: all(loader.is_pending(p) for p in bottom))
    assert sorted(loader.pending()) == sorted(bottom)  # the top ones were withdrawn
    qtbot.waitUntil(lambda: len(cancelled) == len(top))
    # Two rows up: nearby requests are kept, not cancelled.
    # (under a screen of rows of a 16 px thumbnail and a caption)
    view.verticalScrollBar().setValue(view.verticalScrollBar().value() - 2)
    qtbot.waitUntil(lambda: tracker.visible[-1] != many[-1])
    assert set(bottom) & set(loader.pending())
    m.start_processing()
    qtbot.waitUntil(lambda: not loader.pending(), timeout=20000)
    assert not set(top) & set(rec.decoded)


def test_a_fling_only_cancels_and_the_rows_where_it_stops_load(qtbot, make_manager, many):
    m = make_manager()  # not processing: requests stay queued
    loader = ThumbnailLoader(m, QSize(16, 16))
    view = list_view(qtbot, ThumbnailModel(many, loader))
    loader.attach_view(view)
    tracker = loader.view_tracker(view)
    qtbot.waitUntil(lambda: bool(tracker.visible) and bool(loader.pending()))
    top = list(tracker.visible)
    tracker.debounce_ms = 500  # "still moving" for half a second, even on a slow machine
    bar = view.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)  # a jump of many screens...
    tracker.update_now()  # ...read while the view is still moving
    middle = list(tracker.visible)
    assert middle and not set(middle) & set(top)
    assert loader.pending() == [] and tracker.flings == 1  # cancelled, nothing new
    qtbot.waitUntil(lambda: sorted(loader.pending()) == middle)  # it stopped: load


def test_a_view_after_the_manager_shut_down_raises_nothing(qtbot, make_manager, many):
    m = make_manager()
    loader = ThumbnailLoader(m, QSize(16, 16))
    model = ThumbnailModel(many[:50], loader)
    m.shut_down()
    view = list_view(qtbot, model)
    loader.attach_view(view)
    tracker = loader.view_tracker(view)
    qtbot.waitUntil(lambda: bool(tracker.visible))
    assert loader.pending() == []
    assert model.index(0, 0).data(Qt.ItemDataRole.DecorationRole) is None
    with pytest.raises(RuntimeError, match="shut down"):
        loader.request(many[0])


def test_detach_and_destroyed_views_stop_tracking(qtbot, make_manager, many):
    m = make_manager()
    loader = ThumbnailLoader(m, QSize(16, 16))
    model = ThumbnailModel(many[:50], loader)
    view = list_view(qtbot, model)
    loader.attach_view(view)
    tracker = loader.view_tracker(view)
    assert isinstance(tracker, ViewTracker) and tracker.view is view
    loader.attach_view(view)  # once only
    assert loader.views() == [view] and loader.view_tracker(view) is tracker
    assert loader.has_views()
    loader.detach_view(view)
    assert not loader.has_views() and loader.views() == []
    assert loader.view_tracker(view) is None and tracker.view is None
    # A view destroyed while attached is simply forgotten.
    other = QListView()
    other.setModel(model)
    loader.attach_view(other)
    assert loader.has_views() and loader.views() == [other]
    tracker = loader.view_tracker(other)
    with qtbot.waitSignal(other.destroyed, timeout=5000):
        other.deleteLater()
    assert not loader.has_views() and loader.views() == []
    assert tracker.view is None
    tracker.update_now()  # reads nothing, raises nothing
    assert tracker.visible == []


# ---------------------------------------------------------------- the model


def test_model_gives_a_pixmap_for_decoration_after_loading(qtbot, make_manager, files):
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m, QSize(64, 64))
    paths = [files["wide"], files["broken"], files["tall"]]
    model = ThumbnailModel(paths, loader)
    assert model.rowCount() == 3
    idx = [model.index(r, 0) for r in range(3)]
    assert idx[0].data(Qt.ItemDataRole.DisplayRole) == "wide.png"
    assert idx[0].data(Qt.ItemDataRole.UserRole) == files["wide"]
    changed = []
    model.dataChanged.connect(lambda a, b, roles: changed.append((a.row(), roles)))
    for i in idx:
        assert i.data(Qt.ItemDataRole.DecorationRole) is None  # loading
    qtbot.waitUntil(lambda: len(changed) == 3, timeout=10000)
    assert sorted(changed) == [(r, [Qt.ItemDataRole.DecorationRole]) for r in range(3)]
    wide = idx[0].data(Qt.ItemDataRole.DecorationRole)
    assert isinstance(wide, (QPixmap, QIcon)) and wide.size() == QSize(64, 32)
    assert idx[1].data(Qt.ItemDataRole.DecorationRole).cacheKey() == loader.placeholder().cacheKey()
    assert files["broken"] in idx[1].data(Qt.ItemDataRole.ToolTipRole)
    # multiData (one call per item for a delegate's roles) answers as data()
    from PySide6.QtCore import QModelRoleData, QModelRoleDataSpan

    for i in idx:
        for role in (*Qt.ItemDataRole, Qt.ItemDataRole.UserRole):
            slot = QModelRoleData(int(role))
            model.multiData(i, QModelRoleDataSpan(slot))
            value = i.data(role)
            if isinstance(value, QPixmap):
                assert slot.data().cacheKey() == value.cacheKey()
            else:
                assert slot.data() == value, role
    # one span reused from item to item, as a delegate may: nothing carries over
    for role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.WhatsThisRole):
        slot = QModelRoleData(int(role))
        span = QModelRoleDataSpan(slot)
        for i in (idx[1], idx[2], idx[0], idx[1]):
            model.multiData(i, span)
            assert slot.data() == i.data(role), (i.row(), role)
    slot.setData("left over")
    model.multiData(model.index(7, 0), QModelRoleDataSpan(slot))
    assert slot.data() is None


def test_thumbnail_grid_in_a_few_lines(qtbot, make_manager, many):
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m, QSize(32, 32))
    view = QListView()
    view.setViewMode(QListView.ViewMode.IconMode)
    view.setUniformItemSizes(True)
    view.setModel(ThumbnailModel(many, loader))
    loader.attach_view(view)
    view.resize(300, 200)
    qtbot.addWidget(view)
    view.show()
    tracker = loader.view_tracker(view)
    qtbot.waitUntil(lambda: bool(tracker.visible))
    qtbot.waitUntil(lambda: all(loader.cached(p) for p in tracker.visible), timeout=20000)
    assert many[0] in tracker.visible and many[-1] not in tracker.visible
    assert len(loader.cached_paths()) < len(many)  # only what was shown (and near)


def test_size_hint_is_the_thumbnail_size_plus_a_margin_before_loading(qtbot, make_manager, many):
    """A uniform-size view sizes its items for the thumbnails from the start,
    not for the first (still empty) row."""
    m = make_manager()  # not processing: nothing loads during the test
    loader = ThumbnailLoader(m, QSize(48, 40))
    model = ThumbnailModel(many[:20], loader)
    hint = model.index(0, 0).data(Qt.ItemDataRole.SizeHintRole)
    caption = QFontMetrics(QApplication.font("QListView")).height()
    assert hint.width() >= 56 and hint.height() >= 48 + caption  # 4 px each side by default
    assert ThumbnailModel(many[:1], loader, caption_lines=0).index(0, 0).data(
        Qt.ItemDataRole.SizeHintRole
    ) == QSize(56, 48)  # no caption: the box and the margins
    assert ThumbnailModel(many[:1], loader, size_hint_margin=0, caption_lines=0).index(0, 0).data(
        Qt.ItemDataRole.SizeHintRole
    ) == QSize(48, 40)
    with pytest.raises(
        ValueError, match=r"^size_hint_margin must be a non-negative integer, got -1$"
    ):
        ThumbnailModel(many[:1], loader, size_hint_margin=-1)

    view = QListView()
    view.setUniformItemSizes(True)
    view.resize(300, 300)
    view.setModel(model)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    assert model.index(0, 0).data(Qt.ItemDataRole.DecorationRole) is None  # not loaded
    for row in (0, 5):
        rect = view.visualRect(model.index(row, 0))
        assert rect.height() >= 48, rect
    assert view.sizeHintForRow(0) >= 48


def test_a_path_with_a_nul_character_is_refused_not_cut_short(qtbot, make_manager, tmp_path):
    """Qt cuts a file name at a NUL character: ``a.png\\0b.png`` got the
    thumbnail of ``a.png``.  Refused at the call (and by the decoder)."""
    make_image(tmp_path / "a.png", 40, 30)  # what Qt would have read instead
    bad = str(tmp_path / "a.png\0b.png")
    loader = ThumbnailLoader(make_manager(start_processing=True), disk_cache=False)
    with pytest.raises(
        ValueError, match=r"^path must not contain a NUL character, got '.*a.png\\x00b.png'$"
    ):
        loader.request(bad)
    with pytest.raises(TypeError, match=r"^path must be a str or a path of one, got b'a.png'$"):
        loader.request(b"a.png")
    assert loader.pending() == []
    with pytest.raises(ThumbnailError, match=r": the file name contains a NUL character$"):
        decode_thumbnail(bad, QSize(64, 64))
