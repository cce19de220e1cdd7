"""The statistics check: nonlinear and conditional dependence the graph forbids fails it; a store too
small for a test says so, per test, in the report and on the command line, without failing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from crlgen.pipeline._plan import make_plan
from crlgen.pipeline._run import RunOptions, run
from crlgen.pipeline._scm import CompiledSCM
from crlgen.pipeline._urls import resolve
from crlgen.pipeline._validate import summary_lines, validate_store
from crlgen.pipeline._validate_stats import (CI_MAX_ROWS, MIN_BINNED_SAMPLES, MIN_CI_SAMPLES, MIN_INDEPENDENCE_SAMPLES,
                                             MIN_OPTION_SAMPLES, TOO_FEW, _bin_codes, _standard_ranks, chi2_binned_p,
                                             kci_p, spearman_p)
from support.cli import run_cli
from support.stores import check_by_name, latent_spring, rewrite_marker


@pytest.fixture(scope="module")
def spring_latents(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stats") / "spring.zarr"
    assert run(latent_spring(), resolve(str(root)), RunOptions(executor="inline")).valid
    return root


def _centred(x: np.ndarray) -> np.ndarray:
    """x mapped onto [-1, 1] by its observed range (h is uniform, so this is symmetric around 0)."""
    return (2 * x - x.max() - x.min()) / (x.max() - x.min())


def _tamper(src: Path, dst: Path, change) -> dict:
    """Copy a store, let ``change(lat, noise, names)`` rewrite latents and noise, recompute l from its
    equation (so that only the statistics can notice), forge every shard's checksums, validate."""
    import zarr

    shutil.copytree(src, dst)
    plan = make_plan(latent_spring())
    model = CompiledSCM(plan.spec)
    g = zarr.open_group(str(dst), mode="r+")
    lat, noise, mask = np.asarray(g["latents"][:]), np.asarray(g["noise"][:]), np.asarray(g["intervention_mask"][:])
    names = list(plan.spec.graph.names)
    change(lat, noise, mask, names)
    l = names.index("l")
    env = {p: v[np.asarray(g["domain"][:])] for p, v in model.param_table.items()}
    env.update({n: lat[:, j] for j, n in enumerate(names)}, eps=noise[:, l])
    lat[:, l] = np.where(mask[:, l], lat[:, l], model.mech[l](env))
    g["latents"][:], g["noise"][:] = lat, noise
    for s in range(len(plan.shards)):
        rewrite_marker(dst, plan, s)
    return validate_store(resolve(str(dst)))


def test_good_store_runs_every_kind_of_test_and_passes(spring_latents):
    stats = check_by_name(validate_store(resolve(str(spring_latents))), "statistics")
    assert stats["passed"] and stats["details"]["not_tested"] == []
    kinds = stats["details"]["tests_by_kind"]
    assert kinds["spearman"] == kinds["chi_square"] > 0 and kinds["ks"] > 0
    ci = stats["details"]["conditional_independence"]
    # the spring's local Markov statements: l given its parents m and k, in both domains; m has no noise
    assert {f"domain {d}: l _||_ {y} | m, k" for d in ("earth", "moon") for y in ("h", "r", "rho")} <= set(ci["statements_tested"])
    assert kinds["kci"] == len(ci["statements_tested"]) and ci["statements_not_tested_over_cap"] == 0
    assert "m" in ci["deterministic_given_parents"]


def test_nonlinear_dependence_between_roots_fails(spring_latents, tmp_path):
    """k = lo + (hi - lo) u^2 with u = h mapped onto [-1, 1] (uniform): the graph says the roots h and k are
    independent; their rank correlation is about 0, the binned chi-square test sees the parabola."""
    def change(lat, noise, mask, names):
        h, k = names.index("h"), names.index("k")
        lo, hi = latent_spring().graph.node("k").variable.bounds()
        new_k = lo + (hi - lo) * _centred(lat[:, h]) ** 2
        lat[:, k] = np.where(mask[:, k], lat[:, k], new_k)  # intervened rows keep their do() values
        noise[:, k] = new_k

    stats = check_by_name(_tamper(spring_latents, tmp_path / "t.zarr", change), "statistics")
    assert not stats["passed"]
    hk = [p for p in stats["problems"] if ": h vs k:" in p]
    assert hk and all("binned chi-square" in p for p in hk)  # Spearman alone would have passed it


def test_nonlinear_conditional_dependence_fails_kci(spring_latents, tmp_path):
    """l's noise gains 0.002 (u^2 - 1/3), u = h mapped onto [-1, 1]: l still obeys its equation of the stored
    noise, but l is no longer independent of h given its parents m and k."""
    def change(lat, noise, mask, names):
        u = _centred(lat[:, names.index("h")])
        noise[:, names.index("l")] += 0.002 * (u ** 2 - 1 / 3)

    report = _tamper(spring_latents, tmp_path / "t.zarr", change)
    failed = {c["name"] for c in report["checks"] if not c["passed"]}
    assert "statistics" in failed and "mechanisms" not in failed  # (re-sampling a shard also notices)
    problems = check_by_name(report, "statistics")["problems"]
    assert any("l _||_ h | m, k" in p and f"KCI, {CI_MAX_ROWS} rows" in p for p in problems), problems


def test_kci_sees_nonlinear_and_conditional_dependence_rank_tests_miss():
    rng = np.random.default_rng(7)
    n = 300
    x = rng.uniform(-1, 1, n)
    y = x ** 2 + 0.05 * rng.normal(size=n)
    ranks = _standard_ranks(np.stack([x, y], axis=1))
    assert spearman_p(ranks[:, 0], ranks[:, 1]) > 0.05  # no monotone trend
    assert kci_p(x, y, None) < 1e-4
    assert chi2_binned_p(_bin_codes(x), _bin_codes(y)) < 1e-4
    # a common cause: x and w depend on each other, but not given z
    z = rng.normal(size=n)
    xz, wz = z + 0.3 * rng.normal(size=n), z ** 2 + 0.3 * rng.normal(size=n)
    assert kci_p(xz, wz, None) < 1e-4 and kci_p(xz, wz, z[:, None]) > 0.01
    # ... and a nonlinear dependence given z is found
    vz = np.sin(3 * xz) + z + 0.1 * rng.normal(size=n)
    assert kci_p(xz, vz, z[:, None]) < 1e-4


def test_spearman_matches_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    a = rng.normal(size=(200, 3))
    a[:, 1] += 0.2 * a[:, 0]
    a[:, 2] = np.round(a[:, 2])  # ties
    r = _standard_ranks(a)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert spearman_p(r[:, i], r[:, j]) == pytest.approx(spearmanr(a[:, i], a[:, j]).pvalue, rel=1e-9)


def test_small_store_lists_each_test_it_could_not_run(tmp_path, capsys):
    """150 samples: about 45 observational samples per domain (enough for rank correlations, not for the
    binned chi-square or KCI) and about 15 per intervention option (too few for KS)."""
    root = tmp_path / "small.zarr"
    result = run(latent_spring(samples=150), resolve(str(root)), RunOptions(executor="inline"))
    assert result.valid  # too few samples is not a failure
    stats = check_by_name(result.report, "statistics")
    missing = stats["details"]["not_tested"]
    for t in missing:
        assert t["reason"] == TOO_FEW and 0 <= t["n"] < t["min"]
    need = sorted((t["test"].split(":")[0], t["min"]) for t in missing)
    assert need == [("domain earth", MIN_BINNED_SAMPLES), ("domain earth", MIN_CI_SAMPLES), ("domain moon", MIN_BINNED_SAMPLES),
                    ("domain moon", MIN_CI_SAMPLES), ("option 0 (k)", MIN_OPTION_SAMPLES), ("option 1 (h)", MIN_OPTION_SAMPLES),
                    ("option 2 (rho)", MIN_OPTION_SAMPLES)]
    assert MIN_INDEPENDENCE_SAMPLES <= min(t["n"] for t in missing if t["test"].startswith("domain"))
    assert stats["details"]["tests_by_kind"]["spearman"] > 0 and stats["details"]["tests_by_kind"]["kci"] == 0
    assert stats["details"]["options_skipped_small"] == [0, 1, 2]
    lines = [s for s in summary_lines(result.report) if "not tested: too few samples" in s]
    assert len(lines) == len(missing) and any("KCI" in s and f"needs {MIN_CI_SAMPLES}" in s for s in lines)
    code, out, _ = run_cli(capsys, "validate", str(root))
    assert code == 0 and out.count("not tested: too few samples") == len(missing) and out.strip().endswith("passed")
