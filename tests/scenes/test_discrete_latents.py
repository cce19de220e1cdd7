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


def test_extending_a_spec_keeps_the_declared_discrete_type(tmp_path):
    """The tester's ``route_float.yaml``: ``extends: grid_town`` and ``vehicle[i].route: {range: [0, 7], noise:
    "uniform(0, 7)"}`` without a type. The override is merged into grid_town's declaration, so the route stays
    ``type: integer``: the sampler rounds it and the store holds the route the world drives (no 3.7 stored for
    route 3); declaring it continuous is refused by name (above)."""
    import numpy as np

    from crlgen.pipeline._scm import CompiledSCM

    path = tmp_path / "route_float.yaml"
    path.write_text('extends: traffic/grid_town\nsamples: 300\n'
                    'variables:\n  vehicle[i].route: {range: [0, 7], noise: "uniform(0, 7)"}\n')
    spec = load_spec(str(path))
    assert spec.variables["vehicle[i].route"].type == "integer"
    assert not [p for p in check_world(spec) if "index or flag" in p]
    routes = CompiledSCM(spec).sample(0, 300).column("vehicle[1].route")
    assert np.array_equal(routes, np.rint(routes)) and set(np.unique(routes)) == set(range(8))
