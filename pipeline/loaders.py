"""PyTorch datasets over crlgen stores (``pip install 'crlgen[torch]'``).

- :class:`StoreDataset`: one item per sample of a split (still images or whole videos);
- :class:`PairDataset`: counterfactual pairs (x, x') for weakly supervised CRL;
- :class:`ClipDataset`: windows of T frames of video stores, with their state series.

Every item is a dict of tensors: ``x`` (float32 in [0, 1]; views, channels first: (V, 3, H, W)
for images, (T, V, 3, H, W) for clips), ``z`` (float32 latents, names in ``latent_names``),
``domain`` and ``sample`` (int64), ``intervention_mask`` (bool) and ``intervention_value``
(float32, NaN where not intervened), and ``split`` (int64). Splits are the ones stored at
generation time (never drawn at load time).

The store is opened lazily in each process that reads it (each DataLoader worker opens its own
handle; none is pickled), local or on S3. A read that fails raises :class:`StoreReadError`:
at open, every shard's storage objects are checked against the sizes its commit marker records,
so a missing chunk is an error, not an image of zeros (zarr would fill one silently), and a
chunk whose bytes were damaged fails Zstandard's content checksum when it is decoded.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

try:
    import torch
    from torch.utils.data import Dataset, Sampler
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("crlgen.pipeline.loaders needs PyTorch: pip install 'crlgen[torch]'") from exc

from ..schemas.splits import SPLIT_NAMES
from ._reading import StoreReadError, open_readable, read, read_rows
from ._store import Store
from ._urls import Location

__all__ = ["ClipDataset", "PairDataset", "ShardShuffleSampler", "StoreDataset", "StoreReadError"]


def _main_rgb(rgb: Sequence[Any]) -> Any:
    """The default colour array of a store's ``rgb`` arrays: the main ``images``/``frames`` (the
    cameras at ``render.size``) wherever it exists, else the first; a camera group of another size
    (``frames_40x28``) is never the default while the main array is there."""
    return next((a for a in rgb if a.name in ("images", "frames")), rgb[0])


class _StoreReader:
    """What every dataset shares: the location, the small per-sample arrays, lazy big-array access."""

    def __init__(self, url: str | Location, storage_options: dict | None, split: str | None, output: str | None,
                 views: Sequence[str] | None):
        loc, store, plan = open_readable(url, storage_options, arg="url")
        self.location, self.plan = loc, plan
        g = store.group("r")
        small = {a.name: read(g[a.name]) for a in plan.sample_arrays}
        self.latent_names: tuple[str, ...] = tuple(str(x) for x in read(g["latent"]))
        self.latents = small["latents"].astype(np.float32)
        self.domain, self.split_codes = small["domain"].astype(np.int64), small["split"].astype(np.int64)
        self.mask, self.ivalue = small["intervention_mask"], small["intervention_value"].astype(np.float32)
        self.pair, self.pair_role = small["pair"], small["pair_role"]
        self.edit_frame, self.edit_value = small.get("edit_frame"), small.get("edit_value")
        self.has_pairs = plan.spec.counterfactuals is not None
        if split is not None and split not in SPLIT_NAMES:
            raise ValueError(f"split: expected one of {', '.join(SPLIT_NAMES)} or None, got {split!r}")
        self.indices = np.flatnonzero(self.split_codes == SPLIT_NAMES.index(split)) if split else np.arange(len(self.latents))
        rgb = [a for a in plan.world_arrays if a.kind == "rgb"]
        self.output = None
        if rgb:
            self.output = output or _main_rgb(rgb).name
            spec = next((a for a in plan.world_arrays if a.name == self.output), None)
            if spec is None or spec.kind != "rgb":
                raise ValueError(f"output: expected one of {', '.join(a.name for a in rgb)}, got {output!r}")
            view_dim = next(d for d in spec.dims if d.startswith("view"))
            names = [str(v) for v in plan.array(view_dim).values]
            chosen = list(views) if views is not None else names
            unknown = [v for v in chosen if v not in names]
            if unknown or not chosen:
                elsewhere = [a.name for a in rgb if a.name != self.output and set(unknown) <= set(
                    str(v) for v in plan.array(next(d for d in a.dims if d.startswith("view"))).values)]
                hint = f" (they are views of output {elsewhere[0]!r})" if unknown and elsewhere else ""
                raise ValueError(f"views: expected a non-empty list of views of {self.output!r} ({', '.join(names)}), "
                                 f"got {list(views)}{hint}")
            self.view_index = [names.index(v) for v in chosen]
            self.views, self.video = tuple(chosen), spec.dims[1] == "time"
        elif output is not None:
            raise ValueError("output: this store holds latents only")
        self._group = None
        self._pid = None

    # lazily opened, once per process; never pickled (DataLoader workers open their own)
    def group(self):
        if self._group is None or self._pid != os.getpid():
            self._group, self._pid = Store(self.location).group("r"), os.getpid()
        return self._group

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_group"] = state["_pid"] = None
        return state

    def _to_tensor(self, x: np.ndarray) -> torch.Tensor:
        """([T,] V_all, H, W, 3) uint8 -> ([T,] V, 3, H, W) float32 in [0, 1], the chosen views."""
        x = x[..., self.view_index, :, :, :] if x.ndim == 5 else x[self.view_index]
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, -3))).float().div_(255.0)

    def pixels(self, i: int, frames: slice | None = None) -> torch.Tensor:
        """Sample ``i``'s chosen views as float32 in [0, 1], channels first."""
        if self.output is None:
            raise ValueError("this store holds latents only: there is no x")
        arr = self.group()[self.output]
        return self._to_tensor(read(arr, i if frames is None else (i, frames)))  # ([T,] V, H, W, 3) uint8

    def pixels_of(self, samples: np.ndarray) -> list[torch.Tensor]:
        """Several samples' pixels, read shard by shard (:func:`read_rows`)."""
        return [self._to_tensor(x) for x in read_rows(self.group()[self.output], samples, self.plan.shards)]

    def labels(self, i: int) -> dict[str, torch.Tensor]:
        out = {"z": torch.from_numpy(self.latents[i]), "domain": torch.tensor(self.domain[i]),
               "intervention_mask": torch.from_numpy(self.mask[i]), "intervention_value": torch.from_numpy(self.ivalue[i]),
               "sample": torch.tensor(int(i)), "split": torch.tensor(self.split_codes[i])}
        if self.edit_frame is not None:  # temporal edits (video stores): frame applied (-1 = not) and value
            out["edit_frame"] = torch.from_numpy(self.edit_frame[i].astype(np.int64))
            out["edit_value"] = torch.from_numpy(self.edit_value[i].astype(np.float32))
        return out


class StoreDataset(_StoreReader, Dataset):
    """One item per sample of ``split`` (``"train"``, ``"val"``, ``"test"`` or None for all).

    ``output`` picks the colour array (default: the main one, ``images`` or ``frames``, not a
    camera group of another size such as ``frames_40x28``), ``views``
    the camera names (default: all of that array, in store order). Video stores give the whole
    clip (T, V, 3, H, W). Raises :class:`StoreReadError` for a store that is not complete and
    ValueError for an unknown split, output or view.
    """

    def __init__(self, url: str | Location, *, split: str | None = "train", output: str | None = None,
                 views: Sequence[str] | None = None, storage_options: dict | None = None) -> None:
        super().__init__(url, storage_options, split, output, views)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i = int(self.indices[k])
        item = self.labels(i)
        if self.output is not None:
            item["x"] = self.pixels(i)
        return item

    def __getitems__(self, ks: list[int]) -> list[dict[str, torch.Tensor]]:
        """A whole batch (the DataLoader asks for one at a time), neighbouring samples read together."""
        samples = self.indices[np.asarray(ks, dtype=np.int64)]
        items = [self.labels(int(i)) for i in samples]
        if self.output is not None:
            for item, x in zip(items, self.pixels_of(samples)):
                item["x"] = x
        return items

    def sampler(self, *, shuffle: bool = True, seed: int = 0, mix: int = 4) -> "ShardShuffleSampler":
        """A sampler that reads well: see :class:`ShardShuffleSampler`."""
        return ShardShuffleSampler(self, shuffle=shuffle, seed=seed, mix=mix)


class ShardShuffleSampler(Sampler):
    """Random order at the granularity Zarr reads well: the store's shards (runs of neighbouring
    samples) in a random order, and the samples of ``mix`` consecutive shards shuffled together.

    With ``DataLoader(ds, batch_size=64, sampler=ds.sampler())`` a batch holds a few runs, which
    :meth:`StoreDataset.__getitems__` reads in a few calls instead of 64 (3-4x faster here,
    see ``docs/performance.md``); the order is still random between epochs (the generator is
    seeded with ``seed`` and the epoch). ``shuffle=False`` keeps the store order. The same
    trade as WebDataset's shard shuffling: samples of one shard are more often in one batch.
    """

    def __init__(self, dataset: StoreDataset, *, shuffle: bool = True, seed: int = 0, mix: int = 4) -> None:
        if mix < 1:
            raise ValueError(f"mix: expected at least 1 shard, got {mix}")
        bounds = np.array([b for _, b in dataset.plan.shards])
        shard_of = np.searchsorted(bounds, dataset.indices, side="right")
        self.groups = [np.flatnonzero(shard_of == s) for s in np.unique(shard_of)]  # positions per shard
        self.shuffle, self.seed, self.mix, self.epoch = shuffle, seed, mix, 0

    def __len__(self) -> int:
        return int(sum(g.size for g in self.groups))

    def __iter__(self):
        if not self.shuffle:
            yield from (int(k) for g in self.groups for k in g)
            return
        rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        order = rng.permutation(len(self.groups))
        for k in range(0, order.size, self.mix):
            pool = np.concatenate([self.groups[j] for j in order[k:k + self.mix]])
            yield from (int(x) for x in rng.permutation(pool))


class PairDataset(_StoreReader, Dataset):
    """Counterfactual pairs of a split: the factual sample and its partner (same exogenous noise,
    one intervention or edit apart), for weakly supervised CRL.

    Items: ``x``, ``z`` (factual), ``x_pair``, ``z_pair`` (partner), ``changed`` (bool per latent:
    ``z != z_pair``), ``intervened`` (the partner's intervention mask) and the factual's labels.
    In video stores whose pairs differ by a temporal edit (latents equal, so ``changed`` is all
    False) ``edit_frame_pair`` / ``edit_value_pair`` give the partner's edits beside the
    factual's ``edit_frame`` / ``edit_value``; ``edited`` says which edit columns differ.
    Raises ValueError when the split holds no pairs.
    """

    def __init__(self, url: str | Location, *, split: str | None = "train", output: str | None = None,
                 views: Sequence[str] | None = None, storage_options: dict | None = None) -> None:
        super().__init__(url, storage_options, split, output, views)
        self.indices = self.indices[self.pair_role[self.indices] == 1]
        if self.indices.size == 0:
            why = "" if self.has_pairs else " (the spec has no `counterfactuals:`)"
            raise ValueError(f"split {split!r} holds no counterfactual pairs{why}")

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i = int(self.indices[k])
        j = int(self.pair[i])
        item = self.labels(i)
        item.update(z_pair=torch.from_numpy(self.latents[j]), changed=torch.from_numpy(self.latents[i] != self.latents[j]),
                    intervened=torch.from_numpy(self.mask[j]), sample_pair=torch.tensor(j))
        if self.edit_frame is not None:
            fi, fj = self.edit_frame[i], self.edit_frame[j]
            vi, vj = self.edit_value[i], self.edit_value[j]
            item.update(edit_frame_pair=torch.from_numpy(fj.astype(np.int64)), edit_value_pair=torch.from_numpy(vj.astype(np.float32)),
                        edited=torch.from_numpy((fi != fj) | ~((vi == vj) | (np.isnan(vi) & np.isnan(vj)))))
        if self.output is not None:
            item["x"], item["x_pair"] = self.pixels(i), self.pixels(j)
        return item


class ClipDataset(_StoreReader, Dataset):
    """Windows of ``frames`` consecutive frames (every ``stride`` frames) of the videos of a split.

    Items: ``x`` (frames, V, 3, H, W), ``states`` (frames, S) float32 with names in
    ``state_names`` and ``state_known`` (frames, S) bool, False where a state has no value (NaN:
    an agent absent from the sample, e.g. traffic's ``vehicle[k].present = 0``) (both if the store
    has states), ``time`` (frames,) seconds, ``t0`` the first frame, and the sample's labels. Raises ValueError for a still-image store or a window longer than the videos.
    """

    def __init__(self, url: str | Location, *, frames: int, stride: int | None = None, split: str | None = "train",
                 output: str | None = None, views: Sequence[str] | None = None, storage_options: dict | None = None) -> None:
        super().__init__(url, storage_options, split, output, views)
        if self.output is None or not self.video:
            raise ValueError("ClipDataset needs a video store (with a time axis)")
        T = self.plan.array(self.output).shape[1]
        if not isinstance(frames, (int, np.integer)) or not 1 <= frames <= T:
            raise ValueError(f"frames: expected a whole number of frames in 1..{T}, got {frames!r}")
        if stride is not None and (not isinstance(stride, (int, np.integer)) or stride < 1):
            raise ValueError(f"stride: expected a whole number of frames >= 1 (or None = frames), got {stride!r}")
        self.frames, self.stride = int(frames), int(stride if stride is not None else frames)
        self.starts = np.arange(0, T - self.frames + 1, self.stride)
        self.state_names = tuple(str(s) for s in self.plan.array("state").values) if self.plan.has("state") else ()
        self.times = np.asarray(self.plan.array("time").values, dtype=np.float32)

    def __len__(self) -> int:
        return int(self.indices.size * self.starts.size)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i = int(self.indices[k // self.starts.size])
        t0 = int(self.starts[k % self.starts.size])
        window = slice(t0, t0 + self.frames)
        item = self.labels(i)
        item.update(x=self.pixels(i, window), time=torch.from_numpy(self.times[window]), t0=torch.tensor(t0))
        if self.state_names:
            states = read(self.group()["states"], (i, window)).astype(np.float32)
            item["states"] = torch.from_numpy(states)
            item["state_known"] = torch.from_numpy(np.isfinite(states))
        return item
