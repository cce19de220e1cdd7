"""Small stores shared by the tests of what researchers do with the data (loaders, preview,
export, evaluate, probe): built once per session, read-only for the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from crlgen.pipeline import RunOptions, load_spec, resolve, run


def spring_spec(samples: int = 40):
    """The catalogue spring at test size (16 px, 2 views): domains, interventions, counterfactual pairs."""
    return load_spec("static/spring").replace(samples=samples, shard_size=10,
                                              render={"size": 16, "views": 2, "engine": "cycles", "samples": 2})


def falling_spec(samples: int = 24):
    """The catalogue falling_simple at test size: 16 px, 2 views, 12 frames, states."""
    return load_spec("physics/falling_simple").replace(samples=samples, shard_size=8, video={"fps": 15, "frames": 12},
                                                       temporal_edits=[{"at_frame": 6, "do": "gravity = 1.62", "fraction": 0.3}],
                                                       render={"size": 16, "views": 2, "engine": "tiny"})


@pytest.fixture(scope="session")
def spring_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("spring") / "spring.zarr"
    assert run(spring_spec(), resolve(str(root)), RunOptions(executor="inline")).valid
    return root


@pytest.fixture(scope="session")
def falling_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("falling") / "falling.zarr"
    assert run(falling_spec(), resolve(str(root)), RunOptions(executor="inline")).valid
    return root
