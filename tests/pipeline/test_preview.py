"""`crlgen preview` and the previews `crlgen run` writes: valid images the dataset card embeds."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from support.cli import run_cli as _cli
from crlgen.pipeline._preview import _NODE_CLEARANCE_IN, edge_bends, option_label



def _image(path):
    with Image.open(path) as im:
        im.verify()  # a truncated or corrupt file raises
    with Image.open(path) as im:
        return im.format, im.size, getattr(im, "n_frames", 1)


def test_run_writes_the_contact_sheet_graph_and_distributions(spring_store):
    fmt, (w, h), _ = _image(spring_store / "preview.png")
    assert fmt == "PNG" and w > 300 and h > 300
    for name in ("causal_graph.png", "latents_by_domain.png", "latents_by_regime.png"):
        assert _image(spring_store / "preview" / name)[0] == "PNG"
    card = (spring_store / "README.md").read_text()
    for name in ("preview.png", "preview/causal_graph.png", "preview/latents_by_domain.png", "preview/latents_by_regime.png"):
        assert f"]({name})" in card


def test_video_stores_get_one_animation_per_sample(falling_store):
    clips = sorted((falling_store / "preview" / "videos").glob("sample_*.gif"))
    assert 1 <= len(clips) <= 4
    fmt, _, frames = _image(clips[0])
    assert fmt == "GIF" and frames == 12
    assert _image(falling_store / "preview.gif")[2] == 12
    assert "preview/videos/" in (falling_store / "README.md").read_text()


def test_preview_writes_into_a_folder_without_touching_the_store(capsys, falling_store, tmp_path):
    store = tmp_path / "f.zarr"
    shutil.copytree(falling_store, store)
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*")}
    code, out, err = _cli(capsys, "preview", str(store), "--out", str(tmp_path / "pv"), "--samples", "5", "--videos", "2")
    assert code == 0, err
    written = [line for line in out.splitlines() if line.strip()]
    assert len(written) == 7  # sheet, grid, 2 videos, graph, 2 distributions
    for line in written:
        assert _image(line)[0] in ("PNG", "GIF")
    assert len(list((tmp_path / "pv" / "preview" / "videos").glob("*.gif"))) == 2
    assert {p: p.stat().st_mtime_ns for p in store.rglob("*")} == before


def test_preview_rewrites_the_stores_pictures_and_card(capsys, spring_store, tmp_path):
    store = tmp_path / "s.zarr"
    shutil.copytree(spring_store, store)
    (store / "preview" / "causal_graph.png").unlink()
    code, _, err = _cli(capsys, "preview", str(store), "--samples", "3")
    assert code == 0, err
    assert _image(store / "preview" / "causal_graph.png")[0] == "PNG"
    assert "preview/causal_graph.png" in (store / "README.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--samples", "0"], "--samples: expected a positive count"),
    (["--videos", "-1"], "--videos: expected a count >= 0 (0: no per-sample animations)"),
])
def test_preview_refuses_bad_flags(capsys, spring_store, args, message):
    code, _, err = _cli(capsys, "preview", str(spring_store), *args)
    assert code == 2 and err.strip() == f"error: {message}, got {args[1]}"


def test_preview_videos_0_animates_no_sample_one_by_one(capsys, falling_store, tmp_path):
    """`--videos 0` was refused ("expected a positive count"); it means no per-sample GIFs (the grid stays)."""
    code, out, err = _cli(capsys, "preview", str(falling_store), "--out", str(tmp_path / "pv"), "--samples", "2", "--videos", "0")
    assert code == 0, err
    assert (tmp_path / "pv" / "preview.gif").is_file() and not (tmp_path / "pv" / "preview" / "videos").exists()
    assert "videos/" not in out


def test_preview_of_something_else_is_one_line(capsys, tmp_path):
    code, _, err = _cli(capsys, "preview", str(tmp_path / "missing.zarr"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: URL:")


def test_option_labels():
    """Each target in the spec's shorthand; a soft one read `{'kind': 'soft', 'mechanism': ...` (split at its first
    parenthesis); a named set is its name."""
    assert option_label({"index": 0, "targets": {"h": "do(0.09)"}}) == "h: do(0.09)"
    assert option_label({"targets": {"k": "do(uniform(300.0, 400.0))"}}) == "k: do(uniform(300.0, 400.0))"
    assert option_label({"targets": {"rho": "shift(2000.0)", "h": "do(0.05)"}}) == "rho: shift(2000.0), h: do(0.05)"
    soft = {"kind": "soft", "mechanism": "g * 10 + eps", "noise": "normal(0.0, 1.0)"}
    assert option_label({"targets": {"g": soft}}) == "g: soft('g * 10 + eps', noise='normal(0.0, 1.0)')"
    assert option_label({"targets": {"g": {"kind": "soft", "mechanism": "2 * h"}}}) == "g: soft('2 * h')"
    assert option_label({"index": 2, "name": "s3", "weight": 1.0, "targets": {"g": soft}}) == "s3"


def test_the_regime_legend_fits_the_figure_however_long_the_labels(spring_store):
    """A long label was cut at the figure's right edge ("counterfactual partners (n="): the legend takes fewer
    columns, and wraps an entry wider than the figure."""
    from crlgen.pipeline._preview import _distributions_figure
    from crlgen.pipeline._reading import open_readable
    from crlgen.pipeline._sidecars import causal_graph

    _, store, plan = open_readable(str(spring_store))
    graph = causal_graph(plan)
    soft = {"kind": "soft", "mechanism": " + ".join(["rho * 3.14159265 * r**2 * h"] * 4), "noise": "normal(0.0, 1.0)"}
    for keep in (1, 2, 6):  # one panel (3.2 in wide), two, four columns
        g = {**graph, "nodes": graph["nodes"][:keep],
             "interventions": {**graph["interventions"], "options": [
                 {"index": o["index"], "targets": {**o["targets"], "m": soft}} for o in graph["interventions"]["options"]]}}
        fig = _distributions_figure(store, g, "regime")
        fig.canvas.draw()
        box = fig.legends[0].get_window_extent()
        assert 0 <= box.x0 and box.x1 <= fig.bbox.x1 and 0 <= box.y0, (keep, box, fig.bbox)
        assert any("counterfactual partners (n=" in t.get_text() for t in fig.legends[0].get_texts())


def test_a_damaged_or_unfinished_store_is_not_previewed(capsys, spring_store, tmp_path):
    root = tmp_path / "s.zarr"
    shutil.copytree(spring_store, root)
    next(p for p in sorted((root / "images").rglob("*")) if p.is_file() and p.name != "zarr.json").unlink()
    code, _, err = _cli(capsys, "preview", str(root), "--out", str(tmp_path / "pv"))
    assert code == 2 and "problem(s) with its shards" in err and not (tmp_path / "pv").exists()
    shutil.rmtree(root)
    shutil.copytree(spring_store, root)
    meta = root / "zarr.json"
    meta.write_text(meta.read_text().replace('"status": "complete"', '"status": "writing"'))
    code, _, err = _cli(capsys, "preview", str(root))
    assert code == 2 and "has not finished" in err


def test_preview_refuses_a_folder_it_cannot_fill_before_writing(capsys, spring_store, tmp_path):
    (tmp_path / "afile").write_text("x")
    code, _, err = _cli(capsys, "preview", str(spring_store), "--out", str(tmp_path / "afile" / "sub"))
    assert code == 2 and err.startswith("error: --out:") and "is a file" in err
    (tmp_path / "pv").mkdir()
    (tmp_path / "pv" / "preview").write_text("in the way")
    code, _, err = _cli(capsys, "preview", str(spring_store), "--out", str(tmp_path / "pv"))
    assert code == 2 and "preview in" in err and sorted(p.name for p in (tmp_path / "pv").iterdir()) == ["preview"]


def test_counterfactual_partners_are_labelled_as_such(spring_store):
    import zarr

    from crlgen.pipeline._preview import _regime_text

    g = zarr.open_group(str(spring_store), mode="r")
    role, pair, option = g["pair_role"][:], g["pair"][:], g["intervention"][:]
    j = int(np.flatnonzero(role == 2)[0])
    assert _regime_text(j, option, pair, role, []) == f"counterfactual of #{pair[j]}"
    assert _regime_text(int(pair[j]), option, pair, role, [{"targets": {}}] * 10).endswith(f"partner #{j}")


def _min_gap(a, b, rad, node) -> float:
    """Closest approach (inches) of arc3's curve from a to b with curvature rad to a node centre."""
    a, b, node = (np.asarray(x, dtype=float) for x in (a, b, node))
    d = b - a
    c = (a + b) / 2 + rad * np.array([d[1], -d[0]])
    t = np.linspace(0.0, 1.0, 201)[:, None]
    curve = (1 - t) ** 2 * a + 2 * (1 - t) * t * c + t ** 2 * b
    return float(np.linalg.norm(curve - node, axis=1).min())


def test_an_edge_that_would_cross_a_node_bends_around_it():
    """a -> b -> c stacked 1.2 in apart, and a -> c: the straight a -> c line runs through b, so it bows clear of
    b; the edges between neighbours stay straight (the graph preview drew edges through nodes)."""
    pos = {"a": (2.0, 3.0), "b": (2.0, 1.8), "c": (2.0, 0.6), "d": (3.5, 1.8)}
    bends = edge_bends([("a", "b"), ("b", "c"), ("a", "c"), ("a", "d")], pos)
    assert bends[("a", "b")] == bends[("b", "c")] == bends[("a", "d")] == 0.0
    assert bends[("a", "c")] != 0.0
    assert _min_gap(pos["a"], pos["c"], bends[("a", "c")], pos["b"]) >= _NODE_CLEARANCE_IN
    assert _min_gap(pos["a"], pos["c"], bends[("a", "c")], pos["d"]) >= _NODE_CLEARANCE_IN  # bowed away from d too


def test_preview_refuses_a_folder_in_the_store_it_reads_or_in_another_store(capsys, spring_store, falling_store, tmp_path):
    """--out into another store would overwrite its previews, into the store read would nest `preview/preview/`:
    both are one line, exit 2, and nothing is written (without --out, preview redraws the store's own)."""
    other = tmp_path / "other.zarr"
    shutil.copytree(falling_store, other)
    before = {p: p.stat().st_mtime_ns for p in other.rglob("*")}
    for out_dir, where in ((other, "is the crlgen store"), (other / "sub" / "pv", "lies inside the crlgen store"),
                           (spring_store, "is the store being read"), (spring_store / "preview", "lies inside the store being read")):
        code, out, err = _cli(capsys, "preview", str(spring_store), "--out", str(out_dir))
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        assert err.startswith(f"error: --out: {out_dir} {where}"), err
    assert {p: p.stat().st_mtime_ns for p in other.rglob("*")} == before
    assert not (spring_store / "preview" / "preview").exists() and not (other / "sub").exists()


def test_export_refuses_a_folder_inside_another_store(capsys, spring_store, falling_store, tmp_path):
    other = tmp_path / "other.zarr"
    shutil.copytree(falling_store, other)
    code, _, err = _cli(capsys, "export", str(spring_store), "--format", "parquet", str(other / "hub"))
    assert code == 2 and err.strip() == f"error: DEST: {other / 'hub'} lies inside the crlgen store {other}; choose a folder outside any store"
    assert not (other / "hub").exists()


def test_the_graph_image_outlines_counterfactual_targets_too():
    """The tester's a1: causal_graph.png outlined the regime's targets but not the counterfactual one (`mat`)."""
    from crlgen.pipeline._preview import _outlined, graph_image
    from crlgen.pipeline._sidecars import causal_graph
    from crlgen.pipeline._plan import make_plan
    from crlgen.schemas import DatasetSpec

    spec = DatasetSpec.from_dict({
        "name": "cfo", "samples": 10, "objects": 2,
        "variables": {"a": {"noise": "uniform(0, 1)"}, "ball[i].m": {"mechanism": "a + eps", "noise": "uniform(0, 1)"},
                      "c": {"mechanism": "ball[0].m + ball[1].m"}},
        "interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"a": "do(0.5)"}},
        "counterfactuals": {"fraction": 0.2, "intervention": {"ball[i].m": "do(2)"}}})
    graph = causal_graph(make_plan(spec))
    assert _outlined(graph) == {"a", "ball[0].m", "ball[1].m"}
    assert graph_image(graph)[:4] == b"\x89PNG"
