"""Blender's engines behind one BlenderScene: the Workbench preview and Cycles' denoiser.

The Workbench preview must draw the same scene as Cycles (same silhouettes, same depth), only
with simpler light, and say in every dataset it makes that it is a preview. Denoising is a
render setting of Cycles that changes pixels and stays deterministic.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from crlgen.pipeline import load_spec
from crlgen.scenes import build_world
from crlgen.scenes.engines import blender as bl
from crlgen.scenes.testing import _batch

pytestmark = pytest.mark.slow


def _render(engine: str, **render):
    spec = load_spec("static/spring").replace(samples=3, render={"size": 48, "views": 2, "samples": 8, "engine": engine,
                                                                 "device": "cpu", **render})
    with build_world(spec, threads=1) as world:
        return world.render(_batch(spec, 0, 3)).outputs


@pytest.fixture(scope="module")
def both():
    return _render("cycles"), _render("workbench")


def test_the_preview_draws_the_same_objects_where_cycles_does(both):
    cycles, preview = both
    assert (preview["segmentation"] == cycles["segmentation"]).mean() > 0.995  # only anti-aliased edge pixels may differ
    assert set(np.unique(preview["segmentation"])) == set(np.unique(cycles["segmentation"])) == {0, 1, 2, 3}
    hit = (cycles["depth"] > 0) & (preview["depth"] > 0)
    assert hit.mean() > 0.5
    close = np.abs(cycles["depth"][hit] - preview["depth"][hit]) < 1e-3 * cycles["depth"][hit]
    assert close.mean() > 0.99
    assert ((cycles["depth"] > 0) == (preview["depth"] > 0)).mean() > 0.995
    np.testing.assert_array_equal(preview["camera_to_world"], cycles["camera_to_world"])


def test_the_preview_shows_each_objects_colour(both):
    """The cylinder's per-sample colour (obj.color) and the fixed ground material both reach the preview."""
    cycles, preview = both
    img, seg = preview["images"].astype(float), preview["segmentation"]
    body = [img[i][seg[i] == 3].mean(axis=0) for i in range(3)]
    assert max(np.abs(body[0] - body[1]).max(), np.abs(body[0] - body[2]).max()) > 20  # three samples, three colours
    ground = img[seg == 1].mean(axis=0)
    assert np.ptp(ground) < 12 and ground.mean() > 40  # the grey ground is grey, not black or white
    for i in range(3):  # the cylinder's hue agrees with Cycles'
        c = cycles["images"][i].astype(float)[cycles["segmentation"][i] == 3].mean(axis=0)
        assert np.argmax(c) == np.argmax(body[i])


def test_the_preview_is_deterministic_across_processes(both, tmp_path):
    _, preview = both
    code = ("import numpy as np, sys; sys.path.insert(0, %r); from test_blender_preview import _render; "
            "np.save(%r, _render('workbench')['images'])") % (str(__import__("pathlib").Path(__file__).parent),
                                                               str(tmp_path / "x.npy"))
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), preview["images"])


def test_cycles_denoising_changes_the_pixels_and_stays_deterministic(both):
    cycles, _ = both
    den = _render("cycles", denoise=True)
    assert not np.array_equal(den["images"], cycles["images"])
    np.testing.assert_array_equal(den["segmentation"], cycles["segmentation"])
    np.testing.assert_array_equal(_render("cycles", denoise=True)["images"], den["images"])
    # denoised images are smoother: less pixel-to-pixel variation on the flat ground
    g = cycles["segmentation"] == 1
    both_ground = g[:, :, 1:, :] & g[:, :, :-1, :]

    def rough(im: np.ndarray) -> float:
        return float(np.abs(np.diff(im.astype(float), axis=-3)).mean(-1)[both_ground].mean())

    assert rough(den["images"]) < 0.8 * rough(cycles["images"])


def test_an_unknown_blender_engine_is_refused():
    with pytest.raises(ValueError, match="expected a Blender engine"):
        bl.BlenderScene("x", width=8, height=8, samples=1, engine="eevee")


def test_a_preview_dataset_says_so_in_its_card_and_on_the_console(tmp_path):
    spec = load_spec("static/spring").replace(samples=4, render={"size": 24, "views": 2, "engine": "workbench"})
    path = tmp_path / "spring.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True)))
    store = tmp_path / "s.zarr"
    r = subprocess.run([sys.executable, "-m", "crlgen.pipeline", "run", str(path), "--out", str(store), "--inline", "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "'workbench' is a preview engine" in r.stderr
    card = (store / "README.md").read_text()
    assert "Rendered with `workbench`, a preview engine: lower fidelity than `cycles`." in card
    default = load_spec("static/spring")
    from crlgen.pipeline._plan import make_plan
    from crlgen.pipeline._sidecars import causal_graph, dataset_card
    plan = make_plan(default.replace(samples=4))
    assert "Rendered with `cycles`." in dataset_card(plan, causal_graph(plan))
