"""Is reading the bottleneck? StoreDataset samples/s with 0 and 2 DataLoader workers, side by side
with the training rate of a small CNN (the probe's network) on the same batches.

Measured in this one run on the same store, for both orders a DataLoader can ask in: `random`
(shuffle=True: every sample from anywhere) and `shards` (the dataset's ShardShuffleSampler:
shards in random order, mixed four at a time, so a batch is read in a few Zarr calls).
read = iterating the DataLoader (batch 64, decoded to float tensors) without training;
train = forward + backward + Adam step on batches already in memory; loop = both together.
`loop / train` near 1 means reading costs the training loop nothing.

    python benchmarks/bench_loader.py STORE_URL [--epochs 2] [--threads 1 --workers 0 1 2]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", help="a store with images (e.g. one `crlgen run static/spring` wrote)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="torch threads for training (default: torch's choice)")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts to measure")
    a = ap.parse_args()

    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    from torch.utils.data import DataLoader

    from crlgen.pipeline._probe import _net
    from crlgen.pipeline.loaders import StoreDataset

    ds = StoreDataset(a.url, split="train")
    x0 = ds[0]["x"]
    net = _net(torch, x0.shape[0] * x0.shape[1], [1] * len(ds.latent_names))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def loader(order: str, workers: int) -> DataLoader:
        kw = {"sampler": ds.sampler(seed=0)} if order == "shards" else {"shuffle": True, "generator": torch.Generator().manual_seed(0)}
        return DataLoader(ds, batch_size=a.batch, num_workers=workers, persistent_workers=workers > 0, **kw)

    def step(b) -> None:
        opt.zero_grad()
        out = net(b["x"].flatten(1, 2))
        sum(torch.nn.functional.mse_loss(o[:, 0], b["z"][:, j]) for j, o in enumerate(out)).backward()
        opt.step()

    def rate(dl: DataLoader, train: bool) -> float:
        it = iter(dl)
        next(it)  # start-up (worker processes, first open) is not counted
        n, t = 0, time.perf_counter()
        for epoch in range(a.epochs):
            for b in (it if epoch == 0 else dl):
                if train:
                    step(b)
                n += b["x"].shape[0]
        return n / (time.perf_counter() - t)

    cached = list(loader("random", 0))
    step(cached[0])
    n, t = 0, time.perf_counter()
    for _ in range(a.epochs):
        for b in cached:
            step(b)
            n += b["x"].shape[0]
    train = n / (time.perf_counter() - t)
    print(f"store {a.url}: {len(ds)} train samples, x {tuple(x0.shape)}, batch {a.batch}, {a.epochs} epochs, "
          f"torch threads {torch.get_num_threads()}; train step alone: {train:.0f} samples/s")
    print("| order | workers | read samples/s | train + read samples/s | loop / train |")
    print("|---|---|---|---|---|")
    for order in ("random", "shards"):
        for workers in a.workers:
            r = rate(loader(order, workers), train=False)
            loop = rate(loader(order, workers), train=True)
            print(f"| {order} | {workers} | {r:.0f} | {loop:.0f} | {loop / train:.2f} |")


if __name__ == "__main__":
    main()
