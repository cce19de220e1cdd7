"""static/objects_light: one object under a coloured spotlight, rendered with Blender Cycles.

A scene in the spirit of 3DIdent (Zimmermann et al., "Contrastive Learning Inverts the Data
Generating Process", ICML 2021) and its causal variant Causal3DIdent (von Kügelgen et al.,
"Self-Supervised Learning with Data Augmentations Provably Isolates Content from Style",
NeurIPS 2021): an object of one shape class, at a position and rotation, in a colour, lit by a
spotlight on a circle above it whose colour varies, in front of a coloured background. The
catalogue spec makes the spotlight follow the object (object position -> spotlight position) and
the background's hue depend on the object's (object hue -> background hue), two of
Causal3DIdent's dependencies.

What the world reads (its valid ranges in :data:`RANGES`; values outside raise, never clamp):

- ``shape``: the class code 0..5 (:data:`SHAPE_NAMES`: sphere, cube, cylinder, cone, torus,
  teapot), procedural meshes inside a ball of radius ``OBJECT_SIZE`` metres;
- ``pos_x``, ``pos_y`` (m): the object's centre over the floor; ``pos_z`` (m): its height above
  the floor (it floats, so its shadow on the floor separates from it as it rises);
- ``yaw`` (rad, about the vertical) and the optional ``pitch`` (rad, about the object's own y
  axis after the yaw; default 0): Blender's XYZ Euler angles (0, pitch, yaw), i.e.
  R = Rz(yaw) Ry(pitch). The object is painted in object space so that its rotation shows on
  every class, the sphere included (its silhouette alone would hide it): its +x half in its hue,
  its -x half in a dark shade of that hue (the colour times ``DARK_SHADE`` in linear RGB), dark
  enough to mark the half, light enough that the shading still shows the half's form and its
  silhouette against a dark shadow (the boundary between the halves leans with the pitch). The
  torus lies flat (its axis vertical), so a camera above the horizon sees its hole at any yaw;
- ``obj_hue``, ``spot_hue``, ``bg_hue`` in [0, 1] (periodic): HSV hues of the object's paint, of
  the spotlight's light and of the background seen by the cameras;
- ``spot_angle`` (rad, periodic): the spotlight's azimuth on a circle of radius
  ``SPOT_CIRCLE_RADIUS`` at height ``SPOT_HEIGHT`` above the floor's centre; the spot always aims
  at the object's centre, so it lights the object from that side, throws its shadow away from it
  and leaves a coloured pool of light on the white floor.

The background colour is seen only by camera rays (Cycles' Light Path "Is Camera Ray"); every
other ray sees a dim neutral grey, so the background's hue does not tint the object. A dim white
sun fills the shadows, so the object's paint shows under any spotlight colour.

Cameras: orbit, fixed and top-down. Instance ids in the segmentation: 1 floor, 2 object.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ..base import WorldBatch, WorldInfo
from ..engines import blender as bl
from ._blender_world import BlenderStillWorld, still_info
from ._objects_light_shapes import SHAPE_NAMES, SHAPES

#: Metres per object unit: every shape class lies inside a ball of this radius.
OBJECT_SIZE = 0.15
#: Spotlight circle: radius (m) around the floor's centre and height (m) above the floor.
SPOT_CIRCLE_RADIUS = 0.7
SPOT_HEIGHT = 0.9
#: Spotlight cone (full angle, deg), its soft edge (0..1) and power (W).
SPOT_CONE_DEG = 36.0
SPOT_BLEND = 0.25
SPOT_POWER = 120.0
#: Fill light (a white sun from above) and the grey that non-camera rays see as the sky.
FILL_STRENGTH = 1.2
AMBIENT_GREY = 0.25
#: Colours (HSV saturation and value, sRGB-encoded) of the paint, the light and the background.
OBJECT_SV = (0.85, 0.85)
#: The -x half's paint: the object's colour times this (linear RGB), a dark shade of the same hue that
#: still shows the shading of the object's form.
DARK_SHADE = 0.09
SPOT_SV = (0.45, 1.0)
BACKGROUND_SV = (0.65, 0.75)
FLOOR_GREY = 0.8
FLOOR_RADIUS = 0.9
#: Camera framing: aim point (the middle of the catalogue's pos_z range) and default distance (m) at the
#: orbit cameras' 40 deg fov. The centre of an object anywhere in RANGES stays inside the frame of every
#: orbit camera 20-50 deg above the horizon; over the catalogue's ranges (pos_x, pos_y +-0.08, pos_z
#: 0.16-0.36) an edge of the object leaves one of its four views in ~5 % of samples (by > 2 px of 64 in
#: ~2 %, at most 5.5 px at the ranges' corners: the pillar's top high up, a cube's base low and near).
TARGET = (0.0, 0.0, 0.26)
BASE_DISTANCE = 0.70
SCENE_RADIUS = 1.2

#: Valid range of every latent the world reads. Positions keep the object over the floor and in
#: frame; pos_z keeps its bounding ball off the floor; angles are in radians, hues in [0, 1].
RANGES = {
    "shape": (0.0, float(len(SHAPES) - 1)),
    "pos_x": (-0.12, 0.12), "pos_y": (-0.12, 0.12), "pos_z": (OBJECT_SIZE + 0.005, 0.37),
    "yaw": (-math.pi, math.pi), "pitch": (-math.pi / 2, math.pi / 2),
    "obj_hue": (0.0, 1.0), "spot_hue": (0.0, 1.0), "bg_hue": (0.0, 1.0),
    "spot_angle": (-math.pi, math.pi),
}

FLOOR_ID, OBJECT_ID = 1, 2
SEGMENTATION_IDS = {0: "background", FLOOR_ID: "floor", OBJECT_ID: "object"}

_LATENTS = ("shape", "pos_x", "pos_y", "pos_z", "yaw", "obj_hue", "spot_angle", "spot_hue", "bg_hue")
#: Read when the spec has them, else these defaults.
_OPTIONAL = {"pitch": 0.0}
_ORDER = ("shape", "pos_x", "pos_y", "pos_z", "yaw", "pitch", "obj_hue", "spot_angle", "spot_hue", "bg_hue")


def spot_position(spot_angle: float) -> tuple[float, float, float]:
    """World position (m) of the spotlight at azimuth ``spot_angle`` (rad, counter-clockwise from +x)."""
    return (SPOT_CIRCLE_RADIUS * math.cos(spot_angle), SPOT_CIRCLE_RADIUS * math.sin(spot_angle), SPOT_HEIGHT)


def object_rotation(yaw: float, pitch: float) -> np.ndarray:
    """The object's rotation matrix (3x3, object to world): R = Rz(yaw) @ Ry(pitch), angles in rad."""
    cz, sz, cy, sy = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    return rz @ ry


def object_color(hue: float) -> tuple[float, float, float]:
    """Linear RGB of the object's painted (+x) half for ``hue`` in [0, 1]."""
    return bl.hsv_to_linear_rgb(hue, *OBJECT_SV)


def spot_color(hue: float) -> tuple[float, float, float]:
    """Linear RGB of the spotlight's light for ``hue`` in [0, 1]."""
    return bl.hsv_to_linear_rgb(hue, *SPOT_SV)


def background_color(hue: float) -> tuple[float, float, float]:
    """Linear RGB the cameras see behind the scene for ``hue`` in [0, 1]."""
    return bl.hsv_to_linear_rgb(hue, *BACKGROUND_SV)


def _marked_material(name: str):
    """Principled material painted in object space: the object's colour (Object Info) where x > 0, that
    colour times ``DARK_SHADE`` where x <= 0."""
    mat = bl.principled_material(name, roughness=0.45)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    coords = nodes.new("ShaderNodeTexCoord")
    split = nodes.new("ShaderNodeSeparateXYZ")
    links.new(coords.outputs["Object"], split.inputs["Vector"])
    info = nodes.new("ShaderNodeObjectInfo")

    def step(axis: str, at: float):
        node = nodes.new("ShaderNodeMath")
        node.operation = "GREATER_THAN"
        node.inputs[1].default_value = at
        links.new(split.outputs[axis], node.inputs[0])
        return node.outputs["Value"]

    def mix(factor, a, b):
        node = nodes.new("ShaderNodeMix")
        node.data_type = "RGBA"
        sockets = {s.identifier: s for s in node.inputs}
        links.new(factor, sockets["Factor_Float"])
        for key, value in (("A_Color", a), ("B_Color", b)):
            if isinstance(value, tuple):
                sockets[key].default_value = (*bl.srgb_to_linear(value), 1.0)
            else:
                links.new(value, sockets[key])
        return next(s for s in node.outputs if s.identifier == "Result_Color")

    shade = nodes.new("ShaderNodeMix")
    shade.data_type, shade.blend_type = "RGBA", "MULTIPLY"
    sockets = {s.identifier: s for s in shade.inputs}
    sockets["Factor_Float"].default_value = 1.0
    links.new(info.outputs["Color"], sockets["A_Color"])
    sockets["B_Color"].default_value = (DARK_SHADE, DARK_SHADE, DARK_SHADE, 1.0)
    dark = next(s for s in shade.outputs if s.identifier == "Result_Color")
    halves = mix(step("X", 0.0), dark, info.outputs["Color"])
    links.new(halves, nodes["Principled BSDF"].inputs["Base Color"])
    return mat


def _camera_only_background(scene):
    """World shader: the background colour for camera rays, a dim grey for every other ray.

    Returns the Background node whose colour the cameras see (set per sample).
    """
    world = bl.set_world_color(scene, (AMBIENT_GREY,) * 3, strength=1.0)
    nodes, links = world.node_tree.nodes, world.node_tree.links
    ambient = nodes.get("Background")
    seen = nodes.new("ShaderNodeBackground")
    seen.inputs["Strength"].default_value = 1.0
    path = nodes.new("ShaderNodeLightPath")
    mix = nodes.new("ShaderNodeMixShader")
    out = nodes.get("World Output")
    links.new(path.outputs["Is Camera Ray"], mix.inputs["Fac"])
    links.new(ambient.outputs["Background"], mix.inputs[1])
    links.new(seen.outputs["Background"], mix.inputs[2])
    links.new(mix.outputs["Shader"], out.inputs["Surface"])
    return world, seen


class ObjectsLightWorld(BlenderStillWorld):
    """static/objects_light: see the module docstring."""

    info: ClassVar[WorldInfo] = still_info(
        name="static/objects_light",
        description=(
            "One object of a shape class (sphere, cube, cylinder, cone, torus, teapot) at a position and rotation, "
            "painted in a hue with a dark half that shows its rotation, lit by a coloured spotlight on a circle "
            "above it, in front of a coloured background (after 3DIdent and Causal3DIdent)."
        ),
        latents=_LATENTS,
        optional_latents=tuple(_OPTIONAL),
        ranges=RANGES,
        discrete=("shape",),
    )
    #: Framing and segmentation ids for the shared skeleton (:class:`BlenderStillWorld`).
    TARGET = TARGET
    BASE_DISTANCE = BASE_DISTANCE
    SCENE_RADIUS = SCENE_RADIUS
    SEGMENTATION_IDS = SEGMENTATION_IDS
    LANDMARK_IDS = (OBJECT_ID,)

    def _build(self) -> None:
        bpy = bl.require_bpy()
        bs, sc = self.bs, self.bs.scene
        own = bs.own
        world, self.background = _camera_only_background(sc)
        own(world)
        self.fill = own(bl.add_sun(sc, "fill", direction_to=(0.3, -0.4, 1.0), strength=FILL_STRENGTH, angle_deg=10.0))
        own(self.fill.data)

        floor_mat = own(bl.principled_material("floor", bl.srgb_to_linear((FLOOR_GREY,) * 3), roughness=0.9))
        floor_mesh = own(bl.disc_mesh("floor"))
        self.floor = own(bl.add_object(sc, "floor", floor_mesh, pass_index=FLOOR_ID, material=floor_mat))
        self.floor.scale = (FLOOR_RADIUS, FLOOR_RADIUS, 1.0)

        mat = own(_marked_material("paint"))
        self.meshes = []
        for shape in SHAPES:
            mesh = own(bl.mesh_from_data(f"shape.{shape.name}", *shape.mesh))
            mesh.materials.append(mat)
            self.meshes.append(mesh)
        self.obj = own(bl.add_object(sc, "object", self.meshes[0], pass_index=OBJECT_ID))
        self.obj.rotation_mode = "XYZ"
        self.obj.scale = (OBJECT_SIZE,) * 3

        light = own(bpy.data.lights.new("spot", "SPOT"))
        light.energy = SPOT_POWER
        light.spot_size = math.radians(SPOT_CONE_DEG)
        light.spot_blend = SPOT_BLEND
        light.shadow_soft_size = 0.03
        self.spot = own(bpy.data.objects.new("spot", light))
        sc.collection.objects.link(self.spot)

    def _pose(self, state: tuple[float, ...]) -> None:
        if state == self._state:
            return
        shape, x, y, z, yaw, pitch, obj_hue, spot_angle, spot_hue, bg_hue = state
        self.obj.data = self.meshes[int(shape)]
        self.obj.location = (x, y, z)
        self.obj.rotation_euler = (0.0, pitch, yaw)
        bl.set_object_color(self.obj, object_color(obj_hue))
        self.spot.location = spot_position(spot_angle)
        bl.look_at(self.spot, (x, y, z))
        self.spot.data.color = spot_color(spot_hue)
        self.background.inputs["Color"].default_value = (*background_color(bg_hue), 1.0)
        self._state = state

    def _read_latents(self, batch: WorldBatch) -> dict[str, np.ndarray]:
        """The batch's latents (see :meth:`BlenderStillWorld._read_latents`); raises ValueError also where
        ``shape`` holds a value that is not an integer class code."""
        lat = super()._read_latents(batch)
        codes = lat["shape"]
        if np.any(codes != np.rint(codes)):
            raise ValueError(f"latent 'shape' must hold integer class codes 0..{len(SHAPES) - 1}, "
                             f"got {codes[codes != np.rint(codes)][:3].tolist()}")
        return lat

    def _pose_sample(self, lat: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
        """Pose sample ``i``; its landmark is the object's (its shape class's landmark point, rotated)."""
        state = tuple(float(lat[name][i]) if name in lat else _OPTIONAL[name] for name in _ORDER)
        self._pose(state)
        shape = SHAPES[int(state[0])]
        rot = object_rotation(state[4], state[5])
        mark = np.array(state[1:4]) + OBJECT_SIZE * rot @ np.array(shape.landmark)
        return mark[None], np.array([(OBJECT_SIZE * shape.inner, OBJECT_SIZE * shape.outer)])


__all__ = ["ObjectsLightWorld", "SHAPE_NAMES", "RANGES", "FLOOR_ID", "OBJECT_ID", "SEGMENTATION_IDS",
           "spot_position", "object_rotation", "object_color", "spot_color", "background_color"]
