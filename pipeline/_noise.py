"""Drawing exogenous noise from the distributions declared in a spec."""

from __future__ import annotations

import numpy as np

from ..schemas import noise as N


def draw(dist, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` float64 draws of ``dist`` from ``rng`` (the caller owns the stream's order)."""
    if isinstance(dist, N.Normal):
        return rng.normal(dist.mean, dist.std, n)
    if isinstance(dist, N.Uniform):
        return rng.uniform(dist.low, dist.high, n)
    if isinstance(dist, N.Laplace):
        return rng.laplace(dist.loc, dist.scale, n)
    if isinstance(dist, N.Beta):
        return dist.low + (dist.high - dist.low) * rng.beta(dist.a, dist.b, n)
    if isinstance(dist, N.Exponential):
        return rng.exponential(dist.scale, n)
    if isinstance(dist, N.LogNormal):
        return rng.lognormal(dist.mean, dist.sigma, n)
    if isinstance(dist, N.Categorical):
        p = np.asarray(dist.probs, dtype=np.float64)
        return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.float64)
    if isinstance(dist, N.Bernoulli):
        return (rng.random(n) < dist.p).astype(np.float64)
    if isinstance(dist, N.Mixture):
        k = len(dist.components)
        w = np.ones(k) if dist.weights is None else np.asarray(dist.weights, dtype=np.float64)
        comp = rng.choice(k, size=n, p=w / w.sum())
        out = np.empty(n, dtype=np.float64)
        for c in range(k):
            idx = np.flatnonzero(comp == c)
            out[idx] = draw(dist.components[c], rng, idx.size)
        return out
    raise TypeError(f"no sampler for {type(dist).__name__}")
