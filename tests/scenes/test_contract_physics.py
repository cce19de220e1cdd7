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
    invisible = {"obj[2].mass": "no drag and no collision for the third object in this sample"}


class TestCollisionSimple(WorldContract):
    spec = small("collision_simple")


class TestCollisionComplex(WorldContract):
    spec = small("collision_complex")


class TestFallingCycles(WorldContract):
    spec = small("falling_simple", "cycles", frames=24)
    memory_samples = 12


class TestProjectileCycles(WorldContract):
    spec = small("projectile_simple", "cycles", frames=24)
    memory_samples = 12


class TestCollisionCycles(WorldContract):
    spec = small("collision_simple", "cycles", frames=24)
    memory_samples = 12
