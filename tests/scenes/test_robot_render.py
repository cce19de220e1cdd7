"""robotics/arm rendered: the state stored for a frame is the state filmed in that frame, also right after a
push; segmentation ids name every arm link; the wrist camera rides on the TCP."""

from __future__ import annotations

import numpy as np
import pytest

from crlgen.pipeline import load_spec
from crlgen.scenes import build_world
from crlgen.scenes.base import BatchEdit, WorldBatch
from crlgen.scenes.cameras import project
from crlgen.scenes.testing import _batch

pytestmark = pytest.mark.slow

PUSH_FRAME = 5


def top_spec(size: int = 64):
    spec = load_spec("robotics/open_space")
    views = [{"kind": "topdown", "name": "top", "center": [0.05, 0.0], "extent": 0.9, "altitude": 3.0},
             {"kind": "mounted", "name": "wrist", "mount": "ee", "position": [-0.1, 0.0, -0.1], "look_at": [0.1, 0.0, 0.12],
              "up": [0.0, 0.0, -1.0], "fov": 70}]
    return spec.replace(samples=4, interventions={"regime": "observational"}, temporal_edits=(),
                        video={"fps": 10, "frames": 10, "substeps": 24}, render={"size": size, "views": views})


def test_ground_truth_does_not_lag_the_pixels_after_a_push():
    """obj[1] is pushed (vx -= 1.2 m/s at frame 5): in every frame, right after the push too, the stored
    centre of obj[1] projects (with the stored K and camera_to_world) onto the centroid of obj[1]'s mask in
    the top-down view within 0.5 px, while it moves several pixels per frame (so a one-frame lag would show)."""
    spec = top_spec()
    batch = _batch(spec, 0, 1)
    push = BatchEdit("obj[1].vx", "add", np.array([PUSH_FRAME]), np.array([-1]), np.array([-1.2]))
    with build_world(spec) as w:
        r = w.render(WorldBatch(batch.index, batch.latents, batch.seeds, (push,)))
        out = {o.name: o for o in w.outputs(spec)}
    names = list(out["states"].coords["state"][1])
    states = r.outputs["states"][0]
    centre = states[:, [names.index(f"obj[1].{a}") for a in "xyz"]]
    K = out["intrinsics"].value[0]
    seg = r.outputs["segmentation"][0, :, 0]
    obj_id = next(int(k) for k, v in out["segmentation"].attrs["ids"].items() if v == "obj[1]")
    errors, moves = [], []
    for t in range(spec.video.n_frames):
        ys, xs = np.nonzero(seg[t] == obj_id)
        assert xs.size > 10, f"obj[1] hidden in frame {t}"
        uv, _ = project(centre[t][None], K, r.outputs["camera_to_world"][0, t, 0], orthographic=True)
        errors.append(float(np.hypot(xs.mean() - uv[0, 0], ys.mean() - uv[0, 1])))
        if t > 0:
            prev, _ = project(centre[t - 1][None], K, r.outputs["camera_to_world"][0, t, 0], orthographic=True)
            moves.append(float(np.hypot(xs.mean() - prev[0, 0], ys.mean() - prev[0, 1])))
    assert max(errors) < 0.5, np.round(errors, 2)
    assert moves[PUSH_FRAME - 1] > 3.0, np.round(moves, 2)  # the frame right after the push: the lagged state is far
    assert max(moves[:PUSH_FRAME - 1]) < 0.5  # at rest before it


def test_segmentation_names_each_arm_link_and_the_wrist_camera_rides_on_the_tcp():
    spec = top_spec(32)
    batch = _batch(spec, 0, 1)
    with build_world(spec) as w:
        r = w.render(batch)
        out = {o.name: o for o in w.outputs(spec)}
    ids = out["segmentation"].attrs["ids"]
    arm = {int(k): v for k, v in ids.items() if v.startswith("arm.")}
    assert "arm.tcp" in arm.values() and "arm.finger_left" in arm.values() and "arm.lbr_iiwa_link_7" in arm.values()
    seen = set(np.unique(r.outputs["segmentation"]).tolist())
    assert len(seen & set(arm)) >= 4  # several links visible from above
    names = list(out["states"].coords["state"][1])
    ee = r.outputs["states"][0][:, [names.index(f"ee.{a}") for a in "xyz"]]
    wrist = r.outputs["camera_to_world"][0, :, 1]
    # the camera sits at (-0.1, 0, -0.1) in the mount frame: 0.1 m above the TCP and 0.1 m from it
    # horizontally (behind it, turned by the gripper's yaw) while the gripper points down
    d = wrist[:, :3, 3] - ee
    assert np.allclose(d[:, 2], 0.1, atol=0.005) and np.allclose(np.hypot(d[:, 0], d[:, 1]), 0.1, atol=0.005)


@pytest.mark.parametrize("arm", [0, 2], ids=["kuka_iiwa", "franka_panda"])
def test_the_twisted_arm_stays_in_the_catalogue_views(arm):
    """arm.twist at the world's limits (+-1.5 rad) swings the elbow out sideways: in the catalogue's front, side
    and agent views (framed on the whole arm) no arm pixel touches the border in any frame of a pick and place."""
    from crlgen.scenes.robotics.world import RANGES

    data = load_spec("robotics/open_space").to_dict()
    data["render"]["views"] = data["render"]["views"][:4]
    data["variables"]["obj[i].size"]["noise"] = "uniform(0.02, 0.03)"  # cubes the Panda's gripper closes around
    spec = type(load_spec("robotics/open_space")).from_dict(data)
    spec = spec.replace(samples=1, parameters={**spec.parameters, "arm": arm}, interventions={"regime": "observational"},
                        temporal_edits=(), video={"fps": 10, "frames": 40, "substeps": 24})
    batch = _batch(spec, 0, 1)
    with build_world(spec) as w:
        ids = {o.name: o for o in w.outputs(spec)}["segmentation"].attrs["ids"]
        arm_ids = [int(k) for k, v in ids.items() if v.startswith("arm.")]
        for twist in RANGES["arm.twist"]:
            lat = {**batch.latents, "arm.twist": np.array([twist])}
            seg = w.render(WorldBatch(batch.index, lat, batch.seeds, batch.edits)).outputs["segmentation"][0]
            for v, name in enumerate(("front", "side", "birdseye", "agent")):
                if name == "birdseye":  # framed on the table's working area, not on the arm
                    continue
                on = np.isin(seg[:, v], arm_ids)
                assert on.any(), (twist, name)
                border = on[:, 0, :].any() or on[:, -1, :].any() or on[:, :, 0].any() or on[:, :, -1].any()
                assert not border, f"twist {twist}: the arm touches the border of the {name} view"
