"""Rooms and the work table, built once per world from primitives and ``pybullet_data`` props.

Layout (metres, z up): the floor is z = 0; the work table's top is ``TABLE_TOP`` high, centred at
the origin, ``TABLE_HALF`` half extents; an arm stands on it at ``ARM_BASE`` facing +x; objects
sit in front of it. Rooms (``parameters.room``): 0 ``open_space`` (a wide floor and a few
objects from ``random_urdfs`` scattered on it), 1 ``living_room``, 2 ``kitchen``, 3
``study_room`` (four walls ``ROOM_HALF`` from the centre, furniture boxes in distinct colours
along them and props: ``table/table.urdf``, ``tray/traybox.urdf``, ``objects/mug.urdf``,
``lego/lego.urdf``, ``jenga/jenga.urdf``, ``teddy_vhacd.urdf``, ``table_square``, ``cube_small``).
Every room body is static; the floor's and the table top's colours change per sample with
``changeVisualShape`` (no shape is created after the build).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

ROOM_NAMES = ("open_space", "living_room", "kitchen", "study_room")

TABLE_TOP = 0.6
TABLE_HALF = (0.55, 0.45)
TABLE_THICKNESS = 0.04
ARM_BASE = (-0.42, 0.0, TABLE_TOP)
#: Half side (m) of a walled room and its wall height.
ROOM_HALF = 2.8
WALL_HEIGHT = 2.4

Box = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]  # half extents, centre, rgb
Prop = tuple[str, tuple[float, float, float], float, float]  # urdf, position, yaw, scale


@dataclass(frozen=True)
class RoomModel:
    """A room as data: floor half side (m), wall colour (None: no walls), furniture boxes and props."""

    name: str
    floor_half: float
    wall_rgb: tuple[float, float, float] | None
    boxes: tuple[Box, ...] = ()
    props: tuple[Prop, ...] = field(default=())


def _shelf(x: float, y: float, books: int, seed_hue: float) -> list[Box]:
    """A bookshelf against the wall at +y with rows of coloured books."""
    import colorsys

    out: list[Box] = [((0.45, 0.15, 0.9), (x, y, 0.9), (0.45, 0.3, 0.18))]
    for row, z in enumerate((0.55, 1.05, 1.5)):
        for b in range(books):
            rgb = colorsys.hsv_to_rgb((seed_hue + 0.13 * (b + 3 * row)) % 1.0, 0.7, 0.8)
            out.append(((0.03, 0.1, 0.15), (x - 0.36 + b * 0.09, y - 0.08, z), rgb))
    return out


MODELS: dict[str, RoomModel] = {
    "open_space": RoomModel(
        "open_space", 20.0, None,
        boxes=(((0.3, 0.3, 0.02), (1.6, 1.3, 0.02), (0.3, 0.35, 0.6)),),
        props=(("random_urdfs/000/000.urdf", (1.2, -1.0, 0.05), 0.3, 2.0),
               ("random_urdfs/003/003.urdf", (1.5, 1.0, 0.05), 1.0, 2.0),
               ("random_urdfs/007/007.urdf", (-1.3, 1.2, 0.05), 2.0, 2.0),
               ("tray/traybox.urdf", (1.6, 1.3, 0.04), 0.0, 0.8))),
    "living_room": RoomModel(
        "living_room", ROOM_HALF, (0.86, 0.80, 0.70),
        boxes=(((1.0, 0.4, 0.22), (0.0, 2.3, 0.22), (0.35, 0.45, 0.6)),     # sofa seat
               ((1.0, 0.12, 0.45), (0.0, 2.65, 0.45), (0.3, 0.4, 0.55)),    # sofa back
               ((0.15, 0.4, 0.32), (-1.15, 2.3, 0.32), (0.3, 0.4, 0.55)),   # armrests
               ((0.15, 0.4, 0.32), (1.15, 2.3, 0.32), (0.3, 0.4, 0.55)),
               ((1.2, 0.9, 0.005), (0.0, 0.0, 0.005), (0.7, 0.25, 0.2)),    # rug
               ((0.6, 0.2, 0.35), (2.5, -1.0, 0.35), (0.25, 0.2, 0.15)),    # tv stand
               ((0.55, 0.03, 0.32), (2.5, -1.0, 1.05), (0.05, 0.05, 0.06)),
               ((0.04, 0.7, 0.45), (-2.72, 0.0, 1.45), (0.2, 0.45, 0.65)),    # painting behind the arm
               ((0.3, 0.5, 0.5), (-2.45, 1.4, 0.5), (0.55, 0.35, 0.25)),     # sideboard
               ((0.25, 0.25, 0.5), (-2.45, -1.2, 0.5), (0.3, 0.55, 0.3))),   # plant box
        props=(("table/table.urdf", (-1.8, -1.8, 0.0), 0.0, 0.6),
               ("teddy_vhacd.urdf", (0.5, 2.2, 0.5), 3.14, 3.0),
               ("objects/mug.urdf", (-1.8, -1.8, 0.4), 0.0, 1.0))),
    "kitchen": RoomModel(
        "kitchen", ROOM_HALF, (0.92, 0.92, 0.88),
        boxes=(((2.6, 0.3, 0.45), (0.0, 2.45, 0.45), (0.85, 0.85, 0.8)),    # counter
               ((2.6, 0.32, 0.02), (0.0, 2.45, 0.92), (0.2, 0.2, 0.22)),    # worktop
               ((2.6, 0.2, 0.3), (0.0, 2.55, 1.8), (0.6, 0.75, 0.85)),      # wall cabinets
               ((0.35, 0.35, 0.95), (2.4, 1.5, 0.95), (0.8, 0.82, 0.85)),   # fridge
               ((0.3, 0.3, 0.45), (2.45, -1.0, 0.45), (0.55, 0.35, 0.2)),   # oven
               ((0.28, 0.22, 0.02), (-0.8, 2.45, 0.95), (0.6, 0.6, 0.65)),   # sink
               ((0.3, 1.2, 1.0), (-2.5, 0.0, 1.0), (0.75, 0.55, 0.35)),      # tall cupboards behind the arm
               ((0.02, 0.35, 0.45), (-2.19, -0.6, 1.0), (0.6, 0.42, 0.26)),
               ((0.02, 0.35, 0.45), (-2.19, 0.6, 1.0), (0.6, 0.42, 0.26))),
        props=(("tray/traybox.urdf", (0.8, 2.4, 0.94), 0.0, 0.7),
               ("objects/mug.urdf", (-0.3, 2.4, 0.94), 0.5, 1.2),
               ("objects/mug.urdf", (-1.5, 2.4, 0.94), 2.0, 1.2),
               ("table/table.urdf", (-1.8, -1.6, 0.0), 1.57, 0.7))),
    "study_room": RoomModel(
        "study_room", ROOM_HALF, (0.75, 0.82, 0.78),
        boxes=(*_shelf(-1.0, 2.6, 9, 0.05), *_shelf(1.0, 2.6, 9, 0.5),
               ((0.7, 0.35, 0.02), (2.3, -0.8, 0.75), (0.45, 0.3, 0.2)),     # desk top
               ((0.03, 0.33, 0.37), (1.65, -0.8, 0.37), (0.35, 0.22, 0.15)),
               ((0.03, 0.33, 0.37), (2.75, -0.8, 0.37), (0.35, 0.22, 0.15)),
               ((0.2, 0.2, 0.25), (1.7, -0.2, 0.25), (0.2, 0.3, 0.6)),       # chair
               ((0.02, 0.02, 0.25), (2.6, -1.0, 1.02), (0.2, 0.2, 0.2)),     # lamp
               ((0.1, 0.1, 0.06), (2.6, -1.0, 1.3), (0.95, 0.85, 0.4)),
               ((0.03, 0.9, 0.55), (-2.74, 0.0, 1.4), (0.95, 0.95, 0.97)),   # whiteboard behind the arm
               ((0.05, 0.95, 0.03), (-2.72, 0.0, 0.83), (0.3, 0.3, 0.32)),
               ((0.35, 0.35, 0.4), (-2.4, 1.6, 0.4), (0.5, 0.2, 0.2))),      # cabinet
        props=(("lego/lego.urdf", (2.1, -0.7, 0.79), 0.4, 3.0),
               ("jenga/jenga.urdf", (2.3, -0.9, 0.78), 0.2, 1.5),
               ("cube_small.urdf", (2.0, -1.0, 0.795), 0.7, 1.0))),
}


def room_model(code: float) -> RoomModel:
    """The room of parameter code 0..3 (see :data:`ROOM_NAMES`); ValueError otherwise."""
    k = int(round(float(code)))
    if abs(float(code) - k) > 1e-9 or not 0 <= k < len(ROOM_NAMES):
        choices = ", ".join(f"{i} ({n})" for i, n in enumerate(ROOM_NAMES))
        raise ValueError(f"expected one of {choices}, got {code!r}")
    return MODELS[ROOM_NAMES[k]]


@dataclass
class BuiltRoom:
    """Body ids of a built room: ``floor`` (its colour changes per sample), ``scenery`` (every static
    room body, floor included), ``table_top`` (colour and friction change per sample), ``table``
    (top and legs)."""

    floor: list[int]
    scenery: list[int]
    table_top: int
    table: list[int]


def _box(bc, p, half, pos, rgb, collide: bool = True) -> int:
    col = bc.createCollisionShape(p.GEOM_BOX, halfExtents=list(half)) if collide else -1
    vis = bc.createVisualShape(p.GEOM_BOX, halfExtents=list(half), rgbaColor=(*rgb, 1.0))
    return bc.createMultiBody(0.0, col, vis, basePosition=list(pos))


#: Floor tiles: a checker of FLOOR_TILE m squares out to FLOOR_CHECKER m, then a plain band (TinyRenderer
#: mangles triangles much larger than the view, so the floor is tessellated like the physics worlds' ground).
FLOOR_TILE = 0.4
FLOOR_CHECKER = 4.0


def _floor(bc, p, half: float) -> list[int]:
    """Floor bodies: a collision plane at z = 0 carrying the first checker parity, the other parity, and
    (when ``half`` > FLOOR_CHECKER) the outer band. Their colours are set per sample (:func:`floor_colours`)."""
    plane = bc.createCollisionShape(p.GEOM_PLANE)
    out = []
    for k, (verts, idx, normals) in enumerate(_floor_meshes(half)):
        vis = bc.createVisualShape(p.GEOM_MESH, vertices=verts, indices=idx, normals=normals, rgbaColor=(0.6, 0.6, 0.6, 1.0))
        out.append(bc.createMultiBody(0.0, plane if k == 0 else -1, vis))
    return out


@functools.lru_cache(maxsize=None)
def _floor_meshes(half: float) -> tuple[tuple[list, list, list], ...]:
    """Vertex, index and normal lists of the floor's meshes, made once per process: PyBullet keeps a reference to
    every list it is handed (~150 kB a mesh, never released), and a world builds a new client every
    REBUILD_EVERY samples, so every client is handed the same lists (as the physics worlds' ground does)."""
    from ..engines.bullet import checker_mesh, frame_mesh  # noqa: PLC0415 - pure helpers, no engine

    inner = min(half, FLOOR_CHECKER)
    tiles = max(2, int(round(2 * inner / FLOOR_TILE)))
    meshes = [checker_mesh(inner, tiles, parity) for parity in (0, 1)]
    if half > inner:
        meshes.append(frame_mesh(inner, half))
    return tuple((verts, idx, [[0.0, 0.0, 1.0]] * len(verts)) for verts, idx in meshes)


def floor_colours(hue: float) -> list[tuple[float, float, float, float]]:
    """RGBA of the floor bodies for a hue: two shades of it for the checker, their mean for the band."""
    from ..engines.bullet import hsv_to_rgb  # noqa: PLC0415

    a, b = hsv_to_rgb(hue, 0.45, 0.78), hsv_to_rgb(hue, 0.45, 0.64)
    return [(*a, 1.0), (*b, 1.0), (*(0.5 * (x + y) for x, y in zip(a, b)), 1.0)]


def build_room(bc, p, model: RoomModel, data_path: str, table: bool = True) -> BuiltRoom:
    """Create the floor, walls, furniture, props and (with ``table``) the work table (static bodies) in client ``bc``.
    Without the table, ``table_top`` is -1 and ``table`` empty (a mobile robot drives on the floor)."""
    floor = _floor(bc, p, model.floor_half)
    scenery = list(floor)
    if model.wall_rgb is not None:
        r, t, hw = ROOM_HALF, 0.05, 0.5 * WALL_HEIGHT
        for half, pos in (((t, r, hw), (r + t, 0.0, hw)), ((t, r, hw), (-r - t, 0.0, hw)),
                          ((r, t, hw), (0.0, r + t, hw)), ((r, t, hw), (0.0, -r - t, hw))):
            scenery.append(_box(bc, p, half, pos, model.wall_rgb, collide=False))
    for half, pos, rgb in model.boxes:
        scenery.append(_box(bc, p, half, pos, rgb, collide=False))
    for urdf, pos, yaw, scale in model.props:
        orn = p.getQuaternionFromEuler((0.0, 0.0, yaw))
        body = bc.loadURDF(os.path.join(data_path, urdf), list(pos), orn, useFixedBase=True, globalScaling=scale)
        for j in range(-1, bc.getNumJoints(body)):
            bc.setCollisionFilterGroupMask(body, j, 0, 0)  # scenery only: never touches the arm or the objects
        scenery.append(body)
    if not table:
        return BuiltRoom(floor=floor, scenery=scenery, table_top=-1, table=[])
    hx, hy = TABLE_HALF
    top = _box(bc, p, (hx, hy, 0.5 * TABLE_THICKNESS), (0.0, 0.0, TABLE_TOP - 0.5 * TABLE_THICKNESS), (0.7, 0.6, 0.5))
    legs = [_box(bc, p, (0.03, 0.03, 0.5 * (TABLE_TOP - TABLE_THICKNESS)), (sx * (hx - 0.06), sy * (hy - 0.06),
                                                                          0.5 * (TABLE_TOP - TABLE_THICKNESS)),
                 (0.25, 0.25, 0.27), collide=False) for sx in (-1, 1) for sy in (-1, 1)]
    return BuiltRoom(floor=floor, scenery=scenery, table_top=top, table=[top, *legs])
