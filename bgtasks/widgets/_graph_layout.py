"""Where ``TaskGraphView`` puts its nodes and arrows.

Pure geometry of task snapshots, no Qt: a column per layer (the longest
path from a root); in a column, nodes sorted by the mean height of their
upstream nodes (fewer crossings), then by uid; each column centred
vertically.  An arrow spanning several layers passes each between two
nodes.  Any thread (it touches nothing shared), though the view calls it
on the GUI thread.
"""

from __future__ import annotations

from typing import NamedTuple

from ..core._state import TaskInfo

NODE_WIDTH = 170.0
NODE_HEIGHT = 46.0
LAYER_GAP = 70.0  # horizontal space between layers (columns)
ROW_GAP = 18.0  # vertical space between nodes of one layer
_STEP = NODE_HEIGHT + ROW_GAP


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def layers(infos: list[TaskInfo]) -> dict[int, int]:
    """The layer of each task: the length of its longest path from a root.

    A root is a task with no registered upstream task; upstream uids the
    manager has forgotten are ignored.  Pure: any thread.

    Args:
        infos: Snapshots of the tasks.

    Returns:
        uid -> layer.
    """
    upstream = {info.uid: {u for u in info.upstream if u != info.uid} for info in infos}
    downstream: dict[int, list[int]] = {uid: [] for uid in upstream}
    waiting: dict[int, int] = {}
    for uid, ups in upstream.items():
        ups.intersection_update(upstream)
        waiting[uid] = len(ups)
        for up in ups:
            downstream[up].append(uid)
    layer = {uid: 0 for uid, n in waiting.items() if n == 0}
    ready = sorted(layer)
    while ready:  # Kahn's topological order; longest path by relaxation
        uid = ready.pop()
        for down in downstream[uid]:
            layer[down] = max(layer.get(down, 0), layer[uid] + 1)
            waiting[down] -= 1
            if waiting[down] == 0:
                ready.append(down)
    for uid in upstream:  # only a cycle, which the manager does not allow, leaves any
        layer.setdefault(uid, 0)
    return layer


class GraphLayout(NamedTuple):
    """Where each node goes, and what the arrows need to be routed."""

    #: uid -> (x, y) of its node's top left corner, column by column.
    positions: dict[int, tuple[float, float]]
    #: (upstream uid, downstream uid) of every arrow.
    edges: set[tuple[int, int]]
    layer_of: dict[int, int]
    columns: dict[int, list[int]]  # layer -> uids, top to bottom
    tops: dict[int, float]  # layer -> y of its first node

    def lanes(self, up: int, down: int) -> list[tuple[float, float, float]]:
        """The (left x, right x, y) passages of the arrow from ``up`` to ``down``
        through the layers between them: the gap between two nodes nearest the
        straight line, left to right."""
        a, b = self.layer_of[up], self.layer_of[down]
        y_up, y_down = self.positions[up][1], self.positions[down][1]
        lanes = []
        for col in range(a + 1, b):
            ideal = y_up + (y_down - y_up) * (col - a) / (b - a) + NODE_HEIGHT / 2
            count = len(self.columns.get(col, ()))
            gaps = [self.tops.get(col, 0.0) - ROW_GAP / 2 + k * _STEP for k in range(count + 1)]
            y = min(gaps, key=lambda g: abs(g - ideal)) if count else ideal
            left = col * (NODE_WIDTH + LAYER_GAP)
            lanes.append((left, left + NODE_WIDTH, y))
        return lanes


def lay_out(infos: list[TaskInfo]) -> GraphLayout:
    """The layout of ``infos`` (sorted by uid); upstream tasks not among them are left out."""
    layer_of = layers(infos)
    upstream = {
        info.uid: [u for u in info.upstream if u in layer_of and u != info.uid] for info in infos
    }
    columns: dict[int, list[int]] = {}
    for info in infos:
        columns.setdefault(layer_of[info.uid], []).append(info.uid)
    tallest = max((len(c) for c in columns.values()), default=0)
    y_of: dict[int, float] = {}
    tops: dict[int, float] = {}
    positions: dict[int, tuple[float, float]] = {}
    for col in sorted(columns):
        uids = columns[col]
        if col:
            uids.sort(key=lambda u: (_mean([y_of[v] for v in upstream[u] if v in y_of], -1.0), u))
        top = tops[col] = (tallest - len(uids)) * _STEP / 2
        for row, uid in enumerate(uids):
            y_of[uid] = top + row * _STEP
            positions[uid] = (col * (NODE_WIDTH + LAYER_GAP), y_of[uid])
    edges = {(up, info.uid) for info in infos for up in upstream[info.uid]}
    return GraphLayout(positions, edges, layer_of, columns, tops)
