"""The thumbnail disk cache, after the freedesktop.org Thumbnail Managing Standard:
where thumbnails go, their names and keys, reuse, invalidation, failures,
damaged files, and the opt-out.  Every test's XDG_CACHE_HOME is its own tmp_path."""

from __future__ import annotations

import hashlib
import os
import stat
import threading

import pytest
from _images import make_image
from PySide6.QtCore import QSize, QUrl
from PySide6.QtGui import QColor, QImage

import bgtasks.thumbnails._loader as loading
from bgtasks import __version__
from bgtasks.thumbnails import DiskCache, ThumbnailLoader, file_uri, thumbnail_name


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    """This test's $XDG_CACHE_HOME; returns its thumbnails folder."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache / "thumbnails"


@pytest.fixture
def decodes(monkeypatch):
    """The paths the workers decode from source (the one private name these tests
    use, as in test_thumbnails.py: no public behaviour shows a decode starting)."""
    seen = []
    real = loading.decode_thumbnail

    def decode(path, size):
        seen.append(path)
        return real(path, size)

    monkeypatch.setattr(loading, "decode_thumbnail", decode)
    return seen


def their_uri(path):
    """The URI as the standard spells it (Qt's percent-encoding of the absolute path)."""
    return QUrl.fromLocalFile(os.path.abspath(path)).toString(
        QUrl.ComponentFormattingOption.FullyEncoded
    )


def their_name(path):
    return hashlib.md5(their_uri(path).encode()).hexdigest() + ".png"


def load(qtbot, loader, path):
    """Request ``path``; returns ("ready", pixmap) or ("failed", message) once the
    loader's tasks are all done: the disk write follows the thumbnail."""
    got = []
    loader.thumbnail_ready.connect(lambda p, pm: p == path and got.append(("ready", pm)))
    loader.thumbnail_failed.connect(lambda p, msg: p == path and got.append(("failed", msg)))
    loader.request(path)
    qtbot.waitUntil(lambda: bool(got), timeout=10000)
    manager = loader.manager
    qtbot.waitUntil(
        lambda: all(t.state.is_terminal for t in manager.tasks(loader.group)), timeout=10000
    )
    return got[0]


@pytest.fixture
def source(tmp_path):
    return make_image(tmp_path / "my photo é (1).png", 400, 200, "red")


def test_names_follow_the_standard(tmp_path):
    for name in ("plain.png", "my photo é (1).png", "100%&more;#x.png", "a+b=c,~d.png"):
        path = str(tmp_path / name)
        assert file_uri(path) == their_uri(path), name
        assert thumbnail_name(path) == their_name(path)
    raw = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.png")  # not UTF-8: its bytes
    assert file_uri(raw).endswith("/caf%E9.png")


def test_our_thumbnail_is_written_atomically_with_the_keys(qtbot, make_manager, xdg, source):
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m, QSize(100, 100))
    assert loader.disk_cache_dir == str(xdg)
    kind, pixmap = load(qtbot, loader, source)
    assert kind == "ready" and pixmap.size() == QSize(100, 50)
    where = xdg / "normal" / their_name(source)
    image = QImage(str(where))
    assert image.size() == QSize(128, 64)  # the "normal" flavour: 128 px
    st = os.stat(source)
    assert image.text("Thumb::URI") == their_uri(source)
    assert image.text("Thumb::MTime") == str(int(st.st_mtime))
    assert image.text("Thumb::Size") == str(st.st_size)
    assert stat.S_IMODE(os.stat(where).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(xdg / "normal").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(xdg).st_mode) == 0o700
    assert os.listdir(xdg / "normal") == [their_name(source)]  # no temporary file left


def test_a_thumbnail_made_by_another_program_is_used_without_decoding(
    qtbot, make_manager, xdg, source, decodes
):
    theirs = QImage(128, 64, QImage.Format.Format_RGB32)
    theirs.fill(QColor("blue"))  # not the source's red: proof it came from the cache
    theirs.setText("Thumb::URI", their_uri(source))
    theirs.setText("Thumb::MTime", str(int(os.stat(source).st_mtime)))
    (xdg / "normal").mkdir(parents=True)
    assert theirs.save(str(xdg / "normal" / their_name(source)))
    m = make_manager(start_processing=True)
    kind, pixmap = load(qtbot, ThumbnailLoader(m, QSize(64, 64)), source)
    assert kind == "ready" and pixmap.size() == QSize(64, 32)
    assert pixmap.toImage().pixelColor(30, 15) == QColor("blue")
    assert decodes == []


def test_a_changed_file_is_decoded_again(qtbot, make_manager, xdg, source, decodes):
    m = make_manager(start_processing=True)
    assert load(qtbot, ThumbnailLoader(m), source)[0] == "ready"
    assert decodes == [source]
    kind, pixmap = load(qtbot, ThumbnailLoader(m), source)  # a new loader: from disk
    assert decodes == [source] and pixmap.toImage().pixelColor(5, 5) == QColor("red")
    make_image(source, 400, 200, "green")
    st = os.stat(source)
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 3_000_000_000))  # a later second
    kind, pixmap = load(qtbot, ThumbnailLoader(m), source)
    assert decodes == [source, source]
    assert pixmap.toImage().pixelColor(5, 5) == QColor("green")
    image = QImage(str(xdg / "normal" / their_name(source)))
    assert image.text("Thumb::MTime") == str(int(os.stat(source).st_mtime))
    assert image.pixelColor(5, 5) == QColor("green")


def test_a_failed_file_gets_a_fail_entry_and_is_not_retried_until_it_changes(
    qtbot, make_manager, xdg, tmp_path, decodes
):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    path = str(broken)
    m = make_manager(start_processing=True)
    kind, message = load(qtbot, ThumbnailLoader(m), path)
    assert (kind, message) == ("failed", f"cannot read image {path}: Unable to read image data")
    entry = xdg / "fail" / f"bgtasks-{__version__}" / their_name(path)
    image = QImage(str(entry))
    assert image.text("Thumb::URI") == their_uri(path)
    assert image.text("Thumb::MTime") == str(int(os.stat(path).st_mtime))
    assert load(qtbot, ThumbnailLoader(m), path) == ("failed", message)  # from the entry
    assert decodes == [path]
    make_image(path, 40, 40, "navy")  # fixed
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 3_000_000_000))
    kind, pixmap = load(qtbot, ThumbnailLoader(m), path)
    assert kind == "ready" and decodes == [path, path]


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"\x89PNG\r\n\x1a\n garbage",
        b"not a png at all",
        "another file's",
        "no keys",
        "truncated",
        "a named pipe",  # opening it would block the worker until something writes
    ],
)
def test_a_damaged_or_foreign_cache_file_is_ignored_and_rewritten(
    qtbot, make_manager, xdg, source, decodes, damage
):
    where = xdg / "normal" / their_name(source)
    where.parent.mkdir(parents=True)
    if isinstance(damage, bytes):
        where.write_bytes(damage)
    elif damage == "a named pipe":
        if not hasattr(os, "mkfifo"):
            pytest.skip("named pipes are POSIX")
        os.mkfifo(where)
    else:
        other = QImage(64, 64, QImage.Format.Format_RGB32)
        other.fill(QColor("black"))
        uri = "file:///somewhere/else.png" if damage == "another file's" else their_uri(source)
        if damage != "no keys":
            other.setText("Thumb::URI", uri)
            other.setText("Thumb::MTime", str(int(os.stat(source).st_mtime)))
        assert other.save(str(where))
        if damage == "truncated":  # the right keys, the pixels cut short
            where.write_bytes(where.read_bytes()[:-40])
    m = make_manager(start_processing=True)
    kind, pixmap = load(qtbot, ThumbnailLoader(m), source)
    assert kind == "ready" and pixmap.toImage().pixelColor(5, 5) == QColor("red")
    assert decodes == [source]
    image = QImage(str(where))
    assert image.text("Thumb::URI") == their_uri(source) and image.size() == QSize(128, 64)


def test_hidpi_uses_the_larger_flavour(qtbot, make_manager, xdg, source):
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m, QSize(128, 128), device_pixel_ratio=2)
    kind, pixmap = load(qtbot, loader, source)
    assert kind == "ready" and pixmap.size() == QSize(256, 128)
    assert QImage(str(xdg / "large" / their_name(source))).size() == QSize(256, 128)
    assert not (xdg / "normal").exists()


def test_disk_cache_reads_and_writes_in_a_worker(qtbot, make_manager, xdg, source, monkeypatch):
    threads = {"thumbnail": [], "store": []}
    real_thumbnail, real_store = DiskCache.thumbnail, DiskCache.store

    def thumbnail(self, path, box, decode):
        threads["thumbnail"].append(threading.current_thread())
        return real_thumbnail(self, path, box, decode)

    def store(self, write):
        threads["store"].append(threading.current_thread())
        real_store(self, write)

    monkeypatch.setattr(DiskCache, "thumbnail", thumbnail)
    monkeypatch.setattr(DiskCache, "store", store)
    m = make_manager(start_processing=True)
    assert load(qtbot, ThumbnailLoader(m), source)[0] == "ready"  # decoded, then written
    assert load(qtbot, ThumbnailLoader(m), source)[0] == "ready"  # read back
    assert len(threads["thumbnail"]) == 2 and len(threads["store"]) == 1
    assert threading.main_thread() not in threads["thumbnail"] + threads["store"]


def test_opt_out_and_a_folder_of_ones_own(qtbot, make_manager, xdg, source, tmp_path):
    m = make_manager(start_processing=True)
    off = ThumbnailLoader(m, disk_cache=False)
    assert off.disk_cache_dir is None
    assert load(qtbot, off, source)[0] == "ready"
    assert not xdg.exists()
    own = tmp_path / "own"
    mine = ThumbnailLoader(m, QSize(32, 32), disk_cache=own)
    assert mine.disk_cache_dir == str(own)
    assert load(qtbot, mine, source)[0] == "ready"
    assert (own / "normal" / their_name(source)).exists() and not xdg.exists()
    with pytest.raises(TypeError, match=r"^disk_cache must be True, False or a folder, got 3$"):
        ThumbnailLoader(m, disk_cache=3)


def test_without_xdg_cache_home_the_cache_is_in_home(make_manager, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    m = make_manager()
    for value in ("relative/path", ""):  # the XDG spec: ignored unless absolute
        monkeypatch.setenv("XDG_CACHE_HOME", value)
        assert ThumbnailLoader(m).disk_cache_dir == str(tmp_path / ".cache" / "thumbnails")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert ThumbnailLoader(m).disk_cache_dir == str(tmp_path / ".cache" / "thumbnails")


def test_an_unwritable_cache_is_logged_once_and_thumbnails_still_load(
    qtbot, make_manager, tmp_path, caplog
):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    paths = [make_image(tmp_path / f"{i}.png", 20, 20) for i in range(3)]
    m = make_manager(start_processing=True)
    loader = ThumbnailLoader(m, disk_cache=blocked)
    for path in paths:
        assert load(qtbot, loader, path)[0] == "ready"
    warnings = [r for r in caplog.records if r.name == "bgtasks" and "disk cache" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].getMessage().startswith(f"thumbnail disk cache: cannot write {blocked}")


def test_new_thumbnails_are_written_after_every_decode_waiting(
    qtbot, make_manager, xdg, tmp_path, monkeypatch
):
    """The write to disk waits (lowest priority): it never delays a thumbnail."""
    order = []
    lock = threading.Lock()
    real_decode, real_store = loading.decode_thumbnail, DiskCache.store

    def decode(path, size):
        with lock:
            order.append(("decode", os.path.basename(path)))
        return real_decode(path, size)

    def store(self, write):
        with lock:
            order.append(("store", os.path.basename(write.source.path)))
        real_store(self, write)

    monkeypatch.setattr(loading, "decode_thumbnail", decode)
    monkeypatch.setattr(DiskCache, "store", store)
    paths = [make_image(tmp_path / f"{name}.png", 90, 60) for name in ("a", "b", "c")]
    m = make_manager(max_threads=1)
    loader = ThumbnailLoader(m)
    for path in paths:
        loader.request(path)
    m.start_processing()
    qtbot.waitUntil(lambda: len(order) == 6, timeout=10000)
    assert order[:3] == [("decode", "a.png"), ("decode", "b.png"), ("decode", "c.png")]
    assert sorted(order[3:]) == [("store", "a.png"), ("store", "b.png"), ("store", "c.png")]
    written = sorted(thumbnail_name(path) for path in paths)  # not a temporary file among them
    qtbot.waitUntil(lambda: sorted(os.listdir(xdg / "normal")) == written, timeout=10000)


@pytest.mark.parametrize("bound", ["roomy", "full"])
def test_writes_wait_while_a_decode_is_in_flight(
    qtbot, make_manager, xdg, tmp_path, monkeypatch, bound
):
    """A write (a PNG encode) beside the last decodes of a screen delays that
    screen: with two workers, the first thumbnail's write is not even submitted
    while the second is still decoding; both are written once it is done.
    Unless the held images reach ``WRITES_HELD_BYTES``: then they go at once."""
    if bound == "full":  # one 90x60 thumbnail is more than this
        monkeypatch.setattr(loading, "WRITES_HELD_BYTES", 1000)
    held = threading.Event()
    real_decode = loading.decode_thumbnail

    def decode(path, size):
        if os.path.basename(path) == "slow.png":
            assert held.wait(10)
        return real_decode(path, size)

    monkeypatch.setattr(loading, "decode_thumbnail", decode)
    fast, slow = (make_image(tmp_path / f"{name}.png", 90, 60) for name in ("fast", "slow"))
    m = make_manager(max_threads=2, start_processing=True)
    loader = ThumbnailLoader(m)
    ready = []
    loader.thumbnail_ready.connect(lambda path, pixmap: ready.append(os.path.basename(path)))
    loader.request(slow)
    loader.request(fast)
    qtbot.waitUntil(lambda: ready == ["fast.png"], timeout=10000)
    writes = [t.name for t in m.tasks(loader.group) if t.name.startswith("thumbnail disk write")]
    if bound == "roomy":
        assert writes == []  # held: slow.png is still decoding
    else:
        assert writes == [f"thumbnail disk write {thumbnail_name(fast)}"]
    held.set()
    qtbot.waitUntil(lambda: len(ready) == 2, timeout=10000)
    # (a write goes through a hidden temporary file, renamed when complete)
    written = sorted(thumbnail_name(path) for path in (fast, slow))
    qtbot.waitUntil(lambda: sorted(os.listdir(xdg / "normal")) == written, timeout=10000)
