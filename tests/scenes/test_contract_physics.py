"""The world contract, run against every physics catalogue scene (TinyRenderer) and against each
physics world filmed with Blender Cycles, at test size."""

from __future__ import annotations

from crlgen.pipeline import load_spec
from crlgen.scenes.testing import WorldContract


def small(name: str, engine: str = "tiny", frames: int = 40):
    return load_spec(f"physics/{name}").replace(samples=6, video={"fps": 20, "frames": frames},
                                                render={"size": 24, "views": 2, "engine": engine, "samples": 2})


class TestFallingSimple(WorldContract):
    spec = small("falling_simple")


class TestFallingComplex(WorldContract):
    spec = small("falling_complex")


class TestProjectileSimple(WorldContract):
    spec = small("projectile_simple")


class TestProjectileComplex(WorldContract):
    spec = small("projectile_complex")
    # in the contract's sample drag is 0 and the third object touches no other body: its flight does
    # not depend on its mass (the first two collide, so theirs shows)
    invisible = {"obj[2].mass": "no drag and no collision for the third object in this sample",
                 # the third object lands at a grazing angle (vz 1.75 m/s up, 3.5 m/s along x): 0.7 -> 0.1
                 # moves it 4 mm in one frame and 1 cm at rest, under a pixel at 24 px
                 "obj[2].restitution": "a grazing landing: its bounce moves it under a pixel at the contract's 24 px"}


class TestCollisionSimple(WorldContract):
    spec = small("collision_simple")


class TestCollisionComplex(WorldContract):
    spec = small("collision_complex")
    # the catalogue's +-2 cm/s sideways jitter: 0.006 -> -0.016 m/s changed no pixel at 24 px (nor did the
    # probe or the trajectory oracle read it: docs/probe.md); issue 10's next round widens it or drops it
    invisible = {"obj[0].vy0": "+-2 cm/s of sideways drift changes no pixel at the contract's 24 px"}


class TestFallingCycles(WorldContract):
    spec = small("falling_simple", "cycles", frames=24)
    memory_samples = 12


class TestProjectileCycles(WorldContract):
    spec = small("projectile_simple", "cycles", frames=24)
    memory_samples = 12


class TestCollisionCycles(WorldContract):
    spec = small("collision_simple", "cycles", frames=24)
    memory_samples = 12
