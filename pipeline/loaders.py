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
handle; none is pickled), local or on S3. A read that fails raises: at open, every shard's
storage objects are checked against the sizes its commit marker records, so a missing chunk
is an error, not an image of zeros (zarr would fill one silently).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

try:
    import torch
    from torch.utils.data import Dataset
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("crlgen.pipeline.loaders needs PyTorch: pip install 'crlgen[torch]'") from exc

from ..schemas.splits import SPLIT_NAMES
from ._store import Store, StoreError
from ._urls import Location, check_location, resolve

__all__ = ["ClipDataset", "PairDataset", "StoreDataset", "StoreReadError"]


class StoreReadError(StoreError, IOError):
    """A store the loaders cannot read completely (missing or damaged shards, an unfinished run)."""


class _StoreReader:
    """What every dataset shares: the location, the small per-sample arrays, lazy big-array access."""

    def __init__(self, url: str | Location, storage_options: dict | None, split: str | None, output: str | None,
                 views: Sequence[str] | None):
        loc = resolve(url, storage_options, arg="url")
        check_location(loc, write=False)
        store = Store(loc)
        attrs = store.attrs()
        if not attrs:
            raise StoreReadError(f"{loc.redacted()}: not a crlgen store")
        if attrs.get("status") not in ("complete", "invalid"):
            raise StoreReadError(f"{loc.redacted()}: the run writing this store has not finished (status {attrs.get('status')})")
        from ._validate import load_plan

        plan = load_plan(store)
        listing = store.listing()
        broken = [p for k in range(len(plan.shards)) for p in store.verify_sizes(plan, k, listing)]
        if broken:
            raise StoreReadError(f"{loc.redacted()}: {len(broken)} problems with its shards, first: {broken[0]} "
                                 "(run `crlgen validate` on it)")
        self.location, self.plan = loc, plan
        g = store.group("r")
        small = {a.name: np.asarray(g[a.name][:]) for a in plan.sample_arrays}
        self.latent_names: tuple[str, ...] = tuple(str(x) for x in np.asarray(g["latent"][:]))
        self.latents = small["latents"].astype(np.float32)
        self.domain, self.split_codes = small["domain"].astype(np.int64), small["split"].astype(np.int64)
        self.mask, self.ivalue = small["intervention_mask"], small["intervention_value"].astype(np.float32)
        self.pair, self.pair_role = small["pair"], small["pair_role"]
        if split is not None and split not in SPLIT_NAMES:
            raise ValueError(f"split: expected one of {', '.join(SPLIT_NAMES)} or None, got {split!r}")
        self.indices = np.flatnonzero(self.split_codes == SPLIT_NAMES.index(split)) if split else np.arange(len(self.latents))
        rgb = [a for a in plan.world_arrays if a.kind == "rgb"]
        self.output = None
        if rgb:
            self.output = output or rgb[0].name
            spec = next((a for a in plan.world_arrays if a.name == self.output), None)
            if spec is None or spec.kind != "rgb":
                raise ValueError(f"output: expected one of {', '.join(a.name for a in rgb)}, got {output!r}")
            view_dim = next(d for d in spec.dims if d.startswith("view"))
            names = [str(v) for v in plan.array(view_dim).values]
            chosen = list(views) if views is not None else names
            unknown = [v for v in chosen if v not in names]
            if unknown:
                raise ValueError(f"views: unknown {unknown}; the store has {names}")
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

    def pixels(self, i: int, frames: slice | None = None) -> torch.Tensor:
        """Sample ``i``'s chosen views as float32 in [0, 1], channels first."""
        if self.output is None:
            raise ValueError("this store holds latents only: there is no x")
        arr = self.group()[self.output]
        x = np.asarray(arr[i] if frames is None else arr[i, frames])  # ([T,] V, H, W, 3) uint8
        x = x[..., self.view_index, :, :, :] if x.ndim == 5 else x[self.view_index]
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, -3))).float().div_(255.0)

    def labels(self, i: int) -> dict[str, torch.Tensor]:
        return {"z": torch.from_numpy(self.latents[i]), "domain": torch.tensor(self.domain[i]),
                "intervention_mask": torch.from_numpy(self.mask[i]), "intervention_value": torch.from_numpy(self.ivalue[i]),
                "sample": torch.tensor(int(i)), "split": torch.tensor(self.split_codes[i])}


class StoreDataset(_StoreReader, Dataset):
    """One item per sample of ``split`` (``"train"``, ``"val"``, ``"test"`` or None for all).

    ``output`` picks the colour array (default: the first, ``images`` or ``frames``), ``views``
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


class PairDataset(_StoreReader, Dataset):
    """Counterfactual pairs of a split: the factual sample and its partner (same exogenous noise,
    one intervention or edit apart), for weakly supervised CRL.

    Items: ``x``, ``z`` (factual), ``x_pair``, ``z_pair`` (partner), ``changed`` (bool per latent:
    ``z != z_pair``), ``intervened`` (the partner's intervention mask) and the factual's labels.
    Raises ValueError when the split holds no pairs.
    """

    def __init__(self, url: str | Location, *, split: str | None = "train", output: str | None = None,
                 views: Sequence[str] | None = None, storage_options: dict | None = None) -> None:
        super().__init__(url, storage_options, split, output, views)
        self.indices = self.indices[self.pair_role[self.indices] == 1]
        if self.indices.size == 0:
            raise ValueError(f"split {split!r} holds no counterfactual pairs (the spec needs `counterfactuals:`)")

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i = int(self.indices[k])
        j = int(self.pair[i])
        item = self.labels(i)
        item.update(z_pair=torch.from_numpy(self.latents[j]), changed=torch.from_numpy(self.latents[i] != self.latents[j]),
                    intervened=torch.from_numpy(self.mask[j]), sample_pair=torch.tensor(j))
        if self.output is not None:
            item["x"], item["x_pair"] = self.pixels(i), self.pixels(j)
        return item


class ClipDataset(_StoreReader, Dataset):
    """Windows of ``frames`` consecutive frames (every ``stride`` frames) of the videos of a split.

    Items: ``x`` (frames, V, 3, H, W), ``states`` (frames, S) float32 with names in
    ``state_names`` (if the store has states), ``time`` (frames,) seconds, ``t0`` the first frame,
    and the sample's labels. Raises ValueError for a still-image store or a window longer than the videos.
    """

    def __init__(self, url: str | Location, *, frames: int, stride: int | None = None, split: str | None = "train",
                 output: str | None = None, views: Sequence[str] | None = None, storage_options: dict | None = None) -> None:
        super().__init__(url, storage_options, split, output, views)
        if self.output is None or not self.video:
            raise ValueError("ClipDataset needs a video store (with a time axis)")
        T = self.plan.array(self.output).shape[1]
        if not 1 <= frames <= T:
            raise ValueError(f"frames: expected 1..{T}, got {frames}")
        self.frames, self.stride = int(frames), int(stride or frames)
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
            item["states"] = torch.from_numpy(np.asarray(self.group()["states"][i, window], dtype=np.float32))
        return item
