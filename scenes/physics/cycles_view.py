"""Cycles rendering of a simulated physics video: the recorded poses, filmed with Blender.

Physics is identical to the TinyRenderer path; this view only draws the states the
simulator recorded, so the two engines differ in pixels, never in trajectories.
"""

from __future__ import annotations

import math

import numpy as np

from ..cameras import CameraRig
from ..engines import blender as bl
from ..engines import bullet as pb
from .scene import LIGHT_DIRECTION, N_STATE, SUN_STRENGTH, WALL_RGB, WALL_THICKNESS, WALL_WIDTH, Scene, Stage
from .views import mount_poses


def _sphere_data(segments: int = 32, rings: int = 16):
    """Unit UV sphere: vertices, quad/triangle faces, all smooth."""
    verts = [(0.0, 0.0, -1.0)]
    for r in range(1, rings):
        th = math.pi * r / rings - 0.5 * math.pi
        for s in range(segments):
            ph = 2.0 * math.pi * s / segments
            verts.append((math.cos(th) * math.cos(ph), math.cos(th) * math.sin(ph), math.sin(th)))
    verts.append((0.0, 0.0, 1.0))
    top = len(verts) - 1
    faces = []
    for s in range(segments):
        faces.append((0, 1 + (s + 1) % segments, 1 + s))
    for r in range(rings - 2):
        a, b = 1 + r * segments, 1 + (r + 1) * segments
        for s in range(segments):
            s1 = (s + 1) % segments
            faces.append((a + s, a + s1, b + s1, b + s))
    last = 1 + (rings - 2) * segments
    for s in range(segments):
        faces.append((last + s, last + (s + 1) % segments, top))
    return verts, faces, [True] * len(faces)


def _cube_data():
    """Unit cube (half-extent 1), flat faces."""
    verts = [(x, y, z) for z in (-1.0, 1.0) for y in (-1.0, 1.0) for x in (-1.0, 1.0)]
    faces = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    return verts, faces, [False] * 6


class CyclesView:
    """Blender Cycles view of a physics world: same cameras, scenery and colours, poses from the states."""

    def __init__(self, stage: Stage, rig: CameraRig, label: str, rs, threads: int, *, rgb: str) -> None:
        self.bl = bl
        self.stage, self.rig, self.rgb = stage, rig, rgb
        self.want_depth, self.want_seg = "depth" in rs.annotations, "segmentation" in rs.annotations
        self.bs = bl.BlenderScene.from_settings(label.replace("/", "-"), rs, threads)
        with self.bs.building():
            self._build()

    def _build(self) -> None:
        bl, bs, st = self.bl, self.bs, self.stage
        sc, own = bs.scene, bs.own
        own(bl.set_world_color(sc, bl.srgb_to_linear((0.85, 0.88, 0.92)), strength=0.7))
        self.sun = own(bl.add_sun(sc, "sun", direction_to=LIGHT_DIRECTION, strength=SUN_STRENGTH, angle_deg=6.0))
        own(self.sun.data)
        half = st.ground_outer
        tile = 2.0 * st.ground_half / st.ground_tiles
        ground_mat = own(self._checker_material("ground", st.ground_colors, half / tile))
        ground_mesh = own(bl.mesh_from_data("ground", [(-1, -1, 0), (1, -1, 0), (1, 1, 0), (-1, 1, 0)], [(0, 1, 2, 3)]))
        ground = own(bl.add_object(sc, "ground", ground_mesh, pass_index=pb.SCENERY_ID, material=ground_mat))
        ground.scale = (half, half, 1.0)
        self.meshes = [
            own(bl.mesh_from_data("sphere", *_sphere_data())),
            own(bl.mesh_from_data("box", *_cube_data())),
            own(bl.mesh_from_data("cylinder", *bl.cylinder_data(z=(-1.0, 1.0)))),
        ]
        self.material = own(bl.object_color_material("object", roughness=0.45))
        for mesh in self.meshes:
            mesh.materials.append(self.material)
        wall_mat = own(bl.principled_material("wall", bl.srgb_to_linear(WALL_RGB), roughness=0.8))
        wall_mesh = own(bl.mesh_from_data("wall", *_cube_data()))
        self.wall = own(bl.add_object(sc, "wall", wall_mesh, pass_index=pb.SCENERY_ID, material=wall_mat))
        self.wall.hide_render = True
        self.pool: list[list] = []  # per object index: one Blender object per shape
        self.cameras = []
        for model in self.rig.cameras:
            obj = own(bl.add_camera(sc, f"cam.{model.name}", model))
            own(obj.data)
            self.cameras.append(obj)

    def _checker_material(self, name: str, colors, scale: float):
        bl = self.bl
        mat = bl.principled_material(name, roughness=0.85)
        nodes, links = mat.node_tree.nodes, mat.node_tree.links
        coord = nodes.new("ShaderNodeTexCoord")
        checker = nodes.new("ShaderNodeTexChecker")
        checker.inputs["Color1"].default_value = (*bl.srgb_to_linear(colors[0]), 1.0)
        checker.inputs["Color2"].default_value = (*bl.srgb_to_linear(colors[1]), 1.0)
        # object coordinates run -1..1 across the ground; the checker's cells are 1/scale wide there
        checker.inputs["Scale"].default_value = float(scale)
        links.new(coord.outputs["Object"], checker.inputs["Vector"])
        links.new(checker.outputs["Color"], nodes["Principled BSDF"].inputs["Base Color"])
        return mat

    def _objects(self, k: int) -> list:
        bl, bs = self.bl, self.bs
        while len(self.pool) <= k:
            j = len(self.pool)
            objs = []
            for s, mesh in enumerate(self.meshes):
                o = bs.own(bl.add_object(bs.scene, f"obj{j}.{pb.SHAPE_NAMES[s]}", mesh, pass_index=pb.FIRST_OBJECT_ID + j))
                o.rotation_mode = "QUATERNION"
                o.hide_render = True
                objs.append(o)
            self.pool.append(objs)
        return self.pool[k]

    def render_sample(self, scene: Scene, states: np.ndarray, out: dict[str, np.ndarray], i: int) -> None:
        """Film sample ``i``'s recorded states (T, 13 N) into ``out`` (the world's output arrays)."""
        bl, rig = self.bl, self.rig
        self.sun.data.energy = SUN_STRENGTH * max(scene.light, 0.0)
        if scene.wall is not None:
            x, h = scene.wall
            self.wall.location = (x, 0.0, 0.5 * h)
            self.wall.scale = (0.5 * WALL_THICKNESS, 0.5 * WALL_WIDTH, 0.5 * h)
        self.wall.hide_render = scene.wall is None
        active = []
        for k, b in enumerate(scene.bodies):
            objs = self._objects(k)
            for s, o in enumerate(objs):
                o.hide_render = s != b.shape
            o = objs[b.shape]
            o.scale = (b.size, b.size, b.size)
            bl.set_object_color(o, bl.srgb_to_linear(b.rgb))
            active.append(o)
        for objs in self.pool[len(scene.bodies):]:
            for o in objs:
                o.hide_render = True
        fixed = None if rig.moving else rig.poses()
        with self.bs.persistent():
            for t in range(states.shape[0]):
                for k, o in enumerate(active):
                    row = states[t, k * N_STATE:(k + 1) * N_STATE]
                    o.location = (float(row[0]), float(row[1]), float(row[2]))
                    o.rotation_quaternion = (float(row[6]), float(row[3]), float(row[4]), float(row[5]))
                poses = fixed if fixed is not None else rig.poses(mount_poses(rig, states[t]))
                for g in rig.groups:
                    for j, v in enumerate(g.indices):
                        if rig.cameras[v].pose is None:
                            bl.set_camera_pose(self.cameras[v], poses[v])
                        rgb, z, ids = self.bs.render(self.cameras[v], g.width, g.height)
                        out[f"{self.rgb}{g.suffix}"][i, t, j] = rgb
                        if self.want_depth:
                            out[f"depth{g.suffix}"][i, t, j] = z
                        if self.want_seg:
                            out[f"segmentation{g.suffix}"][i, t, j] = ids
                    out[f"camera_to_world{g.suffix}"][i, t] = poses[list(g.indices)]

    def close(self) -> None:
        if self.bs is not None:
            self.bs.close()
            self.bs = None
