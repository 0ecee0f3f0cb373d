"""Lifetime of the managers' thread pools.

``~QThreadPool`` waits for its running tasks without a timeout.  If the last
reference to a pool were dropped while a task never returns, whichever thread
dropped it would hang; if it were dropped by one of the pool's own threads,
that thread would wait for itself.  So a pool is never freed by accident:
``_LIVE`` keeps every pool until ``release_pool`` has seen it idle, and a
pool that does not become idle in time is handed to Qt for good instead (its
threads finish their tasks in the background, and the process can still exit).
"""

from __future__ import annotations

from PySide6.QtCore import QThread, QThreadPool

_LIVE: set[QThreadPool] = set()


def new_pool(max_threads: int) -> QThreadPool:
    pool = QThreadPool()
    pool.setMaxThreadCount(max_threads)
    _LIVE.add(pool)
    return pool


def release_pool(pool: QThreadPool, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pool`` to go idle, then let it go.

    Returns True if it went idle; False if it was abandoned with tasks still
    running.  Safe to call more than once.
    """
    if pool not in _LIVE:
        return True
    pool.clear()  # runnables not started yet
    idle = pool.waitForDone(max(0, int(timeout * 1000)))
    _LIVE.discard(pool)
    if not idle:
        # Nobody may ever run ~QThreadPool, which would wait for the stuck
        # task: not the garbage collector, and not PySide's exit hook, which
        # deletes every QObject that Python owns.  Parenting the pool to the
        # thread's own QThread object (owned by Qt, never deleted while the
        # process runs) hands it to C++ for good.
        pool.setParent(QThread.currentThread())
    return idle
