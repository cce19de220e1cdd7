"""The traffic worlds' shared vocabulary: the per-frame states and inputs both backends store.

``traffic/embedded`` (:mod:`.world`) and ``traffic/carla`` (:mod:`.carla_world`) store the same
state names, units and per-frame inputs, so one loader, probe or metric reads either backend's
stores; each world keeps its own latents and valid ranges (the simulators differ in what they read).
"""

from __future__ import annotations

#: Per-frame state fields of every vehicle, in the order stored: map-frame position (m), heading
#: (rad, counter-clockwise from +x), speed (m/s), acceleration (m/s^2) and lane (a global lane id of the
#: map's road graph, not a lane 0/1 of the road; -1 absent).
VEHICLE_STATES = ("x", "y", "heading", "speed", "accel", "lane")
#: Every per-frame state name, in the order of ``WorldInfo.states``.
STATES = (*(f"vehicle[i].{f}" for f in VEHICLE_STATES), "pedestrian[i].x", "pedestrian[i].y", "pedestrian[i].walking",
          "light[i].state")
#: Units of the states (``1``: a dimensionless index or flag; light state 0 red, 1 amber, 2 green).
STATE_UNITS = {"vehicle[i].x": "m", "vehicle[i].y": "m", "vehicle[i].heading": "rad", "vehicle[i].speed": "m/s",
               "vehicle[i].accel": "m/s^2", "vehicle[i].lane": "1", "pedestrian[i].x": "m", "pedestrian[i].y": "m",
               "pedestrian[i].walking": "1", "light[i].state": "1"}
#: The categorical states and their classes (``state_output``'s ``levels``): a light shows red, amber or green;
#: a pedestrian walks or waits. (``lane`` is an id of the road graph, not a class the pixels could show.)
STATE_LEVELS = {"light[i].state": 3, "pedestrian[i].walking": 2}
#: What an absent agent (``present`` 0) stores in every frame, outside each state's domain: NaN for the float
#: states (vehicles' x, y, heading, speed, accel; pedestrians' x, y), -1 for the index and the flag (vehicles'
#: ``lane``, pedestrians' ``walking``). Read ``np.isfinite(x)`` (or ``lane >= 0``) as the agent's presence.
ABSENT_FLOAT, ABSENT_INDEX = float("nan"), -1.0
#: Per-frame inputs: the phase each light's controller chose (before any edit forces what it shows).
INPUTS = ("light[i].phase",)
#: The weather latents: visibility (m), rain (0..1), daylight (0..1).
WEATHER = ("weather.fog", "weather.rain", "weather.sun")
#: Temporal-edit targets both backends support (the CARLA world adds the weather).
EDIT_TARGETS = ("light[i].state", "pedestrian[i].walking", "vehicle[i].desired_speed", "vehicle[i].time_headway")
#: Valid range of the state edits both backends take (a light's shown state 0 red .. 2 green, a pedestrian's
#: walking flag); each world's own check further allows only ``set`` to one of the levels.
EDIT_RANGES: dict[str, tuple[float, float]] = {"light[i].state": (0.0, 2.0), "pedestrian[i].walking": (0.0, 1.0)}
#: Latents both backends read as an index or flag (``WorldInfo.discrete``): a spec declares them integer or boolean.
DISCRETE = ("vehicle[i].present", "pedestrian[i].present", "pedestrian[i].crossing")
