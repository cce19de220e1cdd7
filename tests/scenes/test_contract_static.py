"""The world contract, run against the static worlds."""

from __future__ import annotations

from schemas import load_spec
from tests.scenes.contract import WorldContract


class TestSpringContract(WorldContract):
    spec = load_spec("static/spring").replace(samples=8, render={"size": 24, "views": 2, "samples": 4, "engine": "cycles"})
