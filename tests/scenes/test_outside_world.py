"""A world from a separate package (tests/data/toyworld) registers through entry points only,
passes the world contract, appears in `crlgen scenes`, runs and validates, and records the
per-frame inputs it decides inside its simulation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crlgen.pipeline import load_spec
from crlgen.scenes.testing import WorldContract

SPEC_FILE = Path(__file__).resolve().parents[1] / "data/toyworld/crlgen_toyworld/catalog/toy/pendulum.yaml"


@pytest.fixture(scope="module", autouse=True)
def _installed(toyworld):
    return toyworld


class TestToyPendulum(WorldContract):
    spec = load_spec(SPEC_FILE).replace(samples=6)
    memory_samples = 30


def _crlgen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crlgen.pipeline", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})


def test_it_appears_in_crlgen_scenes():
    r = _crlgen("scenes", "--json")
    assert r.returncode == 0, r.stderr
    entries = {e["name"]: e for e in json.loads(r.stdout)}
    assert entries["toy/pendulum"]["world"] == "toy/pendulum"
    assert "static/spring" in entries  # crlgen's own catalogue is still there


def test_it_runs_validates_and_stores_its_inputs(tmp_path):
    out = tmp_path / "toy.zarr"
    r = _crlgen("run", "toy/pendulum", "--samples", "8", "--out", str(out), "--inline", "--quiet")
    assert r.returncode == 0, r.stderr + r.stdout
    report = json.loads((out / "validation.json").read_text())
    assert report["passed"] and [c["name"] for c in report["checks"]][-1] == "bounded"
    from crlgen.pipeline import open_store

    ds = open_store(str(out))
    assert list(ds["input"].values) == ["torque"] and ds["inputs"].shape == (8, 30, 1)
    assert list(ds["state"].values) == ["theta", "omega"] and list(ds["state_unit"].values) == ["rad", "rad/s"]
    torque, gain = ds["inputs"].values[..., 0], ds["latents"].sel(latent="gain").values
    assert (torque != 0).any() and (torque == 0).any()  # the controller acted in some frames only
    for i in range(8):  # ... always with its gain, against the swing
        assert np.allclose(np.abs(torque[i][torque[i] != 0]), gain[i])


def test_a_custom_resource_the_world_declares_is_required_and_honoured(tmp_path):
    """The world takes one `toy_slot` per task (as a CARLA world takes one server): a cluster without
    the slot is refused in one line, with slots the run goes through Ray and validates."""
    r = _crlgen("run", "toy/pendulum", "--samples", "4", "--out", str(tmp_path / "none.zarr"), "--workers", "2", "--quiet")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == ("error: --resource: the Ray cluster offers 0 'toy_slot', but each task of "
                                                 "this world needs 1; start Ray with --resources '{\"toy_slot\": N}' or pass "
                                                 "--resource toy_slot=N")
    assert not (tmp_path / "none.zarr").exists()  # refused before anything was written
    r = _crlgen("run", "toy/pendulum", "--samples", "4", "--out", str(tmp_path / "slots.zarr"), "--workers", "2",
                "--resource", "toy_slot=1", "--quiet")
    assert r.returncode == 0 and "passed" in r.stdout, r.stderr
    r = _crlgen("run", "toy/pendulum", "--resource", "toy_slot", "--out", str(tmp_path / "x.zarr"))
    assert r.returncode == 2 and r.stderr.startswith("error: --resource: expected NAME=N")
