"""The world contract, run against the static worlds."""

from __future__ import annotations

from crlgen.pipeline import load_spec
from support.contract import WorldContract


class TestSpringContract(WorldContract):
    spec = load_spec("static/spring").replace(samples=8, render={"size": 24, "views": 2, "samples": 4, "engine": "cycles"})
