"""MCC, R^2 and SHD: hand-computed values and the numbers scipy / scikit-learn give on the same inputs."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from crlgen.pipeline.metrics import mcc, r2, shd


def test_mcc_of_a_permuted_rescaled_sign_flipped_copy_is_one():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 4))
    z_hat = np.c_[-3 * z[:, 2] + 1, z[:, 0] * 0.5, z[:, 3], 7 * z[:, 1]]
    res = mcc(z, z_hat)
    assert res.mcc == pytest.approx(1.0, abs=1e-12)
    assert res.assignment.tolist() == [1, 3, 0, 2]
    assert mcc(z, np.exp(z_hat), method="spearman").mcc == pytest.approx(1.0, abs=1e-12)  # monotone: ranks agree


def test_mcc_by_hand():
    z = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0]])
    z_hat = np.array([[2.0, 1.0], [4.0, 1.0], [6.0, 0.0], [8.0, 0.0]])
    # |corr| matrix (rows z, columns z_hat): [[1, 2/sqrt5], [1/sqrt5, 0]]. Matching z0 -> 0, z1 -> 1 sums
    # to 1; z0 -> 1, z1 -> 0 sums to 3/sqrt5 = 1.342, so the Hungarian matching takes the second.
    res = mcc(z, z_hat)
    assert res.assignment.tolist() == [1, 0]
    assert res.per_latent.tolist() == pytest.approx([2 / np.sqrt(5), 1 / np.sqrt(5)])
    assert res.mcc == pytest.approx(3 / (2 * np.sqrt(5)))


def test_mcc_agrees_with_scipy_and_a_brute_force_matching():
    from itertools import permutations

    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 3))
    z_hat = z @ rng.normal(size=(3, 3)) + 0.5 * rng.normal(size=(300, 3))
    for method, fn in (("pearson", pearsonr), ("spearman", spearmanr)):
        corr = np.array([[abs(fn(z[:, i], z_hat[:, j])[0]) for j in range(3)] for i in range(3)])
        best = max(np.mean([corr[i, p[i]] for i in range(3)]) for p in permutations(range(3)))
        res = mcc(z, z_hat, method=method)
        assert res.mcc == pytest.approx(best, abs=1e-10)
        assert res.per_latent == pytest.approx([corr[i, res.assignment[i]] for i in range(3)], abs=1e-10)


def test_mcc_with_fewer_dimensions_and_constant_columns():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(100, 3))
    res = mcc(z, np.c_[z[:, 1], np.ones(100)])
    assert sorted(res.per_latent.tolist())[-1] == pytest.approx(1.0)
    assert (res.assignment == -1).sum() == 1  # three latents, two dimensions
    assert res.mcc == pytest.approx(1 / 3, abs=1e-12)  # the constant column correlates 0


@pytest.mark.parametrize("bad", [np.zeros((2, 2)), np.full((10, 2), np.nan), np.zeros(5)])
def test_mcc_rejects_bad_inputs(bad):
    with pytest.raises(ValueError):
        mcc(bad, bad)
    with pytest.raises(ValueError, match="rows"):
        mcc(np.zeros((10, 2)), np.zeros((9, 2)))
    with pytest.raises(ValueError, match="method"):
        mcc(np.eye(5), np.eye(5), method="kendall")


def test_r2_matches_scikit_learn_fitted_by_hand():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    y = np.c_[x @ [1.0, -2.0, 0.5], np.sin(2 * x[:, 0]) + 0.1 * rng.normal(size=400)]
    train, test = np.arange(300), np.arange(300, 400)
    xs = (x - x[train].mean(0)) / x[train].std(0)
    lin = [r2_score(y[test, j], Ridge(alpha=1e-3).fit(xs[train], y[train, j]).predict(xs[test])) for j in range(2)]
    assert r2(x, y, train, test, model="linear") == pytest.approx(lin, abs=1e-12)
    assert r2(x, y, train, test, model="linear")[0] == pytest.approx(1.0, abs=1e-6)  # y0 is linear in x
    d = np.sqrt(((xs[train][:, None] - xs[train][None]) ** 2).sum(-1))
    gamma = 1 / (2 * np.median(d[d > 0]) ** 2)
    ker = [r2_score(y[test, j], KernelRidge(alpha=1e-3, kernel="rbf", gamma=gamma).fit(xs[train], y[train, j]).predict(xs[test]))
           for j in range(2)]
    got = r2(x, y, train, test, model="kernel")
    assert got == pytest.approx(ker, abs=1e-9)
    assert got[1] > lin[1] + 0.3  # the sine is not linear: the kernel model reads it, the linear one does not


def test_r2_of_a_constant_target_is_undefined():
    x = np.arange(20.0)[:, None]
    out = r2(x, np.c_[x[:, 0], np.ones(20)], np.arange(15), np.arange(15, 20))
    assert out[0] == pytest.approx(1.0) and np.isnan(out[1])


def test_shd_by_hand():
    truth = [("a", "b"), ("b", "c"), ("a", "c")]
    assert shd(truth, truth) == 0
    assert shd(truth, [("a", "b"), ("b", "c")]) == 1  # missing
    assert shd(truth, truth + [("c", "d")]) == 1  # extra
    assert shd(truth, [("b", "a"), ("b", "c"), ("a", "c")]) == 1  # reversed counts once
    assert shd(truth, [("b", "a"), ("c", "b")]) == 3  # two reversed, one missing
    assert shd([], [("a", "b"), ("b", "a")]) == 1  # a 2-cycle on one pair is one change


def test_shd_accepts_matrices_and_networkx():
    nodes = ["a", "b", "c"]
    A = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    B = np.array([[0, 0, 1], [1, 0, 0], [0, 0, 0]])  # b->a reversed, b->c missing
    assert shd(A, B, nodes) == 2
    G = nx.from_numpy_array(A, create_using=nx.DiGraph)
    H = nx.from_numpy_array(B, create_using=nx.DiGraph)
    assert shd(G, H) == 2


def test_shd_reads_lists_of_integer_pairs_as_edges():
    assert shd(nx.DiGraph([(0, 1), (1, 2)]), [(0, 1), (1, 2)]) == 0
    assert shd([(0, 1), (1, 2)], [(0, 1), (1, 2), (2, 3)]) == 1
    graph_json = {"edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "c"}]}
    assert shd(graph_json, [("a", "b"), ("c", "b")]) == 1
    with pytest.raises(ValueError, match="square"):
        shd(np.zeros((2, 3)), [])
    with pytest.raises(ValueError, match="pair"):
        shd([("a", "b", "c")], [])


def test_mcc_never_exceeds_one():
    z = np.linspace(0, 1, 7)[:, None] * np.array([[1.0, 3.0]])
    assert mcc(z, z * 1e-3 + 5).per_latent.max() <= 1.0
