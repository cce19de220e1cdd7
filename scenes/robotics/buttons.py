"""``robotics/buttons``: an arm presses buttons on a table; the buttons drive lamps through the causal
circuit the spec states (after CausalCircuit, Brehmer et al. 2022, "Weakly supervised causal
representation learning", NeurIPS). A variant of :class:`~.world.ArmWorld` (same arms, IK, rooms,
cameras and frame semantics); panel, circuit and press sequence in :mod:`._buttons`.

Spec parameters: ``arm`` and ``room`` as for ``robotics/arm``; ``task`` is press (4) and may be left
out. ``objects: {button: B, lamp: L, joint: <the arm's>}`` with 1 <= B, L <= 6 (the catalogue spec: 4 and 4).

Latents: ``floor.hue``, ``table.hue``, ``ctrl.kp``, ``ctrl.max_qd``, ``ctrl.speed``, ``ctrl.height``
(as in robotics/arm), per button ``button[j].x``, ``button[j].y`` (centre on the table, m) and
``button[j].press`` (0/1: the arm presses it in this episode; buttons are pressed in index order),
per lamp ``lamp[i].hue`` (its glass colour) and ``lamp[i].on`` (boolean, its mechanism is the lamp's
law: a function of ``button[j].press`` and other ``lamp[k].on``, without noise); optional
``light.intensity``, ``light.azimuth`` and ``arm.twist`` (as in robotics/arm: the rest angle of a
7-joint arm's upper-arm roll joint that the IK's null space follows; refused for the xArm6).

States per frame: the arm's (``joint[k].q``, ``joint[k].qd``, ``ee.*``, ``gripper.opening``), then
``button[j].state`` (0 released, 1 latched on) and ``lamp[i].state`` (0 off, 1 lit): in every frame
the spec's ``lamp[i].on`` mechanisms evaluated on that frame's button states (``button[j].press`` read
as ``button[j].state``) and lamps (:class:`._buttons.Circuit`; checked: ``circuit``). Inputs as
robotics/arm. Pairs: a video holds the frames before and after each press (the frame a
``button[j].state`` turns 1 is the first after it), and the spec's counterfactuals (the same noise,
one more button pressed) give CausalCircuit's (x, x') pairs around an intervention.

The clip must hold the press plan: ``crlgen check`` refuses a ``video.frames`` shorter than the frames the arm
needs to press every button (what an intervention or a counterfactual partner may add) along the longest path the
buttons' positions allow, at the lowest ``ctrl.speed`` and ``ctrl.kp`` and the highest ``ctrl.height`` the spec
can sample, naming the least number of frames at its fps (:meth:`ButtonsWorld._clip_problems`); a shorter clip
would end before presses land and store ``lamp[i].on`` the lamps never show.

Segmentation ids: 0 background, 1 room, 2 table, then the arm's links (``arm.<link>``), then
``button[j]`` (housing and cap) and ``lamp[i]`` (bulb and post). No temporal edits.
"""

from __future__ import annotations

import functools
import math
from typing import ClassVar, Mapping

import numpy as np

from ..base import Simulation, WorldBatch, WorldCheck, WorldInfo
from ..engines import bullet as pb
from . import _arms, _buttons, _controllers, _ik, _rooms
from ._skeleton import tiny_video_info
from .world import EE_FIELDS, FIRST_OBJECT_ID, INPUTS, STATE_UNITS, ArmWorld

LATENTS = ("floor.hue", "table.hue", "ctrl.kp", "ctrl.max_qd", "ctrl.speed", "ctrl.height",
           "button[i].x", "button[i].y", "button[i].press", "lamp[i].hue")
OPTIONAL = ("light.intensity", "light.azimuth", "arm.twist")
#: Latents robotics/arm's set-up reads that do not act here (no cubes, no goal marker): fixed values.
_FIXED = {"table.friction": 0.8, "ctrl.grip_force": 10.0, "goal.x": 0.0, "goal.y": 0.0, "goal.z": _rooms.TABLE_TOP + 0.2,
          "light.intensity": 1.0, "light.azimuth": 0.6}
RANGES = {"floor.hue": (0.0, 1.0), "table.hue": (0.0, 1.0), "ctrl.kp": (0.01, 1.0), "ctrl.max_qd": (0.2, 3.0),
          "ctrl.speed": (0.05, 1.0), "ctrl.height": (0.03, 0.3), "button[i].x": (-0.1, 0.3), "button[i].y": (-0.32, 0.32),
          "button[i].press": (0.0, 1.0), "lamp[i].hue": (0.0, 1.0), "light.intensity": (0.2, 2.0),
          "light.azimuth": (-math.pi, math.pi), "arm.twist": (-1.5, 1.5)}
UNITS = {**{k: v for k, v in STATE_UNITS.items() if not k.startswith("obj")}, "button[i].state": "1", "lamp[i].state": "1"}


def _circuit(world: "ButtonsWorld", batch: WorldBatch, sim: Simulation) -> list[str]:
    """Lamps follow the spec's circuit (:class:`._buttons.Circuit`) from the buttons in every frame; at the end every
    planned press has landed and the lamps equal the spec's ``lamp[i].on`` latents: the spec's equations are the world's."""
    out = []
    names = sim.state_names
    B, L = world.n_buttons, world.n_lamps
    b = sim.states[:, :, [names.index(f"button[{j}].state") for j in range(B)]]
    lamp = sim.states[:, :, [names.index(f"lamp[{i}].state") for i in range(L)]]
    env = {k: v[:, None] for k, v in world.circuit.sample_env(batch.latents, slice(None)).items()}
    law = world.circuit(b, env)
    for i in range(len(batch)):
        s = int(batch.index[i])
        bad = np.flatnonzero((law[i] != lamp[i]).any(axis=1))
        if bad.size:
            out.append(f"sample {s}: lamps differ from the circuit at frame {int(bad[0])}")
        plan = np.array([batch.latents[f"button[{j}].press"][i] for j in range(B)]) > 0.5
        if not np.array_equal(b[i, -1] > 0.5, plan):
            out.append(f"sample {s}: buttons end {b[i, -1].astype(int).tolist()}, the plan presses {plan.astype(int).tolist()}")
        for k in range(L):
            key = f"lamp[{k}].on"
            if key in batch.latents and float(batch.latents[key][i]) != lamp[i, -1, k]:
                out.append(f"sample {s}: the spec's {key} = {float(batch.latents[key][i]):g} but the lamp ends "
                           f"{lamp[i, -1, k]:g} (a press missed)")
    return out


def _attainable(spec, name: str) -> tuple[float, float]:
    """Smallest interval holding every value the sampler can give latent ``name``: a root's noise support (inside
    its declared range) joined with the supports of the do() interventions on it; the declared range where a
    mechanism, a domain or an intervention without a bounded support decides it."""
    node = spec.graph.node(name)
    var = node.variable
    lo, hi = var.bounds()
    if node.mechanism is not None or var.noise is None or any(
            k in (name, node.template) for dom in spec.domains.values() for k in (*dom.overrides, *dom.noise)):
        return lo, hi
    a, b = var.noise.support()
    a, b = max(a, lo), min(b, hi)
    cf = spec.counterfactuals
    for targets in (getattr(spec.interventions, "targets", None) or {},
                    (getattr(cf, "intervention", None) or {}) if cf is not None else {}):
        for target, how in targets.items():
            if target not in (name, node.template):
                continue
            support = getattr(how, "support", None)
            if support is None:
                return lo, hi
            c, d = support()
            a, b = min(a, max(c, lo)), max(b, min(d, hi))
    return a, b


@functools.lru_cache(maxsize=None)
def _home_tcp(arm: int) -> tuple[float, float, float]:
    """Where the TCP of arm ``arm`` (``parameters.arm``) starts every episode: its home pose's TCP (m)."""
    import pybullet_data  # noqa: PLC0415 - ships with pybullet

    scene = pb.BulletScene()
    try:
        body = _arms.Arm(scene.bc, scene.p, _arms.arm_model(arm), _rooms.ARM_BASE, pybullet_data.getDataPath())
        body.reset(_ik.home(body), 1.0)
        return tuple(float(v) for v in body.tcp_pose()[0])
    finally:
        scene.close()


def _farthest_path(start: np.ndarray, boxes: list[tuple[tuple[float, float], tuple[float, float]]],
                   z: float) -> np.ndarray:
    """Button centres (K, 2), one corner of each (x range, y range) box, whose approach path from ``start``
    (over the buttons in order, ``z`` m high) is longest; the longest path over boxes runs through corners."""
    corners = [np.array([[x, y] for x in bx for y in by]) for bx, by in boxes]
    first = np.hypot(np.linalg.norm(corners[0] - start[:2], axis=1), z - start[2])
    best, back = first, []
    for prev, cur in zip(corners, corners[1:]):
        d = best[:, None] + np.linalg.norm(prev[:, None] - cur[None], axis=2)
        back.append(np.argmax(d, axis=0))
        best = d.max(axis=0)
    k = int(np.argmax(best))
    path = [k]
    for arg in reversed(back):
        k = int(arg[k])
        path.append(k)
    return np.array([c[j] for c, j in zip(corners, reversed(path))])


def press_frames(start: np.ndarray, centres: np.ndarray, speed: float, height: float, fps: float) -> int | None:
    """The frame the last of the buttons at ``centres`` (K, 2) m latches in when :class:`._buttons.PressSequence`
    drives an arm that follows its command exactly (the TCP one frame behind it), from ``start`` (m) at ``speed``
    m/s with approach ``height`` m; None when a press phase times out before its button latches (the command never
    gets low enough), as it does for the real arm."""
    gains = _controllers.Gains(kp=1.0, max_qd=math.inf, speed=speed, height=height, grip_force=0.0)
    seq = _buttons.PressSequence(centres, gains, fps, np.asarray(start, dtype=np.float64))
    tcp, left, empty = np.asarray(start, dtype=np.float64), set(range(len(centres))), np.zeros((0, 3))
    press = _controllers.PHASES.index("press")
    t = 0
    while left:  # every phase ends by its timeout at the latest, so this ends
        t += 1
        k, phase = seq._k, seq.phase
        tcp = seq.step(tcp, empty, np.zeros(0), np.zeros(0), None, False).target
        left -= {j for j in left if _buttons.pressed(tcp, centres[j])}
        if phase == press and seq.phase != press and k in left:
            return None
    return t


_INFO = tiny_video_info(
    "robotics/buttons",
    "An arm (KUKA iiwa, xArm6 or Franka Panda) presses latching buttons on a table; the buttons drive lamps "
    "through the causal circuit the spec states (after CausalCircuit); PyBullet, filmed with TinyRenderer.",
    latents=LATENTS,
    optional_latents=OPTIONAL,
    ranges=RANGES,
    discrete=("button[i].press", "lamp[i].on"),
    states=("joint[i].q", "joint[i].qd", *(f"ee.{f}" for f in EE_FIELDS), "gripper.opening", "button[i].state",
            "lamp[i].state"),
    state_units=UNITS,
    inputs=INPUTS,
    edit_targets=(),
    mounts=("ee",),
    max_objects={"button": _buttons.MAX_BUTTONS, "lamp": _buttons.MAX_LAMPS, "joint": 7},
)


class ButtonsWorld(ArmWorld):
    """``robotics/buttons`` (see the module docstring)."""

    info: ClassVar[WorldInfo] = _INFO
    checks = (*ArmWorld.checks, WorldCheck("circuit", "lamps follow the spec's lamp[i].on mechanisms on the buttons in "
                                                      "every frame; every planned press lands; the spec's lamp[i].on equal "
                                                      "the end states", _circuit))
    REQUIRED = LATENTS
    DEFAULTS = _FIXED
    #: Long enough for the catalogue's four presses at their slowest (``video.frames``: see :meth:`_clip_problems`).
    VIDEO_EXAMPLE = "{fps: 10, frames: 120, substeps: 24}"

    @classmethod
    def check(cls, spec) -> list[str]:
        out = []
        for name, fn in (("arm", _arms.arm_model), ("room", _rooms.room_model)):
            if name not in spec.parameters:
                out.append(f"parameters.{name}: robotics/buttons needs it (see the world's description)")
                continue
            try:
                fn(spec.parameters[name])
            except ValueError as e:
                out.append(f"parameters.{name}: {e}")
        if "task" in spec.parameters and spec.parameters["task"] != 4:
            out.append(f"parameters.task: robotics/buttons presses buttons (task 4, press), got {spec.parameters['task']!r}")
        if out:
            return out
        out += cls._joint_problems(spec) + cls._twist_problems(spec)
        counts = {prefix: spec.object_count(prefix) or 0 for prefix in ("button", "lamp")}
        for prefix, n in counts.items():
            if n < 1:
                out.append(f"objects.{prefix}: robotics/buttons needs at least one {prefix}, the spec asks for {n}")
        if not out:
            out += _buttons.circuit_problems(spec, counts["button"], counts["lamp"])
        if spec.object_count("obj"):
            out.append("objects.obj: robotics/buttons has no cubes; drop `obj`")
        if not out and spec.video is not None:
            out += cls._clip_problems(spec, counts["button"])
        return out + cls._common_problems(spec)

    @classmethod
    def _clip_problems(cls, spec, n_buttons: int) -> list[str]:
        """Whether every press the plan may make lands in the clip: the press sequence over all ``n_buttons`` buttons
        (an intervention or a counterfactual partner presses no button beyond them) along the longest path the
        buttons' positions allow, at the lowest ``ctrl.speed`` and the highest ``ctrl.height`` the spec can sample
        (:func:`press_frames`), plus settling: the frames the arm needs to cover ``REACHED`` at that speed, by which
        it may trail its command when a phase counts as reached, and the lag of its joints under the lowest position
        gain ``ctrl.kp`` (the error closes by ``kp`` of itself each physics step: about ``1 / kp`` steps behind)."""
        names = set(spec.graph.names)
        keys = ["ctrl.speed", "ctrl.height", "ctrl.kp", *(f"button[{j}].{a}" for j in range(n_buttons) for a in "xy")]
        if not all(k in names for k in keys):
            return []  # the registry names the missing latent
        speed, height, kp = (_attainable(spec, "ctrl.speed")[0], _attainable(spec, "ctrl.height")[1],
                             _attainable(spec, "ctrl.kp")[0])
        boxes = [(_attainable(spec, f"button[{j}].x"), _attainable(spec, f"button[{j}].y")) for j in range(n_buttons)]
        if not all(math.isfinite(v) for v in (speed, height, kp, *(c for box in boxes for r in box for c in r))) \
                or min(speed, kp) <= 0:
            return []  # the registry asks for ranges inside the world's
        fps, frames = float(spec.video.fps), int(spec.video.n_frames)
        start = np.array(_home_tcp(int(spec.parameters["arm"])))
        top = _buttons.CAP_TOP - _controllers.PRESS_HEIGHT
        centres = _farthest_path(start, boxes, top + height)
        last = press_frames(start, centres, speed, height, fps)
        if last is None:
            return [f"ctrl.speed: at ctrl.speed = {speed:g} m/s and ctrl.height = {height:g} m the press phase "
                    f"({3 * _controllers.HOLD:g} s at most) ends before the arm reaches the cap; raise ctrl.speed's "
                    f"lowest value or lower ctrl.height's highest"]
        need = last + 1 + math.ceil(_controllers.REACHED / (speed / fps)) + math.ceil(1.0 / (kp * spec.video.substeps))
        if frames < need:
            return [f"video.frames: robotics/buttons needs at least {need} frames at {fps:g} fps for the arm to press "
                    f"all {n_buttons} buttons (ctrl.speed {speed:g} m/s, ctrl.height {height:g} m, the buttons' "
                    f"farthest positions), got {frames}"]
        return []

    @classmethod
    def _segmentation_ids(cls, spec, n_objects: int) -> dict[int, str]:
        ids = super()._segmentation_ids(spec, n_objects)
        first = max(ids) + 1
        B, L = spec.object_count("button") or 0, spec.object_count("lamp") or 0
        ids.update({first + j: f"button[{j}]" for j in range(B)})
        ids.update({first + B + i: f"lamp[{i}]" for i in range(L)})
        return ids

    def _task(self, spec) -> int:
        return 4

    def _configure(self, spec) -> None:
        super()._configure(spec)
        self.n_buttons, self.n_lamps = spec.object_count("button"), spec.object_count("lamp")
        #: The spec's lamp law, compiled (:class:`._buttons.Circuit`).
        self.circuit = _buttons.Circuit(spec, self.n_buttons, self.n_lamps)

    def _state_names(self) -> tuple[str, ...]:
        return (*super()._state_names(), *(f"button[{j}].state" for j in range(self.n_buttons)),
                *(f"lamp[{i}].state" for i in range(self.n_lamps)))

    # ---------------------------------------------------------------- the panel, built once

    def _build_scene(self, bc, p, data: str) -> None:
        super()._build_scene(bc, p, data)
        self._extra0 = len(self._full) - self.n_buttons - self.n_lamps
        h = _buttons.HOUSING_HALF
        housing = bc.createVisualShape(p.GEOM_BOX, halfExtents=[h, h, 0.5 * _buttons.HOUSING_HEIGHT],
                                       rgbaColor=(*_buttons.HOUSING_RGB, 1.0))
        self._housings, self._caps, self._bulbs, self._posts = [], [], [], []
        for _ in range(self.n_buttons):  # visual only: the switch is the TCP's position (see _buttons)
            self._housings.append(bc.createMultiBody(0.0, -1, housing, basePosition=[0.0, 0.0, -1.0]))
            cap = bc.createVisualShape(p.GEOM_CYLINDER, radius=_buttons.CAP_RADIUS, length=_buttons.CAP_HEIGHT,
                                       rgbaColor=(*_buttons.CAP_RGB[0], 1.0))
            self._caps.append(bc.createMultiBody(0.0, -1, cap, basePosition=[0.0, 0.0, -1.0]))
        post_h = _buttons.BULB_HEIGHT - _buttons.BULB_RADIUS
        for y in _buttons.lamp_y(self.n_lamps):
            post = bc.createVisualShape(p.GEOM_CYLINDER, radius=0.012, length=post_h, rgbaColor=(0.3, 0.3, 0.32, 1.0))
            self._posts.append(bc.createMultiBody(0.0, -1, post, basePosition=[_buttons.LAMP_X, y, _rooms.TABLE_TOP + 0.5 * post_h]))
            bulb = bc.createVisualShape(p.GEOM_SPHERE, radius=_buttons.BULB_RADIUS, rgbaColor=(0.5, 0.5, 0.5, 1.0))
            self._bulbs.append(bc.createMultiBody(0.0, -1, bulb, basePosition=[_buttons.LAMP_X, y,
                                                                              _rooms.TABLE_TOP + _buttons.BULB_HEIGHT]))

    def _extra_ids(self) -> dict[int, int]:
        first = FIRST_OBJECT_ID + len(self.model.links)
        ids = {b: first + j for j, b in enumerate(self._housings)}
        ids.update({b: first + j for j, b in enumerate(self._caps)})
        ids.update({b: first + self.n_buttons + i for i, b in enumerate(self._bulbs)})
        ids.update({b: first + self.n_buttons + i for i, b in enumerate(self._posts)})
        return ids

    # ---------------------------------------------------------------- one sample

    def _count(self, template: str) -> int:
        if template.startswith("button"):
            return self.n_buttons
        return self.n_lamps if template.startswith("lamp") else super()._count(template)

    def _check_latents(self, lat: Mapping[str, np.ndarray]) -> None:
        for j in range(self.n_buttons):
            v = lat[f"button[{j}].press"]
            if np.any((v != 0.0) & (v != 1.0)):
                raise ValueError(f"latent 'button[{j}].press' must be 0 or 1, got {v[(v != 0.0) & (v != 1.0)][0]!r}")

    def _place_goal(self, goal: np.ndarray) -> None:
        bc = self.client.bc  # no goal here: the marker stays under the floor
        bc.resetBasePositionAndOrientation(self._goal, [0.0, 0.0, -1.0], [0, 0, 0, 1])
        bc.resetBasePositionAndOrientation(self._goal_disc, [0.0, 0.0, -1.0], [0, 0, 0, 1])

    def _setup(self, lat: Mapping[str, np.ndarray], i: int) -> dict:
        cfg = super()._setup(lat, i)
        bc = self.client.bc
        centres = np.array([[lat[f"button[{j}].x"][i], lat[f"button[{j}].y"][i]] for j in range(self.n_buttons)])
        for j, (x, y) in enumerate(centres):
            bc.resetBasePositionAndOrientation(self._housings[j], [float(x), float(y),
                                                                   _rooms.TABLE_TOP + 0.5 * _buttons.HOUSING_HEIGHT], [0, 0, 0, 1])
        hues = [float(lat[f"lamp[{k}].hue"][i]) for k in range(self.n_lamps)]
        cfg.update(buttons=centres, state=np.zeros(self.n_buttons), lamp_state=np.full(self.n_lamps, -1.0),
                   hues=hues, plan=[j for j in range(self.n_buttons) if lat[f"button[{j}].press"][i] > 0.5],
                   env=self.circuit.sample_env(lat, i))
        self._show(cfg, np.zeros(self.n_buttons, dtype=bool))
        return cfg

    def _show(self, cfg: dict, changed: np.ndarray) -> None:
        """Place the caps of buttons in ``changed`` (or all, at set-up) for their state; colour the lamps that changed."""
        bc = self.client.bc
        first = cfg["lamp_state"][0] < 0
        for j, (x, y) in enumerate(cfg["buttons"]):
            if first or changed[j]:
                on = cfg["state"][j] > 0.5
                z = _rooms.TABLE_TOP + _buttons.HOUSING_HEIGHT + 0.5 * _buttons.CAP_HEIGHT - (_buttons.CAP_TRAVEL if on else 0.0)
                bc.resetBasePositionAndOrientation(self._caps[j], [float(x), float(y), z], [0, 0, 0, 1])
                bc.changeVisualShape(self._caps[j], -1, rgbaColor=(*_buttons.CAP_RGB[int(on)], 1.0))
        lamps = self.circuit(cfg["state"], cfg["env"])
        for k, on in enumerate(lamps):
            if on != cfg["lamp_state"][k]:
                v = _buttons.LAMP_ON_VALUE if on else _buttons.LAMP_OFF_VALUE
                bc.changeVisualShape(self._bulbs[k], -1, rgbaColor=(*pb.hsv_to_rgb(cfg["hues"][k], 0.55, v), 1.0))
        cfg["lamp_state"] = lamps

    def _controller(self, cfg: dict) -> _buttons.PressSequence:
        return _buttons.PressSequence(cfg["buttons"][cfg["plan"]], cfg["gains"], self.fps, self._arm.tcp_pose()[0])

    def _record_late(self, row: np.ndarray, cfg: dict) -> None:
        changed = np.zeros(self.n_buttons, dtype=bool)
        for j, centre in enumerate(cfg["buttons"]):
            if cfg["state"][j] < 0.5 and _buttons.pressed(cfg["tcp"], centre):
                cfg["state"][j] = 1.0
                changed[j] = True
        if changed.any():
            self._show(cfg, changed)
        B = self.n_buttons
        row[self._extra0:self._extra0 + B] = cfg["state"]
        row[self._extra0 + B:self._extra0 + B + self.n_lamps] = cfg["lamp_state"]

    def _explain_extra(self, lat: Mapping[str, np.ndarray], i: int, cfg: dict) -> str:
        c = [(float(lat[f"button[{j}].x"][i]), float(lat[f"button[{j}].y"][i])) for j in range(self.n_buttons)]
        for a in range(len(c)):
            for b in range(a + 1, len(c)):
                d = _buttons.overlap(np.array(c[a]), np.array(c[b]))
                if d > 0.0:
                    return f"button[{a}] and button[{b}] overlap by {d:.3f} m"
        return ""

    def _landmarks(self, batch: WorldBatch, sim: Simulation):
        """The lamps' bulbs (fixed): centres (n, T, L, 3) m, ids, radii (n, L, 2) m."""
        n = len(batch)
        c = np.array([[_buttons.LAMP_X, y, _rooms.TABLE_TOP + _buttons.BULB_HEIGHT] for y in _buttons.lamp_y(self.n_lamps)])
        centres = np.broadcast_to(c, (n, self.n_frames, *c.shape)).copy()
        first = FIRST_OBJECT_ID + len(self.model.links) + self.n_buttons
        radius = np.full((n, self.n_lamps, 2), _buttons.BULB_RADIUS)
        return centres, first + np.arange(self.n_lamps), radius

