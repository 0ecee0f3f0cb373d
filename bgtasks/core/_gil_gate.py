"""``GilGate``: workers give the GIL to a starving UI thread.

CPython hands the GIL to whichever waiting thread wins the race for it.  With
two or more workers running short Python tasks, the workers pass it between
themselves: each hand-over resets the UI thread's claim (it forces a switch
only after ``sys.getswitchinterval()`` without any), so a UI thread waiting to
call a Python slot or a model's ``data()`` was measured waiting 40-130 ms in a
row while the workers swapped the GIL hundreds of times.

The gate makes the starvation visible and lets the workers step aside:

* the UI thread calls ``beat`` from a short timer (every millisecond)
  while workers run and send events, and from each pass that delivers them; a
  beat is Python code, so it only runs when the UI thread has the GIL;
* between tasks a worker checks ``starved``: no beat for ``stale_after``
  seconds means the UI thread has wanted the GIL (or been busy) that long.  It
  then calls ``give_way`` and blocks, without the GIL, until the next beat
  or ``park_for`` seconds;
* a park that ends without a beat means the UI thread was not waiting for the
  GIL (it is blocked elsewhere, or busy in C++): parks are then spaced out,
  doubling each time up to ``max_backoff`` seconds, so a UI thread blocked for
  long costs the workers next to nothing.  A beat resets the spacing;
* a UI thread about to block on a task (``TaskHandle.result()``) calls
  ``blocking`` first: the workers may be what it waits for.

No Qt here: the manager owns the timer.  Workers read ``beat_at`` without a
lock (a float attribute: one atomic read); only the UI thread writes it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

#: No beat for this long: the UI thread is starved.
STALE_AFTER = 0.003
#: Longest a worker waits for a beat: longer than the UI thread's own slices of
#: work (a model pass, a paint), so workers stay out of its way to the end.
PARK_FOR = 0.05
#: Longest spacing between parks while the UI thread does not beat.
MAX_BACKOFF = 0.25


class GilGate:
    """Between a UI thread that beats and the workers that give way to it.

    ``beat``, ``stop``: the UI thread.  ``starved``,
    ``give_way``: worker threads.
    """

    def __init__(
        self,
        stale_after: float = STALE_AFTER,
        park_for: float = PARK_FOR,
        max_backoff: float = MAX_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stale_after = stale_after
        self.park_for = park_for
        self.max_backoff = max_backoff
        self._clock = clock
        #: When the UI thread last beat; ``inf`` while nobody beats (never starved).
        self.beat_at = math.inf
        self._event = threading.Event()  # set (and replaced) by the next beat
        self._backoff = 0.0  # spacing after a park that no beat ended
        self._beater: int | None = None  # the thread that beats
        self._calm_until = -math.inf  # no park before this time
        #: Statistics: parks, and those a beat ended.
        self.parks = 0
        self.parks_ended_by_beat = 0
        #: Workers waiting in give_way() now, and when the last one returned:
        #: a parked worker is not a blocked one (the scheduler must not add
        #: workers for it).
        self.parked = 0
        self.unparked_at = -math.inf
        self._count_lock = threading.Lock()

    def beat(self) -> None:
        """The UI thread is running Python: release the workers that gave way."""
        self._beater = threading.get_ident()
        self.beat_at = self._clock()
        self._backoff = 0.0
        self._calm_until = -math.inf
        event, self._event = self._event, threading.Event()
        event.set()

    def blocking(self) -> None:
        """The calling thread is about to block: if it is the thread that beats,
        stop parking workers until its next beat (they may be what it waits for)."""
        if threading.get_ident() == self._beater:
            self.stop()

    def stop(self) -> None:
        """Nobody beats any more (no task runs, or shut down): never park."""
        self.beat_at = math.inf
        event, self._event = self._event, threading.Event()
        event.set()

    def starved(self, now: float) -> bool:
        """Whether the UI thread has not beat for ``stale_after`` (``now``: the clock)."""
        return now - self.beat_at > self.stale_after and now >= self._calm_until

    def give_way(self) -> bool:
        """Block until the next beat or ``park_for`` seconds; True if a beat came.

        Called by a worker that found ``starved``, between tasks, holding
        no lock.
        """
        event = self._event  # before re-checking: a beat in between sets this one
        if not self.starved(self._clock()):
            return True
        with self._count_lock:
            self.parks += 1
            self.parked += 1
        try:
            beaten = event.wait(self.park_for)
        finally:
            with self._count_lock:
                self.parked -= 1
                self.unparked_at = self._clock()
        if beaten:
            self.parks_ended_by_beat += 1
            return True
        # No beat: the UI thread is not waiting for the GIL.  Space out the
        # next parks until it beats again.
        backoff = min(self.max_backoff, max(self.park_for, 2.0 * self._backoff))
        self._backoff = backoff
        self._calm_until = self._clock() + backoff
        return False

    def parked_within(self, now: float, seconds: float) -> bool:
        """Whether a worker is parked, or was within ``seconds`` before ``now``."""
        return self.parked > 0 or now - self.unparked_at < seconds
