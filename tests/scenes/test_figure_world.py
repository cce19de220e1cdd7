"""static/figure: the world contract, and what only this Cycles scene does (small renders).

The figure-specific tests check the kinematics and the light against the pixels: a joint angle
moves the hand's mask by what forward kinematics projected through the camera says, the room
changes the background but not the figure's mask, and the shadow on the floor points away from
the sun with the length parallel rays give (crown height / tan(elevation)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crlgen.pipeline import CompiledSCM, load_spec
from crlgen.scenes.base import WorldBatch
from crlgen.scenes.cameras import project
from crlgen.scenes.static.figure import (
    BASE_DISTANCE, FIGURE_IDS, FLOOR_ID, FOREARM_RADIUS, FURNITURE_ID, HAND_HALF, HAND_L_ID, HAND_R_ID, HEAD_ID, LATENTS,
    ROOMS, SEGMENTATION_IDS, TORSO_ID, TORSO_RADII, WALL_ID, FigureWorld, forward_kinematics, shadow_length,
    sun_direction,
)
from crlgen.scenes.testing import WorldContract

pytestmark = pytest.mark.slow

BASE = {"height": 1.0, "shoulder_l": 1.0, "elbow_l": 0.5, "wrist_l": 0.0, "shoulder_r": 0.6, "elbow_r": 0.8,
        "wrist_r": -0.3, "stride": 0.3, "shirt_hue": 0.6, "trousers_hue": 0.1, "light_azimuth": 0.5,
        "light_elevation": 0.9, "light_intensity": 4.0, "room": 0.0}
FRONT = {"kind": "orbit", "name": "front", "azimuth": 0, "elevation": 0}
SPECS = ("figure_shop", "figure_living_room", "figure_apartment", "figure_wall", "figure_rooms")


class TestFigureContract(WorldContract):
    spec = load_spec("static/figure_rooms").replace(
        samples=8, render={"size": 24, "views": 2, "samples": 4, "engine": "cycles", "annotations": ["depth", "segmentation"]})
    topdown_extent = 4.0
    memory_samples = 40


def spec(size=48, views=(FRONT,), samples=4, **kw):
    return load_spec("static/figure_shop").replace(
        render={"size": size, "views": list(views), "samples": samples, "device": "cpu", "engine": "cycles",
                "annotations": ["depth", "segmentation"], **kw})


def batch(rows: list[dict]) -> WorldBatch:
    n = len(rows)
    return WorldBatch(index=np.arange(n), latents={k: np.array([r[k] for r in rows], dtype=np.float64) for k in LATENTS},
                      seeds=np.zeros(n, np.uint64))


def with_(**kw) -> dict:
    return {**BASE, **kw}


@pytest.fixture(scope="module")
def front():
    w = FigureWorld(spec(size=96), threads=1)
    yield w
    w.close()


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    assert xs.size > 0, "the part is not in view"
    return np.array([xs.mean(), ys.mean()])


def test_catalogue_specs_check_and_share_the_scene():
    from crlgen.scenes.registry import check_world

    for name in SPECS:
        s = load_spec(f"static/{name}")
        assert s.world == "static/figure" and check_world(s) == []
    model = CompiledSCM(load_spec("static/figure_rooms").with_samples(400))
    b = model.sample(0, 400)
    assert set(np.unique(b.column("room")).tolist()) == {0.0, 1.0, 2.0, 3.0}  # every domain is a room
    assert set(np.unique(CompiledSCM(load_spec("static/figure_wall").with_samples(50)).sample(0, 50).column("room"))) == {3.0}
    # the spec's shadow equation is the world's
    for i in range(5):
        h, s_, el = (float(b.column(n)[i]) for n in ("height", "stride", "light_elevation"))
        assert b.column("shadow_length")[i] == pytest.approx(shadow_length(h, s_, el), rel=1e-9)


def test_ids_depth_and_every_part_in_view(front):
    out = front.render(batch([BASE, with_(room=1.0), with_(room=2.0)])).outputs
    seg, depth, rgb = out["segmentation"], out["depth"], out["images"]
    assert set(np.unique(seg)) <= set(SEGMENTATION_IDS)
    assert set(FIGURE_IDS) <= set(np.unique(seg[0])), "every body part shows in the front view"
    assert {FLOOR_ID, WALL_ID, FURNITURE_ID} <= set(np.unique(seg))
    assert np.all(depth[seg > 0] > 0.5)
    # the figure stands in front of the walls
    assert depth[seg == TORSO_ID].mean() < depth[seg == WALL_ID].mean() - 4.0
    assert abs(depth[seg == TORSO_ID].mean() - (BASE_DISTANCE - TORSO_RADII[1])) < 0.3  # the torso is where the camera aims
    assert 20 < rgb.mean() < 235
    (key,) = [o.attrs["ids"] for o in FigureWorld.outputs(front.spec) if o.name == "segmentation"]
    assert key == {str(k): v for k, v in SEGMENTATION_IDS.items()}


@pytest.mark.parametrize("joint, values", [("elbow_l", (0.2, 1.4)), ("wrist_l", (-1.0, 0.8)), ("shoulder_r", (0.3, 1.5))])
def test_a_joint_angle_moves_the_hand_where_forward_kinematics_says(front, joint, values):
    """The hand's mask centroid moves, between two angles, by the projected move of the centre of
    the hand's visible part (forward kinematics through the stored camera), to within 1.5 px of
    ~30: the forearm's rounded end covers the hand's base up to FOREARM_RADIUS from the wrist, so
    the visible part runs from there to the fingertips."""
    side = 1 if joint.endswith("_l") else -1
    hand_id = HAND_L_ID if side == 1 else HAND_R_ID
    rows = [with_(**{joint: v}) for v in values]
    out = front.render(batch(rows)).outputs
    cam = front.rig.cameras[0]
    tag = "l" if side == 1 else "r"
    moved_px, moved_fk = [], []
    for i, row in enumerate(rows):
        moved_px.append(_centroid(out["segmentation"][i, 0] == hand_id))
        angles = {k: row[k] for k in ("shoulder_l", "elbow_l", "wrist_l", "shoulder_r", "elbow_r", "wrist_r")}
        wrist, rot = forward_kinematics(row["height"], stride=row["stride"], **angles)[f"hand_{tag}"]
        c = wrist + rot @ np.array([0.0, 0.0, -row["height"] * (FOREARM_RADIUS + 2 * HAND_HALF[2]) / 2])
        uv, _ = project(c[None], cam.K, out["camera_to_world"][i, 0])
        moved_fk.append(uv[0])
    d_px, d_fk = moved_px[1] - moved_px[0], moved_fk[1] - moved_fk[0]
    assert np.linalg.norm(d_fk) > 5.0, "the test's angles should move the hand visibly"
    np.testing.assert_allclose(d_px, d_fk, atol=1.5)
    for uv_px, uv_fk in zip(moved_px, moved_fk):
        np.testing.assert_allclose(uv_px, uv_fk, atol=1.5)


def test_the_elbow_carries_the_forearm_and_hand_but_not_the_upper_arm():
    fk0 = forward_kinematics(1.0, 1.0, 0.2, 0.0, 0.5, 0.0, 0.0, 0.0)
    fk1 = forward_kinematics(1.0, 1.0, 1.2, 0.0, 0.5, 0.0, 0.0, 0.0)
    np.testing.assert_array_equal(fk0["upper_arm_l"][1], fk1["upper_arm_l"][1])
    np.testing.assert_array_equal(fk0["forearm_l"][0], fk1["forearm_l"][0])  # the elbow joint stays
    assert np.linalg.norm(fk0["hand_l"][0] - fk1["hand_l"][0]) == pytest.approx(2 * 0.27 * math.sin(0.5), rel=1e-9)
    np.testing.assert_array_equal(fk0["hand_r"][0], fk1["hand_r"][0])


def test_the_room_changes_the_background_not_the_figure(front):
    out = front.render(batch([with_(room=float(r)) for r in range(len(ROOMS))])).outputs
    seg, rgb = out["segmentation"], out["images"].astype(int)
    figure = np.isin(seg, FIGURE_IDS)
    for r in range(1, len(ROOMS)):
        np.testing.assert_array_equal(figure[r], figure[0], err_msg=f"room {ROOMS[r]} changed the figure's mask")
        back = ~figure[0]
        assert np.abs(rgb[r][back] - rgb[0][back]).mean() > 10, f"room {ROOMS[r]} looks like room {ROOMS[0]}"


def _shadow(world, rows):
    """Shadow masks on the floor of a top-down view, and the image position of the figure's feet."""
    out = world.render(batch(rows)).outputs
    seg, rgb = out["segmentation"][:, 0], out["images"][:, 0].astype(float).mean(-1)
    masks = []
    for i in range(len(rows)):
        floor = seg[i] == FLOOR_ID
        masks.append(floor & (rgb[i] < 0.6 * np.median(rgb[i][floor])))
    cam = world.rig.cameras[0]
    origin, _ = project(np.zeros((1, 3)), cam.K, out["camera_to_world"][0, 0], orthographic=True)
    return masks, origin[0], cam


def test_the_shadow_points_away_from_the_sun_with_the_projected_length():
    """Top-down: the shadow's far end lies along -sun azimuth at crown height / tan(elevation)."""
    top = {"kind": "topdown", "name": "top", "extent": 6.0}
    low = {"shoulder_l": 0.1, "elbow_l": 0.0, "wrist_l": 0.0, "shoulder_r": 0.1, "elbow_r": 0.0, "wrist_r": 0.0,
           "stride": 0.0, "room": 3.0}
    rows = [with_(**low, light_azimuth=0.0, light_elevation=0.7), with_(**low, light_azimuth=0.0, light_elevation=1.1),
            with_(**low, light_azimuth=1.0, light_elevation=0.7)]
    with FigureWorld(spec(size=96, views=(top,)), threads=1) as w:
        masks, origin, cam = _shadow(w, rows)
    px_per_m = cam.K[0, 0]
    reach = []
    for mask, row in zip(masks, rows):
        d = -sun_direction(row["light_azimuth"], row["light_elevation"])[:2]
        d /= np.linalg.norm(d)
        ys, xs = np.nonzero(mask)
        assert xs.size > 20, "no shadow on the floor"
        rel = np.stack([xs - origin[0], -(ys - origin[1])], axis=1) / px_per_m  # metres; image y points south
        along = rel @ d
        across = rel @ np.array([-d[1], d[0]])
        assert np.median(along) > 0.3, "the shadow lies on the side away from the sun"
        assert np.abs(np.median(across)) < 0.15
        want = shadow_length(row["height"], row["stride"], row["light_elevation"])
        assert along.max() == pytest.approx(want, abs=2.0 / px_per_m + 0.06)  # 2 px, the head's penumbra
        reach.append(along.max())
    assert reach[0] > reach[1] + 0.5  # a lower sun casts a longer shadow


def test_light_intensity_brightens_without_moving_anything(front):
    out = front.render(batch([with_(light_intensity=2.0), with_(light_intensity=6.0)])).outputs
    np.testing.assert_array_equal(out["segmentation"][0], out["segmentation"][1])
    assert out["images"][1].mean() > out["images"][0].mean() + 10


def test_height_scales_the_figure(front):
    out = front.render(batch([with_(height=0.85), with_(height=1.15)])).outputs
    head = [_centroid(out["segmentation"][i, 0] == HEAD_ID) for i in range(2)]
    assert head[1][1] < head[0][1] - 5, "a taller figure's head is higher in the image"
    area = [np.isin(out["segmentation"][i, 0], FIGURE_IDS).sum() for i in range(2)]
    assert area[1] / area[0] == pytest.approx((1.15 / 0.85) ** 2, rel=0.15)


def test_clothing_hues_colour_only_their_parts(front):
    out = front.render(batch([with_(shirt_hue=0.0), with_(shirt_hue=0.5), with_(trousers_hue=0.5, shirt_hue=0.0)])).outputs
    seg, rgb = out["segmentation"][:, 0], out["images"][:, 0].astype(int)
    torso = seg[0] == TORSO_ID
    assert rgb[0][torso].mean(0)[0] > rgb[1][torso].mean(0)[0] + 40  # red shirt vs cyan shirt
    head = seg[0] == HEAD_ID
    assert np.abs(rgb[0][head].mean(0) - rgb[1][head].mean(0)).max() < 8


def test_rejects_bad_latents_and_engines(front):
    with pytest.raises(KeyError, match="missing"):
        front.render(WorldBatch(np.arange(1), {k: np.array([v]) for k, v in BASE.items() if k != "wrist_l"},
                                np.zeros(1, np.uint64)))
    with pytest.raises(ValueError, match="shoulder_l"):
        front.render(batch([with_(shoulder_l=2.5)]))  # never drawn as a clamped arm
    with pytest.raises(ValueError, match="room"):
        front.render(batch([with_(room=1.5)]))
    with pytest.raises(ValueError, match="engines"):
        FigureWorld(spec(engine="tiny"))


def test_the_shadow_length_check_passes_the_catalogue_and_catches_another_mechanism():
    """shadow_length is derived by the spec but cast by Cycles' sun: validation's 'shadow_length' check
    compares every stored value with the world's projection along the sun's rays."""
    from crlgen.scenes.static.figure import FigureWorld
    from crlgen.scenes.testing import _batch

    (check,) = FigureWorld.checks
    base = load_spec("static/figure_rooms").with_samples(200)
    assert check.run(None, _batch(base, 0, 200), None) == []
    variables = dict(base.variables)
    variables["shadow_length"] = variables["shadow_length"].model_copy(
        update={"mechanism": "height * (0.88 * cos(stride) + 0.92) / tan(light_elevation)"})
    problems = check.run(None, _batch(base.replace(variables=variables), 0, 200), None)
    assert len(problems) > 150 and "shadow_length" in problems[0] and "not what the world renders" in problems[0]
