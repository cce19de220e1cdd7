"""Procedural rooms and meshes for static/figure: four rooms built from boxes and cylinders.

Every room is a floor, four walls and a little furniture, each a handful of bpy objects made
from :func:`boxes_data` / cylinders, with procedural materials (Blender's checker, wave and noise
textures); nothing is loaded from disk. All rooms share one footprint (``HALF`` metres from the
centre to each wall) so the figure, standing at the origin, and the cameras, inside the room,
never meet the furniture. The walls are invisible to shadow rays (so the sun reaches the figure
from every elevation the world accepts); the furniture casts its shadows.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from ..engines import blender as bl

#: Levels of the ``room`` latent, in code order.
ROOMS = ("shop", "living_room", "apartment", "wall")
#: Distance (m) from the room's centre to each wall; wall height (m) and thickness (m).
HALF = 5.5
WALL_HEIGHT = 3.0
WALL_THICKNESS = 0.1
RUG_THICKNESS = 0.008
#: Instance ids shared by every room.
FLOOR_ID, WALL_ID, FURNITURE_ID = 1, 2, 3

Box = tuple[Sequence[float], Sequence[float]]  # (centre, half extents), metres


def boxes_data(boxes: Sequence[Box]):
    """Vertices, faces and smooth flags of axis-aligned boxes (centre, half extents) in one mesh."""
    base_v, base_f, _ = bl.box_data()
    verts, faces = [], []
    for centre, half in boxes:
        off = len(verts)
        verts += [tuple(c + h * v for c, h, v in zip(centre, half, vert)) for vert in base_v]
        faces += [tuple(off + i for i in f) for f in base_f]
    return verts, faces, [False] * len(faces)


def capsule_data(rx: float, ry: float, length: float, segments: int = 16, rings: int = 4):
    """A capsule hanging from the origin along -z: elliptical radii ``rx``, ``ry`` (m), the
    hemispherical ends centred at z=0 and z=-length (the ends' z-radius is ``min(rx, ry)``)."""
    rz = min(rx, ry)
    profile = []  # (z, scale of the radii), top pole to bottom pole
    for k in range(1, rings + 1):  # top hemisphere, pole excluded
        phi = 0.5 * math.pi * k / rings
        profile.append((rz * math.cos(phi), math.sin(phi)))
    for k in range(rings, 0, -1):  # bottom hemisphere
        phi = 0.5 * math.pi * k / rings
        profile.append((-length - rz * math.cos(phi), math.sin(phi)))
    verts = [(0.0, 0.0, rz)]
    for z, s in profile:
        verts += [(rx * s * math.cos(2 * math.pi * i / segments), ry * s * math.sin(2 * math.pi * i / segments), z)
                  for i in range(segments)]
    verts.append((0.0, 0.0, -length - rz))
    bottom = len(verts) - 1
    faces = [(0, 1 + i, 1 + (i + 1) % segments) for i in range(segments)]
    for r in range(len(profile) - 1):
        a, b = 1 + r * segments, 1 + (r + 1) * segments
        faces += [(a + i, b + i, b + (i + 1) % segments, a + (i + 1) % segments) for i in range(segments)]
    last = 1 + (len(profile) - 1) * segments
    faces += [(last + (i + 1) % segments, last + i, bottom) for i in range(segments)]
    return verts, faces, [True] * len(faces)


def _material_with_ramp(name: str, texture: str, c0, c1, scale: float, roughness: float = 0.7, **tex):
    """A Principled material whose base colour is a procedural texture's factor mapped from c0 to c1 (linear RGB)."""
    mat = bl.principled_material(name, c0, roughness=roughness)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    coord = nodes.new("ShaderNodeTexCoord")
    t = nodes.new(texture)
    links.new(coord.outputs["Object"], t.inputs["Vector"])
    t.inputs["Scale"].default_value = float(scale)
    for key, value in tex.items():
        if key in t.inputs:
            t.inputs[key].default_value = value
        else:
            setattr(t, key, value)
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (*c0, 1.0)
    ramp.color_ramp.elements[1].color = (*c1, 1.0)
    links.new(t.outputs["Fac"], ramp.inputs["Fac"])
    links.new(ramp.outputs["Color"], nodes["Principled BSDF"].inputs["Base Color"])
    mat.diffuse_color = (*[(a + b) / 2 for a, b in zip(c0, c1)], 1.0)
    return mat


def _lin(rgb) -> tuple[float, float, float]:
    return bl.srgb_to_linear(rgb)  # type: ignore[return-value]


def _walls(extra: Sequence[Box] = ()) -> list[Box]:
    h, t, z = HALF, WALL_THICKNESS, 0.5 * WALL_HEIGHT
    return [((0, h + t, z), (h + t, t, z)), ((0, -h - t, z), (h + t, t, z)),
            ((h + t, 0, z), (t, h + t, z)), ((-h - t, 0, z), (t, h + t, z)), *extra]


def _floor_box(top: float = 0.0) -> list[Box]:
    return [((0.0, 0.0, top - 0.05), (HALF, HALF, 0.05))]


class RoomBuilder:
    """Builds the four rooms into a :class:`~crlgen.scenes.engines.blender.BlenderScene`;
    ``objects[room]`` lists each room's objects (shown or hidden per sample)."""

    def __init__(self, bs) -> None:
        self.bs = bs
        self.objects: dict[str, list] = {name: [] for name in ROOMS}

    def _add(self, room: str, name: str, data, pass_index: int, material, *, shadow: bool = True):
        own = self.bs.own
        mesh = own(bl.mesh_from_data(f"{room}.{name}", *data))
        obj = own(bl.add_object(self.bs.scene, f"{room}.{name}", mesh, pass_index=pass_index, material=material))
        obj.visible_shadow = shadow
        self.objects[room].append(obj)
        return obj

    def _mat(self, make: Callable, *args, **kw):
        return self.bs.own(make(*args, **kw))

    def build(self) -> dict[str, list]:
        self._shop()
        self._living_room()
        self._apartment()
        self._wall()
        return self.objects

    def _shop(self) -> None:
        """A retail shop: white checker tiles, pale blue walls, two shelving units full of coloured boxes."""
        r = "shop"
        floor = self._mat(_material_with_ramp, "shop.floor", "ShaderNodeTexChecker", _lin((0.92, 0.92, 0.9)),
                          _lin((0.35, 0.36, 0.4)), 6.0, roughness=0.4)
        self._add(r, "floor", boxes_data(_floor_box()), FLOOR_ID, floor)
        walls = self._mat(bl.principled_material, "shop.walls", _lin((0.7, 0.82, 0.95)), roughness=0.8)
        self._add(r, "walls", boxes_data(_walls()), WALL_ID, walls, shadow=False)
        wood = self._mat(bl.principled_material, "shop.shelf", _lin((0.55, 0.38, 0.22)), roughness=0.7)
        boxes = self._mat(bl.object_color_material, "shop.box", roughness=0.5)
        shelves: list[Box] = []
        for side in (1, -1):  # one unit against the back wall (+y), one against the side wall (-x)
            for level in (0.3, 0.95, 1.6, 2.25):
                if side == 1:
                    shelves.append(((0.0, HALF - 0.3, level), (2.6, 0.3, 0.03)))
                else:
                    shelves.append(((-HALF + 0.3, 0.0, level), (0.3, 2.6, 0.03)))
        for side in (1, -1):
            for end in (-2.6, 2.6):
                if side == 1:
                    shelves.append(((end, HALF - 0.3, 1.15), (0.04, 0.3, 1.15)))
                else:
                    shelves.append(((-HALF + 0.3, end, 1.15), (0.3, 0.04, 1.15)))
        self._add(r, "shelves", boxes_data(shelves), FURNITURE_ID, wood)
        k = 0
        for side in (1, -1):
            for li, level in enumerate((0.3, 0.95, 1.6)):
                for j in range(4):
                    along = -1.9 + 1.27 * j + 0.3 * (li % 2)
                    hz = 0.22 + 0.06 * ((j + li) % 3)
                    centre = (along, HALF - 0.3, level + 0.03 + hz) if side == 1 else (-HALF + 0.3, along, level + 0.03 + hz)
                    half = (0.35, 0.22, hz) if side == 1 else (0.22, 0.35, hz)
                    obj = self._add(r, f"box{k}", boxes_data([(centre, half)]), FURNITURE_ID, boxes)
                    bl.set_object_color(obj, bl.hsv_to_linear_rgb((0.13 * k) % 1.0, 0.75, 0.85))
                    k += 1

    def _living_room(self) -> None:
        """A living room: wooden plank floor, warm beige walls, a sofa, a round rug and a floor lamp."""
        r = "living_room"
        floor = self._mat(_material_with_ramp, "living.floor", "ShaderNodeTexWave", _lin((0.45, 0.28, 0.14)),
                          _lin((0.7, 0.5, 0.3)), 1.5, roughness=0.6, wave_type="BANDS", bands_direction="X")
        # the floor sits a rug's thickness lower, so the figure stands on the rug's top at z=0
        self._add(r, "floor", boxes_data(_floor_box(-RUG_THICKNESS)), FLOOR_ID, floor)
        walls = self._mat(bl.principled_material, "living.walls", _lin((0.93, 0.83, 0.66)), roughness=0.9)
        self._add(r, "walls", boxes_data(_walls()), WALL_ID, walls, shadow=False)
        sofa = self._mat(bl.principled_material, "living.sofa", _lin((0.25, 0.45, 0.3)), roughness=0.9)
        y = HALF - 0.5
        self._add(r, "sofa", boxes_data([((0.0, y, 0.25), (1.4, 0.45, 0.25)), ((0.0, y + 0.35, 0.7), (1.4, 0.12, 0.3)),
                                         ((-1.5, y, 0.4), (0.12, 0.45, 0.4)), ((1.5, y, 0.4), (0.12, 0.45, 0.4)),
                                         ((HALF - 0.5, -0.5, 0.25), (0.45, 1.2, 0.25)),
                                         ((HALF - 0.15, -0.5, 0.7), (0.12, 1.2, 0.3))]), FURNITURE_ID, sofa)
        rug = self._mat(_material_with_ramp, "living.rug", "ShaderNodeTexWave", _lin((0.6, 0.12, 0.12)),
                        _lin((0.85, 0.7, 0.45)), 3.0, roughness=0.95, wave_type="RINGS")
        rug_data = bl.cylinder_data(48, True, (-RUG_THICKNESS, 0.0))
        self._add(r, "rug", ([(2.2 * x, 2.2 * yy, z) for x, yy, z in rug_data[0]], rug_data[1], rug_data[2]),
                  FURNITURE_ID, rug)
        metal = self._mat(bl.principled_material, "living.lamp", _lin((0.15, 0.15, 0.15)), roughness=0.4, metallic=0.8)
        cx, cy = -HALF + 0.6, HALF - 0.6
        pole = bl.cylinder_data(12, True, (0.0, 1.7))
        self._add(r, "lamp", ([(cx + 0.03 * x, cy + 0.03 * yy, z) for x, yy, z in pole[0]], pole[1], pole[2]),
                  FURNITURE_ID, metal)
        shade = self._mat(bl.principled_material, "living.shade", _lin((0.98, 0.92, 0.7)), roughness=0.8)
        cone = bl.cylinder_data(24, True, (1.55, 1.95))
        self._add(r, "shade", ([(cx + 0.3 * x, cy + 0.3 * yy, z) for x, yy, z in cone[0]], cone[1], cone[2]),
                  FURNITURE_ID, shade)

    def _apartment(self) -> None:
        """A modern apartment: grey concrete floor, white walls, a kitchen counter with wall
        cabinets, and a large window (a bright pane in a dark frame)."""
        r = "apartment"
        floor = self._mat(_material_with_ramp, "apt.floor", "ShaderNodeTexNoise", _lin((0.42, 0.42, 0.44)),
                          _lin((0.62, 0.62, 0.6)), 4.0, roughness=0.5)
        self._add(r, "floor", boxes_data(_floor_box()), FLOOR_ID, floor)
        walls = self._mat(bl.principled_material, "apt.walls", _lin((0.95, 0.95, 0.95)), roughness=0.85)
        self._add(r, "walls", boxes_data(_walls()), WALL_ID, walls, shadow=False)
        cabinet = self._mat(bl.principled_material, "apt.cabinet", _lin((0.12, 0.14, 0.18)), roughness=0.5)
        x = HALF - 0.35
        self._add(r, "counter", boxes_data([((x, 0.0, 0.45), (0.35, 2.5, 0.45)), ((x + 0.15, 0.0, 1.9), (0.2, 2.5, 0.4))]),
                  FURNITURE_ID, cabinet)
        top = self._mat(bl.principled_material, "apt.top", _lin((0.85, 0.8, 0.7)), roughness=0.3)
        self._add(r, "worktop", boxes_data([((x - 0.02, 0.0, 0.92), (0.38, 2.55, 0.03))]), FURNITURE_ID, top)
        frame = self._mat(bl.principled_material, "apt.frame", _lin((0.1, 0.1, 0.1)), roughness=0.5)
        y = HALF - 0.02
        self._add(r, "frame", boxes_data([((0.0, y, 0.5), (2.2, 0.05, 0.06)), ((0.0, y, 2.6), (2.2, 0.05, 0.06)),
                                          ((-2.2, y, 1.55), (0.06, 0.05, 1.1)), ((2.2, y, 1.55), (0.06, 0.05, 1.1)),
                                          ((0.0, y, 1.55), (0.04, 0.05, 1.1))]), FURNITURE_ID, frame)
        pane = self.bs.own(bl.principled_material("apt.pane", _lin((0.55, 0.75, 0.95)), roughness=0.1))
        bsdf = pane.node_tree.nodes["Principled BSDF"]
        bsdf.inputs["Emission Color"].default_value = (*_lin((0.6, 0.8, 1.0)), 1.0)
        bsdf.inputs["Emission Strength"].default_value = 1.2
        self._add(r, "window", boxes_data([((0.0, y + 0.01, 1.55), (2.15, 0.02, 1.02))]), FURNITURE_ID, pane, shadow=False)

    def _wall(self) -> None:
        """A plain background: one neutral grey for floor and walls (a photo studio's backdrop)."""
        r = "wall"
        grey = self._mat(bl.principled_material, "wall.backdrop", _lin((0.55, 0.55, 0.57)), roughness=0.9)
        self._add(r, "floor", boxes_data(_floor_box()), FLOOR_ID, grey)
        self._add(r, "walls", boxes_data(_walls()), WALL_ID, grey, shadow=False)


def show_room(objects: dict[str, list], room: str) -> None:
    """Render ``room``'s objects only."""
    for name, objs in objects.items():
        hide = name != room
        for obj in objs:
            if obj.hide_render != hide:
                obj.hide_render = hide
