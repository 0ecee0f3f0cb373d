"""Where ``TaskGraphView`` puts its nodes: a layered layout that wraps.

Pure geometry, no Qt, so it runs on a worker thread.  Sugiyama's steps, kept
small:

1. Layers.  Edges that close a cycle (collapsing groups can make one) are
   turned round for the layout; every node's layer is its longest path from
   a root, and a root moves right, next to the first node it feeds.
2. Order.  Within a layer nodes are sorted by the mean relative position of
   their neighbours (a sweep forward, back and forward again), then by the
   order they came in (the first uid).
3. Wrap.  A layer taller than ``R`` rows becomes a block of several columns
   (filled column by column, rows aligned, so the gaps between rows run
   straight across it); the blocks are placed left to right and, like words
   on a page, start a new band below when a band grows wider than ``W``.
   ``R`` and ``W`` are chosen so the drawing fills the viewport's shape at the
   largest scale (up to 1:1); among nearly as good choices (5 %), the one with
   the fewest bands, then the fewest extra columns.

The arrows are routed through the gaps only (``_graph_route``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import NamedTuple

from ..core._state import TaskInfo
from ._graph_model import breathe

NODE_WIDTH = 190.0
NODE_HEIGHT = 50.0
LAYER_GAP = 80.0  # between two blocks of a band: a channel for arrows
SUB_GAP = 72.0  # between two columns of one block
ROW_GAP = 24.0  # between two rows of a block
BAND_GAP = 64.0  # between two bands
STEP = NODE_HEIGHT + ROW_GAP
MARGIN = LAYER_GAP / 2 + 16  # around the drawing: the left one is a channel too
LEGIBLE = 0.6  # the default smallest scale at which a node's text can be read

Point = tuple[float, float]


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


def _layering(
    nodes: Sequence[Hashable], edges: Iterable[tuple[Hashable, Hashable]]
) -> tuple[dict[Hashable, int], set[tuple[Hashable, Hashable]]]:
    """node -> layer, and the edges turned round to break cycles."""
    succ: dict[Hashable, list[Hashable]] = {k: [] for k in nodes}
    pred: dict[Hashable, list[Hashable]] = {k: [] for k in nodes}
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    waiting = {k: len(pred[k]) for k in nodes}
    done: set[Hashable] = set()
    topo: list[Hashable] = []
    ready = [k for k in reversed(nodes) if not waiting[k]]
    rest = iter(nodes)  # the next node to force when only cycles are left
    while len(topo) < len(nodes):
        if not ready:
            forced = next(k for k in rest if k not in done)
            ready.append(forced)
        k = ready.pop()
        breathe(len(topo))
        if k in done:
            continue
        done.add(k)
        topo.append(k)
        for d in succ[k]:
            waiting[d] -= 1
            if waiting[d] == 0 and d not in done:
                ready.append(d)
    position = {k: i for i, k in enumerate(topo)}
    turned = {(a, b) for a in nodes for b in succ[a] if position[a] > position[b]}
    layer: dict[Hashable, int] = {}
    for i, k in enumerate(topo):
        breathe(i)
        ups = [a for a in pred[k] if position[a] < position[k]]
        ups += [b for b in succ[k] if position[b] < position[k]]
        layer[k] = max((layer[u] + 1 for u in ups), default=0)
    # a root sits just left of the first node it feeds, not in the first column
    for k in topo:
        downs = [b for b in succ[k] if position[b] > position[k]]
        downs += [a for a in pred[k] if position[a] > position[k]]
        has_up = any(position[a] < position[k] for a in pred[k]) or any(
            position[b] < position[k] for b in succ[k]
        )
        if downs and not has_up:
            layer[k] = max(layer[k], min(layer[d] for d in downs) - 1)
    return layer, turned


def _order(
    columns: dict[int, list[Hashable]],
    neighbours: dict[Hashable, list[Hashable]],
    index: dict[Hashable, int],
) -> None:
    """Sorts each column in place: by connected component (so unrelated parts of
    the graph lie in separate stripes), then by the mean relative position of
    the nodes' neighbours."""
    part: dict[Hashable, int] = {}
    for start in sorted(neighbours, key=index.__getitem__):
        if start in part:
            continue
        part[start] = index[start]
        stack = [start]
        while stack:
            for n in neighbours[stack.pop()]:
                if n not in part:
                    part[n] = index[start]
                    stack.append(n)
    where: dict[Hashable, float] = {}

    def place(col: list[Hashable]) -> None:
        n = max(len(col) - 1, 1)
        for i, k in enumerate(col):
            where[k] = i / n

    for col in columns.values():
        col.sort(key=lambda k: (part[k], index[k]))
        place(col)
    keys = sorted(columns)
    for sweep in (keys, keys[::-1], keys):
        for layer in sweep:
            breathe(0)
            col = columns[layer]

            def mean(k: Hashable) -> float:
                near = [where[n] for n in neighbours[k]]
                return sum(near) / len(near) if near else where[k]

            col.sort(key=lambda k: (part[k], mean(k), index[k]))
            place(col)


class Block(NamedTuple):
    """One layer's place: a grid of ``cols`` x ``rows`` nodes, filled column by column."""

    layer: int
    band: int
    x: float
    top: float
    cols: int
    rows: int
    keys: list[Hashable]

    @property
    def width(self) -> float:
        """Its width."""
        return self.cols * NODE_WIDTH + (self.cols - 1) * SUB_GAP

    @property
    def height(self) -> float:
        """Its height."""
        return self.rows * STEP - ROW_GAP


def _grid(n: int, max_rows: int) -> tuple[int, int]:
    cols = math.ceil(n / max_rows)
    return cols, math.ceil(n / cols)


def _pack(widths: list[float], max_width: float) -> list[int]:
    """The band of each block when a band holds at most ``max_width``."""
    bands, band, used = [], 0, -LAYER_GAP
    for w in widths:
        if used > 0 and used + LAYER_GAP + w > max_width:
            band, used = band + 1, -LAYER_GAP
        used += LAYER_GAP + w
        bands.append(band)
    return bands


def _extent(widths: list[float], heights: list[float], bands: list[int]) -> tuple[float, float]:
    band_w: dict[int, float] = {}
    band_h: dict[int, float] = {}
    for w, h, b in zip(widths, heights, bands, strict=False):
        band_w[b] = band_w.get(b, -LAYER_GAP) + LAYER_GAP + w
        band_h[b] = max(band_h.get(b, 0.0), h)
    return max(band_w.values()), sum(band_h.values()) + BAND_GAP * (len(band_h) - 1)


def _candidates(top: int, count: int = 48) -> list[int]:
    """About ``count`` values from 1 to ``top``, every one of the small ones."""
    values = {1, top}
    x = 1.0
    while x < top:
        values.add(min(int(x), top))
        x = max(x * (top ** (1 / count)), x + 1)
    return sorted(values)


def choose_wrap(sizes: list[int], viewport: Point, legible: float = LEGIBLE) -> tuple[int, float]:
    """The (maximum rows, maximum band width) that show ``sizes`` (nodes per
    layer, in layer order) best in a viewport of that shape.  Any thread.

    Best: of the arrangements that fit at ``legible`` scale or more, the one
    with the fewest bands, then the fewest extra columns, then the largest
    scale; when none does, the one with the largest scale (within 5 %: the
    fewest bands, then extra columns).

    Args:
        sizes: How many nodes each layer has.
        viewport: The (width, height) to fill.
        legible: The smallest scale at which the text can be read.
    """
    vw, vh = max(viewport[0], 50.0), max(viewport[1], 50.0)
    tallest = max(sizes)
    scored: list[tuple[float, int, int, int, float]] = []
    for cols in _candidates(tallest, 40):
        max_rows = math.ceil(tallest / cols)
        grids = [_grid(n, max_rows) for n in sizes]
        widths = [c * NODE_WIDTH + (c - 1) * SUB_GAP for c, _ in grids]
        heights = [r * STEP - ROW_GAP for _, r in grids]
        extra = sum(c - 1 for c, _ in grids)
        total = sum(widths) + LAYER_GAP * (len(widths) - 1)
        for count in _candidates(len(sizes), 40):
            breathe(0)
            limit = max(max(widths), total / count)
            bands = _pack(widths, limit)
            w, h = _extent(widths, heights, bands)
            scale = min(vw / (w + 2 * MARGIN), vh / (h + 2 * MARGIN), 1.0)
            scored.append((scale, bands[-1], extra, max_rows, limit))
    best = max(s[0] for s in scored)
    good = [s for s in scored if s[0] >= min(legible, best * 0.95)]
    _, _, _, max_rows, limit = min(good, key=lambda s: (s[1], s[2], -s[0]))
    return max_rows, limit


class GraphLayout(NamedTuple):
    """Where each node goes (``lay_out``)."""

    #: node -> (x, y) of its top left corner.
    positions: dict[Hashable, Point]
    #: node -> its layer (after cycles were broken).
    layer_of: dict[Hashable, int]
    #: Each layer's block, in layer order.
    blocks: list[Block]
    #: Each band's (top, height).
    bands: list[tuple[float, float]]
    #: Edges that run against the layers (they closed a cycle).
    turned: set[tuple[Hashable, Hashable]]
    #: (width, height) of the drawing, nodes only (the margins are around it).
    size: Point


def lay_out(
    nodes: Sequence[Hashable],
    edges: Iterable[tuple[Hashable, Hashable]],
    viewport: Point = (1280.0, 800.0),
    legible: float = LEGIBLE,
) -> GraphLayout:
    """Place ``nodes`` (in their given order as the tie-break) in wrapped layers.

    Any thread: pure.

    Args:
        nodes: The nodes, each once.
        edges: (upstream, downstream) pairs between them.
        viewport: The shape to fill (width, height).
        legible: The smallest scale at which the text can be read.
    """
    edges = list(edges)
    if not nodes:
        return GraphLayout({}, {}, [], [], set(), (0.0, 0.0))
    layer_of, turned = _layering(nodes, edges)
    index = {k: i for i, k in enumerate(nodes)}
    neighbours: dict[Hashable, list[Hashable]] = {k: [] for k in nodes}
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    found: dict[int, list[Hashable]] = {}
    for k in nodes:
        found.setdefault(layer_of[k], []).append(k)
    # renumber the layers 0..n-1 (a root pulled right can leave a gap)
    renumber = {old: new for new, old in enumerate(sorted(found))}
    columns = {renumber[old]: keys for old, keys in found.items()}
    layer_of = {k: renumber[layer] for k, layer in layer_of.items()}
    _order(columns, neighbours, index)
    sizes = [len(columns[i]) for i in range(len(columns))]
    max_rows, limit = choose_wrap(sizes, viewport, legible)
    grids = [_grid(n, max_rows) for n in sizes]
    widths = [c * NODE_WIDTH + (c - 1) * SUB_GAP for c, _ in grids]
    band_of = _pack(widths, limit)
    band_h: dict[int, float] = {}
    for (_, rows), band in zip(grids, band_of, strict=False):
        band_h[band] = max(band_h.get(band, 0.0), rows * STEP - ROW_GAP)
    bands, y = [], 0.0
    for band in range(len(band_h)):
        bands.append((y, band_h[band]))
        y += band_h[band] + BAND_GAP
    blocks: list[Block] = []
    positions: dict[Hashable, Point] = {}
    x, width = 0.0, 0.0
    for layer, ((cols, rows), band) in enumerate(zip(grids, band_of, strict=False)):
        if layer and band != band_of[layer - 1]:
            x = 0.0
        band_top, band_height = bands[band]
        top = band_top + (band_height - (rows * STEP - ROW_GAP)) / 2
        block = Block(layer, band, x, top, cols, rows, columns[layer])
        blocks.append(block)
        for i, k in enumerate(block.keys):
            col, row = divmod(i, rows)
            positions[k] = (x + col * (NODE_WIDTH + SUB_GAP), top + row * STEP)
        x += block.width + LAYER_GAP
        width = max(width, x - LAYER_GAP)
    height = bands[-1][0] + bands[-1][1]
    return GraphLayout(positions, layer_of, blocks, bands, turned, (width, height))
