"""The button panel and lamp circuit of ``robotics/buttons`` (after CausalCircuit, Brehmer et al. 2022,
"Weakly supervised causal representation learning", NeurIPS): geometry, the circuit law and the
scripted press sequence.

Buttons are latching push-buttons: a button switches on (and stays on) in the first frame whose TCP
lies within ``CAP_RADIUS`` m of its centre in x, y and at most ``PRESS_DEPTH`` m above its cap. A latch
(not a spring return) keeps each button's state readable in every later frame, so a video holds the
state before and after each press, and the lamps stay lit for the cameras. The caps are visual bodies
(no collisions): the switch is the TCP's position, the way CausalCircuit's arm "touches" a button.

The circuit (:data:`CIRCUIT`), evaluated on the buttons' states in every frame, lamp by lamp:

- ``lamp[0] = button[0]``
- ``lamp[1] = button[1] or lamp[0]``
- ``lamp[2] = button[2]``
- ``lamp[3] = button[3] or (lamp[1] and lamp[2])``

The catalogue spec states the same law as the mechanisms of its ``lamp[i].on`` latents (the lamps'
end states when every planned press ``button[j].press`` lands), so the graph sidecar shows it; the
world's ``circuit`` check holds the stored states and the spec's latents to it.
"""

from __future__ import annotations

import numpy as np

from . import _controllers
from ._rooms import TABLE_TOP

N_BUTTONS = N_LAMPS = 4
#: lamp -> (its own button, lamp parents joined by "and"): lamp = button or (all parents on) (no parents: button only).
CIRCUIT: tuple[tuple[int, tuple[int, ...]], ...] = ((0, ()), (1, (0,)), (2, ()), (3, (1, 2)))

#: Button housing (half side, height) and cap (radius, height above the housing) in m; how far a pressed cap sinks.
HOUSING_HALF, HOUSING_HEIGHT = 0.035, 0.012
CAP_RADIUS, CAP_HEIGHT, CAP_TRAVEL = 0.026, 0.012, 0.009
CAP_TOP = TABLE_TOP + HOUSING_HEIGHT + CAP_HEIGHT
#: The TCP presses a button when within CAP_RADIUS of its centre (x, y) and at most PRESS_DEPTH above its cap (m).
PRESS_DEPTH = 0.01
#: Lamps: a row at the table's far edge (x, m), their y (m), bulb radius and bulb height above the table (m).
LAMP_X = 0.47
LAMP_Y = (-0.27, -0.09, 0.09, 0.27)
BULB_RADIUS, BULB_HEIGHT = 0.045, 0.17
#: HSV value of a lamp's bulb when off and when lit (saturation 0.55): a lit bulb looks emissive next to the
#: dim glass of an off one; the lamp's hue shows either way.
LAMP_OFF_VALUE, LAMP_ON_VALUE = 0.22, 1.0
CAP_RGB = ((0.92, 0.92, 0.9), (0.15, 0.15, 0.15))  # released, pressed
HOUSING_RGB = (0.35, 0.36, 0.4)


def lamps(buttons: np.ndarray) -> np.ndarray:
    """The circuit's lamp states (..., 4) float 0/1 from button states (..., 4) (0/1), lamp by lamp in order."""
    b = np.asarray(buttons, dtype=np.float64) > 0.5
    out = np.zeros(b.shape[:-1] + (N_LAMPS,), dtype=bool)
    for i, (own, parents) in enumerate(CIRCUIT):
        on = b[..., own]
        if parents:
            on = on | np.logical_and.reduce([out[..., k] for k in parents])
        out[..., i] = on
    return out.astype(np.float64)


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
