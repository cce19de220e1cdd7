"""Multi-environment trajectories (GCRL-style motion forecasting): zero-shot and few-shot transfer.

Generates a small version of the catalogue's ``papers/gcrl_collision`` (PyBullet, 32 px, two
views, 20 frames) in-process, then loads it the way a motion-forecasting model would:

- the environments differ only in style (light, hues), the dynamics are shared: the light's
  range per environment is printed next to the (identical) friction distribution;
- the splits were decided at generation: environment ``env_c`` is held out for test
  (zero-shot), and a ``few_shot`` share of it is in train;
- :class:`crlgen.pipeline.loaders.ClipDataset` cuts every video into windows of 8 frames with
  the state series (positions, velocities): observed past and future to forecast.

    python examples/gcrl_environments.py
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from crlgen.pipeline import RunOptions, check_spec, load_spec, open_store, resolve, run


def main() -> None:
    spec = load_spec("papers/gcrl_collision")
    spec = spec.replace(samples=90, shard_size=30, video={"fps": 30, "frames": 20},
                        render={"size": 32, "views": 2, "engine": "tiny"},
                        splits={**spec.splits.model_dump(), "few_shot": 0.2})
    check_spec(spec)
    from torch.utils.data import DataLoader

    from crlgen.pipeline.loaders import ClipDataset

    with tempfile.TemporaryDirectory() as tmp:
        location = resolve(str(Path(tmp) / "gcrl.zarr"))
        result = run(spec, location, RunOptions(executor="inline"))
        print(f"generated {spec.samples} videos in {result.seconds:.1f} s; validation {'passed' if result.valid else 'FAILED'}")

        ds = open_store(location.url)
        envs = list(spec.domains)
        domain, split = ds["domain"].values, ds["split"].values
        light, friction = ds["latents"].sel(latent="light").values, ds["latents"].sel(latent="friction").values
        for d, name in enumerate(envs):
            rows = domain == d
            print(f"{name}: light [{light[rows].min():.2f}, {light[rows].max():.2f}] (style), "
                  f"friction mean {friction[rows].mean():.3f} (dynamics); splits "
                  + ", ".join(f"{s} {int(((split == k) & rows).sum())}" for k, s in enumerate(["train", "val", "test"])))
        held = envs.index("env_c")
        assert set(domain[split == 2]) == {held}, "only the held-out environment is tested"
        few = int(((split == 0) & (domain == held)).sum())
        print(f"zero-shot test: every env_c sample not kept for few-shot; few-shot: {few} env_c samples in train")

        train = ClipDataset(location.url, frames=8, stride=4, split="train")
        test = ClipDataset(location.url, frames=8, stride=4, split="test")
        batch = next(iter(DataLoader(train, batch_size=16, shuffle=False)))
        print(f"train windows: {len(train)}, test windows: {len(test)}")
        print(f"a batch: x {tuple(batch['x'].shape)} (batch, frames, views, 3, H, W), "
              f"states {tuple(batch['states'].shape)} named {train.state_names[:3]}..., time {[round(t, 4) for t in batch['time'][0, :3].tolist()]} s")
        print("train videos per environment:", dict(Counter(envs[int(d)] for d in train.domain[train.indices])))
        if not result.valid:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
