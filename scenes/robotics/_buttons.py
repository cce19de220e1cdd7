"""The button panel and lamp circuit of ``robotics/buttons`` (after CausalCircuit, Brehmer et al. 2022,
"Weakly supervised causal representation learning", NeurIPS): geometry, the circuit law and the
scripted press sequence.

Buttons are latching push-buttons: a button switches on (and stays on) in the first frame whose TCP
lies within ``CAP_RADIUS`` m of its centre in x, y and at most ``PRESS_DEPTH`` m above its cap. A latch
(not a spring return) keeps each button's state readable in every later frame, so a video holds the
state before and after each press, and the lamps stay lit for the cameras. The caps are visual bodies
(no collisions): the switch is the TCP's position, the way CausalCircuit's arm "touches" a button.

The circuit is the spec's own (:class:`Circuit`): lamp i's state in a frame is the spec's mechanism of
``lamp[i].on``, compiled (:mod:`crlgen.schemas.compiler`) and evaluated lamp by lamp in the graph's
order with ``button[j].press`` read as button j's state in that frame and ``lamp[k].on`` as lamp k's
state just computed (other names: the sample's latents and the spec's parameters). The catalogue
spec states CausalCircuit's four-lamp law; another spec may state another circuit (other counts,
other logic) and the video shows it. The lamps' end states, when every planned press lands, are the
sampler's ``lamp[i].on`` latents: the same equations on the same inputs.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from . import _controllers
from ._rooms import TABLE_TOP

#: Most buttons and lamps a panel holds (the lamps stand in one row, BULB_RADIUS apart at the least).
MAX_BUTTONS = MAX_LAMPS = 6

#: Button housing (half side, height) and cap (radius, height above the housing) in m; how far a pressed cap sinks.
HOUSING_HALF, HOUSING_HEIGHT = 0.035, 0.012
CAP_RADIUS, CAP_HEIGHT, CAP_TRAVEL = 0.026, 0.012, 0.009
CAP_TOP = TABLE_TOP + HOUSING_HEIGHT + CAP_HEIGHT
#: The TCP presses a button when within CAP_RADIUS of its centre (x, y) and at most PRESS_DEPTH above its cap (m).
PRESS_DEPTH = 0.01
#: Lamps: a row at the table's far edge (x, m) spanning LAMP_SPAN in y (m), bulb radius and bulb height above the table (m).
LAMP_X = 0.47
LAMP_SPAN = (-0.27, 0.27)
BULB_RADIUS, BULB_HEIGHT = 0.045, 0.17
#: HSV value of a lamp's bulb when off and when lit (saturation 0.55): a lit bulb looks emissive next to the
#: dim glass of an off one; the lamp's hue shows either way.
LAMP_OFF_VALUE, LAMP_ON_VALUE = 0.22, 1.0
CAP_RGB = ((0.92, 0.92, 0.9), (0.15, 0.15, 0.15))  # released, pressed
HOUSING_RGB = (0.35, 0.36, 0.4)


def lamp_y(n: int) -> tuple[float, ...]:
    """The y (m) of ``n`` lamps spread evenly over LAMP_SPAN (one lamp: in the middle), rounded to 1 um."""
    lo, hi = LAMP_SPAN
    if n == 1:
        return (round(0.5 * (lo + hi), 6),)
    return tuple(round(lo + (hi - lo) * k / (n - 1), 6) for k in range(n))


class Circuit:
    """The spec's lamp law: ``lamp[i].on``'s mechanisms, compiled, evaluated on button states.

    ``spec`` is a ``DatasetSpec`` that passed :func:`circuit_problems` with ``n_buttons`` buttons and ``n_lamps``
    lamps. Calling it maps button states (..., B) (0/1) and the sample values of the other names the mechanisms
    read (``env``: latent -> float or array broadcasting against the leading shape) to lamp states (..., L)
    float64 0/1, evaluated lamp by lamp in the graph's topological order; a lamp is lit where its mechanism is
    non-zero, as the sampler casts a boolean latent.
    """

    def __init__(self, spec, n_buttons: int, n_lamps: int) -> None:
        from ...schemas.compiler import compile_expression  # noqa: PLC0415 - numpy closures, not spec data

        graph = spec.graph
        lamps = {f"lamp[{k}].on": k for k in range(n_lamps)}
        self.n_buttons, self.n_lamps = n_buttons, n_lamps
        self._order = [(lamps[n.name], compile_expression(n.mechanism)) for n in graph.nodes if n.name in lamps]
        own = {f"button[{j}].press" for j in range(n_buttons)} | set(lamps)
        #: Latents the mechanisms read besides the buttons and lamps (taken per sample from the batch).
        self.latents = tuple(sorted({p for n in graph.nodes if n.name in lamps for p in n.parents} - own))
        self._parameters = {p: float(spec.parameters[p]) for n in graph.nodes if n.name in lamps for p in n.parameters}

    def sample_env(self, latents: Mapping[str, np.ndarray], i: int | slice) -> dict[str, np.ndarray]:
        """The values the mechanisms read besides buttons and lamps, for sample ``i`` (or rows ``i``) of a batch."""
        return {name: np.asarray(latents[name], dtype=np.float64)[i] for name in self.latents}

    def __call__(self, buttons: np.ndarray, env: Mapping[str, np.ndarray | float]) -> np.ndarray:
        b = np.asarray(buttons, dtype=np.float64)
        values: dict[str, np.ndarray | float] = {**self._parameters, **env}
        values.update({f"button[{j}].press": b[..., j] for j in range(self.n_buttons)})
        out = np.zeros(b.shape[:-1] + (self.n_lamps,), dtype=np.float64)
        for k, law in self._order:
            on = (np.broadcast_to(law(values), b.shape[:-1]) != 0).astype(np.float64)
            values[f"lamp[{k}].on"] = on
            out[..., k] = on
        return out


def circuit_problems(spec, n_buttons: int, n_lamps: int) -> list[str]:
    """Why the spec's ``lamp[i].on`` mechanisms cannot drive the lamps frame by frame ("path: message" lines): each lamp
    needs a boolean ``lamp[k].on`` with a mechanism, without noise, the same in every domain, not intervened on
    (the lamps follow the buttons), reading no parameter a domain changes."""
    from ...schemas.graph import mechanism_names  # noqa: PLC0415
    from ...schemas.variables import NOISE_NAME  # noqa: PLC0415

    out = []
    graph = spec.graph
    names = set(graph.names)
    changed = {p for dom in spec.domains.values() for p in dom.parameters}
    for k in range(n_lamps):
        name = f"lamp[{k}].on"
        path = f"variables.{name}"
        if name not in names:
            out.append(f"{path}: robotics/buttons drives lamp {k} by this variable's mechanism; declare it "
                       f"(type: boolean, e.g. mechanism: \"button[{min(k, n_buttons - 1)}].press\")")
            continue
        node = graph.node(name)
        if node.mechanism is None:
            out.append(f"{path}: robotics/buttons drives lamp {k} by its mechanism; give it one (a function of "
                       f"button[j].press and lamp[i].on)")
            continue
        if getattr(node.variable, "type", None) != "boolean":
            out.append(f"{path}: a lamp is on or off; declare it `type: boolean`")
        if NOISE_NAME in mechanism_names(node.mechanism):
            out.append(f"{path}: the lamps follow the buttons in every frame without noise; drop '{NOISE_NAME}' "
                       f"from the mechanism")
        for p in node.parameters:
            if p in changed:
                out.append(f"{path}: reads the parameter {p!r}, which a domain changes; the circuit is one for the dataset")
        for dname, dom in spec.domains.items():
            if any(o in (name, "lamp[i].on") for o in dom.overrides):
                out.append(f"domains.{dname}.overrides.{name}: the circuit is one for the dataset; change buttons instead")
    for path, targets in _intervened(spec):
        for t in targets:
            if t.startswith("lamp[") and t.endswith("].on"):
                out.append(f"{path}.{t}: the lamps follow the buttons in every frame; intervene on button[j].press")
    return out


def _intervened(spec) -> list[tuple[str, list[str]]]:
    """(path, intervened variable names) of the spec's interventions, domains' interventions and counterfactuals."""
    out = []
    targets = getattr(spec.interventions, "targets", None)
    if targets:
        out.append(("interventions.targets", list(targets)))
    cf = spec.counterfactuals
    if cf is not None and getattr(cf, "intervention", None):
        out.append(("counterfactuals.intervention", list(cf.intervention)))
    return out


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """How far (m) two square housings centred at ``a``, ``b`` (x, y) overlap (0 when they do not)."""
    d = 2 * HOUSING_HALF - np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return float(min(d[0], d[1])) if d[0] > 0 and d[1] > 0 else 0.0


def pressed(tcp: np.ndarray, centre: np.ndarray) -> bool:
    """Whether a TCP at ``tcp`` (x, y, z m) presses the button centred at ``centre`` (x, y m)."""
    return bool(np.hypot(tcp[0] - centre[0], tcp[1] - centre[1]) <= CAP_RADIUS and tcp[2] <= CAP_TOP + PRESS_DEPTH)


class PressSequence:
    """Presses the planned buttons in index order: one press controller (:class:`._controllers.Controller`,
    task ``press``) per button, each starting where the last one ended; then holds its last command.

    ``targets`` (K, 2) m are the centres of the buttons to press; ``gains``, ``fps`` and ``start`` (the TCP's
    initial position, m) as for the controller. Same interface as the controller: ``step`` returns a
    :class:`._controllers.Command`; ``cmd``, ``yaw``, ``opening``, ``phase`` hold the last command.
    """

    def __init__(self, targets: np.ndarray, gains: _controllers.Gains, fps: float, start: np.ndarray) -> None:
        self.targets = [np.array([x, y, CAP_TOP]) for x, y in np.asarray(targets, dtype=np.float64).reshape(-1, 2)]
        self.gains, self.fps = gains, fps
        # the press controller presses PRESS_HEIGHT above the surface it is given: the caps' tops
        self._top = CAP_TOP - _controllers.PRESS_HEIGHT
        self._k = 0
        self._ctrl = _controllers.Controller(4, gains, self._top, fps, start)
        if not self.targets:
            self._ctrl.phase = _controllers.PHASES.index("done")
        self._sync()

    def _sync(self) -> None:
        c = self._ctrl
        self.cmd, self.yaw, self.opening, self.phase = c.cmd.copy(), c.yaw, c.opening, c.phase

    def step(self, tcp, objs, yaws, sizes, goal, held) -> _controllers.Command:
        """The command for the steps into the next frame (``objs`` .. ``held`` as the controller's; ``goal`` unused)."""
        done = _controllers.PHASES.index("done")
        if self._ctrl.phase == done and self._k + 1 < len(self.targets):
            self._k += 1
            nxt = _controllers.Controller(4, self.gains, self._top, self.fps, self._ctrl.cmd)
            nxt.yaw, nxt.opening = self._ctrl.yaw, self._ctrl.opening
            self._ctrl = nxt
        target = self.targets[self._k] if self.targets else self._ctrl.cmd
        cmd = self._ctrl.step(tcp, objs, yaws, sizes, target, held)
        self._sync()
        return cmd
