"""A supervised probe: can a small CNN read each latent off the pixels? (needs ``crlgen[torch]``)

It trains on the store's ``train`` split and scores on ``test``, per latent: held-out R^2 for
continuous and integer latents, accuracy for categorical and boolean ones, and for periodic
latents (a declared ``period``: angles, hues) the circular score ``mean cos(2 pi (pred - true) /
period)`` (1 perfect, 0 chance). For video stores static latents are read from ``frames`` frames
evenly spread over the clip, and each state from its own frame with the frames just before and
after it (a velocity shows only between frames); a categorical state (the ``states`` array's
``state_levels`` attribute, e.g. a light's red/amber/green) is scored by accuracy. A state without a
value in a frame (NaN: an absent agent's position; -1 for a categorical one) is left out of that
state's loss and score: its score is over the frames where it has one.

The networks: views (and, for states, the neighbouring frames) stacked as channels, resized to
``size`` pixels. Images and states: four strided 3x3 convolutions (32-64-128-128), global average
pooling, one linear head per latent. Clips: one frame encoder shared by every frame (four strided
convolutions 32-64-64-128, pooled to 4x4 so positions survive, 128 features per frame), two
temporal convolutions over the frames, and heads on the whole feature sequence: motion reaches
the heads, not only each frame's look (gravity R^2 0.57 -> 0.71 on falling_simple against 8
frames stacked as channels; docs/probe.md). Everything is seeded: the same store and options give
the same table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..schemas.splits import SPLIT_NAMES
from ._reading import read, read_rows


#: Fewer test samples than this get a note that the scores are noisy.
MIN_TEST = 50
#: The score every latent a scene declares visible should reach (the benchmark's supervised
#: probes reach about 0.99); ``summary`` lists the ones below it.
TARGET_SCORE = 0.95


class ProbeDataError(ValueError):
    """A store the probe cannot train on (no pixels, too few samples in a split), or an option it
    does not have (``arg`` names it then)."""

    def __init__(self, message: str, arg: str | None = None) -> None:
        super().__init__(message)
        self.arg = arg


@dataclass(frozen=True)
class ProbeOptions:
    """``epochs`` over the training split, ``size`` pixels the images are resized to, ``batch`` size,
    ``frames`` taken from each clip for static latents (evenly spread; 16 of a 45-frame clip: every
    third), ``max_train`` samples used (None = all), ``seed``, ``output`` the colour array read
    (None = the main ``images``/``frames`` array)."""

    epochs: int = 30
    size: int = 64
    batch: int = 64
    frames: int = 16
    max_train: int | None = None
    seed: int = 0
    output: str | None = None


def _kinds(spec, names) -> list[tuple[str, Any]]:
    """Per target: ("r2", None), ("accuracy", levels) or ("circular", period)."""
    out = []
    for name in names:
        node = next((n for n in spec.graph.nodes if n.name == name), None)
        var = node.variable if node is not None else None
        if var is not None and var.type in ("categorical", "boolean"):
            out.append(("accuracy", int(var.bounds()[1]) + 1))
        elif var is not None and getattr(var, "period", None):
            out.append(("circular", float(var.period)))
        else:
            out.append(("r2", None))
    return out


def _convs(nn, channels: int, widths: tuple[int, ...]) -> list:
    """Strided 3x3 convolutions (each halving the image) with batch norm and ReLU, ``channels`` in."""
    layers, c = [], channels
    for width in widths:
        layers += [nn.Conv2d(c, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        c = width
    return layers


def _net(torch, channels: int, heads: list[int]):
    """For (n, C, S, S) images: four strided 3x3 convolutions (32-64-128-128 channels), pooled to
    4x4 so where things are stays in the feature (a global average would keep only what is there),
    then 128 features and one linear head per latent."""
    nn = torch.nn

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(*_convs(nn, channels, (32, 64, 128, 128)), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                                      nn.Linear(128 * 16, 128), nn.ReLU())
            self.heads = nn.ModuleList(nn.Linear(128, h) for h in heads)

        def forward(self, x):
            f = self.body(x)
            return [h(f) for h in self.heads]

    return Probe()


def _clip_net(torch, channels: int, frames: int, heads: list[int]):
    """For (n, F, C, S, S) clips: one frame encoder shared by every frame (four strided 3x3
    convolutions, 32-64-64-128 channels, pooled to 4x4 so where things are stays in the feature,
    then 128 features), two temporal convolutions over the frames, and the heads on the whole
    feature sequence (so motion, not only a frame's look, reaches them)."""
    nn = torch.nn

    class ClipProbe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.frame = nn.Sequential(*_convs(nn, channels, (32, 64, 64, 128)), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                                       nn.Linear(128 * 16, 128), nn.ReLU())
            self.time = nn.Sequential(nn.Conv1d(128, 128, 3, padding=1), nn.BatchNorm1d(128), nn.ReLU(),
                                      nn.Conv1d(128, 128, 3, padding=1), nn.BatchNorm1d(128), nn.ReLU(), nn.Flatten())
            self.heads = nn.ModuleList(nn.Linear(128 * frames, h) for h in heads)

        def forward(self, x):
            n, f = x.shape[:2]
            z = self.frame(x.reshape(n * f, *x.shape[2:])).reshape(n, f, -1).transpose(1, 2)  # (n, 128, F)
            z = self.time(z)
            return [h(z) for h in self.heads]

    return ClipProbe()


def _fit_and_score(torch, x_train, y_train, x_test, y_test, kinds, opts: ProbeOptions) -> list[float]:
    """Train on (n, C, S, S) uint8 images or (n, F, C, S, S) uint8 clips and (n, L) targets; score
    each target on the test rows."""
    F = torch.nn.functional
    torch.manual_seed(opts.seed)
    gen = torch.Generator().manual_seed(opts.seed)
    heads, means, stds = [], [], []
    for j, (kind, arg) in enumerate(kinds):
        heads.append(arg if kind == "accuracy" else 2 if kind == "circular" else 1)
        col = y_train[:, j]
        col = col[np.isfinite(col)]  # NaN: no value in that row (an absent agent's state)
        means.append(float(col.mean()) if col.size else 0.0)
        stds.append((float(col.std()) if col.size else 0.0) or 1.0)
    net = (_clip_net(torch, x_train.shape[2], x_train.shape[1], heads) if x_train.ndim == 5
           else _net(torch, x_train.shape[1], heads))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = max(1, math.ceil(len(x_train) / opts.batch)) * opts.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    xt = torch.from_numpy(x_train)
    yt = torch.from_numpy(y_train.astype(np.float32))

    def loss_of(out, y):
        total = out[0].sum() * 0.0
        for j, ((kind, arg), o) in enumerate(zip(kinds, out)):
            t = y[:, j]
            if kind == "accuracy":
                has = torch.isfinite(t) & (t >= 0)  # a categorical state has no value where absent (-1, NaN)
                if bool(has.any()):
                    total = total + F.cross_entropy(o[has], t[has].round().long().clamp(0, arg - 1))
            elif kind == "circular":
                a = 2 * math.pi * t / arg
                total = total + F.mse_loss(o, torch.stack([torch.cos(a), torch.sin(a)], 1))
            else:
                has = torch.isfinite(t)
                if bool(has.any()):
                    total = total + F.mse_loss(o[has, 0], (t[has] - means[j]) / stds[j])
        return total

    net.train()
    for _ in range(opts.epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(opts.batch):
            if len(idx) < 2:  # batch norm needs two samples; a last batch of one is skipped
                continue
            opt.zero_grad()
            loss_of(net(xt[idx].float().div(255.0)), yt[idx]).backward()
            opt.step()
            sched.step()
    net.eval()
    preds = [[] for _ in kinds]
    with torch.no_grad():
        for idx in torch.arange(len(x_test)).split(256):
            for j, o in enumerate(net(torch.from_numpy(x_test[idx.numpy()]).float().div(255.0))):
                preds[j].append(o.numpy())
    scores = []
    for j, (kind, arg) in enumerate(kinds):
        p, t = np.concatenate(preds[j]), y_test[:, j]
        if kind == "accuracy":
            has = np.isfinite(t) & (t >= 0)
            scores.append(float(np.mean(p[has].argmax(1) == np.rint(t[has]))) if has.any() else float("nan"))
        elif kind == "circular":
            ang = np.arctan2(p[:, 1], p[:, 0]) - 2 * math.pi * t / arg
            scores.append(float(np.mean(np.cos(ang))))
        else:
            has = np.isfinite(t)
            pred, t = p[has, 0] * stds[j] + means[j], t[has]
            var = float(np.var(t)) if t.size else 0.0
            scores.append(float(1.0 - np.mean((pred - t) ** 2) / var) if var > 0 else float("nan"))
    return scores


def _resize(torch, x: np.ndarray, size: int) -> np.ndarray:
    """(n, C, H, W) uint8 -> (n, C, size, size) uint8 (area average, or nearest when enlarging),
    a few thousand images at a time (a float copy of all would need 4x the bytes)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    mode = "area" if x.shape[-1] > size else "nearest"
    out = np.empty((*x.shape[:2], size, size), dtype=np.uint8)
    for a in range(0, len(x), 2048):
        t = torch.nn.functional.interpolate(torch.from_numpy(x[a:a + 2048]).float(), size=(size, size), mode=mode)
        out[a:a + 2048] = t.round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def _state_reasons(spec) -> dict[str, str]:
    """Per-frame states the spec declares ``unidentifiable`` (a ``time_varying`` variable with its reason),
    by state name (``joint[2].q``): scored, but counted apart like such latents."""
    out: dict[str, str] = {}
    for key, var in spec.variables.items():
        if getattr(var, "time_varying", False) and getattr(var, "unidentifiable", None):
            out.update({name: var.unidentifiable for name in spec.expand_names(key)})
    return out


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per target kind: how many declared-identifiable, varying rows reach TARGET_SCORE, and which do
    not (an undefined score counts as not reached); declared-unidentifiable and constant rows apart."""
    out: dict[str, Any] = {"target_score": TARGET_SCORE}
    for target in ("latent", "state"):
        mine = [r for r in rows if r["target"] == target]
        scored = [r for r in mine if not r["unidentifiable"] and not r["constant"]]
        below = [r["name"] for r in scored if r["score"] is None or r["score"] < TARGET_SCORE]
        out[target + "s"] = {"identifiable": len(scored), "reached": len(scored) - len(below), "below": below,
                             "unidentifiable": sum(1 for r in mine if r["unidentifiable"]),
                             "constant": [r["name"] for r in mine if r["constant"]]}
    return out


def probe_store(url, opts: ProbeOptions | None = None, storage_options: dict | None = None) -> dict[str, Any]:
    """Train the probe on a store's train split and score every latent (and state) on its test split.

    ``url``: a store URL or :class:`Location`. The pixels it trains on are read into memory once
    (samples x views [x frames picked and their neighbours] x H x W x 3 bytes: 50 MB for 1000
    four-view 64 px images, 2.2 GB for 1000 such 45-frame clips at 16 frames, whose neighbours are
    every frame; about 10 GB at the peak with the states' stacks), so ``opts.max_train`` bounds
    it for big stores.

    Returns ``{"rows": [{"name", "target": "latent"|"state", "metric": "r2"|"accuracy"|"circular",
    "score" (None where undefined), "unidentifiable" (the spec's reason, or None), "constant" (one
    value in every sample read)}], "summary" ({"target_score", "latents"/"states": {"identifiable",
    "reached", "below", "unidentifiable", "constant"}}: latents and states (``time_varying``
    variables) the spec declares unidentifiable are scored but counted apart, constant ones not
    counted), "train", "test",
    "notes", "options"}``. Raises
    :class:`ProbeDataError` for a store without images or without enough train/test samples,
    and ImportError without PyTorch.
    """
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("crlgen probe needs PyTorch: pip install 'crlgen[torch]'") from exc
    from .loaders import StoreDataset

    opts = opts or ProbeOptions()
    try:
        ds = StoreDataset(url, split=None, output=opts.output, storage_options=storage_options)
    except ValueError as e:  # an output the store does not have
        raise ProbeDataError(str(e).removeprefix("output: "), arg="output") from None
    if ds.output is None:
        raise ProbeDataError("the store holds latents only: there are no pixels to probe")
    spec = ds.plan.spec
    train = np.flatnonzero(ds.split_codes == SPLIT_NAMES.index("train"))
    test = np.flatnonzero(ds.split_codes == SPLIT_NAMES.index("test"))
    if opts.max_train is not None:
        train = train[: opts.max_train]
    if len(train) < 8 or len(test) < 2:
        raise ProbeDataError(f"the probe needs at least 8 train and 2 test samples; the store's splits hold {len(train)} "
                             f"and {len(test)}")
    g = ds.group()
    arr = g[ds.output]
    names = list(ds.latent_names)
    kinds = _kinds(spec, names)
    used = np.union1d(train, test)  # only these samples' pixels are read
    tr, te = np.searchsorted(used, train), np.searchsorted(used, test)
    rows = []
    if not ds.video:
        pix = read_rows(arr, used, ds.plan.shards)[:, ds.view_index]  # (n, V, H, W, 3)
        x = _resize(torch, np.moveaxis(pix, -1, 2).reshape(len(pix), -1, *pix.shape[-3:-1]), opts.size)
    else:  # frames evenly spread over every clip, read once with their neighbours
        T = arr.shape[1]
        pick = np.unique(np.linspace(0, T - 1, min(opts.frames, T)).round().astype(int))
        window = np.clip(pick[:, None] + np.arange(-1, 2)[None, :], 0, T - 1)  # (F, 3): frames t-1, t, t+1
        need = np.unique(window)
        clip = np.empty((len(used), len(need), 3 * len(ds.view_index), opts.size, opts.size), np.uint8)
        step = max(1, ds.plan.shard_size)  # a shard's clips at a time: one big orthogonal read holds many copies
        for a in range(0, len(used), step):
            part = read(arr, (used[a:a + step], need), orthogonal=True)[:, :, ds.view_index]  # (b, F', V, H, W, 3)
            clip[a:a + step] = _resize(torch, np.moveaxis(part, -1, 3).reshape(-1, 3, *part.shape[-3:-1]),
                                       opts.size).reshape(len(part), len(need), -1, opts.size, opts.size)
        x = clip[:, np.searchsorted(need, pick)]  # (n, F, V*3, S, S): the clip probe's input
    scores = _fit_and_score(torch, x[tr], ds.latents[train], x[te], ds.latents[test], kinds, opts)
    rows += [{"name": n, "target": "latent", "metric": k, "score": sc}
             for n, (k, _), sc in zip(names, kinds, scores)]
    if ds.video and ds.plan.has("state"):
        # each state from its frame and the two beside it (a velocity shows only between frames)
        states = read(g["states"], (used, pick), orthogonal=True).astype(np.float32)  # (n, F, S)
        snames = [str(v) for v in ds.plan.array("state").values]
        stacks = clip[:, np.searchsorted(need, window)]  # (n, F, 3, V*3, S, S)

        def flat(rows_):
            return (stacks[rows_].reshape(len(rows_) * len(pick), -1, opts.size, opts.size),
                    states[rows_].reshape(-1, len(snames)))

        (xs_train, ys_train), (xs_test, ys_test) = flat(tr), flat(te)
        levels = dict(g["states"].attrs.get("state_levels", {}))  # categorical states: accuracy, not R^2
        skinds = [("accuracy", int(levels[n])) if n in levels else ("r2", None) for n in snames]
        sscores = _fit_and_score(torch, xs_train, ys_train, xs_test, ys_test, skinds, opts)
        rows += [{"name": n, "target": "state", "metric": k, "score": sc}
                 for n, (k, _), sc in zip(snames, skinds, sscores)]
    reasons = {n.name: n.variable.unidentifiable for n in spec.graph.nodes}
    reasons.update(_state_reasons(spec))
    constant = {n for n, col in zip(names, ds.latents[used].T) if np.ptp(col) == 0}
    if ds.video and ds.plan.has("state"):
        constant |= {n for n, col in zip(snames, states.reshape(-1, len(snames)).T)
                     if not np.isfinite(col).any() or np.ptp(col[np.isfinite(col)]) == 0}
    for r in rows:  # JSON has no NaN: an undefined score (a latent constant on the test split) is None
        r["score"] = r["score"] if r["score"] is not None and np.isfinite(r["score"]) else None
        r["unidentifiable"] = reasons.get(r["name"])
        r["constant"] = r["name"] in constant  # the same value in every sample read: nothing to recover
    notes = [f"only {len(test)} test samples: scores from this few are noisy; use {MIN_TEST} or more"] if len(test) < MIN_TEST else []
    return {"rows": rows, "summary": _summary(rows), "train": int(len(train)), "test": int(len(test)), "notes": notes,
            "options": {"epochs": opts.epochs, "size": opts.size, "batch": opts.batch, "frames": opts.frames, "seed": opts.seed,
                        "output": ds.output}}
