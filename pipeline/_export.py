"""Export a store to the layouts datasets are shared in: Parquet (the Hugging Face hub's) and WebDataset.

Parquet (``pyarrow``): ``DEST/data/<split>-<k>-of-<n>.parquet``, one row per sample. Colour
arrays become one column per output and view (``images.front``), holding PNG bytes in the
hub's image struct ``{bytes, path}`` (a list of them per frame for videos); every latent is a
float64 column under its own name; the per-sample labels keep their store names (``domain``
as its label, ``domain_index``, ``intervention``, ``intervention_mask``, ...), states are
``state.<name>`` lists over frames, and every other per-sample array (depth, segmentation,
camera geometry) is a flat list column whose shape is in ``crlgen_export.json``. The schema
carries the ``huggingface`` features metadata, so ``datasets.load_dataset(DEST)`` decodes
images, and a README with the hub's ``configs`` front matter maps the files to splits.

WebDataset (``webdataset.TarWriter``): ``DEST/<split>-<k>.tar``; per sample key ``<index>``
(zero-padded) the members ``<output>.<view>.png`` (``<output>.<view>.<frame>.png`` for videos),
``latents.json`` (name -> value), ``labels.json`` and ``<array>.npy`` for the other arrays.

Beside both: ``causal_graph.json``, ``causal_graph.graphml``, ``spec.yaml`` and
``crlgen_export.json`` (shapes, names, the store it came from). PNG is lossless and latents are
written as float64, so pixels and latents read back equal to the store's.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..schemas.splits import SPLIT_NAMES
from ._plan import Plan
from ._reading import read, read_rows
from ._store import Store

#: Per-sample label columns (store arrays of the same name, domain as its label).
LABEL_COLUMNS = ("sample", "split", "domain", "domain_index", "intervention", "intervention_mask",
                 "intervention_value", "noise", "pair", "pair_role", "edit_frame", "edit_value")
_SIDECARS = ("causal_graph.json", "causal_graph.graphml", "spec.yaml")


class ExportError(ValueError):
    """A store or option this export cannot honour; the message is one line starting with the argument."""


@dataclass
class ExportResult:
    """Files written (paths relative to the destination) and the samples per split."""

    files: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _jsonable(v: Any) -> Any:
    """Plain JSON values: arrays as lists, NaN and inf as None (JSON has no NaN)."""
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.generic):
        return v.item()
    return v


class _Reader:
    """A complete store's arrays, read a block of samples at a time."""

    def __init__(self, store: Store, plan: Plan) -> None:
        self.store, self.plan = store, plan
        self.g = store.group("r")
        self.names = [str(x) for x in read(self.g["latent"])]
        self.domains = [str(x) for x in plan.array("domain").attrs.get("labels", ["default"])]
        self.rgb = [a for a in plan.world_arrays if a.kind == "rgb"]
        self.views = {a.name: [str(v) for v in plan.array(next(d for d in a.dims if d.startswith("view"))).values]
                      for a in self.rgb}
        self.other = [a for a in plan.world_arrays if a.per_sample and a.kind != "rgb" and a.name != "states"]
        self.states = [str(s) for s in plan.array("state").values] if plan.has("state") and "states" in self.g else []
        self.sample_fields = [a.name for a in plan.sample_arrays if a.name in self.g]
        self.split = read(self.g["split"])
        columns = ([f"{a.name}.{v}" for a in self.rgb for v in self.views[a.name]] + self.names + list(LABEL_COLUMNS)
                   + [f"state.{s}" for s in self.states] + [a.name for a in self.other])
        seen: dict[str, int] = {}
        for c in columns:
            seen[c] = seen.get(c, 0) + 1
        clash = sorted(c for c, n in seen.items() if n > 1)
        if clash:
            raise ExportError(f"URL: {store.location.redacted()}: latent names {clash} would share a column with the store's other data (labels "
                             f"{', '.join(LABEL_COLUMNS[:4])}, ..., arrays {', '.join(a.name for a in self.other) or 'none'}); "
                             "rename those latents in the spec to export it")

    def blocks(self, rows: np.ndarray, size: int) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """(indices, arrays) for consecutive blocks of ``rows`` (sorted sample indices); only the
        chunks holding those rows are read, shard by shard (:func:`read_rows`)."""
        names = self.sample_fields + [a.name for a in self.rgb + self.other] + (["states"] if self.states else [])
        for k in range(0, rows.size, size):
            idx = rows[k:k + size]
            yield idx, {name: read_rows(self.g[name], idx, self.plan.shards) for name in names}

    def manifest(self) -> dict[str, Any]:
        """What the export's columns need to be read: names, shapes, and every array and coordinate
        that is not per sample (camera intrinsics, projections, units, times, edit names), with attributes."""
        fixed = {}
        for a in self.plan.arrays:
            if a.per_sample:
                continue
            fixed[a.name] = {"dims": list(a.dims), "values": _jsonable(read(self.g[a.name])),
                             "attrs": _jsonable({k: v for k, v in a.attrs.items() if k != "coordinates"})}
        return {"generator": self.store.attrs().get("generator"), "name": self.plan.spec.name,
                "spec_hash": self.plan.spec_hash, "latents": self.names, "domains": self.domains,
                "splits": list(SPLIT_NAMES), "states": self.states,
                "images": {a.name: {"views": self.views[a.name], "dims": list(a.dims[1:]), "shape": list(a.shape[1:]),
                                    "video": "time" in a.dims, "attrs": _jsonable(a.attrs)} for a in self.rgb},
                "arrays": {a.name: {"dims": list(a.dims[1:]), "shape": list(a.shape[1:]), "dtype": a.dtype,
                                    "attrs": _jsonable(a.attrs)} for a in self.other},
                "labels": {a.name: {"dims": list(a.dims[1:]), "dtype": a.dtype, "attrs": _jsonable(a.attrs)}
                           for a in self.plan.sample_arrays},
                "fixed": fixed}


def _view_axis(a) -> int:
    """Index of the view dim in a per-sample block (sample dim first)."""
    return next(i for i, d in enumerate(a.dims) if d.startswith("view"))


def _hf_features(r: _Reader) -> dict[str, Any]:
    def value(dtype: str) -> dict[str, str]:
        return {"dtype": dtype, "_type": "Value"}

    def seq(f: dict) -> dict:
        return {"feature": f, "_type": "Sequence"}

    feats: dict[str, Any] = {}
    for a in r.rgb:
        for v in r.views[a.name]:
            feats[f"{a.name}.{v}"] = seq({"_type": "Image"}) if "time" in a.dims else {"_type": "Image"}
    feats.update({n: value("float64") for n in r.names})
    feats.update({"sample": value("int64"), "split": value("string"), "domain": value("string"), "domain_index": value("int16"),
                  "intervention": value("int32"), "intervention_mask": seq(value("bool")),
                  "intervention_value": seq(value("float64")), "noise": seq(value("float64")), "pair": value("int64"),
                  "pair_role": value("int8")})
    if "edit_frame" in r.sample_fields:
        feats.update({"edit_frame": seq(value("int32")), "edit_value": seq(value("float64"))})
    feats.update({f"state.{s}": seq(value("float64")) for s in r.states})
    feats.update({a.name: seq(value(str(np.dtype(a.dtype)))) for a in r.other})
    return feats


def _arrow_schema(feats: dict[str, Any]):
    """The Arrow schema the ``datasets`` library derives from ``feats`` (it uses the metadata only
    when every field's type matches: images are ``struct<bytes: binary, path: string>``)."""
    import pyarrow as pa

    def arrow(f: dict[str, Any]):
        if f["_type"] == "Image":
            return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        if f["_type"] == "Sequence":
            return pa.list_(arrow(f["feature"]))
        return pa.string() if f["dtype"] == "string" else pa.from_numpy_dtype(np.dtype(f["dtype"]))

    return pa.schema([(name, arrow(f)) for name, f in feats.items()],
                     metadata={"huggingface": json.dumps({"info": {"features": feats}})})


def _columns(r: _Reader, idx: np.ndarray, data: dict[str, np.ndarray], images: bool = True) -> dict[str, list]:
    cols: dict[str, list] = {}
    for a in r.rgb if images else ():
        x, ax = data[a.name], _view_axis(a)
        for j, v in enumerate(r.views[a.name]):
            xv = np.take(x, j, axis=ax)  # (n, [T,] H, W, 3)
            if "time" in a.dims:
                cols[f"{a.name}.{v}"] = [[{"bytes": _png(f), "path": None} for f in clip] for clip in xv]
            else:
                cols[f"{a.name}.{v}"] = [{"bytes": _png(img), "path": None} for img in xv]
    lat = data["latents"]
    for j, n in enumerate(r.names):
        cols[n] = lat[:, j].astype(np.float64).tolist()
    dom = data["domain"].astype(int)
    cols.update(sample=idx.astype(np.int64).tolist(), split=[SPLIT_NAMES[int(s)] if s >= 0 else "none" for s in data["split"]],
                domain=[r.domains[d] if 0 <= d < len(r.domains) else str(d) for d in dom], domain_index=dom.tolist(),
                intervention=data["intervention"].astype(int).tolist(),
                intervention_mask=data["intervention_mask"].astype(bool).tolist(),
                intervention_value=data["intervention_value"].astype(np.float64).tolist(),
                noise=data["noise"].astype(np.float64).tolist(), pair=data["pair"].astype(np.int64).tolist(),
                pair_role=data["pair_role"].astype(int).tolist())
    if "edit_frame" in data:
        cols.update(edit_frame=data["edit_frame"].astype(int).tolist(), edit_value=data["edit_value"].astype(np.float64).tolist())
    for k, s in enumerate(r.states):
        cols[f"state.{s}"] = data["states"][:, :, k].astype(np.float64).tolist()
    for a in r.other:
        cols[a.name] = data[a.name].reshape(len(idx), -1).tolist()
    return cols


def _split_rows(r: _Reader, split: str | None) -> dict[str, np.ndarray]:
    names = [split] if split else list(SPLIT_NAMES)
    out = {s: rows for s in names if (rows := np.flatnonzero(r.split == SPLIT_NAMES.index(s))).size}
    if split and not out:
        raise ExportError(f"--split {split}: the store's {split} split holds no samples")
    return out


def _card(r: _Reader, rows: dict[str, np.ndarray], files: dict[str, list[str]]) -> str:
    configs = "\n".join(f"  - split: {s}\n    path: data/{s}-*.parquet" for s in files)
    return f"""---
configs:
- config_name: default
  data_files:
{configs}
---
# {r.plan.spec.name}

Exported by crlgen from a store with spec hash `{r.plan.spec_hash[:16]}`: {', '.join(f'{s} {len(v)}' for s, v in rows.items())} samples.
One row per sample: images as PNG (`{'`, `'.join(f'{a.name}.<view>' for a in r.rgb) or 'none'}`), every latent as a column
({', '.join(r.names)}), labels (`domain`, `intervention`, `intervention_mask`, `intervention_value`, `pair`, `split`).
The causal graph is `causal_graph.json`; `spec.yaml` regenerates the data with `crlgen run spec.yaml`;
`crlgen_export.json` gives array shapes.

```python
from datasets import load_dataset
ds = load_dataset("<this folder>")   # splits train, val, test as in the configs above
```
"""


def export_parquet(store: Store, plan: Plan, dest: Path, split: str | None = None, rows_per_file: int = 2048) -> ExportResult:
    """Write ``dest/data/<split>-<k>-of-<n>.parquet`` and the sidecars. Raises ValueError for latent
    names that clash with the label columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    r = _Reader(store, plan)
    schema = _arrow_schema(_hf_features(r))
    result = ExportResult()
    by_split = _split_rows(r, split)
    (dest / "data").mkdir(parents=True, exist_ok=True)
    files: dict[str, list[str]] = {}
    for s, rows in by_split.items():
        n_files = max(1, int(np.ceil(rows.size / rows_per_file)))
        files[s] = []
        for k in range(n_files):
            part = rows[k * rows_per_file:(k + 1) * rows_per_file]
            name = f"data/{s}-{k:05d}-of-{n_files:05d}.parquet"
            with pq.ParquetWriter(dest / name, schema, compression="zstd") as writer:
                for idx, data in r.blocks(part, 64):
                    writer.write_table(pa.Table.from_pydict(_columns(r, idx, data), schema=schema), row_group_size=64)
            files[s].append(name)
            result.files.append(name)
        result.rows[s] = int(rows.size)
    (dest / "README.md").write_text(_card(r, by_split, files))
    result.files.append("README.md")
    result.files += _write_beside(r, dest)
    return result


def export_webdataset(store: Store, plan: Plan, dest: Path, split: str | None = None, samples_per_shard: int = 1000) -> ExportResult:
    """Write ``dest/<split>-<k>.tar`` WebDataset shards and the sidecars."""
    import webdataset as wds

    r = _Reader(store, plan)
    result = ExportResult()
    by_split = _split_rows(r, split)
    dest.mkdir(parents=True, exist_ok=True)
    width = max(6, len(str(plan.spec.samples)))
    for s, rows in by_split.items():
        for k in range(0, rows.size, samples_per_shard):
            name = f"{s}-{k // samples_per_shard:06d}.tar"
            with wds.TarWriter(str(dest / name)) as sink:
                for idx, data in r.blocks(rows[k:k + samples_per_shard], 64):
                    cols = _columns(r, idx, data, images=False)
                    for row, i in enumerate(idx):
                        item: dict[str, Any] = {"__key__": f"{int(i):0{width}d}"}
                        for a in r.rgb:
                            x = data[a.name][row]
                            for j, v in enumerate(r.views[a.name]):
                                xv = np.take(x, j, axis=_view_axis(a) - 1)
                                if "time" in a.dims:
                                    for t, frame in enumerate(xv):
                                        item[f"{a.name}.{v}.{t:04d}.png"] = _png(frame)
                                else:
                                    item[f"{a.name}.{v}.png"] = _png(xv)
                        item["latents.json"] = json.dumps(_jsonable({n: cols[n][row] for n in r.names}), allow_nan=False).encode()
                        item["labels.json"] = json.dumps(_jsonable({c: cols[c][row] for c in LABEL_COLUMNS if c in cols}),
                                                         allow_nan=False).encode()
                        if r.states:
                            item["states.npy"] = _npy(data["states"][row])
                        for a in r.other:
                            item[f"{a.name}.npy"] = _npy(data[a.name][row])
                        sink.write(item)
            result.files.append(name)
        result.rows[s] = int(rows.size)
    result.files += _write_beside(r, dest)
    return result


def _npy(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(x), allow_pickle=False)
    return buf.getvalue()


def _write_beside(r: _Reader, dest: Path) -> list[str]:
    written = []
    for name in _SIDECARS:
        text = r.store.read_text(name)
        if text is not None:
            (dest / name).write_text(text)
            written.append(name)
    (dest / "crlgen_export.json").write_text(json.dumps(r.manifest(), indent=1))
    return written + ["crlgen_export.json"]
