"""Demo application for bgtasks: ``python -m demo_app``."""

from .window import DemoWindow

__all__ = ["DemoWindow"]
