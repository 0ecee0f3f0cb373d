"""The scene of ``TaskGraphView``: its items, kept in step with layouts and states.

A layout arrives as data (``LayoutResult``); ``apply_steps`` turns it into
items one item per step, so the view can spread the work over several turns
of the event loop with a time budget per turn (creating a few thousand
items at once would stall the UI).  Items are kept by key across layouts:
a node moves rather than being made again, and its selection survives.

GUI thread only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator

from PySide6.QtCore import QObject, QRectF
from PySide6.QtWidgets import QGraphicsScene

from ..core._state import TaskInfo, TaskState
from ..qt._home_thread import DiesAtHome
from ._graph_items import Activate, GroupNodeItem, TaskEdgeItem, TaskNodeItem, _NodeItem
from ._graph_jobs import LayoutResult
from ._graph_model import EdgeKey, NodeKey


class GraphScene(DiesAtHome, QGraphicsScene):
    """The items of one ``TaskGraphView``.  GUI thread only.

    Args:
        name_of: Returns a group's display name.
        activate: Called with a node that was clicked.
        parent: The owner (the view).
    """

    def __init__(
        self, name_of: Callable[[Hashable], str], activate: Activate, parent: QObject
    ) -> None:
        super().__init__(parent)
        self._remember_home()
        # No BSP index: a relayout moves most items, and rebuilding the tree
        # for thousands of them at once was the largest stall of a flood.
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.name_of = name_of
        self.activate = activate
        self.infos: dict[int, TaskInfo] = {}  # the latest snapshot of every task known
        self.tasks: dict[int, TaskNodeItem] = {}
        self.groups: dict[Hashable, GroupNodeItem] = {}
        self.edges: dict[EdgeKey, TaskEdgeItem] = {}
        self.members: dict[NodeKey, list[int]] = {}
        self.node_of: dict[int, NodeKey] = {}
        self.order: list[NodeKey] = []  # reading order of the nodes shown
        self.shown: set[int] | None = None  # uids kept by the neighbours filter

    def node(self, key: NodeKey) -> _NodeItem | None:
        """The item of a node, if it is shown."""
        kind, value = key
        if kind == "task":
            return self.tasks.get(value)  # type: ignore[call-overload, no-any-return]
        return self.groups.get(value)

    def nodes(self) -> Iterator[_NodeItem]:
        """Every node item shown."""
        yield from self.tasks.values()
        yield from self.groups.values()

    def counts(self, key: NodeKey) -> Counter[TaskState]:
        """How many of a node's tasks are in each state."""
        infos = self.infos
        return Counter(infos[u].state for u in self.members.get(key, ()) if u in infos)

    def apply_steps(self, result: LayoutResult) -> Iterator[None]:
        """Brings the items in step with ``result``, one item per step."""
        graph, layout = result.graph, result.layout
        self.members, self.order, self.shown = graph.members, result.order, result.shown
        self.node_of = {u: key for key, uids in graph.members.items() for u in uids}
        for edge in [e for e in self.edges if e not in graph.edges]:
            self.removeItem(self.edges.pop(edge))
            yield
        for uid in [u for u in self.tasks if ("task", u) not in graph.members]:
            self.removeItem(self.tasks.pop(uid))
            yield
        for group in [g for g in self.groups if ("group", g) not in graph.members]:
            self.removeItem(self.groups.pop(group))
            yield
        for key in graph.nodes:
            item = self._node_item(key)
            if item is not None:
                x, y = layout.positions[key]
                item.setPos(x, y)
            yield
        for edge, count in graph.edges.items():
            self._edge_item(edge, count, result)
            yield
        self.setSceneRect(QRectF(*result.bounds))

    def _node_item(self, key: NodeKey) -> _NodeItem | None:
        kind, value = key
        if kind == "group":
            name = self.name_of(value)
            group_item = self.groups.get(value)
            if group_item is None:
                group_item = self.groups[value] = GroupNodeItem(value, name, self.counts(key))
                group_item.activate = self.activate
                self.addItem(group_item)
            else:
                group_item.set_counts(name, self.counts(key))
            return group_item
        assert isinstance(value, int)
        info = self.infos.get(value)
        task_item = self.tasks.get(value)
        if info is None:
            return task_item
        if task_item is None:
            task_item = self.tasks[value] = TaskNodeItem(info)
            task_item.activate = self.activate
            self.addItem(task_item)
        elif task_item.info != info:
            task_item.update_info(info)
        return task_item

    def _edge_item(self, edge: EdgeKey, count: int, result: LayoutResult) -> None:
        source, target = self.node(edge[0]), self.node(edge[1])
        if source is None or target is None:
            return
        item = self.edges.get(edge)
        if item is None or item.source is not source or item.target is not target:
            if item is not None:
                self.removeItem(item)
            item = self.edges[edge] = TaskEdgeItem(source, target, count)
            self.addItem(item)
        route = result.routes[edge]
        if item.points != tuple(route.points) or item.count != count:
            item.set_route(route, edge in result.layout.turned, count)

    def update_states(self, infos: Iterable[TaskInfo]) -> None:
        """Show newer snapshots: task nodes repaint, collapsed groups recount."""
        dirty: set[NodeKey] = set()
        for info in infos:
            self.infos[info.uid] = info
            item = self.tasks.get(info.uid)
            if item is not None:
                if item.info != info:
                    item.update_info(info)
                continue
            key = self.node_of.get(info.uid)
            if key is not None and key[0] == "group":
                dirty.add(key)
        for key in dirty:
            group_item = self.groups.get(key[1])
            if group_item is not None:
                group_item.set_counts(self.name_of(key[1]), self.counts(key))

    def rename(self, group: Hashable) -> None:
        """Show a group's new display name (if it is a collapsed node)."""
        item = self.groups.get(group)
        if item is not None:
            item.set_counts(self.name_of(group), self.counts(("group", group)))
