"""Property tests of the compiled SCM sampler (pipeline.scm.CompiledSCM).

Specs are small and latents-only (no world). Expected values are recomputed here
with numpy from the stored parents and noise, not with the pipeline's compiler.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crlgen.pipeline._scm import BLOCK, ROLE_COUNTERFACTUAL, ROLE_FACTUAL, ROLE_NONE, CompiledSCM, SampleBatch
from crlgen.schemas import DatasetSpec, SpecError

#: Every per-sample array of a SampleBatch (all dataclass fields but the range and the names).
FIELDS = tuple(f.name for f in dataclasses.fields(SampleBatch) if f.name not in ("start", "stop", "names", "resampled"))  # resampled: tests/pipeline/test_feasible.py
G_EARTH, G_MOON = 9.81, 1.62

#: Every variable type, domains with parameter/mechanism/noise overrides, every intervention kind, pairs.
RICH: dict[str, Any] = {
    "name": "rich", "samples": 3000, "seed": 3, "parameters": {"g": G_EARTH},
    "variables": {
        "a": {"range": [0, 1], "noise": "uniform(0, 1)"},
        "u": {"range": [0, 5], "noise": "uniform(0, 5)"},
        "n": {"type": "integer", "range": [0, 10], "noise": "uniform(0, 10)"},
        "col": {"type": "categorical", "levels": ["r", "g", "b"], "noise": "categorical(0.2, 0.3, 0.5)"},
        "flag": {"type": "boolean", "noise": "bernoulli(0.3)"},
        "b": {"mechanism": "g * a + 0.5 * n + eps", "noise": "normal(0, 0.1)"},
        "d": {"mechanism": "2 * b + col + flag"},
        "e": {"mechanism": "sqrt(abs(b)) + eps", "noise": "laplace(0, 0.2)"},
        "k": {"type": "integer", "mechanism": "n * 2 + flag"},
    },
    "domains": {
        "earth": {"weight": 0.6},
        "moon": {"weight": 0.4, "parameters": {"g": G_MOON}, "overrides": {"e": "sqrt(abs(b)) + 1 + eps"},
                 "noise": {"a": "uniform(0.5, 1)"}},
    },
    "interventions": {"regime": "single_node", "fraction": 0.3, "targets": {
        "a": "do(0.25)", "u": "do(uniform(1, 2))", "n": "do(uniform(2, 8))", "flag": "do(1)", "col": "do(2)",
        "b": "shift(1.5)", "e": "scale(-2)", "d": "soft('3 * b')", "k": "shift(3)",
    }},
    "counterfactuals": {"fraction": 0.2, "intervention": "do(a = 0.75)"},
}


def make(data: dict, **changes: Any) -> CompiledSCM:
    d = copy.deepcopy(data)
    for k, v in changes.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return CompiledSCM(DatasetSpec.from_dict(d))


def col(batch: SampleBatch, name: str) -> np.ndarray:
    return batch.column(name)


# ----- spec variants for the determinism properties -----------------------------------------------
def _rich(n: int, seed: int) -> dict:
    d = copy.deepcopy(RICH)
    d.update(samples=n, seed=seed)
    if n < 2:
        d.pop("counterfactuals")
    return d


def _exact_domains(n: int, seed: int) -> dict:
    d = _rich(n, seed)
    d.pop("counterfactuals", None)
    d["domains"]["earth"] = {"samples": n // 3}
    d["domains"]["moon"] = {**d["domains"]["moon"], "samples": n - n // 3}
    d["domains"]["moon"].pop("weight")
    return d


def _explicit_sets_templates(n: int, seed: int) -> dict:
    d = {"name": "explicit", "samples": n, "seed": seed, "objects": 2,
         "variables": {"ball[i].r": {"range": [0, 1], "noise": "beta(2, 2)"},
                       "ball[i].m": {"mechanism": "ball[i].r**3 * 4 + eps", "noise": "exponential(0.1)"},
                       "total": {"mechanism": "ball[0].m + ball[1].m"}},
         "interventions": {"regime": "explicit", "assignments": [
             {"samples": sorted({0, n // 2, n - 1}), "targets": {"ball[i].r": "do(0.5)"}},
             {"samples": {"start": n // 4, "stop": n // 4 + 1}, "targets": {"total": "do(lognormal(0, 1))"}}]}}
    if n // 4 in (0, n // 2, n - 1):
        d["interventions"]["assignments"].pop()
    return d


def _sets_edits(n: int, seed: int) -> dict:
    d = {"name": "edits", "samples": n, "seed": seed, "video": {"fps": 10, "frames": 20},
         "variables": {"a": {"noise": "mixture(normal(0, 1), uniform(5, 6), weights=[1, 2])"},
                       "b": {"mechanism": "a * 2 + eps", "noise": "normal(0, 1)"}},
         "interventions": {"regime": "sets", "fraction": 0.4, "sets": [
             {"targets": {"a": "do(normal(0, 1))", "b": "soft('a + eps', noise=uniform(0, 1))"}, "weight": 2},
             {"targets": {"b": "scale(0.5)"}}]},
         "temporal_edits": [{"at_frame": 3, "do": "ball[0].vx += 1.5", "fraction": 0.3},
                            {"at_frame": 5, "do": "ball[0].vx ~ uniform(0, 1)", "fraction": 0.5}]}
    if n >= 2:
        d["counterfactuals"] = {"fraction": 0.25, "edit": {"at_frame": 2, "do": "ball[0].vx *= 2"}}
    return d


VARIANTS: dict[str, Callable[[int, int], dict]] = {
    "rich": _rich, "exact_domains": _exact_domains, "explicit_templates": _explicit_sets_templates, "sets_edits": _sets_edits,
}


def assert_batches_equal(x: SampleBatch, y: SampleBatch) -> None:
    assert x.names == y.names
    for f in FIELDS:
        a, b = getattr(x, f), getattr(y, f)
        assert a.dtype == b.dtype and a.shape == b.shape, f
        np.testing.assert_array_equal(a, b, err_msg=f, strict=True)
        if a.dtype.kind == "f":  # bitwise, NaNs included
            assert a.tobytes() == b.tobytes(), f


def concat(parts: list[SampleBatch]) -> dict[str, np.ndarray]:
    return {f: np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS}


@st.composite
def dataset_and_cuts(draw):
    variant = draw(st.sampled_from(sorted(VARIANTS)))
    n = draw(st.one_of(st.integers(1, 5000), st.sampled_from([1, 2, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 5000])))
    seed = draw(st.integers(0, 2**63 - 1))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=6)))
    return variant, n, seed, [0, *cuts, n]


# ----- (a) determinism ------------------------------------------------------------------------------
def test_fields_cover_the_batch():
    assert set(FIELDS) >= {"latents", "noise", "domain", "intervention", "intervention_mask", "intervention_value", "pair",
                           "pair_role", "edit_frame", "edit_value", "seeds"}


@settings(max_examples=60, deadline=None)
@given(dataset_and_cuts(), st.randoms(use_true_random=False))
def test_shards_concatenate_to_the_whole(case, rnd):
    variant, n, seed, bounds = case
    data = VARIANTS[variant](n, seed)
    whole = CompiledSCM(DatasetSpec.from_dict(data)).sample(0, n)
    assert len(whole) == n and whole.latents.shape == (n, len(whole.names))

    pieces = list(zip(bounds, bounds[1:]))  # may include empty pieces
    order = list(range(len(pieces)))
    rnd.shuffle(order)
    fresh = CompiledSCM(DatasetSpec.from_dict(data))  # another process would compile its own
    got = {i: fresh.sample(*pieces[i]) for i in order}  # sampled out of order
    parts = [got[i] for i in range(len(pieces))]
    for (a, b), p in zip(pieces, parts):
        assert (p.start, p.stop, len(p)) == (a, b, b - a)
    joined = concat(parts)
    for f in FIELDS:
        w = getattr(whole, f)
        assert joined[f].dtype == w.dtype, f
        np.testing.assert_array_equal(joined[f], w, err_msg=f"{variant} n={n} cuts={bounds}: {f}", strict=True)
        if w.dtype.kind == "f":
            assert joined[f].tobytes() == w.tobytes(), f
    # and a repeat of the same range is identical
    assert_batches_equal(fresh.sample(0, n), whole)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(sorted(VARIANTS)), st.integers(2, 3000), st.integers(0, 2**32))
def test_seeds_give_different_datasets(variant, n, seed):
    x = CompiledSCM(DatasetSpec.from_dict(VARIANTS[variant](n, seed))).sample(0, n)
    y = CompiledSCM(DatasetSpec.from_dict(VARIANTS[variant](n, seed + 1))).sample(0, n)
    assert not np.array_equal(x.noise, y.noise, equal_nan=True)
    assert not np.array_equal(x.seeds, y.seeds)


def test_seed_zero_and_one_differ():
    x, y = make(RICH, seed=0).sample(0, 3000), make(RICH, seed=1).sample(0, 3000)
    assert not np.array_equal(x.latents, y.latents)
    assert not np.array_equal(x.domain, y.domain)
    assert not np.array_equal(x.intervention, y.intervention)
    assert not np.array_equal(x.pair, y.pair)


def test_sample_range_is_checked():
    m = make(RICH, samples=10)
    with pytest.raises(ValueError):
        m.sample(0, 11)
    with pytest.raises(ValueError):
        m.sample(5, 4)


# ----- (b) interventions, (c) mechanisms, (g) types on the rich spec ------------------------------------
@pytest.fixture(scope="module", params=[0, 1, 12345])
def rich(request) -> tuple[CompiledSCM, SampleBatch]:
    m = make(RICH, seed=request.param, samples=4000)
    return m, m.sample(0, 4000)


def _option_rows(m: CompiledSCM, batch: SampleBatch, target: str) -> np.ndarray:
    """Rows whose regime option targets ``target`` (partners of pairs excluded for the pair's own target)."""
    (o,) = [i for i, opt in enumerate(m.options) if target in opt]
    rows = batch.intervention == o
    if target in m.cf_targets:
        rows &= batch.pair_role != ROLE_COUNTERFACTUAL
    return np.flatnonzero(rows)


def _g(batch: SampleBatch) -> np.ndarray:
    return np.where(batch.domain == 1, G_MOON, G_EARTH)


def _mechanisms(batch: SampleBatch) -> dict[str, np.ndarray]:
    """The spec's equations, in numpy, from the stored parents and noise."""
    L, N = batch.latents, batch.noise
    j = {n: i for i, n in enumerate(batch.names)}
    with np.errstate(all="ignore"):
        return {
            "b": _g(batch) * L[:, j["a"]] + 0.5 * L[:, j["n"]] + N[:, j["b"]],
            "d": 2 * L[:, j["b"]] + L[:, j["col"]] + L[:, j["flag"]],
            "e": np.sqrt(np.abs(L[:, j["b"]])) + np.where(batch.domain == 1, 1.0, 0.0) + N[:, j["e"]],
            "k": np.rint(L[:, j["n"]] * 2 + L[:, j["flag"]]),
        }


def test_hard_interventions_hold_their_values(rich):
    m, batch = rich
    j = m.index
    rows = _option_rows(m, batch, "a")
    assert rows.size > 50
    assert np.all(col(batch, "a")[rows] == 0.25) and np.all(batch.intervention_value[rows, j["a"]] == 0.25)
    for name, value in (("flag", 1.0), ("col", 2.0)):
        rows = _option_rows(m, batch, name)
        assert rows.size > 50 and np.all(col(batch, name)[rows] == value)
    # do(distribution): the stored draw, inside the distribution's support
    rows = _option_rows(m, batch, "u")
    got = col(batch, "u")[rows]
    assert np.array_equal(got, batch.intervention_value[rows, j["u"]])
    assert got.min() >= 1 and got.max() <= 2
    own = batch.pair_role[rows] != ROLE_COUNTERFACTUAL  # a partner shares its factual's draw
    assert np.unique(got[own]).size == own.sum()
    rows = _option_rows(m, batch, "n")  # an integer variable holds the rounded draw
    got, drawn = col(batch, "n")[rows], batch.intervention_value[rows, j["n"]]
    assert np.array_equal(got, np.rint(drawn)) and got.min() >= 2 and got.max() <= 8


def test_shift_scale_and_soft_interventions(rich):
    m, batch = rich
    j, mech = m.index, _mechanisms(batch)
    rows = _option_rows(m, batch, "b")
    assert rows.size > 50
    np.testing.assert_allclose(col(batch, "b")[rows], mech["b"][rows] + 1.5, rtol=1e-12, atol=1e-12)
    assert np.all(batch.intervention_value[rows, j["b"]] == 1.5)
    rows = _option_rows(m, batch, "e")
    np.testing.assert_allclose(col(batch, "e")[rows], mech["e"][rows] * -2, rtol=1e-12, atol=1e-12)
    assert np.all(batch.intervention_value[rows, j["e"]] == -2)
    rows = _option_rows(m, batch, "k")  # shift of an integer child: mechanism, rounded, then shifted
    assert np.array_equal(col(batch, "k")[rows], mech["k"][rows] + 3)
    rows = _option_rows(m, batch, "d")  # soft: the replacement mechanism; no amount to store
    np.testing.assert_allclose(col(batch, "d")[rows], 3 * col(batch, "b")[rows], rtol=1e-12, atol=0)
    assert np.all(np.isnan(batch.intervention_value[rows, j["d"]]))


def test_masks_mark_exactly_the_regimes_targets(rich):
    m, batch = rich
    expected = np.zeros_like(batch.intervention_mask)
    for o, opt in enumerate(m.options):
        for t in opt:
            expected[batch.intervention == o, m.index[t]] = True
    expected[batch.pair_role == ROLE_COUNTERFACTUAL, m.index["a"]] = True
    np.testing.assert_array_equal(batch.intervention_mask, expected)
    assert batch.intervention_mask.sum(axis=1).max() <= 2
    assert np.all(np.isnan(batch.intervention_value[~batch.intervention_mask]))
    # single_node: options are the targets, one each, all used
    assert [list(o) for o in m.options] == [[t] for t in RICH["interventions"]["targets"]]
    assert set(np.unique(batch.intervention)) == {-1, *range(len(m.options))}


def test_intervened_fraction(rich):
    m, batch = rich
    free = batch.pair_role != ROLE_COUNTERFACTUAL
    chosen = (batch.intervention >= 0) & free
    # with pairs, fraction of each block's free rows (unpaired and factuals) are drawn; a partner copies its factual
    blocks = range(0, len(batch), BLOCK)
    assert chosen.sum() == sum(math.floor(free[a:a + BLOCK].sum() * 0.3 + 0.5) for a in blocks)
    assert np.array_equal(batch.intervention[~free], batch.intervention[np.flatnonzero(~free) - 1])
    # so every sample, partner or not, is intervened with probability fraction: 0.3 of all samples
    share = float(np.mean(batch.intervention >= 0))
    assert abs(share - 0.3) < 3 * math.sqrt(0.3 * 0.7 / len(batch)), share


@pytest.mark.parametrize("cf_fraction", [0.1, 0.5])
def test_fractions_count_counterfactual_partners(cf_fraction):
    """An intervention's or edit's ``fraction`` is the share of all samples that carry it, counterfactual
    pairs included (it was inflated by pairs: with half the samples in pairs every sample got every edit)."""
    d = _sets_edits(4000, 7)
    d["counterfactuals"] = {"fraction": cf_fraction, "edit": {"at_frame": 2, "do": "ball[0].vx *= 2"}}
    batch = make(d).sample(0, 4000)
    paired = batch.pair_role != ROLE_NONE
    assert 0.9 * 2 * cf_fraction < paired.mean() <= 2 * cf_fraction
    tol = 3 * math.sqrt(0.25 / 4000)
    assert abs(float(np.mean(batch.intervention >= 0)) - 0.4) < tol
    assert abs(float(np.mean(batch.edit_frame[:, 0] >= 0)) - 0.3) < tol
    assert abs(float(np.mean(batch.edit_frame[:, 1] >= 0)) - 0.5) < tol


def test_edit_value_is_nan_where_the_edit_is_not_applied():
    """``edit_value`` held 0.0 where an edit was not applied: for ``obj[0].vx *= 0.5`` or ``friction = 0.2`` a 0
    reads as "scaled by 0" or "set to 0"; now NaN, as ``intervention_value`` where there is no intervention."""
    batch = make(_sets_edits(2000, 7)).sample(0, 2000)
    applied = batch.edit_frame >= 0
    assert applied.any() and (~applied).any()
    assert np.isnan(batch.edit_value[~applied]).all() and np.isfinite(batch.edit_value[applied]).all()


def test_mechanisms_hold_on_non_intervened_samples(rich):
    m, batch = rich
    mech = _mechanisms(batch)
    for name, expect in mech.items():
        free = ~batch.intervention_mask[:, m.index[name]]
        assert free.sum() > 1000
        np.testing.assert_allclose(col(batch, name)[free], expect[free], rtol=1e-12, atol=1e-15, err_msg=name)
    for root in ("a", "u", "flag", "col"):  # roots are their noise
        free = ~batch.intervention_mask[:, m.index[root]]
        assert np.array_equal(col(batch, root)[free], batch.noise[free, m.index[root]])
    free = ~batch.intervention_mask[:, m.index["n"]]
    assert np.array_equal(col(batch, "n")[free], np.rint(batch.noise[free, m.index["n"]]))
    assert np.all(np.isnan(batch.noise[:, [m.index["d"], m.index["k"]]]))  # no noise term


def test_variable_types_hold_codes(rich):
    m, batch = rich
    for name in ("n", "k", "col", "flag"):
        v = col(batch, name)
        assert np.array_equal(v, np.rint(v)), name
    assert set(np.unique(col(batch, "col"))) == {0.0, 1.0, 2.0}
    assert set(np.unique(col(batch, "flag"))) == {0.0, 1.0}
    n = col(batch, "n")
    assert n.min() >= 0 and n.max() <= 10
    assert np.isfinite(batch.latents).all()


def test_domain_overrides_apply(rich):
    m, batch = rich
    j = m.index
    free = ~batch.intervention_mask.any(axis=1)
    implied_g = (col(batch, "b") - 0.5 * col(batch, "n") - batch.noise[:, j["b"]]) / col(batch, "a")
    for d, g in ((0, G_EARTH), (1, G_MOON)):
        rows = free & (batch.domain == d)
        assert rows.sum() > 300
        np.testing.assert_allclose(implied_g[rows], g, rtol=1e-9)
    # the moon's noise override of the root a: uniform(0.5, 1)
    moon_a = batch.noise[(batch.domain == 1), j["a"]]
    earth_a = batch.noise[(batch.domain == 0), j["a"]]
    assert moon_a.min() >= 0.5 and earth_a.min() < 0.1
    # the moon's mechanism override of e adds 1
    e_free = ~batch.intervention_mask[:, j["e"]]
    base = np.sqrt(np.abs(col(batch, "b"))) + batch.noise[:, j["e"]]
    assert np.allclose((col(batch, "e") - base)[e_free & (batch.domain == 1)], 1.0)
    assert np.allclose((col(batch, "e") - base)[e_free & (batch.domain == 0)], 0.0)


# ----- (d) domain labels --------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5000), st.integers(0, 2**32), st.lists(st.integers(0, 50), min_size=2, max_size=4))
def test_exact_domain_counts(n, seed, shares):
    total = sum(shares) or 1
    counts = [n * s // total for s in shares]
    counts[-1] = n - sum(counts[:-1])
    data = {"name": "dom", "samples": n, "seed": seed, "variables": {"a": {"noise": "normal(0, 1)"}},
            "domains": {f"d{i}": {"samples": c} for i, c in enumerate(counts)}}
    batch = CompiledSCM(DatasetSpec.from_dict(data)).sample(0, n)
    assert batch.domain.dtype == np.int16
    assert np.bincount(batch.domain, minlength=len(counts)).tolist() == counts


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5000), st.integers(0, 2**32),
       st.lists(st.floats(0.05, 10, allow_nan=False), min_size=2, max_size=4))
def test_domain_weights_give_proportions(n, seed, weights):
    data = {"name": "dom", "samples": n, "seed": seed, "variables": {"a": {"noise": "normal(0, 1)"}},
            "domains": {f"d{i}": {"weight": w} for i, w in enumerate(weights)}}
    batch = CompiledSCM(DatasetSpec.from_dict(data)).sample(0, n)
    counts = np.bincount(batch.domain, minlength=len(weights))
    expect = n * np.asarray(weights) / sum(weights)
    blocks = math.ceil(n / BLOCK)
    assert counts.sum() == n
    assert np.all(np.abs(counts - expect) <= blocks), (counts, expect)  # at most 1 sample per block of rounding
    assert np.all(np.abs(counts - expect) <= 1 + 1e-9), (counts, expect)  # in fact global rounding: within 1 overall


def _domains(n: int, weights: list[float]) -> np.ndarray:
    data = {"name": "dom", "samples": n, "seed": 0, "variables": {"a": {"noise": "normal(0, 1)"}},
            "domains": {f"d{i}": {"weight": w} for i, w in enumerate(weights)}}
    return CompiledSCM(DatasetSpec.from_dict(data)).sample(0, n).domain


def test_a_small_last_block_with_three_or_more_domains_still_gets_its_share():
    """Cumulative rounding at a 1-sample last block (1025 samples, weights 1:1:2:2) asked for counts [0, 1, -1, 1]
    and the sampler raised; such a dataset takes a low-discrepancy order: exact totals, each block near its share."""
    weights = np.array([1.0, 1.0, 2.0, 2.0])
    domain = _domains(1025, weights.tolist())
    assert np.bincount(domain, minlength=4).tolist() == [171, 171, 341, 342]  # 170.83, 170.83, 341.67, 341.67
    first = np.bincount(domain[:BLOCK], minlength=4)
    assert np.all(np.abs(first - BLOCK * weights / weights.sum()) <= 2), first


def test_datasets_cumulative_rounding_can_share_out_keep_their_domains():
    """Every block holds the difference of the cumulative rounding at its ends (what sampler 2 drew: unchanged)."""
    n, weights = 3000, np.array([1.0, 2.0, 3.0])
    domain = _domains(n, weights.tolist())
    cum = np.cumsum(weights / weights.sum())
    for a in range(0, n, BLOCK):
        b = min(a + BLOCK, n)
        hi, lo = np.floor(b * cum + 0.5), np.floor(a * cum + 0.5)
        hi[-1], lo[-1] = b, a
        assert np.bincount(domain[a:b], minlength=3).tolist() == np.diff(hi - lo, prepend=0).astype(int).tolist()


def test_no_domains_is_one_default_domain():
    m = make(RICH, domains=None, counterfactuals=None)
    batch = m.sample(0, 3000)
    assert m.domain_names == ("default",) and not batch.domain.any()


def test_exact_domain_counts_cannot_be_combined_with_counterfactual_pairs():
    """A partner shares its factual's domain, so exact counts could not hold: the spec says so up front."""
    with pytest.raises(SpecError, match="counterfactuals: cannot combine with exact domain"):
        make(_exact_domains(3000, 0), counterfactuals={"fraction": 0.2, "intervention": "do(a = 0.75)"})


# ----- (e) counterfactual pairs ---------------------------------------------------------------------------
def test_pairs(rich):
    m, batch = rich
    n = len(batch)
    idx = np.arange(n)
    paired = batch.pair >= 0
    assert np.array_equal(paired, batch.pair_role != ROLE_NONE)
    p = batch.pair[paired]
    assert np.array_equal(batch.pair[p], idx[paired])  # symmetric
    f = np.flatnonzero(batch.pair_role == ROLE_FACTUAL)
    c = batch.pair[f]
    assert np.all(batch.pair_role[c] == ROLE_COUNTERFACTUAL)
    assert set(np.unique(batch.pair_role)) == {0, 1, 2}
    # the partner copies the factual's exogenous world
    np.testing.assert_array_equal(batch.noise[c], batch.noise[f])
    assert np.array_equal(batch.domain[c], batch.domain[f])
    assert np.array_equal(batch.intervention[c], batch.intervention[f])
    assert np.array_equal(batch.seeds[c], batch.seeds[f])
    # including the values drawn for distributional interventions (do(uniform(1, 2)) on u)
    ju = m.index["u"]
    drawn = batch.intervention_mask[f, ju]
    assert drawn.sum() > 5
    assert np.array_equal(batch.latents[c[drawn], ju], batch.latents[f[drawn], ju])
    assert np.array_equal(batch.intervention_value[c, ju], batch.intervention_value[f, ju], equal_nan=True)
    # ... and differs only by do(a = 0.75) and what it causes
    ja = m.index["a"]
    assert np.all(batch.latents[c, ja] == 0.75) and np.all(batch.intervention_mask[c, ja])
    assert np.all(batch.intervention_value[c, ja] == 0.75)
    down = m.spec.graph.descendants("a") | {"a"}
    assert down == {"a", "b", "d", "e"}
    for name in m.names:
        same = np.array_equal(batch.latents[c, m.index[name]], batch.latents[f, m.index[name]])
        if name not in down:
            assert same, name
    assert not np.array_equal(col(batch, "b")[c], col(batch, "b")[f])
    # the mechanisms hold for partners too (recomputed from the partner's own parents)
    mech = _mechanisms(batch)
    free_c = c[~batch.intervention_mask[c, m.index["b"]]]
    np.testing.assert_allclose(col(batch, "b")[free_c], mech["b"][free_c], rtol=1e-12, atol=1e-15)
    # the share of partners is the spec's fraction (rounded per block)
    assert abs(c.size - 0.2 * n) <= math.ceil(n / BLOCK)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 5000), st.integers(0, 2**32), st.floats(0.01, 0.5))
def test_pair_fraction(n, seed, fraction):
    m = make(RICH, samples=n, seed=seed, interventions=None,
             counterfactuals={"fraction": fraction, "intervention": "do(a = 0.75)"})
    batch = m.sample(0, n)
    partners = int((batch.pair_role == ROLE_COUNTERFACTUAL).sum())
    assert partners == int((batch.pair_role == ROLE_FACTUAL).sum())
    assert abs(partners - fraction * n) <= math.ceil(n / BLOCK) + 0.5
    assert batch.intervention_mask.sum() == partners  # only the pairs' own intervention


# ----- (f) explicit and sets regimes -------------------------------------------------------------------
def test_explicit_regime_puts_interventions_on_the_listed_samples():
    data = {"name": "ex", "samples": 3000, "seed": 9,
            "variables": {"a": {"range": [0, 1], "noise": "uniform(0, 1)"}, "b": {"mechanism": "a + eps", "noise": "normal(0, 1)"}},
            "interventions": {"regime": "explicit", "assignments": [
                {"samples": [5, 1023, 1024, 2999], "targets": {"a": 0.1}},
                {"samples": {"start": 100, "stop": 1000}, "targets": {"b": "shift(2)", "a": "do(uniform(0.2, 0.3))"}},
                {"samples": list(range(2000, 3000, 7)), "targets": {"b": "do(-1)"}}]}}
    m = make(data)
    batch = m.sample(0, 3000)
    expect = np.full(3000, -1)
    expect[[5, 1023, 1024, 2999]] = 0
    expect[100:1000] = 1
    expect[2000:3000:7] = 2
    assert np.array_equal(batch.intervention, expect)
    mask = np.zeros((3000, 2), bool)
    mask[expect == 0, 0] = True
    mask[expect == 1] = True
    mask[expect == 2, 1] = True
    assert np.array_equal(batch.intervention_mask, mask)
    assert np.all(col(batch, "a")[expect == 0] == 0.1)
    a1 = col(batch, "a")[expect == 1]
    assert a1.min() >= 0.2 and a1.max() <= 0.3
    np.testing.assert_allclose(col(batch, "b")[expect == 1], a1 + batch.noise[expect == 1, 1] + 2, rtol=1e-12)
    assert np.all(col(batch, "b")[expect == 2] == -1)
    # and shard by shard
    parts = [m.sample(a, b) for a, b in ((0, 1000), (1000, 1024), (1024, 3000))]
    assert np.array_equal(np.concatenate([p.intervention for p in parts]), expect)


def test_sets_regime_picks_only_listed_sets():
    data = {"name": "sets", "samples": 4000, "seed": 2, "objects": 2,
            "variables": {"ball[i].r": {"range": [0, 1], "noise": "uniform(0, 1)"},
                          "ball[i].m": {"mechanism": "ball[i].r * 2 + eps", "noise": "normal(0, 0.1)"},
                          "c": {"noise": "normal(0, 1)"}},
            "interventions": {"regime": "sets", "fraction": 0.5, "sets": [
                {"name": "both_radii", "targets": {"ball[i].r": "do(0.5)"}, "weight": 1},
                {"name": "c_and_m0", "targets": {"c": "do(3)", "ball[0].m": "scale(2)"}, "weight": 3}]}}
    m = make(data)
    batch = m.sample(0, 4000)
    names = list(m.names)
    targets = [{"ball[0].r", "ball[1].r"}, {"c", "ball[0].m"}]
    assert [set(o) for o in m.options] == targets
    assert set(np.unique(batch.intervention)) == {-1, 0, 1}
    for o, t in enumerate(targets):
        rows = batch.intervention == o
        expect = np.array([nm in t for nm in names])
        assert np.all(batch.intervention_mask[rows] == expect)
    assert not batch.intervention_mask[batch.intervention == -1].any()
    assert (batch.intervention >= 0).sum() == 2000
    share = (batch.intervention == 1).sum() / 2000
    assert 0.7 < share < 0.8  # weights 1 : 3
    assert np.all(col(batch, "ball[1].r")[batch.intervention == 0] == 0.5)
    assert np.all(col(batch, "c")[batch.intervention == 1] == 3)


# ----- (h) bad values are spec errors naming the variable ----------------------------------------------
BAD = {"name": "bad", "samples": 500, "seed": 0, "variables": {"a": {"noise": "uniform(-1, 1)"}}}


@pytest.mark.parametrize(("variables", "path", "fragment"), [
    ({"b": {"mechanism": "log(a)"}}, "variables.b", "non-finite values"),
    ({"b": {"mechanism": "sqrt(a) + eps", "noise": "normal(0, 1)"}}, "variables.b", "non-finite values"),
    ({"b": {"mechanism": "1 / (a - a)"}}, "variables.b", "non-finite values"),
    ({"b": {"range": [0, 1], "mechanism": "a * 10"}}, "variables.b", "outside the declared range [0, 1]"),
    ({"ball[i].m": {"range": [0, 2], "mechanism": "a + 1.5"}}, "variables.ball[i].m", "outside the declared range [0, 2]"),
    ({"n": {"type": "integer", "range": [0, 3], "mechanism": "a * 10"}}, "variables.n", "outside the declared range"),
])
def test_bad_values_raise_spec_error_naming_the_variable(variables, path, fragment):
    data = copy.deepcopy(BAD)
    data["variables"].update(variables)
    if any("[i]" in k for k in variables):
        data["objects"] = 2
    m = make(data)
    with pytest.raises(SpecError) as info:
        m.sample(0, 500)
    assert any(p.startswith(f"{path}: ") and fragment in p for p in info.value.problems), info.value.problems
    assert all(": " in p and "Traceback" not in p for p in info.value.problems)
    batch = m.sample(0, 500, check=False)  # the check can be skipped, then the values are as computed
    assert batch.latents.shape == (500, len(m.names))


def test_intervention_into_a_bad_region_is_caught():
    """A shift on a parent can push an unbounded child's mechanism into NaN."""
    data = copy.deepcopy(BAD)
    data["variables"] = {"a": {"range": [0, 10], "noise": "uniform(1, 2)"}, "b": {"mechanism": "log(a - 0.5)"}}
    data["interventions"] = {"regime": "single_node", "fraction": 0.5, "targets": {"a": "do(0.1)"}}
    with pytest.raises(SpecError) as info:
        make(data).sample(0, 500)
    assert any(p.startswith("variables.b: ") for p in info.value.problems)


#: A bounded child of ``a`` (uniform(-1, 1)) whose own mechanism stays inside its range [-2, 2].
BOUNDED = {"a": {"range": [-1, 1], "noise": "uniform(-1, 1)"},
           "b": {"range": [-2, 2], "mechanism": "a + eps", "noise": "uniform(-0.5, 0.5)"}}
OUT = "soft('a * 10 + 5 + eps')"  # > 2 for a > -0.35


def _bounded(**over: Any) -> dict:
    data = copy.deepcopy(BAD)
    data["variables"] = copy.deepcopy(BOUNDED)
    data.update(copy.deepcopy(over))
    return data


@pytest.mark.parametrize(("over", "path", "what"), [
    ({"interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"b": OUT}}},
     "interventions.targets.b", "the soft intervention"),
    ({"interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"a": "do(0.5)", "b": "shift(3)"}}},
     "interventions.targets.b", "the shift intervention"),
    ({"interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"b": "scale(-5)"}}},
     "interventions.targets.b", "the scale intervention"),
    ({"interventions": {"regime": "sets", "fraction": 0.5, "sets": [{"targets": {"a": "do(0)"}}, {"targets": {"a": "do(0)", "b": OUT}}]}},
     "interventions.sets[1].targets.b", "the soft intervention"),
    ({"interventions": {"regime": "explicit", "assignments": [{"samples": [3], "targets": {"a": "do(0)"}},
                                                              {"samples": {"start": 10, "stop": 20}, "targets": {"b": "shift(4)"}}]}},
     "interventions.assignments[1].targets.b", "the shift intervention"),
    ({"counterfactuals": {"fraction": 0.3, "intervention": {"b": OUT}}},
     "counterfactuals.intervention.b", "the counterfactual soft intervention"),
    ({"domains": {"d0": {"weight": 1}, "d1": {"weight": 1, "overrides": {"b": "a * 10 + 5 + eps"}}}},
     "domains.d1.overrides.b", "domain d1's mechanism"),
    ({"domains": {"d0": {"weight": 1}, "d1": {"weight": 1, "noise": {"b": "uniform(3, 4)"}}}},
     "domains.d1.noise.b", "domain d1's noise"),
    ({"parameters": {"gain": 1.0}, "domains": {"d0": {"weight": 1}, "d1": {"weight": 1, "parameters": {"gain": 9.0}}},
      "variables": {**BOUNDED, "b": {**BOUNDED["b"], "mechanism": "a * gain + eps"}}},
     "domains.d1.parameters.gain", "domain d1's parameter gain = 9"),
], ids=["soft", "shift", "scale", "sets", "explicit", "counterfactual", "domain-mechanism", "domain-noise", "domain-parameter"])
def test_values_an_intervention_or_a_domain_puts_outside_the_range_are_blamed_on_it(over, path, what):
    """The tester's k06: a soft intervention's values beyond ``l``'s range were reported at ``variables.l``."""
    with pytest.raises(SpecError) as info:
        make(_bounded(**over)).sample(0, 500)
    assert len(info.value.problems) == 1, info.value.problems
    line = info.value.problems[0]
    assert line.startswith(f"{path}: {what} gives b values outside its declared range [-2, 2] for "), line


def test_a_soft_intervention_giving_non_finite_values_is_blamed_on_it():
    over = {"interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"b": "soft('log(a)')"}}}
    with pytest.raises(SpecError) as info:
        make(_bounded(**over)).sample(0, 500)
    assert [p.split(" for ")[0] for p in info.value.problems] == ["interventions.targets.b: the soft intervention gives non-finite values of b"]


def test_out_of_range_values_from_several_sources_give_a_line_each_in_order_of_their_first_sample():
    over = {"variables": {**BOUNDED, "b": {"range": [-2, 2], "mechanism": "a * 3 + eps", "noise": "uniform(-0.5, 0.5)"}},
            "interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"b": OUT}},
            "domains": {"d0": {"weight": 1}, "d1": {"weight": 1, "overrides": {"b": "a * 10 + 5 + eps"}}}}
    m = make(_bounded(**over))
    with pytest.raises(SpecError) as info:
        m.sample(0, 500)
    b = m.sample(0, 500, check=False)
    col = b.column("b")
    bad = (col < -2) | (col > 2)
    hit = b.intervention_mask[:, b.names.index("b")]
    expect = {"interventions.targets.b": bad & hit, "domains.d1.overrides.b": bad & ~hit & (b.domain == 1),
              "variables.b": bad & ~hit & (b.domain == 0)}
    assert all(rows.any() for rows in expect.values())
    firsts = sorted(expect, key=lambda p: np.flatnonzero(expect[p])[0])
    assert [p.split(": ")[0] for p in info.value.problems] == firsts
    for p in info.value.problems:
        path = p.split(": ")[0]
        rows = expect[path]
        assert f"for {int(rows.sum())} samples (first: sample {int(np.flatnonzero(rows)[0])}," in p or \
            p.startswith(f"variables.b: {int(rows.sum())} samples fall outside the declared range [-2, 2] (first: sample {int(np.flatnonzero(rows)[0])},"), p


def test_a_templated_target_is_blamed_at_the_key_the_spec_wrote():
    data = copy.deepcopy(BAD)
    data["objects"] = 2
    data["variables"]["ball[i].m"] = {"range": [0, 2], "mechanism": "abs(a) + eps", "noise": "uniform(0, 0.5)"}
    data["interventions"] = {"regime": "single_node", "fraction": 0.5, "targets": {"ball[i].m": "soft('a + 5')"}}
    with pytest.raises(SpecError) as info:
        make(data).sample(0, 500)
    assert [p.split(": ")[0] for p in info.value.problems] == ["interventions.targets.ball[i].m"] * 2  # one line per object


def test_crlgen_check_blames_the_testers_soft_intervention(capsys, tmp_path):
    """The tester's k06 on the catalogue spring: ``soft('m * 10 + eps')`` takes ``l`` (range [0.01, 0.13]) to 5.8."""
    from support.cli import run_cli

    path = tmp_path / "k06.yaml"
    path.write_text("name: k06\nextends: static/spring\nsamples: 10\ninterventions: {targets: {l: \"soft('m * 10 + eps')\"}}\n")
    code, out, err = run_cli(capsys, "check", str(path))
    assert (code, out) == (2, "")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: interventions.targets.l: the soft intervention gives l values "
                                                   "outside its declared range [0.01, 0.13] for "), lines


# ----- splits decided at generation -------------------------------------------------------------

def _split_spec(**splits):
    from support.stores import latent_spring

    return latent_spring(samples=6000, splits=splits)


def test_random_splits_follow_the_fractions_and_the_seed():
    spec = _split_spec(fractions={"train": 0.7, "val": 0.2, "test": 0.1})
    b = CompiledSCM(spec).sample(0, spec.samples)
    shares = np.bincount(b.split, minlength=3) / spec.samples
    assert shares == pytest.approx([0.7, 0.2, 0.1], abs=0.02)
    assert np.array_equal(b.split, CompiledSCM(spec).sample(0, spec.samples).split)
    part = CompiledSCM(spec).sample(2048, 4096)  # any block range gives the same rows: block-seeded
    assert np.array_equal(part.split, b.split[2048:4096])
    other = CompiledSCM(spec.replace(seed=1)).sample(0, spec.samples).split
    assert not np.array_equal(other, b.split)


def test_counterfactual_partners_share_their_factuals_split():
    spec = _split_spec()
    b = CompiledSCM(spec).sample(0, spec.samples)
    partners = np.flatnonzero(b.pair_role == 2)
    assert partners.size > 100
    assert np.array_equal(b.split[partners], b.split[b.pair[partners]])


def test_held_out_domains_go_to_test_except_a_few_shot_share():
    spec = _split_spec(test_domains=["moon"], few_shot=0.1)
    b = CompiledSCM(spec).sample(0, spec.samples)
    moon = list(spec.domains).index("moon")
    on_moon = b.domain == moon
    assert set(b.split[on_moon].tolist()) == {0, 2}  # test, and the few-shot share in train; never val
    assert (b.split[on_moon] == 0).mean() == pytest.approx(0.1, abs=0.03)
    zero_shot = CompiledSCM(_split_spec(test_domains=["moon"])).sample(0, spec.samples)
    assert (zero_shot.split[zero_shot.domain == moon] == 2).all()
    assert set(zero_shot.split[zero_shot.domain != moon].tolist()) == {0, 1, 2}


def test_a_held_out_latent_range_is_never_trained_on():
    spec = _split_spec(test_range={"latent": "h", "low": 0.08, "high": 0.10})
    b = CompiledSCM(spec).sample(0, spec.samples)
    h = b.column("h")
    inside = (h >= 0.08) & (h <= 0.10)
    factual = b.pair_role != 2
    assert (b.split[inside & factual] == 2).all()
    assert h[(b.split == 0) & factual].max() < 0.08


@pytest.mark.parametrize("splits, message", [
    ({"fractions": {"train": 0.5, "test": 0.2}}, "fractions add up to 0.7, expected 1"),
    ({"fractions": {"train": 0.9, "dev": 0.1}}, "unknown splits ['dev']"),
    ({"few_shot": 0.1}, "give test_domains too"),
    ({"test_domains": ["mars"]}, "splits.test_domains: unknown domain 'mars'"),
    ({"test_range": {"latent": "nope", "low": 0, "high": 1}}, "splits.test_range.latent: unknown latent 'nope'"),
    ({"test_range": {"latent": "h", "low": 1, "high": 0}}, "expected finite low <= high"),
])
def test_bad_splits_are_named(splits, message):
    from crlgen.pipeline import check_spec
    from crlgen.schemas import SpecError

    with pytest.raises(SpecError) as e:
        check_spec(_split_spec(**splits))
    assert any(message in p for p in e.value.problems), e.value.problems


@pytest.mark.parametrize("splits, message", [
    ({"test_domains": ["earth", "moon"]}, "splits.test_domains: holds out every domain"),
    ({"test_range": {"latent": "h", "low": 0.5, "high": 0.6}}, "lies outside h's declared range [0.02, 0.1]: no sample"),
    ({"test_range": {"latent": "h", "low": 0.0, "high": 1.0}}, "covers h's whole declared range [0.02, 0.1]"),
])
def test_splits_that_leave_nothing_to_train_or_test_on_are_named(splits, message):
    from crlgen.pipeline import check_spec
    from crlgen.schemas import SpecError

    with pytest.raises(SpecError) as e:
        check_spec(_split_spec(**splits))
    assert any(message in p for p in e.value.problems), e.value.problems


def test_a_domain_override_of_a_root_is_applied_and_validates(tmp_path):
    """A domain may replace a root's equation (a constant, or a function of its noise); the sampler
    once kept the root's noise there silently. Validation recomputes the same values."""
    from crlgen.pipeline import load_spec, resolve
    from crlgen.pipeline._run import RunOptions, run

    d = load_spec("static/spring").replace(world=None, samples=600, shard_size=300).to_dict()
    d["domains"]["moon"]["overrides"] = {"h": "0.05", "k": "eps * 0.5 + 200"}
    spec = DatasetSpec.from_dict(d)
    b = CompiledSCM(spec).sample(0, 600)
    moon, earth = b.domain == 1, b.domain == 0
    observed = ~b.intervention_mask.any(axis=1)
    assert np.all(b.column("h")[moon & observed] == 0.05) and np.ptp(b.column("h")[earth & observed]) > 0.05
    k_noise = b.noise[:, b.names.index("k")]
    assert np.allclose(b.column("k")[moon & observed], k_noise[moon & observed] * 0.5 + 200)
    res = run(spec, resolve(str(tmp_path / "s.zarr")), RunOptions(executor="inline"))
    assert res.valid, [c for c in res.report["checks"] if not c["passed"]]
