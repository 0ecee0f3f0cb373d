"""What ``TaskGraphView`` shows: tasks, collapsed groups, and the edges between them.

Pure Python over task snapshots, no Qt, so the view can build it on a worker
thread.  A node is a ``NodeKey``: ``("task", uid)`` for a task drawn on its
own, ``("group", group)`` for a collapsed group standing for all its tasks.
Every upstream -> downstream pair of tasks becomes an edge between the nodes
that show them; pairs that land on the same two nodes are one edge with a
count, and a pair inside one collapsed group is no edge at all.  A focus (the
neighbours filter) keeps only some tasks; the rest are left out.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from ..core._state import TaskState

NodeKey = tuple[str, Hashable]
"""A node of the drawing: ``("task", uid)`` or ``("group", group)``."""

EdgeKey = tuple[NodeKey, NodeKey]
"""An edge of the drawing: (upstream node, downstream node)."""

#: How a group node names each state in its counts, in the order it lists them.
STATE_WORDS: dict[TaskState, str] = {
    TaskState.COMPLETED: "done",
    TaskState.RUNNING: "running",
    TaskState.CANCELLING: "stopping",
    TaskState.QUEUED: "queued",
    TaskState.PENDING: "waiting",
    TaskState.FAILED: "failed",
    TaskState.CANCELLED: "cancelled",
}


class Snapshot(Protocol):
    """The fields of a ``TaskInfo`` the graph reads."""

    @property
    def uid(self) -> int: ...  # noqa: D102 - a protocol's field

    @property
    def group(self) -> Hashable: ...  # noqa: D102

    @property
    def upstream(self) -> tuple[int, ...]: ...  # noqa: D102


_LOCAL = threading.local()  # .gate: the GIL gate the calling (layout) thread heeds


def heed(gate: Any) -> None:
    """Make ``breathe`` on the calling thread give way to the UI thread through
    ``gate`` (a ``GilGate``: the manager's ``gil_gate``), or never (None).

    The calling thread only.

    Args:
        gate: The gate, or None.
    """
    _LOCAL.gate = gate


def breathe(step: int) -> None:
    """Every 128 steps (and at step 0) of a loop on a layout thread, let the UI
    thread have the GIL: while the gate says it starves (no beat for 3 ms),
    sleep a millisecond at a time (up to 20); else let go for a moment, so a
    waiting UI thread takes the GIL at once instead of after the switch
    interval (5 ms).  Does nothing on a thread that heeds no gate.  Any thread.

    Args:
        step: The loop's counter.
    """
    if step & 127:
        return
    gate = getattr(_LOCAL, "gate", None)
    if gate is None:
        return
    for _ in range(20):
        if not gate.starved(time.monotonic()):
            break
        time.sleep(0.001)
    time.sleep(0)


def task_key(uid: int) -> NodeKey:
    """The node of a task drawn on its own.  Any thread.

    Args:
        uid: The task's uid.
    """
    return ("task", uid)


def group_key(group: Hashable) -> NodeKey:
    """The node of a collapsed group.  Any thread.

    Args:
        group: The group.
    """
    return ("group", group)


def counts_text(counts: Mapping[TaskState, int]) -> str:
    """``"40 done, 3 running, 1 failed"``: the non-zero counts in ``STATE_WORDS`` order.

    Any thread.

    Args:
        counts: How many tasks are in each state.
    """
    parts = [f"{counts[s]} {word}" for s, word in STATE_WORDS.items() if counts.get(s)]
    return ", ".join(parts) if parts else "no tasks"


def closure(upstream: Mapping[int, Iterable[int]], seeds: Iterable[int]) -> set[int]:
    """``seeds`` with everything upstream and everything downstream of them.

    Iterative (no recursion over long chains); upstream uids not in
    ``upstream`` are ignored.  Any thread.

    Args:
        upstream: uid -> the uids it waits for, for every known task.
        seeds: The tasks to start from (unknown uids are ignored).

    Returns:
        The uids of the seeds, of their upstream closure and of their
        downstream closure (not the neighbours' other relatives).
    """
    downstream: dict[int, list[int]] = {}
    for uid, ups in upstream.items():
        for up in ups:
            if up in upstream:
                downstream.setdefault(up, []).append(uid)
    start = [uid for uid in seeds if uid in upstream]
    result = set(start)
    for follow in (lambda u: [v for v in upstream[u] if v in upstream], downstream.get):
        seen = set(start)
        stack = list(start)
        while stack:
            for nxt in follow(stack.pop()) or ():
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        result |= seen
    return result


def collapsed_groups(
    sizes: Mapping[Hashable, int],
    threshold: int,
    expanded: Collection[Hashable],
    collapsed: Collection[Hashable],
) -> set[Hashable]:
    """The groups drawn as one node.  Any thread.

    A group the user collapsed is; one the user expanded is not; any other
    is collapsed when it has more than ``threshold`` tasks.

    Args:
        sizes: group -> how many of its tasks are shown.
        threshold: Above this many tasks a group starts collapsed.
        expanded: Groups the user expanded.
        collapsed: Groups the user collapsed.
    """
    return {g for g, n in sizes.items() if g in collapsed or (n > threshold and g not in expanded)}


class VisibleGraph(NamedTuple):
    """The nodes and edges to draw (``visible_graph``)."""

    #: Every node, in the order of its first task's uid.
    nodes: list[NodeKey]
    #: node -> the uids it stands for (one for a task node).
    members: dict[NodeKey, list[int]]
    #: (upstream node, downstream node) -> how many task edges it stands for.
    edges: dict[EdgeKey, int]


def visible_graph(
    infos: Sequence[Snapshot],
    collapsed: Collection[Hashable],
    shown: Collection[int] | None = None,
) -> VisibleGraph:
    """The nodes and aggregated edges of ``infos``.  Any thread.

    Args:
        infos: Snapshots of the tasks, sorted by uid.
        collapsed: Groups drawn as one node (``None`` is "no group" and never
            collapses).
        shown: Only these uids (the neighbours filter); None: every task.
    """
    node_of: dict[int, NodeKey] = {}
    members: dict[NodeKey, list[int]] = {}
    for i, info in enumerate(infos):
        breathe(i)
        uid = info.uid
        if shown is not None and uid not in shown:
            continue
        group = info.group
        key = group_key(group) if group is not None and group in collapsed else task_key(uid)
        node_of[uid] = key
        members.setdefault(key, []).append(uid)
    edges: Counter[EdgeKey] = Counter()
    for i, info in enumerate(infos):
        breathe(i)
        down = node_of.get(info.uid)
        if down is None:
            continue
        for up in set(info.upstream):
            source = node_of.get(up)
            if source is not None and source != down:
                edges[(source, down)] += 1
    return VisibleGraph(list(members), members, dict(edges))
