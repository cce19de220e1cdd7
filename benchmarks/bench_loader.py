"""Is reading the bottleneck? StoreDataset samples/s with 0 and 2 DataLoader workers, side by side
with the training rate of a small CNN (the probe's network) on the same batches.

Each rate is measured in this one run on the same store: loader = iterating a DataLoader
(batch 64, decoded to float tensors) without training; train = forward + backward + Adam step
of the probe's CNN on batches already in memory; loop = both together (reading with 2 workers
while training). `loop / train` near 1 means reading costs the training loop nothing.

    python benchmarks/bench_loader.py STORE_URL [--epochs 2]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", help="a store with images (e.g. one `crlgen run static/spring` wrote)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()

    import torch
    from torch.utils.data import DataLoader

    from crlgen.pipeline._probe import _net
    from crlgen.pipeline.loaders import StoreDataset

    ds = StoreDataset(a.url, split="train")
    x0 = ds[0]["x"]
    channels = x0.shape[0] * x0.shape[1]

    def loader(workers: int) -> DataLoader:
        return DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=workers, persistent_workers=workers > 0,
                          generator=torch.Generator().manual_seed(0))

    def read_rate(workers: int) -> float:
        dl = loader(workers)
        next(iter(dl))  # start-up (worker processes, first open) is not counted
        n, t = 0, time.perf_counter()
        for _ in range(a.epochs):
            for b in dl:
                n += b["x"].shape[0]
        return n / (time.perf_counter() - t)

    net = _net(torch, channels, [1] * len(ds.latent_names))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step(b) -> None:
        x = b["x"].flatten(1, 2)
        opt.zero_grad()
        loss = sum(torch.nn.functional.mse_loss(o[:, 0], b["z"][:, j]) for j, o in enumerate(net(x)))
        loss.backward()
        opt.step()

    cached = list(loader(0))
    step(cached[0])
    n, t = 0, time.perf_counter()
    for _ in range(a.epochs):
        for b in cached:
            step(b)
            n += b["x"].shape[0]
    train = n / (time.perf_counter() - t)
    dl = loader(2)
    next(iter(dl))
    n, t = 0, time.perf_counter()
    for _ in range(a.epochs):
        for b in dl:
            step(b)
            n += b["x"].shape[0]
    loop = n / (time.perf_counter() - t)
    r0, r2 = read_rate(0), read_rate(2)
    print(f"store {a.url}: {len(ds)} train samples, x {tuple(x0.shape)}, batch {a.batch}, {a.epochs} epochs, "
          f"torch threads {torch.get_num_threads()}")
    print("| read, 0 workers | read, 2 workers | 2 / 0 | train step only | train + read (2 workers) | loop / train |")
    print("|---|---|---|---|---|---|")
    print(f"| {r0:.0f} samples/s | {r2:.0f} samples/s | {r2 / r0:.2f} | {train:.0f} samples/s | {loop:.0f} samples/s | {loop / train:.2f} |")


if __name__ == "__main__":
    main()
