"""Feasibility: redraw the samples a world cannot start from, deterministically, and record it.

A world says which sampled latents it can start from (``World.feasible``: no initial
interpenetration, say). For every infeasible sample the shard task draws the sample again:
same index, domain, intervention option, split draw, counterfactual pairing and temporal edits (a
``test_range`` split rule is applied to the redrawn latents, so it may send the sample elsewhere), new
exogenous noise (and distributional intervention values and world seed) from the stream
``(spec seed, sample index, 6, attempt)`` (see ``CompiledSCM.sample``'s ``attempts``), and asks
again, at most ``spec.max_resamples`` times. The count is stored per sample (``resampled``), so
validation re-derives every stored latent from the spec and that count bit for bit. A
counterfactual pair is redrawn together (its samples share their exogenous noise): the pair's
count is the first attempt at which both of its samples are feasible, and a shard holding one
member of a pair also samples and asks about the other, so both shards agree. Nothing is ever
dropped: when the attempts run out the task raises :class:`InfeasibleError`.

Since only feasible samples are kept, the stored data follow the spec's distribution
conditioned on feasibility (a selection): where the world's feasible region couples latents
(two objects' positions), they are dependent in the data even when the graph says otherwise.
"""

from __future__ import annotations

import numpy as np

from ..scenes.base import BatchEdit, World, WorldBatch
from ..schemas import SpecError
from ._scm import ROLE_COUNTERFACTUAL, CompiledSCM, SampleBatch

#: Latents quoted (name = value) in an exhaustion error before "...".
QUOTED_LATENTS = 8


class InfeasibleError(SpecError):
    """Samples the spec asks for that its world cannot start from, even after ``max_resamples`` redraws."""


def sample_feasible(model: CompiledSCM, world: World | None, start: int, stop: int, check: bool = True) -> SampleBatch:
    """Samples ``start..stop-1``, each redrawn until ``world.feasible`` accepts it (see the module docstring).

    With no world, or a world that does not check feasibility, this is ``model.sample(start, stop, check)``.
    Returns a batch whose ``resampled`` holds each sample's redraw count (int16). Raises
    :class:`InfeasibleError` (one line: the first such sample, its domain and intervention, the world's
    reason and the latents the world reads) when a sample stays infeasible after ``max_resamples``
    redraws, ValueError when ``feasible`` returns other than one bool per sample, and SpecError (from the
    sampler, with ``check``) for values the spec's ranges forbid.
    """
    if world is None or not model.resamples or not type(world).checks_feasibility():
        return model.sample(start, stop, check=check)
    # a pair's other member may lie outside the range (a shard boundary between them): sample it too.
    # Pairs occupy (2k, 2k+1) within a block and blocks start at even indices, so only the ends can be cut.
    lo = start - 1 if model.cf_fraction and start % 2 == 1 else start
    hi = stop + 1 if model.cf_fraction and stop % 2 == 1 and stop < model.n_samples else stop
    n = hi - lo
    a, b = start - lo, stop - lo
    attempts = np.zeros(n, np.int64)
    batch = model.sample(lo, hi, check=check, attempts=attempts)
    # a neighbour sampled beyond the range matters only as the partner of a sample inside it
    relevant = np.zeros(n, bool)
    relevant[a:b] = True
    relevant = _with_partners(relevant, batch, lo)
    ok = _ask(world, world_batch(model, batch)) | ~relevant
    limit = model.spec.max_resamples
    for attempt in range(1, limit + 1):
        redo = _with_partners(~ok, batch, lo)
        if not redo.any():
            break
        attempts[redo] = attempt
        batch = model.sample(lo, hi, check=check, attempts=attempts)
        rows = np.flatnonzero(redo)
        ok[rows] = _ask(world, world_batch(model, batch).take(rows))
    else:
        redo = _with_partners(~ok, batch, lo)
        if redo.any():
            raise InfeasibleError(_exhausted(model, world, batch, np.flatnonzero(redo & ~ok), lo, start, stop))
    return batch.rows(a, b) if (a, b) != (0, n) else batch


def world_batch(model: CompiledSCM, batch: SampleBatch) -> WorldBatch:
    """What a world receives for a sampled batch: latents by name, seeds, and the per-sample temporal edits."""
    latents = {name: np.ascontiguousarray(batch.latents[:, j]) for j, name in enumerate(batch.names)}
    edits = tuple(
        BatchEdit(e.target, e.op, batch.edit_frame[:, c].astype(np.int64),
                  np.where(batch.edit_frame[:, c] >= 0, e.end, -1).astype(np.int64), batch.edit_value[:, c])
        for c, e in enumerate(model.edits)
    )
    return WorldBatch(np.arange(batch.start, batch.stop), latents, batch.seeds, edits)



def _ask(world: World, wb) -> np.ndarray:
    ok = np.asarray(world.feasible(wb))
    if ok.shape != (len(wb),) or ok.dtype != np.bool_:
        raise ValueError(f"world {world.info.name}: feasible() returned {ok.dtype}{ok.shape}, expected bool({len(wb)},)")
    return ok.copy()


def _with_partners(bad: np.ndarray, batch: SampleBatch, lo: int) -> np.ndarray:
    """``bad`` plus the counterfactual partner (or factual sample) of every bad row within the batch."""
    out = bad.copy()
    paired = np.flatnonzero(bad & (batch.pair >= 0))
    other = batch.pair[paired] - lo
    inside = (other >= 0) & (other < bad.size)
    out[other[inside]] = True
    return out


def _exhausted(model: CompiledSCM, world: World, batch: SampleBatch, rows: np.ndarray, lo: int, start: int, stop: int) -> list[str]:
    """One line: the first sample (within ``start..stop-1`` where possible) that stayed infeasible, and how many more did."""
    mine = [int(r) for r in rows if start <= lo + r < stop] or [int(r) for r in rows]
    r = mine[0]
    wb = world_batch(model, batch).take(np.array([r]))
    reasons = list(world.explain_infeasible(wb))
    reads = set(world.info.latents) | set(world.info.optional_latents)
    shown = [j for j, node in enumerate(model.nodes) if node.template in reads or node.name in reads] or list(range(len(model.nodes)))
    where = [f"domain {model.domain_names[int(batch.domain[r])]}"]
    o = int(batch.intervention[r])
    if o >= 0:
        where.append("intervention " + ", ".join(f"{t} {_iv_text(iv)}" for t, iv in model.options[o].items()))
    if batch.pair_role[r] == ROLE_COUNTERFACTUAL:
        where.append(f"counterfactual partner of sample {int(batch.pair[r])}")
    vals = ", ".join(f"{model.names[j]} = {batch.latents[r, j]:.4g}" for j in shown[:QUOTED_LATENTS])
    more = ", ..." if len(shown) > QUOTED_LATENTS else ""
    why = f": {reasons[0]}" if reasons and reasons[0] else ""
    others = f" (and {len(mine) - 1} more samples of this shard)" if len(mine) > 1 else ""
    return [f"max_resamples: sample {lo + r} ({'; '.join(where)}) is infeasible in world {world.info.name} after "
            f"{model.spec.max_resamples} redraws{why} (last draw: {vals}{more}){others}; the spec's ranges, domain or "
            f"intervention ask for starts the world cannot realise: narrow them or raise max_resamples"]


def _iv_text(iv) -> str:
    dumped = iv.model_dump(mode="json")
    return dumped if isinstance(dumped, str) else f"soft({iv.mechanism})"
