"""The world contract, run against robotics/arm (open space, pick and place) with each arm (KUKA iiwa,
xArm6, Franka Panda), at test size (32 px, two cameras: front and the wrist, 36 frames at 10 fps)."""

from __future__ import annotations

import pytest

from crlgen.pipeline import load_spec
from crlgen.scenes.testing import WorldContract

pytestmark = pytest.mark.slow

VIEWS = [{"name": "front", "azimuth": 90, "elevation": 30, "distance": 0.85},
         {"kind": "mounted", "name": "wrist", "mount": "ee", "position": [-0.1, 0.0, -0.1], "look_at": [0.1, 0.0, 0.12],
          "up": [0.0, 0.0, -1.0], "fov": 70}]

#: Latents that act only in some outcomes: in the contract's first sample they change no pixel.
UNTOUCHED = {
    "obj[1].mass": "obj[1] stands by: nothing touches it in pick and place",
    "obj[1].friction": "obj[1] stands by: nothing touches it in pick and place",
    "ctrl.grip_force": "the grasp holds 2 mu grip_force, above this cube's weight at both values the test tries "
                       "(test_robot_world.py's slip test shows it acting)",
}


def small(arm: int = 0, frames: int = 36):
    spec = load_spec("robotics/open_space")
    joints = {0: 7, 1: 6, 2: 7}[arm]
    if joints == 6:  # arm.twist resolves a 7-joint arm's redundancy: the xArm6 has none
        spec = spec.replace(variables={k: v for k, v in spec.variables.items() if k != "arm.twist"})
    return spec.replace(samples=6, parameters={**spec.parameters, "arm": arm}, objects={"obj": 2, "joint": joints},
                        video={"fps": 10, "frames": frames, "substeps": 24},
                        render={"size": 32, "views": VIEWS, "engine": "tiny"})


class TestKukaPickAndPlace(WorldContract):
    spec = small(0)
    invisible = UNTOUCHED
    memory_samples = 30
    topdown_extent = 1.2


class TestXarmPickAndPlace(WorldContract):
    spec = small(1)
    invisible = UNTOUCHED
    memory_samples = 18  # its meshes make TinyRenderer ~3x slower than the KUKA's
    topdown_extent = 1.2


class TestPandaPickAndPlace(WorldContract):
    spec = small(2)
    invisible = UNTOUCHED
    memory_samples = 18
    topdown_extent = 1.2
