"""The world contract, run against every physics catalogue scene (TinyRenderer) and against each
physics world filmed with Blender Cycles, at test size."""

from __future__ import annotations

from crlgen.pipeline import load_spec
from crlgen.scenes.testing import WorldContract


#: A single object falls or flies the same whatever its mass (no other body to hit, no drag).
MASS_ALONE = "a lone object's motion does not depend on its mass (no other body, no drag)"


def small(name: str, engine: str = "tiny", frames: int = 40):
    return load_spec(f"physics/{name}").replace(samples=6, video={"fps": 20, "frames": frames},
                                                render={"size": 24, "views": 2, "engine": engine, "samples": 2})


class TestFallingSimple(WorldContract):
    spec = small("falling_simple")
    invisible = {"obj[0].mass": MASS_ALONE}


class TestFallingComplex(WorldContract):
    spec = small("falling_complex")


class TestProjectileSimple(WorldContract):
    spec = small("projectile_simple")
    invisible = {"obj[0].mass": MASS_ALONE}


class TestProjectileComplex(WorldContract):
    spec = small("projectile_complex")
    # drag decelerates by drag |v| v / m: with the catalogue's drag (<= 0.05 kg/m) and these masses the
    # difference stays under a pixel at this size
    invisible = {"obj[0].mass": "drag too weak to show a mass difference at 24 px",
                 "obj[2].mass": "drag too weak to show a mass difference at 24 px"}


class TestCollisionSimple(WorldContract):
    spec = small("collision_simple")


class TestCollisionComplex(WorldContract):
    spec = small("collision_complex")
    # in the contract's sample a light first object (1 kg) stops at a 5.8 kg neighbour and friction ends
    # the chain at obj[2]: the last two objects never move (the catalogue scene's own fault, see issue 10)
    invisible = dict.fromkeys(("obj[3].mass", "obj[4].mass", "obj[3].restitution", "obj[4].restitution",
                               "obj[3].friction", "obj[3].y0", "obj[3].vy0"), "the push never reaches this object in the contract's sample")


class TestFallingCycles(WorldContract):
    spec = small("falling_simple", "cycles", frames=24)
    memory_samples = 12
    invisible = {"obj[0].mass": MASS_ALONE}


class TestProjectileCycles(WorldContract):
    spec = small("projectile_simple", "cycles", frames=24)
    memory_samples = 12
    invisible = {"obj[0].mass": MASS_ALONE}


class TestCollisionCycles(WorldContract):
    spec = small("collision_simple", "cycles", frames=24)
    memory_samples = 12
