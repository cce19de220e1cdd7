"""The Intelligent Driver Model (IDM), vectorised: Treiber, Hennecke and Helbing (2000), "Congested traffic
states in empirical observations and microscopic simulations", Phys. Rev. E 62:1805, eq. (1)-(2).

    a = a_max * [1 - (v / v0)^delta - (s* / s)^2],   s* = s0 + max(0, v T + v dv / (2 sqrt(a_max b)))

with speed ``v`` (m/s), desired speed ``v0`` (m/s), gap ``s`` (m, bumper to bumper or to a standing obstacle),
approach rate ``dv = v - v_leader`` (m/s), time headway ``T`` (s), jam distance ``s0`` (m), maximum acceleration
``a_max`` and comfortable deceleration ``b`` (m/s^2). A vehicle without a leader (``s = inf``) drives the free-road
term only. The result is clipped to [-``max_brake``, a_max]: the IDM's braking is unbounded in an emergency, a car's
is not (9 m/s^2 ~ full braking on dry asphalt).
"""

from __future__ import annotations

import numpy as np

#: IDM defaults (Treiber and Kesting, *Traffic Flow Dynamics*, 2013, table 11.2, city traffic): jam distance (m),
#: acceleration exponent; and the physical braking limit (m/s^2).
S0, DELTA, MAX_BRAKE = 2.0, 4.0, 9.0


def idm_acceleration(v: np.ndarray, v0: np.ndarray, s: np.ndarray, dv: np.ndarray, a_max: np.ndarray, b: np.ndarray,
                     T: np.ndarray, s0: float = S0, delta: float = DELTA, max_brake: float = MAX_BRAKE) -> np.ndarray:
    """IDM acceleration (m/s^2), float64, broadcast over the inputs (see the module docstring for the symbols and
    units). ``s`` may hold ``inf`` (free road); ``s`` <= 0 counts as a gap of 1 cm (maximal braking)."""
    v = np.asarray(v, np.float64)
    free = 1.0 - (v / np.maximum(v0, 1e-3)) ** delta
    star = s0 + np.maximum(0.0, v * T + v * dv / (2.0 * np.sqrt(a_max * b)))
    gap = np.maximum(np.asarray(s, np.float64), 0.01)
    inter = np.where(np.isfinite(gap), (star / np.where(np.isfinite(gap), gap, 1.0)) ** 2, 0.0)
    return np.clip(a_max * (free - inter), -max_brake, a_max)
