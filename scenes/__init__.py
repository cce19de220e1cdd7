"""Worlds (``crlgen.scenes``): one folder per domain, the engine layer, and the catalogue of ready specs.

Nothing here imports a rendering or physics engine at import time.
"""

from .base import (EXACT, BatchEdit, Compare, Output, Rendered, Resources, Simulation, World, WorldBatch, WorldCheck,
                   WorldInfo, WorldUnavailable, check_latent_values)
from .cameras import CameraModel, CameraRig
from .engines import EngineMissing
from .registry import CatalogEntry, build_world, catalog, catalog_path, check_world, world_class, world_info, worlds

__all__ = ["EXACT", "BatchEdit", "CameraModel", "CameraRig", "CatalogEntry", "Compare", "EngineMissing", "Output",
           "Rendered", "Resources", "Simulation", "World", "WorldBatch", "WorldCheck", "WorldInfo", "WorldUnavailable", "build_world",
           "catalog", "catalog_path", "check_latent_values", "check_world", "world_class", "world_info", "worlds"]
