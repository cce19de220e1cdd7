"""Small bpy helpers shared by every Blender world.

Nothing here imports ``bpy`` at module import time: each function that needs it
calls :func:`require_bpy` (cheap after the first call), so importing this module
stays fast and works without Blender installed.

The centre piece is :class:`BlenderScene`: a private ``bpy`` scene owned by one
world (so several worlds can live in one process), set up for deterministic
Cycles rendering, that renders one camera at a time into numpy arrays:

- ``rgb``: uint8 (H, W, 3), exactly the bytes a PNG save of the render holds
  (scene colour management: 'Standard' view transform on the sRGB display);
- ``depth``: float32 (H, W) metres along the camera axis (Cycles' Z pass),
  0.0 where no surface was hit;
- ``segmentation``: uint8 (H, W) of each object's ``pass_index`` (object-index
  pass), 0 on the background.

Passes reach numpy without a display or the compositor: after
``bpy.ops.render.render`` the ``Render Result`` is saved once as PNG (colour,
through Blender's own view transform) and once as an uncompressed 32-bit
multilayer OpenEXR (depth and object index), both into a private temporary
directory, and read back with Pillow and the ``OpenEXR`` package (the Academy
Software Foundation's bindings; installed with the ``blender`` extra). All arrays
are top row first.
"""

from __future__ import annotations

import colorsys
import contextlib
import math
import os
import shutil
import tempfile
import time
from itertools import count
from typing import Iterable, Sequence

import numpy as np

from .quiet import quiet_output, require

#: Depth values at or above this are "no hit" (Cycles writes 1e10 for the background).
BACKGROUND_DEPTH = 1e9

_GPU_TYPES = ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL")
_ids = count()
_TMP_PREFIX = "crlgen-bpy-"
_swept = False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _scratch_dir() -> str:
    """A new directory for Blender's render files, named after this process.

    A scene removes its own in ``close``; a process that is killed (a Ray worker Ray ends, an
    OOM kill) cannot, so the first call in each process also removes the directories of
    processes that no longer exist: a nightly job does not fill ``/tmp``.
    """
    global _swept
    base = tempfile.gettempdir()
    if not _swept:
        _swept = True
        for name in os.listdir(base):
            pid = name[len(_TMP_PREFIX):].split("-", 1)[0]
            if name.startswith(_TMP_PREFIX) and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(os.path.join(base, name), ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-")


def require_bpy():
    """Import and return ``bpy``, or raise :class:`~crlgen.scenes.engines.EngineMissing` naming ``crlgen[blender]``."""
    return require("bpy")


def _mathutils():
    require_bpy()
    import mathutils  # noqa: PLC0415 - ships with bpy

    return mathutils


# --------------------------------------------------------------------------- colour


def srgb_to_linear(c: Iterable[float]) -> tuple[float, ...]:
    """sRGB-encoded components in [0, 1] to linear (what Blender's colour inputs expect)."""
    out = []
    for v in c:
        v = min(max(float(v), 0.0), 1.0)
        out.append(v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4)
    return tuple(out)


def hsv_to_linear_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    """An HSV colour (sRGB-encoded, all in [0, 1]) as linear RGB."""
    return srgb_to_linear(colorsys.hsv_to_rgb(float(h) % 1.0, float(s), float(v)))  # type: ignore[return-value]


# --------------------------------------------------------------------------- engine setup


_probed = False


def setup_device(scene, device: str = "auto") -> str:
    """Pick Cycles' device: 'cpu', or 'gpu'/'auto' = the first working GPU backend.

    Tries OptiX, CUDA, HIP, oneAPI and Metal through the Cycles add-on
    preferences and quietly falls back to the CPU when none has a device.
    Returns the backend used ('CPU', 'OPTIX', 'CUDA', ...).
    """
    scene.cycles.device = "CPU"
    if device == "cpu":
        return "CPU"
    if device not in ("gpu", "auto"):
        raise ValueError(f"expected device 'cpu', 'gpu' or 'auto', got {device!r}")
    bpy = require_bpy()
    try:
        import _cycles  # noqa: PLC0415 - Cycles' C module, ships with bpy

        flags = _cycles.get_device_types()  # (cuda, optix, hip, metal, oneapi, hiprt)
        compiled = {
            "CUDA": flags[0], "OPTIX": flags[1], "HIP": flags[2], "METAL": flags[3], "ONEAPI": flags[4],
        }
        prefs = bpy.context.preferences.addons["cycles"].preferences
    except Exception:  # noqa: BLE001 - no Cycles add-on or odd build: CPU it is
        return "CPU"
    global _probed
    if not _probed:  # the first probe loads GPU libraries, and Cycles logs each one it misses
        with quiet_output():
            try:
                prefs.refresh_devices()
            except Exception:  # noqa: BLE001
                pass
        _probed = True
    for kind in _GPU_TYPES:
        if not compiled.get(kind):
            continue
        try:
            entries = prefs.get_devices_for_type(kind)
        except Exception:  # noqa: BLE001 - broken driver for this backend
            continue
        gpus = [e for e in entries if e.type == kind]
        if not gpus:
            continue
        prefs.compute_device_type = kind
        for e in prefs.devices:
            e.use = e.type == kind
        scene.cycles.device = "GPU"
        return kind
    return "CPU"


def _plain_output(scene, engine: str, width: int, height: int):
    """Set ``scene``'s render engine and a plain output of ``width`` x ``height`` square pixels: opaque
    film, no dithering, compositing, sequencer or stamp. Returns ``scene.render``."""
    r = scene.render
    r.engine = engine
    r.resolution_x, r.resolution_y, r.resolution_percentage = int(width), int(height), 100
    r.pixel_aspect_x = r.pixel_aspect_y = 1.0
    r.film_transparent = False
    r.dither_intensity = 0.0
    r.use_compositing = False
    r.use_sequencer = False
    r.use_stamp = False
    return r


def setup_cycles(
    scene,
    *,
    width: int,
    height: int,
    samples: int,
    device: str = "cpu",
    threads: int = 0,
    seed: int = 0,
    max_bounces: int = 4,
    filter_width: float = 1.5,
    light_tree: bool = False,
) -> str:
    """Deterministic Cycles settings on ``scene``; returns the device backend used.

    Fixed seed (not animated), no adaptive sampling, no denoising, opaque film,
    no dithering, 'Standard' view transform on an sRGB display. Persistent data
    is off here and switched on only around a batch (:meth:`BlenderScene.persistent`).
    """
    r = _plain_output(scene, "CYCLES", width, height)
    r.use_persistent_data = False
    if threads and threads > 0:
        r.threads_mode = "FIXED"
        r.threads = int(threads)
    else:
        r.threads_mode = "AUTO"
    c = scene.cycles
    used = setup_device(scene, device)
    c.samples = int(samples)
    c.use_adaptive_sampling = False
    c.use_denoising = False
    c.seed = int(seed)
    c.use_animated_seed = False
    c.max_bounces = int(max_bounces)
    c.diffuse_bounces = min(2, int(max_bounces))
    c.glossy_bounces = min(2, int(max_bounces))
    c.transmission_bounces = int(max_bounces)
    c.transparent_max_bounces = 8
    c.use_light_tree = bool(light_tree)  # pays off with many lights only
    c.caustics_reflective = False
    c.caustics_refractive = False
    c.sample_clamp_indirect = 10.0
    c.pixel_filter_type = "BLACKMAN_HARRIS"
    c.filter_width = float(filter_width)
    c.film_exposure = 1.0
    set_standard_view(scene)
    return used


def set_standard_view(scene, exposure: float = 0.0) -> None:
    """'Standard' view transform on the sRGB display: plain sRGB encoding, no tone curve."""
    scene.display_settings.display_device = "sRGB"
    v = scene.view_settings
    v.view_transform = "Standard"
    v.look = "None"
    v.exposure = float(exposure)
    v.gamma = 1.0
    v.use_curve_mapping = False


#: Render engines a BlenderScene offers: ``render.engine`` name -> Blender's engine id.
ENGINES = {"cycles": "CYCLES", "workbench": "BLENDER_WORKBENCH"}
#: Engines of :data:`ENGINES` that are previews: a world offering one lists it in ``WorldInfo.preview_engines``.
PREVIEW_ENGINES = ("workbench",)


def setup_workbench(scene, *, width: int, height: int) -> None:
    """Blender's Workbench engine as a fast, lower-fidelity preview for iterating on a spec.

    OpenGL rasterisation with studio lighting, each object's colour from ``obj.color`` (kept equal
    to its material's base colour by :func:`add_object`, or the per-sample colour of
    :func:`set_object_color`), one hard shadow direction, 8x anti-aliasing. No path tracing: scene
    lights, refraction, glossy reflections and soft shadows are not rendered. Runs through EGL
    (Mesa's llvmpipe on a machine without a GPU); deterministic across runs and processes there
    (tested).
    """
    _plain_output(scene, "BLENDER_WORKBENCH", width, height)
    scene.display.render_aa = "8"
    sh = scene.display.shading
    sh.light = "STUDIO"
    sh.color_type = "OBJECT"
    sh.show_shadows = True
    sh.show_cavity = False
    sh.show_object_outline = False
    sh.show_specular_highlight = True
    set_standard_view(scene)


def enable_passes(scene, *, depth: bool, segmentation: bool) -> None:
    vl = scene.view_layers[0]
    vl.use_pass_combined = True
    vl.use_pass_z = bool(depth)
    vl.use_pass_object_index = bool(segmentation)


# --------------------------------------------------------------------------- objects


def look_at(obj, target: Sequence[float]) -> None:
    """Rotate ``obj`` (a camera or light) so its -Z axis points at ``target``, +Y up."""
    mu = _mathutils()
    direction = mu.Vector(tuple(float(t) for t in target)) - obj.location
    obj.rotation_mode = "XYZ"
    obj.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()


def add_camera(scene, name: str, model):
    """A Blender camera for a :class:`~crlgen.scenes.cameras.CameraModel` (perspective or orthographic).

    Perspective cameras fit the vertical field of view (square pixels, principal point at the
    image centre, as the model's K says); orthographic ones span ``model.extent[0]`` metres
    across the image width. A fixed pose is applied here; a mounted camera's pose is set per
    frame with :func:`set_camera_pose`.
    """
    bpy = require_bpy()
    data = bpy.data.cameras.new(name)
    if model.orthographic:
        data.type = "ORTHO"
        data.sensor_fit = "HORIZONTAL"
        data.ortho_scale = float(model.extent[0])
    else:
        data.type = "PERSP"
        data.sensor_fit = "VERTICAL"
        data.sensor_height = 24.0
        data.lens = 0.5 * data.sensor_height / math.tan(math.radians(model.fov) / 2.0)
    data.clip_start = float(model.near)
    data.clip_end = float(model.far)
    obj = bpy.data.objects.new(name, data)
    scene.collection.objects.link(obj)
    if model.pose is not None:
        set_camera_pose(obj, model.pose)
    return obj


def set_camera_pose(obj, camera_to_world: np.ndarray) -> None:
    """Place a camera object at a camera_to_world pose given in OpenCV's convention (4x4)."""
    from ..cameras import to_opengl

    mu = _mathutils()
    obj.matrix_world = mu.Matrix([[float(x) for x in row] for row in to_opengl(camera_to_world)])


def add_object(scene, name: str, data, *, pass_index: int = 0, material=None):
    """Link a new object for ``data`` (mesh, curve, ...) into ``scene``."""
    bpy = require_bpy()
    obj = bpy.data.objects.new(name, data)
    scene.collection.objects.link(obj)
    obj.pass_index = int(pass_index)
    if material is not None and hasattr(data, "materials"):
        data.materials.append(material)
        if not material.get("crlgen_object_color"):  # the Workbench preview draws obj.color
            obj.color = tuple(material.diffuse_color)
    return obj


def add_sun(
    scene, name: str, *, direction_to: Sequence[float], strength: float, angle_deg: float = 5.0, color=(1, 1, 1)
):
    """A sun lamp whose light travels towards ``-direction_to`` (``direction_to`` points at the sun)."""
    bpy = require_bpy()
    light = bpy.data.lights.new(name, "SUN")
    light.energy = float(strength)
    light.angle = math.radians(angle_deg)
    light.color = tuple(color)
    obj = bpy.data.objects.new(name, light)
    scene.collection.objects.link(obj)
    obj.location = tuple(direction_to)
    look_at(obj, (0.0, 0.0, 0.0))
    return obj


def set_world_color(scene, color_linear: Sequence[float], strength: float = 1.0):
    """A uniform background/ambient colour (linear RGB) for ``scene``; returns the world."""
    bpy = require_bpy()
    world = scene.world or bpy.data.worlds.new(f"{scene.name}.world")
    scene.world = world
    _ensure_nodes(world)
    bg = world.node_tree.nodes.get("Background") or world.node_tree.nodes.new("ShaderNodeBackground")
    out = world.node_tree.nodes.get("World Output") or world.node_tree.nodes.new("ShaderNodeOutputWorld")
    if not bg.outputs["Background"].links:
        world.node_tree.links.new(bg.outputs["Background"], out.inputs["Surface"])
    bg.inputs["Color"].default_value = (*tuple(color_linear)[:3], 1.0)
    bg.inputs["Strength"].default_value = float(strength)
    world.color = tuple(min(1.0, float(c) * float(strength)) for c in tuple(color_linear)[:3])  # the Workbench preview's background
    return world


# --------------------------------------------------------------------------- materials


def _ensure_nodes(idblock) -> None:
    """Give a material/world its shader node tree (always there from Blender 5.0 on)."""
    bpy = require_bpy()
    if idblock.node_tree is None or bpy.app.version < (5, 0, 0):
        idblock.use_nodes = True  # deprecated in 5.0, needed before


def principled_material(
    name: str, color_linear=(0.8, 0.8, 0.8), *, roughness: float = 0.5, metallic: float = 0.0, specular: float = 0.5,
    transmission: float = 0.0, ior: float = 1.5,
):
    """A Principled BSDF material with a fixed base colour (linear RGB).

    ``transmission`` in [0, 1] makes it a dielectric (glass, liquid) whose refractive index is
    ``ior`` (Cycles refracts by Snell's law; 1.33 water, 1.5 glass). The material's viewport
    colour is the base colour too (what the Workbench preview draws; it does not refract).
    """
    bpy = require_bpy()
    mat = bpy.data.materials.new(name)
    _ensure_nodes(mat)
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    bsdf.inputs["Base Color"].default_value = (*tuple(color_linear)[:3], 1.0)
    bsdf.inputs["Roughness"].default_value = float(roughness)
    bsdf.inputs["Metallic"].default_value = float(metallic)
    if "Specular IOR Level" in bsdf.inputs:
        bsdf.inputs["Specular IOR Level"].default_value = float(specular)
    bsdf.inputs["IOR"].default_value = float(ior)
    bsdf.inputs["Transmission Weight"].default_value = float(transmission)
    mat.diffuse_color = (*tuple(color_linear)[:3], 1.0)
    return mat


def object_color_material(name: str, *, roughness: float = 0.5, metallic: float = 0.0, specular: float = 0.5):
    """A Principled material whose base colour is the object's ``color`` (Object Info node).

    Changing ``obj.color`` per sample then needs no shader update; use
    :func:`set_object_color`.
    """
    mat = principled_material(name, roughness=roughness, metallic=metallic, specular=specular)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    info = nodes.new("ShaderNodeObjectInfo")
    links.new(info.outputs["Color"], nodes["Principled BSDF"].inputs["Base Color"])
    mat["crlgen_object_color"] = True
    return mat


def set_object_color(obj, color_linear: Sequence[float]) -> None:
    obj.color = (*(float(c) for c in tuple(color_linear)[:3]), 1.0)


# --------------------------------------------------------------------------- meshes


def mesh_from_data(name: str, verts, faces, smooth: Sequence[bool] | None = None):
    """A mesh from vertex and face lists; ``smooth`` flags per face (default flat)."""
    bpy = require_bpy()
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([tuple(map(float, v)) for v in verts], [], [tuple(f) for f in faces])
    if smooth is not None:
        mesh.polygons.foreach_set("use_smooth", [bool(s) for s in smooth])
    mesh.update()
    mesh.validate()
    return mesh


def cylinder_data(segments: int = 32, caps: bool = True, z: tuple[float, float] = (0.0, 1.0)):
    """Vertices, faces and smooth flags of a radius-1 cylinder from z[0] to z[1] (smooth sides, flat caps)."""
    verts, faces, smooth = [], [], []
    ring = [(math.cos(2.0 * math.pi * i / segments), math.sin(2.0 * math.pi * i / segments)) for i in range(segments)]
    for zz in z:
        verts += [(x, y, zz) for x, y in ring]
    for i in range(segments):
        j = (i + 1) % segments
        faces.append((i, j, segments + j, segments + i))
        smooth.append(True)
    if caps:  # caps get their own vertices so their normals stay flat
        b = len(verts)
        verts += [(x, y, z[0]) for x, y in ring]
        faces.append(tuple(b + i for i in reversed(range(segments))))
        smooth.append(False)
        t = len(verts)
        verts += [(x, y, z[1]) for x, y in ring]
        faces.append(tuple(t + i for i in range(segments)))
        smooth.append(False)
    return verts, faces, smooth


def cylinder_mesh(name: str, segments: int = 32, caps: bool = True):
    """Unit cylinder: radius 1, z from 0 to 1, smooth sides and flat caps (own vertices)."""
    return mesh_from_data(name, *cylinder_data(segments, caps))


def uv_sphere_data(segments: int = 32, rings: int = 16):
    """Vertices, faces and smooth flags of a radius-1 UV sphere centred on the origin (poles on z)."""
    verts = [(0.0, 0.0, -1.0)]
    for r in range(1, rings):
        phi = math.pi * r / rings - 0.5 * math.pi
        verts += [(math.cos(phi) * math.cos(2.0 * math.pi * i / segments),
                   math.cos(phi) * math.sin(2.0 * math.pi * i / segments), math.sin(phi)) for i in range(segments)]
    verts.append((0.0, 0.0, 1.0))
    top = len(verts) - 1
    faces = [(0, 1 + (i + 1) % segments, 1 + i) for i in range(segments)]
    for r in range(rings - 2):
        a, b = 1 + r * segments, 1 + (r + 1) * segments
        faces += [(a + i, a + (i + 1) % segments, b + (i + 1) % segments, b + i) for i in range(segments)]
    last = 1 + (rings - 2) * segments
    faces += [(last + i, last + (i + 1) % segments, top) for i in range(segments)]
    return verts, faces, [True] * len(faces)


def uv_sphere_mesh(name: str, segments: int = 32, rings: int = 16):
    """Unit UV sphere: radius 1, centred on the origin, smooth shaded."""
    return mesh_from_data(name, *uv_sphere_data(segments, rings))


def box_data():
    """Vertices, faces and smooth flags of the cube [-1, 1]^3 (flat faces, outward normals)."""
    verts = [(x, y, z) for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    return verts, faces, [False] * 6


def box_mesh(name: str):
    """Unit box: the cube [-1, 1]^3 (scale it by the half-extents), flat shaded."""
    return mesh_from_data(name, *box_data())


def disc_mesh(name: str, segments: int = 64):
    """Unit disc of radius 1 in the z=0 plane, facing +z."""
    verts = [(math.cos(2 * math.pi * i / segments), math.sin(2 * math.pi * i / segments), 0.0) for i in range(segments)]
    return mesh_from_data(name, verts, [tuple(range(segments))])


def poly_curve(name: str, n_points: int, *, bevel_radius: float = 0.001, bevel_resolution: int = 3):
    """A 3D poly-line curve with a round bevel (a tube); fill its points with :func:`set_curve_points`."""
    bpy = require_bpy()
    curve = bpy.data.curves.new(name, "CURVE")
    curve.dimensions = "3D"
    curve.twist_mode = "MINIMUM"
    curve.bevel_mode = "ROUND"
    curve.bevel_depth = float(bevel_radius)
    curve.bevel_resolution = int(bevel_resolution)
    curve.use_fill_caps = True
    spline = curve.splines.new("POLY")
    spline.points.add(int(n_points) - 1)
    spline.use_smooth = True
    return curve


def set_curve_points(curve, points: np.ndarray) -> None:
    """Set the first spline's points from an (n, 3) array (weights 1)."""
    pts = np.asarray(points, dtype=np.float64)
    co = np.ones((pts.shape[0], 4), dtype=np.float64)
    co[:, :3] = pts
    curve.splines[0].points.foreach_set("co", co.ravel())
    curve.update_tag()


# --------------------------------------------------------------------------- OpenEXR


def read_exr(path: str) -> dict[str, np.ndarray]:
    """Every channel of a (multi-part) OpenEXR file: ``{full channel name: (H, W) float32}``, top row first.

    Blender writes multilayer files with names such as ``ViewLayer.Depth.Z``.
    Raises :class:`~crlgen.scenes.engines.EngineMissing` when ``OpenEXR`` is missing.
    """
    exr = require("OpenEXR", needed_by="reading Blender's depth and object-index passes")
    out: dict[str, np.ndarray] = {}
    with exr.File(path, separate_channels=True) as f:
        for part in f.parts:
            for name, ch in part.channels.items():
                out[name] = np.asarray(ch.pixels, dtype=np.float32)
    return out


def _find_channel(channels: dict[str, np.ndarray], pass_names: Sequence[str]) -> np.ndarray | None:
    for key, arr in channels.items():
        parts = key.split(".")
        if len(parts) >= 2 and parts[-2] in pass_names:
            return arr
    return None


# --------------------------------------------------------------------------- the scene


class BlenderScene:
    """A private bpy scene set up for deterministic renders into numpy: Cycles (``engine="cycles"``,
    optionally denoised by OpenImageDenoise) or the Workbench preview (``engine="workbench"``, see
    :func:`setup_workbench`; its object ids come from a second, flat-shaded render).

    Build geometry with the module's helpers (``add_object(bs.scene, ...)`` etc.),
    register every datablock you create with :meth:`own` so :meth:`close`
    removes it, then call :meth:`render` per camera.
    """

    def __init__(
        self,
        name: str,
        *,
        width: int,
        height: int,
        samples: int,
        device: str = "cpu",
        threads: int = 0,
        seed: int = 0,
        depth: bool = False,
        segmentation: bool = False,
        max_bounces: int = 4,
        engine: str = "cycles",
        denoise: bool = False,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"expected a Blender engine out of {sorted(ENGINES)}, got {engine!r}")
        bpy = require_bpy()
        self.scene = bpy.data.scenes.new(f"crlgen.{name}.{os.getpid()}.{next(_ids)}")
        self.width, self.height = int(width), int(height)
        self.depth, self.segmentation = bool(depth), bool(segmentation)
        self.engine = engine
        if engine == "cycles":
            self.device = setup_cycles(
                self.scene, width=width, height=height, samples=samples, device=device,
                threads=threads, seed=seed, max_bounces=max_bounces,
            )
            if denoise:  # OpenImageDenoise on the CPU, with albedo and normal guides (deterministic)
                c = self.scene.cycles
                c.use_denoising = True
                c.denoiser = "OPENIMAGEDENOISE"
                c.denoising_input_passes = "RGB_ALBEDO_NORMAL"
                c.denoising_prefilter = "ACCURATE"
                c.denoising_use_gpu = False
        else:
            setup_workbench(self.scene, width=width, height=height)
            self.device = "CPU (EGL)"
        enable_passes(self.scene, depth=self.depth, segmentation=self.segmentation and engine == "cycles")
        self._owned: list = []
        self.render_seconds, self.render_calls = 0.0, 0  # time inside Blender's renderer alone (benchmarks)
        self._tmp = _scratch_dir()
        self._closed = False

    def own(self, *ids):
        """Remember datablocks (objects, meshes, materials, ...) for :meth:`close`; returns the first."""
        self._owned.extend(ids)
        return ids[0] if ids else None

    @classmethod
    def from_settings(cls, name: str, rs, threads: int = 0) -> "BlenderScene":
        """A scene for a ``schemas.render.RenderSettings``: engine (default Cycles), size, samples,
        denoising, device, annotations."""
        return cls(name, width=rs.width, height=rs.height, samples=rs.samples, device=rs.device, threads=threads,
                   seed=0, depth="depth" in rs.annotations, segmentation="segmentation" in rs.annotations,
                   engine=rs.engine or "cycles", denoise=rs.denoise)

    @contextlib.contextmanager
    def building(self):
        """Close this scene again if populating it fails, so no half-built datablocks stay behind."""
        try:
            yield self
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def persistent(self):
        """Keep Cycles' synced scene between the renders of one batch, and free it after.

        Persistent data makes 2 concurrent workers ~25 % faster here (less re-sync per
        render), but Blender 5.0 then keeps a session thread spinning at 100 % of a core
        until the data is freed (measured), so a world must not leave it on between batches.
        """
        r = self.scene.render
        if self.engine != "cycles":
            yield
            return
        r.use_persistent_data = True
        try:
            yield
        finally:
            r.use_persistent_data = False  # the RNA update frees the persistent render data

    def render(self, camera, width: int | None = None, height: int | None = None
               ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Render ``camera`` at ``width`` x ``height`` (default: the scene's size).

        Returns (rgb uint8 HxWx3, depth float32 HxW | None, ids uint8 HxW | None).
        """
        bpy = require_bpy()
        from PIL import Image  # noqa: PLC0415

        sc = self.scene
        w, h = int(width or self.width), int(height or self.height)
        if (sc.render.resolution_x, sc.render.resolution_y) != (w, h):
            sc.render.resolution_x, sc.render.resolution_y = w, h
        sc.camera = camera
        t0 = time.perf_counter()
        with quiet_output() if self.engine != "cycles" else contextlib.nullcontext():  # EGL's probing talks on stderr
            bpy.ops.render.render(write_still=False, scene=sc.name)
        self.render_seconds += time.perf_counter() - t0
        self.render_calls += 1
        result = bpy.data.images["Render Result"]
        fmt = sc.render.image_settings
        fmt.media_type = "IMAGE"
        fmt.file_format = "PNG"
        fmt.color_mode = "RGB"
        fmt.color_depth = "8"
        fmt.compression = 0
        fmt.color_management = "FOLLOW_SCENE"
        png = os.path.join(self._tmp, "view.png")
        result.save_render(png, scene=sc)
        with Image.open(png) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
        depth = seg = None
        if self.depth or (self.segmentation and self.engine == "cycles"):
            channels = self._result_channels("view.exr")
            if self.depth:
                z = _find_channel(channels, ("Depth", "Z"))
                if z is None:
                    raise RuntimeError(f"no depth pass in the render (channels: {sorted(channels)})")
                depth = np.where((z >= BACKGROUND_DEPTH) | ~np.isfinite(z), 0.0, z).astype(np.float32)
            if self.segmentation and self.engine == "cycles":
                ix = _find_channel(channels, ("Object Index", "IndexOB"))
                if ix is None:
                    raise RuntimeError(f"no object-index pass in the render (channels: {sorted(channels)})")
                seg = np.clip(np.rint(ix), 0, 255).astype(np.uint8)
        if self.segmentation and self.engine != "cycles":
            seg = self._workbench_ids()
        if rgb.shape != (h, w, 3):
            raise RuntimeError(f"render came back as {rgb.shape}, expected {(h, w, 3)}")
        return rgb, depth, seg

    def _result_channels(self, filename: str) -> dict[str, np.ndarray]:
        """The last render's result as an uncompressed 32-bit multilayer OpenEXR in the temporary
        directory, read back: ``{channel name: (H, W) float32}``."""
        bpy = require_bpy()
        fmt = self.scene.render.image_settings
        fmt.media_type = "MULTI_LAYER_IMAGE"
        fmt.file_format = "OPEN_EXR_MULTILAYER"
        fmt.color_depth = "32"
        fmt.exr_codec = "NONE"
        exr = os.path.join(self._tmp, filename)
        bpy.data.images["Render Result"].save_render(exr, scene=self.scene)
        return read_exr(exr)

    def _workbench_ids(self) -> np.ndarray:
        """Object ids for the Workbench preview, which has no object-index pass: one more render
        with flat lighting, no anti-aliasing and every object drawn in the colour (id/255, 0, 0),
        read back linear from OpenEXR. Colours and shading are restored after."""
        bpy = require_bpy()
        sc = self.scene
        objs = [o for o in sc.objects if o.type in ("MESH", "CURVE", "SURFACE", "META", "FONT")]
        saved = [tuple(o.color) for o in objs]
        sh = sc.display.shading
        keep = (sc.display.render_aa, sh.light, sh.show_shadows, sh.show_specular_highlight, sc.world.color[:] if sc.world else None)
        try:
            sc.display.render_aa = "OFF"
            sh.light, sh.show_shadows, sh.show_specular_highlight = "FLAT", False, False
            if sc.world:
                sc.world.color = (0.0, 0.0, 0.0)
            for o in objs:
                o.color = (o.pass_index / 255.0, 0.0, 0.0, 1.0)
            with quiet_output():
                bpy.ops.render.render(write_still=False, scene=sc.name)
            red = next((a for k, a in self._result_channels("ids.exr").items() if k.endswith("Combined.R") or k == "R"),
                       None)
            if red is None:
                raise RuntimeError("no colour channel in the Workbench id render")
            return np.clip(np.rint(red * 255.0), 0, 255).astype(np.uint8)
        finally:
            for o, c in zip(objs, saved):
                o.color = c
            sc.display.render_aa, sh.light, sh.show_shadows, sh.show_specular_highlight = keep[:4]
            if sc.world and keep[4] is not None:
                sc.world.color = keep[4]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        shutil.rmtree(self._tmp, ignore_errors=True)
        try:
            bpy = require_bpy()
        except RuntimeError:  # pragma: no cover
            return
        objects = [i for i in self._owned if isinstance(i, bpy.types.Object)]
        others = [i for i in self._owned if not isinstance(i, bpy.types.Object)]
        for obj in objects:
            try:
                bpy.data.objects.remove(obj, do_unlink=True)
            except ReferenceError:
                pass
        for data in others:
            try:
                coll = _collection_for(bpy, data)
                if coll is not None:
                    coll.remove(data, do_unlink=True)
            except ReferenceError:
                pass
        try:
            world = self.scene.world
            bpy.data.scenes.remove(self.scene, do_unlink=True)
            if world is not None and world.users == 0:
                bpy.data.worlds.remove(world)
        except ReferenceError:
            pass
        self._owned.clear()

    def __del__(self):  # best effort: temp files only (bpy may be gone at exit)
        try:
            shutil.rmtree(self._tmp, ignore_errors=True)
        except Exception:  # noqa: BLE001
            pass


def _collection_for(bpy, data):
    t = bpy.types
    for typ, coll in (
        (t.Mesh, bpy.data.meshes), (t.Curve, bpy.data.curves), (t.Material, bpy.data.materials),
        (t.Light, bpy.data.lights), (t.Camera, bpy.data.cameras), (t.World, bpy.data.worlds),
        (t.Image, bpy.data.images), (t.NodeTree, bpy.data.node_groups),
    ):
        if isinstance(data, typ):
            return coll
    return None
