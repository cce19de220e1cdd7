"""The world contract, run against every physics catalogue scene at test size."""

from __future__ import annotations

from crlgen.pipeline import load_spec
from support.contract import VideoWorldContract


def small(name: str):
    return load_spec(f"physics/{name}").replace(samples=6, video={"fps": 20, "frames": 40},
                                                render={"size": 24, "views": 2, "engine": "tiny"})


class TestFallingSimple(VideoWorldContract):
    spec = small("falling_simple")


class TestFallingComplex(VideoWorldContract):
    spec = small("falling_complex")


class TestProjectileSimple(VideoWorldContract):
    spec = small("projectile_simple")


class TestProjectileComplex(VideoWorldContract):
    spec = small("projectile_complex")


class TestCollisionSimple(VideoWorldContract):
    spec = small("collision_simple")


class TestCollisionComplex(VideoWorldContract):
    spec = small("collision_complex")
