"""The task graph in Graphviz DOT, and as SVG through the ``dot`` program."""

from __future__ import annotations

import shutil
import subprocess

from ._state import TaskState

#: Fill colour of a node by state (cs.taskqueue's palette, plus the states it lacks).
COLOURS = {
    TaskState.PENDING: "white",
    TaskState.QUEUED: "lightblue",
    TaskState.RUNNING: "yellow",
    TaskState.CANCELLING: "orange",
    TaskState.COMPLETED: "green",
    TaskState.FAILED: "red",
    TaskState.CANCELLED: "gray",
}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(nodes: list[tuple[int, str, TaskState, tuple[int, ...]]]) -> str:
    """``nodes``: (uid, name, state, upstream uids).  Edges point to dependents."""
    known = {uid for uid, *_ in nodes}
    lines = ["digraph tasks {", "  node [shape=box, style=filled, fontname=Helvetica];"]
    for uid, name, state, _ in nodes:
        label = _quote(f"{uid}: {name}\n{state.name}")
        lines.append(f"  t{uid} [label={label}, fillcolor={COLOURS[state]}];")
    for uid, _, _, upstream in nodes:
        for up in dict.fromkeys(upstream):
            if up in known:
                lines.append(f"  t{up} -> t{uid};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(dot_source: str, program: str = "dot") -> str:
    exe = shutil.which(program)
    if exe is None:
        raise RuntimeError(
            f"to_svg() needs the Graphviz program {program!r}, which is not on PATH: "
            "install Graphviz (Debian/Ubuntu: apt-get install graphviz), or use to_dot()"
        )
    proc = subprocess.run(
        [exe, "-Tsvg"], input=dot_source, capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{program} failed with exit code {proc.returncode}: {proc.stderr.strip()}"
        )
    return proc.stdout
