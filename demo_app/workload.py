"""The demo's workload: what gets submitted, and what the outcome should be.

Everything here is plain Python (no Qt), seeded and deterministic, so the
window and the tests agree on what a run looks like:

* ``render``: many small independent tasks ("render frame_012"); the first
  24 get a higher priority than the rest.  One frame fails.  (They are not
  the Thumbnails tab's images: those are the loader's tasks.)
* ``io``: "read a file" tasks; a few fail with an ``OSError``.
* ``compute``: one "parse" task per file, downstream of its read.  A failed
  read fails its parse with the same message (the failure cascade); one
  parse fails on its own.
* ``chain``: ten steps, each waiting for the previous one and adding to the
  dict it passes along, then a pass-through fan-in that merges the chain's
  result with two side inputs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bgtasks import current_task

GROUPS = ("render", "io", "compute", "chain")

N_FRAMES = 160
N_FILES = 60
CHAIN_LENGTH = 10

#: The fan-in's expected result (the side inputs' values are fixed).
CHAIN_TOTAL = sum(range(1, CHAIN_LENGTH + 1))
CHAIN_CHECKSUM = "c0ffee"
CHAIN_LABEL = "report"


# --------------------------------------------------------------------------- task functions
# They run in worker threads: no Qt, no shared mutable state.  They wait with
# current_task().sleep (which a stop interrupts) and some report progress.


def work(delay: float, steps: int = 1, message: str = "") -> None:
    """Spend ``delay`` seconds in ``steps`` cancellable slices, reporting progress
    after each slice when ``steps`` > 1."""
    task = current_task()
    for step in range(1, steps + 1):
        task.sleep(delay / steps)
        if steps > 1:
            task.report_progress(step, steps, message or None)


def render_frame(index: int, delay: float, broken: bool = False) -> str:
    work(delay)
    if broken:
        raise ValueError(f"frame_{index:03d}: the scene file is corrupt")
    return f"frame_{index:03d}.exr"


def read_file(name: str, delay: float, fail: bool = False) -> dict[str, Any]:
    work(delay, 4, "reading")
    if fail:
        raise OSError(f"cannot read {name}: permission denied")
    return {"name": name, "nbytes": 1000 + 37 * len(name) * int(delay * 1000)}


def parse_file(name: str, nbytes: int, delay: float, corrupt: bool = False, **_: Any) -> int:
    """Downstream of ``read_file``: ``name`` and ``nbytes`` come from its result."""
    work(delay)
    if corrupt:
        raise ValueError(f"{name}: corrupt header")
    return nbytes // 100  # "records"


def chain_step(
    step: int, delay: float, total: int = 0, trail: tuple[int, ...] = (), **_: Any
) -> dict[str, Any]:
    """One link of the chain: ``total`` and ``trail`` come from the previous step."""
    work(delay, 10, f"step {step}")
    return {"total": total + step, "trail": (*trail, step)}


def side_input(key: str, value: str, delay: float) -> dict[str, str]:
    work(delay)
    return {key: value}


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class TaskSpec:
    """One task to submit.  ``fn=None`` means a pass-through task."""

    key: str  # unique in a workload, e.g. "io/017"
    label: str  # short text for the UI
    group: str  # one of GROUPS
    fn: Callable[..., Any] | None
    priority: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    upstream: tuple[str, ...] = ()  # keys of earlier specs
    fails: bool = False  # expected to fail, by itself or through an upstream task


def build_workload(seed: int = 0) -> list[TaskSpec]:
    """The tasks of one run, upstream tasks always before their downstream ones."""
    rng = random.Random(seed)

    def delay(low: float = 0.005, high: float = 0.050) -> float:
        return round(rng.uniform(low, high), 3)

    specs: list[TaskSpec] = []
    add = specs.append

    # The chain first, so its steps are not stuck behind the whole queue.  Its
    # steps are slower than the rest, so its progress is easy to follow.
    prev: tuple[str, ...] = ()
    for step in range(1, CHAIN_LENGTH + 1):
        key = f"chain/step{step:02d}"
        add(
            TaskSpec(
                key=key,
                label=f"step {step}",
                group="chain",
                fn=chain_step,
                priority=8,
                kwargs={"step": step, "delay": delay(0.05, 0.1)},
                upstream=prev,
            )
        )
        prev = (key,)
    for key, value in (("checksum", CHAIN_CHECKSUM), ("label", CHAIN_LABEL)):
        add(
            TaskSpec(
                key=f"chain/{key}",
                label=key,
                group="chain",
                fn=side_input,
                priority=8,
                kwargs={"key": key, "value": value, "delay": delay()},
            )
        )
    add(
        TaskSpec(  # fn=None: a pass-through task, completing with its merged kwargs
            key="chain/fan-in",
            label="fan-in",
            group="chain",
            fn=None,
            priority=8,
            kwargs={"stage": "fan-in"},
            upstream=(prev[0], "chain/checksum", "chain/label"),
        )
    )

    broken_frame = rng.randrange(N_FRAMES)
    for i in range(N_FRAMES):
        add(
            TaskSpec(
                key=f"render/{i:03d}",
                label=f"render frame_{i:03d}",
                group="render",
                fn=render_frame,
                priority=10 if i < 24 else 2,  # the first 24 first
                kwargs={"index": i, "delay": delay(), "broken": i == broken_frame},
                fails=i == broken_frame,
            )
        )

    unreadable = set(rng.sample(range(N_FILES), 3))
    corrupt = rng.choice([i for i in range(N_FILES) if i not in unreadable])
    for i in range(N_FILES):
        name = f"file_{i:03d}.raw"
        add(
            TaskSpec(
                key=f"io/{i:03d}",
                label=f"read {name}",
                group="io",
                fn=read_file,
                priority=5,
                kwargs={"name": name, "delay": delay(), "fail": i in unreadable},
                fails=i in unreadable,
            )
        )
        add(
            TaskSpec(  # gets name and nbytes from the read's result
                key=f"compute/{i:03d}",
                label=f"parse {name}",
                group="compute",
                fn=parse_file,
                priority=0,
                kwargs={"delay": delay(), "corrupt": i == corrupt},
                upstream=(f"io/{i:03d}",),
                fails=i in unreadable or i == corrupt,
            )
        )
    return specs


def expected_chain_result() -> dict[str, Any]:
    """What the fan-in task completes with."""
    return {
        "stage": "fan-in",
        "total": CHAIN_TOTAL,
        "trail": tuple(range(1, CHAIN_LENGTH + 1)),
        "checksum": CHAIN_CHECKSUM,
        "label": CHAIN_LABEL,
    }
