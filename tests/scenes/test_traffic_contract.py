"""The world contract, run against traffic/embedded on each of the five maps, at test size: 3 cars and 2 pedestrians,
all present, 2 s at 10 fps, a 64 px top-down view of the whole map (and, on two maps, a 32 px ego dashcam).

So that latents can act within 3 s, the contract specs pin a few of the catalogue's roots: the three cars queue on
route 0 (starts 0.30, 0.34, 0.38 of it: each has the next as its leader), light[0]'s 8 s green ends 2.5 s before
the clip (amber until 0.5 s, then red: the contract's edit, which forces amber, changes it; a long green lasts into it), the
pedestrians use a crosswalk they may walk on at once (unsignalised, or one whose cars have red) and start at 0 s.
What still cannot act within the clip is declared ``invisible`` with the reason."""

from __future__ import annotations

import pytest

from crlgen.pipeline import load_spec
from crlgen.scenes.testing import WorldContract
from crlgen.scenes.traffic import _maps

pytestmark = pytest.mark.slow

TOP = {"kind": "topdown", "name": "top", "extent": 130, "center": [0, 0], "altitude": 50}
DASHCAM = {"kind": "mounted", "name": "dashcam", "mount": "vehicle[0]", "position": [2.3, 0.0, -0.25],
           "look_at": [22.0, 0.0, -0.9], "up": [0, 0, 1], "fov": 60, "size": [32, 32]}
#: The queue's first car (vehicle[2]) has no leader within the clip on these maps.
FRONT_ALONE = {f"vehicle[2].{t}": "the queue's first car meets no leader, red light or pedestrian within the 2 s clip"
               for t in ("time_headway", "reaction_time")}
PHASE_OUTSIDE = "at both values the suite tries, the light shows the same states during the 2 s clip (its phase changes fall outside it)"
WEATHER_HIDDEN = {w: "weather acts only on the dashcam's pixels, and this contract spec films the top-down view alone"
                  for w in ("weather.fog", "weather.rain", "weather.sun")}


def small(name: str, code: int, dashcam: bool):
    """The catalogue scene at contract size (see the module docstring)."""
    spec = load_spec(f"traffic/{name}")
    m = _maps.get_map(code)
    cw = next((c for c, x in enumerate(m.crosswalks) if x.light < 0), None)
    if cw is None:
        cw = next(c for c, x in enumerate(m.crosswalks) if x.light == 1)
    d = spec.to_dict()
    d["objects"] = {**d["objects"], "vehicle": 3, "pedestrian": 2}
    v = d["variables"]
    for k in ("vehicle[0].present", "vehicle[i].route", "vehicle[i].start", "pedestrian[0].present", "pedestrian[0].start_time", "pedestrian[0].crossing"):
        v.pop(k, None)
    v["vehicle[i].present"] = {"type": "boolean", "mechanism": "1"}
    v["vehicle[i].route"] = {"type": "integer", "range": [0, len(m.routes) - 1], "mechanism": "0"}
    for i, s in enumerate((0.30, 0.34, 0.38)):
        v[f"vehicle[{i}].start"] = {"range": [0, 1], "mechanism": str(s)}
    v["pedestrian[i].present"] = {"type": "boolean", "mechanism": "1"}
    v["pedestrian[i].start_time"] = {"range": [0, 12], "unit": "s", "mechanism": "0"}
    v["pedestrian[i].crossing"] = {"type": "integer", "range": v["pedestrian[i].crossing"]["range"], "mechanism": str(cw)}
    for name, value in (("light[0].offset", m.cycle - 10.5), ("light[0].green", 8.0)):
        v[name] = {"range": v[name]["range"], "unit": "s", "mechanism": str(value)}
    d["temporal_edits"] = [{"at_frame": 5, "do": "light[0].state = 0", "fraction": 0.5}]
    d.pop("counterfactuals", None)
    d["interventions"] = {"regime": "single_node", "fraction": 0.2, "targets": {"vehicle[i].aggressiveness": "do(1.0)"}}
    d["video"] = {"fps": 10, "frames": 20, "substeps": 1}
    d["render"] = {**d["render"], "size": 64, "views": [TOP, DASHCAM] if dashcam else [TOP]}
    d["samples"] = 6
    return type(spec).from_dict(d)


class _Traffic(WorldContract):
    memory_samples = 8
    topdown_extent = 130.0
    fixed_view = {"position": [-30.0, -30.0, 25.0], "look_at": [0.0, 0.0, 0.0]}  # a 25 m pole camera over the town
    n = 2
    geometry_size = 224  # the whole map at 224 px: 1.7 px per m, so a car's 0.6 m inner radius spans a pixel


class TestGridTown(_Traffic):
    spec = small("grid_town", 0, dashcam=True)
    invisible = {**FRONT_ALONE, "light[1].green": PHASE_OUTSIDE, "light[2].green": PHASE_OUTSIDE}


class TestVillage(_Traffic):
    spec = small("village", 1, dashcam=False)
    invisible = {**WEATHER_HIDDEN, **FRONT_ALONE}


class TestHighwayMerge(_Traffic):
    spec = small("highway_merge", 2, dashcam=True)
    invisible = {**FRONT_ALONE, **{f"vehicle[{i}].desired_speed": "the car starts on the lay-by, whose 10 m/s limit caps "
                                   "its desired speed throughout the clip" for i in (0, 1)}}


class TestDowntown(_Traffic):
    spec = small("downtown", 3, dashcam=False)
    invisible = {**WEATHER_HIDDEN, **TestGridTown.invisible}


class TestUrbanCentre(_Traffic):
    spec = small("urban_centre", 4, dashcam=False)
    invisible = {**WEATHER_HIDDEN, **{f"light[{k}].green": PHASE_OUTSIDE for k in (1, 3, 4, 5, 6)},
                 "vehicle[1].reaction_time": "the car ahead starts at the same speed (the 8.3 m/s limit caps both desired "
                                             "speeds), so the approach rate, through which the delay acts, stays ~0 in the clip"}
