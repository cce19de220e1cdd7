"""The shard task's per-process world cache (pipeline/_tasks.py: world_for)."""

from __future__ import annotations

from crlgen.pipeline import load_spec
from crlgen.pipeline._tasks import release_world, world_for


def test_specs_that_differ_only_in_parameters_never_share_a_world():
    """A world builds from the whole spec (here the room a `parameters` code picks), so a worker that
    ran one spec and is handed another, differing only there, builds a new world instead of filming
    the second spec in the first one's room."""
    base = load_spec("robotics/open_space").with_samples(2)
    other = base.replace(parameters={**base.parameters, "room": 2})
    try:
        first = world_for(base, 0)
        assert world_for(base.with_samples(2), 0) is first  # the same spec, shard after shard: one world
        second = world_for(other, 0)
        assert second is not first
        assert world_for(base, 0) is not second
    finally:
        release_world()
