"""The manager's task graph as DOT and SVG (Graphviz)."""

from __future__ import annotations

import pytest


def test_to_dot_nodes_labels_colours_and_edges(make_manager):
    m = make_manager()
    a = m.add_task(print, name='load "x"')
    b = m.add_task(print, upstream_task_ids=[a])
    m.stop_task(b, stop_upstream=False)
    dot = m.to_dot()
    assert dot.startswith("digraph tasks {")
    assert f't{a} [label="{a}: load \\"x\\"\\nQUEUED", fillcolor=lightblue];' in dot
    assert f't{b} [label="{b}: print\\nCANCELLED", fillcolor=gray];' in dot
    assert f"t{a} -> t{b};" in dot


def test_to_svg_names_the_missing_program(make_manager, monkeypatch):
    m = make_manager()
    m.add_task(print)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        RuntimeError, match=r"^to_svg\(\) needs the Graphviz program 'dot', which is not on PATH"
    ):
        m.to_svg()


def test_to_svg_with_graphviz(make_manager):
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("Graphviz 'dot' is not installed")
    m = make_manager()
    m.add_task(print)
    svg = m.to_svg()
    assert "<svg" in svg and "QUEUED" in svg
