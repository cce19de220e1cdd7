"""Metrics of causal representation learning: MCC, held-out R^2, and the SHD between graphs.

- :func:`mcc`: mean correlation coefficient after matching learned dimensions to true latents
  with the Hungarian algorithm (scipy's ``linear_sum_assignment``), Pearson or Spearman
  (Hyvarinen & Morioka 2016; Khemakhem et al., "Variational Autoencoders and Nonlinear ICA", 2020).
- :func:`r2`: how well each true latent is predicted from the representation by a linear or a
  kernel ridge regression (scikit-learn) fitted on training rows and scored on held-out rows.
- :func:`shd`: structural Hamming distance between two directed graphs: the number of node pairs
  whose edges differ (a missing, extra or reversed edge counts once; Tsamardinos et al. 2006).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

__all__ = ["MCCResult", "mcc", "r2", "shd"]


@dataclass(frozen=True)
class MCCResult:
    """``mcc``: the mean of ``per_latent``; ``per_latent[j]`` the |correlation| of true latent j with
    the learned dimension ``assignment[j]`` it was matched to (-1 when there were fewer dimensions)."""

    mcc: float
    per_latent: np.ndarray
    assignment: np.ndarray


def _check(z: np.ndarray, name: str) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 3 or not np.isfinite(z).all():
        raise ValueError(f"{name}: expected a finite (n, d) array with n >= 3, got shape {z.shape}")
    return z


def mcc(z_true: np.ndarray, z_hat: np.ndarray, method: str = "pearson") -> MCCResult:
    """MCC between true latents (n, L) and a representation (n, K).

    Correlations are absolute (a sign flip is as good as the original); constant columns
    correlate 0. ``method``: ``"pearson"`` or ``"spearman"`` (Pearson on ranks). Raises
    ValueError for mismatched or non-finite inputs.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.stats import rankdata

    a, b = _check(z_true, "z_true"), _check(z_hat, "z_hat")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"z_true has {a.shape[0]} rows, z_hat {b.shape[0]}")
    if method == "spearman":
        a, b = rankdata(a, axis=0), rankdata(b, axis=0)
    elif method != "pearson":
        raise ValueError(f"method: expected 'pearson' or 'spearman', got {method!r}")
    a = a - a.mean(0)
    b = b - b.mean(0)
    na, nb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.abs((a.T @ b) / np.outer(na, nb))
    corr = np.clip(np.nan_to_num(corr, nan=0.0), 0.0, 1.0)  # |r| <= 1 (rounding can give 1 + 2e-16)
    rows, cols = linear_sum_assignment(corr, maximize=True)
    per = np.zeros(a.shape[1])
    assignment = np.full(a.shape[1], -1)
    per[rows], assignment[rows] = corr[rows, cols], cols
    return MCCResult(float(per.mean()), per, assignment)


def r2(z_hat: np.ndarray, z_true: np.ndarray, train: np.ndarray, test: np.ndarray, model: str = "linear",
       alpha: float = 1e-3) -> np.ndarray:
    """Held-out R^2 of each true latent (columns of ``z_true``) regressed on ``z_hat``.

    The regression (``"linear"``: ridge; ``"kernel"``: RBF kernel ridge, bandwidth from the
    median pairwise distance) is fitted on rows ``train`` of standardised ``z_hat`` and scored
    on rows ``test`` with scikit-learn's ``r2_score`` (1 is perfect, 0 is the test mean, can be
    negative). Returns (L,) float64. Raises ValueError for bad shapes or an unknown model.
    """
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import StandardScaler

    x, y = _check(z_hat, "z_hat"), _check(z_true, "z_true")
    train, test = np.asarray(train), np.asarray(test)
    if len(train) < 3 or len(test) < 2:
        raise ValueError("r2 needs at least 3 training and 2 test rows")
    scaler = StandardScaler().fit(x[train])
    xs_train, xs_test = scaler.transform(x[train]), scaler.transform(x[test])
    if model == "linear":
        reg = Ridge(alpha=alpha)
    elif model == "kernel":
        sub = xs_train[:: max(1, len(xs_train) // 500)]
        d = np.sqrt(((sub[:, None, :] - sub[None, :, :]) ** 2).sum(-1))
        med = np.median(d[d > 0]) if (d > 0).any() else 1.0
        reg = KernelRidge(alpha=alpha, kernel="rbf", gamma=1.0 / (2.0 * med**2))
    else:
        raise ValueError(f"model: expected 'linear' or 'kernel', got {model!r}")
    out = np.empty(y.shape[1])
    for j in range(y.shape[1]):
        if np.ptp(y[test, j]) == 0:
            out[j] = np.nan  # a constant latent: R^2 is undefined
            continue
        reg.fit(xs_train, y[train, j])
        out[j] = r2_score(y[test, j], reg.predict(xs_test))
    return out


def _edges(g, nodes: Sequence[str] | None) -> set[tuple[str, str]]:
    if hasattr(g, "edges") and hasattr(g, "nodes"):  # a networkx graph
        return {(str(a), str(b)) for a, b in g.edges}
    if isinstance(g, dict) and "edges" in g:  # a crlgen causal_graph.json
        return {(str(e["source"]), str(e["target"])) for e in g["edges"]}
    if isinstance(g, np.ndarray):  # an adjacency matrix
        if g.ndim != 2 or g.shape[0] != g.shape[1]:
            raise ValueError(f"an adjacency matrix must be square, got shape {g.shape}")
        names = list(nodes) if nodes is not None else [str(i) for i in range(g.shape[0])]
        if len(names) != g.shape[0]:
            raise ValueError(f"nodes: {len(names)} names for a {g.shape[0]}x{g.shape[0]} matrix")
        return {(names[i], names[j]) for i, j in zip(*np.nonzero(g))}
    edges = set()
    for e in g:
        if len(e) != 2:
            raise ValueError(f"an edge is a (parent, child) pair, got {e!r}")
        edges.add((str(e[0]), str(e[1])))
    return edges


def shd(a, b, nodes: Sequence[str] | None = None) -> int:
    """Structural Hamming distance between two directed graphs.

    Each graph is a numpy adjacency matrix (``a[i, j]`` = edge i -> j, node order ``nodes``),
    a networkx DiGraph, a crlgen ``causal_graph.json`` mapping, or any other iterable of
    (parent, child) pairs (a list of pairs is always read as edges, never as a matrix). A
    missing, an extra and a reversed edge each count 1 (a reversal is one change, not two).
    Raises ValueError for a malformed graph.
    """
    ea = _edges(a, nodes)
    eb = _edges(b, nodes)
    pairs: Iterable[frozenset] = {frozenset(e) for e in ea | eb}
    return sum(1 for p in pairs if {e for e in ea if frozenset(e) == p} != {e for e in eb if frozenset(e) == p})
