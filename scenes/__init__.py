"""Worlds (one folder per domain) and the catalogue of ready scene specs.

Nothing here imports a rendering or physics engine at import time.
"""

from .base import BatchEdit, RenderOutput, World, WorldBatch, WorldInfo
from .registry import WORLDS, catalog, check_world, world_class, world_info

__all__ = ["BatchEdit", "RenderOutput", "World", "WorldBatch", "WorldInfo", "WORLDS", "catalog", "check_world", "world_class", "world_info"]
