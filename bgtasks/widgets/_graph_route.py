"""Arrows of ``TaskGraphView`` routed through the gaps, never across a node.

Pure geometry over a ``GraphLayout``, no Qt (any thread).  Every route is a
polyline of horizontal and vertical segments, and every segment lies in a
gap of the layout:

* the channel between two blocks of a band (and the margins left and right
  of a band) runs the band's whole height and opens into the band gaps;
* the gap between two rows of a block runs straight across the block
  (blocks are filled column by column with aligned rows), and so do the
  lines just above and just below the block;
* the gap between two columns of a block, between two of its rows;
* the band gaps run across the whole drawing, and the left margin down it.

An arrow leaves its upstream node to the right and enters its downstream
node from the left.  Between them it crosses each block in its way along the
row gap nearest the straight line, drops into the band gap when the target
lies in a later band, and takes the left margin down when it is further
still.  Arrows bundle: those out of a node with more arrows out than its
target has in share one lane in every channel (a fan-out is one trunk), the
others share their target's lane (a fan-in is one trunk); neighbouring
nodes get different lanes.  An arrow's count label goes on its own short
end, away from the trunk it shares.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from typing import NamedTuple

from ._graph_layout import (
    BAND_GAP,
    LAYER_GAP,
    NODE_HEIGHT,
    NODE_WIDTH,
    ROW_GAP,
    STEP,
    SUB_GAP,
    Block,
    GraphLayout,
    Point,
)
from ._graph_model import breathe

_LANES = 7  # lanes per channel, either side of its middle


class Route(NamedTuple):
    """An arrow's polyline, left to right, and where its count label goes."""

    points: list[Point]
    #: Where the arrow meets the node at its own end (not the bundled one):
    #: the count is written just above the line there, beside the node.
    label: Point
    #: The label's node is on the right of that point (the text ends there).
    label_before: bool


class _Router:
    def __init__(
        self, layout: GraphLayout, out: Counter[Hashable], into: Counter[Hashable]
    ) -> None:
        self.layout = layout
        self.out = out  # arrows out of each node (left to right)
        self.into = into
        self.block_of: dict[Hashable, Block] = {}
        self.cell: dict[Hashable, tuple[int, int]] = {}  # node -> (col, row) in its block
        self.rank: dict[Hashable, int] = {}
        for block in layout.blocks:
            for i, k in enumerate(block.keys):
                self.block_of[k] = block
                self.cell[k] = divmod(i, block.rows)
                self.rank[k] = i

    def lane(self, node: Hashable, room: float) -> float:
        """The offset from a gap's middle line of the arrows bundled at ``node``."""
        step = room / _LANES
        return ((self.rank[node] * 3) % (2 * _LANES - 1) - (_LANES - 1)) * step / 2

    def route(self, a: Hashable, b: Hashable) -> Route:
        """The polyline from ``a``'s right side to ``b``'s left side (layer a < layer b)."""
        pos = self.layout.positions
        ax, ay = pos[a]
        bx, by = pos[b]
        ba, bb = self.block_of[a], self.block_of[b]
        fan_out = self.out[a] > self.into[b]
        key = a if fan_out else b
        dx = self.lane(key, LAYER_GAP - 56)
        small = self.lane(key, SUB_GAP - 44)
        row = self.lane(key, ROW_GAP - 10)
        points: list[Point] = [(ax + NODE_WIDTH, ay + NODE_HEIGHT / 2)]
        after = ba.x + ba.width + LAYER_GAP / 2 + dx  # the channel right of a's block
        if self.cell[a][0] < ba.cols - 1:  # an inner column: out through the row gap below
            gap = ax + NODE_WIDTH + SUB_GAP / 2 + small
            below = ay + NODE_HEIGHT + ROW_GAP / 2 + row
            points += [(gap, points[0][1]), (gap, below), (after, below)]
        else:
            points.append((after, points[0][1]))
        x, y = points[-1]
        before = bb.x - LAYER_GAP / 2 + dx  # the channel left of b's block
        if bb.band == ba.band:
            goal = by + NODE_HEIGHT / 2
            for layer in range(ba.layer + 1, bb.layer):
                block = self.layout.blocks[layer]
                share = (layer - ba.layer) / (bb.layer - ba.layer)
                ideal = y + (goal - y) * share
                cross = row + min(
                    (block.top - ROW_GAP / 2 + r * STEP for r in range(block.rows + 1)),
                    key=lambda g: abs(g - ideal),
                )
                x_next = block.x + block.width + LAYER_GAP / 2 + dx
                points += [(x, cross), (x_next, cross)]
                x, y = x_next, cross
        else:
            top, height = self.layout.bands[ba.band]
            gap_below = top + height + BAND_GAP / 2 + self.lane(key, BAND_GAP - 16)
            points.append((x, gap_below))
            if bb.band > ba.band + 1:
                margin = -LAYER_GAP / 2 + dx
                gap_above = self.layout.bands[bb.band][0] - BAND_GAP + (gap_below - top - height)
                points += [(margin, gap_below), (margin, gap_above)]
                x, y = margin, gap_above
            else:
                x, y = x, gap_below
            points.append((before, y))
            x = before
        if self.cell[b][0] == 0:
            points += [(x, by + NODE_HEIGHT / 2), (bx, by + NODE_HEIGHT / 2)]
        else:  # an inner column: in through the row gap above
            gap = bx - SUB_GAP / 2 + small
            above = by - ROW_GAP / 2 + row
            points += [(x, above), (gap, above), (gap, by + NODE_HEIGHT / 2)]
            points.append((bx, by + NODE_HEIGHT / 2))
        points = _clean(points)
        return Route(points, points[-1] if fan_out else points[0], fan_out)


def _clean(points: list[Point]) -> list[Point]:
    """Without repeated points, nor middle points of straight runs."""
    out: list[Point] = []
    for p in points:
        if out and p == out[-1]:
            continue
        if len(out) >= 2:
            (x0, y0), (x1, y1) = out[-2], out[-1]
            if (x0 == x1 == p[0]) or (y0 == y1 == p[1]):
                out[-1] = p
                continue
        out.append(p)
    return out


def route_edges(
    layout: GraphLayout, edges: Iterable[tuple[Hashable, Hashable]]
) -> dict[tuple[Hashable, Hashable], Route]:
    """The route of each edge (upstream, downstream) of ``layout``.  Any thread.

    An edge the layout turned round (it closed a cycle) is routed from its
    downstream node to its upstream node; its arrow head goes at the start.

    Args:
        layout: Where the nodes are.
        edges: The edges to route.

    Returns:
        edge -> its route, from the node on the left to the node on the right.
    """
    pairs = {
        (a, b): (a, b) if layout.layer_of[a] < layout.layer_of[b] else (b, a) for a, b in edges
    }
    out = Counter(a for a, _ in pairs.values())
    into = Counter(b for _, b in pairs.values())
    router = _Router(layout, out, into)
    routes = {}
    for i, (edge, (a, b)) in enumerate(pairs.items()):
        breathe(i)
        routes[edge] = router.route(a, b)
    return routes


def segments_cross(points: list[Point], rect: tuple[float, float, float, float]) -> bool:
    """Whether a segment of ``points`` enters the inside of ``rect`` (x, y, w, h).

    Any thread.  Touching its border is not entering.

    Args:
        points: A polyline of horizontal and vertical segments.
        rect: The rectangle.
    """
    x, y, w, h = rect
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        lo_x, hi_x = min(x0, x1), max(x0, x1)
        lo_y, hi_y = min(y0, y1), max(y0, y1)
        if lo_x < x + w and hi_x > x and lo_y < y + h and hi_y > y:
            return True
    return False
