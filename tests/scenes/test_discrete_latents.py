"""Latents a world reads as an index, class or flag (``WorldInfo.discrete``) must be declared discrete.

A world that rounds a real-valued route, shape class or presence flag would store a value it did not render;
``crlgen check`` refuses such a spec with one line naming the variable.
"""

from __future__ import annotations

import pytest

from crlgen.pipeline import load_spec
from crlgen.scenes import check_world, world_class
from crlgen.schemas import DatasetSpec

CASES = [
    ("static/objects_light", "shape", (0.0, 5.0)),
    ("static/figure_rooms", "room", (0.0, 3.0)),
    ("physics/falling_complex", "obj[i].shape", (0.0, 2.0)),
    ("robotics/buttons_lights", "button[i].press", (0.0, 1.0)),
    ("traffic/grid_town", "vehicle[i].route", (0.0, 7.0)),
    ("traffic/grid_town", "pedestrian[i].present", (0.0, 1.0)),
    ("traffic/carla_town", "pedestrian[i].crossing", (0.0, 7.0)),
]


@pytest.mark.parametrize("scene,template,bounds", CASES, ids=[f"{s}:{t}" for s, t, _ in CASES])
def test_a_real_valued_index_is_refused_by_name(scene, template, bounds):
    spec = load_spec(scene)
    info = world_class(spec.world).info
    assert template in info.discrete
    assert not [p for p in check_world(spec) if "index or flag" in p]  # the catalogue declares it discrete
    data = spec.to_dict()
    lo, hi = bounds
    data["variables"][template] = {"range": [lo, hi], "noise": f"uniform({lo}, {hi})"}
    if template == "room":  # figure_rooms derives the room from the domain's room_code
        data["variables"][template]["mechanism"] = "room_code"
        data["variables"][template].pop("noise")
    problems = [p for p in check_world(DatasetSpec.from_dict(data)) if "index or flag" in p]
    assert problems == [f"variables.{template}: world {info.name} reads {template} as an index or flag; "
                        f"declare `type: integer` (or boolean, categorical), not continuous"]
