"""Worlds (``crlgen.scenes``): one folder per domain, the engine layer, and the catalogue of ready specs.

Nothing here imports a rendering or physics engine at import time.
"""

from .base import BatchEdit, RenderOutput, World, WorldBatch, WorldInfo
from .engines import EngineMissing
from .registry import WORLDS, CatalogEntry, build_world, catalog, catalog_path, check_world, world_class, world_info

__all__ = ["BatchEdit", "CatalogEntry", "EngineMissing", "RenderOutput", "World", "WorldBatch", "WorldInfo", "WORLDS",
           "build_world", "catalog", "catalog_path", "check_world", "world_class", "world_info"]
