"""MOBIL lane changes ("Minimizing Overall Braking Induced by Lane changes"), vectorised: Kesting, Treiber and
Helbing (2007), "General lane-changing model MOBIL for car-following models", Transp. Res. Rec. 1999:86-94,
eq. (1)-(3) (symmetric rules, no keep-right bias).

A driver changes lane when it is safe for the new follower and the advantage beats a threshold:

    safety:    a~_n >= -b_safe
    incentive: a~_c - a_c + p [(a~_n - a_n) + (a~_o - a_o)] > a_thr

with ``a_c``/``a~_c`` the driver's own IDM acceleration now / after the change, ``a_n``/``a~_n`` the new
follower's and ``a_o``/``a~_o`` the old follower's (m/s^2), politeness ``p`` (0 selfish .. 1 altruistic),
``b_safe`` (m/s^2) and ``a_thr`` (m/s^2).
"""

from __future__ import annotations

import numpy as np

#: Kesting et al. 2007, table 1 (IDM): safe braking (m/s^2), changing threshold (m/s^2).
B_SAFE, A_THRESHOLD = 4.0, 0.1


def mobil_wants(a_c: np.ndarray, a_c_new: np.ndarray, a_n: np.ndarray, a_n_new: np.ndarray, a_o: np.ndarray,
                a_o_new: np.ndarray, politeness: np.ndarray, b_safe: float = B_SAFE, threshold: float = A_THRESHOLD) -> np.ndarray:
    """(n,) bool: whether each driver changes to the candidate lane (all inputs (n,) float64 m/s^2; a missing
    follower contributes 0 to both of its terms: pass equal values)."""
    safe = a_n_new >= -b_safe
    gain = (a_c_new - a_c) + politeness * ((a_n_new - a_n) + (a_o_new - a_o))
    return safe & (gain > threshold)
