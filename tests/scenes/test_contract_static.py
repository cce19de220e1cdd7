"""The world contract, run against the static worlds (Blender Cycles)."""

from __future__ import annotations

from crlgen.pipeline import load_spec
from crlgen.scenes.testing import WorldContract


class TestSpringCycles(WorldContract):
    spec = load_spec("static/spring").replace(samples=8, render={"size": 24, "views": 2, "samples": 4, "engine": "cycles"})
    topdown_extent = 0.3
    memory_samples = 40


class TestSpringWorkbenchPreview(WorldContract):
    """The same world through the Workbench preview engine."""

    spec = load_spec("static/spring").replace(samples=8, render={"size": 24, "views": 2, "engine": "workbench"})
    topdown_extent = 0.3
    memory_samples = 40
    invisible = {"light": "the Workbench preview lights every scene with the same studio light; the sun's strength is Cycles' only"}
