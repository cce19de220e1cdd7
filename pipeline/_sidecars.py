"""Files beside the arrays: the causal graph (JSON + GraphML), the resolved spec, the manifest,
a dataset card and preview images. All are functions of the spec and the data, and all are
written from the plan's arrays: nothing here knows which world made them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..schemas import DatasetSpec
from ..schemas._yaml import dump_yaml
from ..schemas.interventions import SingleNode
from ._plan import Plan
from ._preview import BY_DOMAIN, BY_REGIME, CONTACT_SHEET, GRAPH_IMAGE, VIDEO_DIR, VIDEO_GRID, PreviewFiles, previews
from ._store import GENERATOR_VERSION, Store
from ._urls import redact_options


def _shorthand(v: Any) -> Any:
    if hasattr(v, "model_dump"):
        return v.model_dump(mode="json")
    if isinstance(v, dict):
        return {k: _shorthand(x) for k, x in v.items()}
    return v


def causal_graph(plan: Plan) -> dict[str, Any]:
    """The causal graph as JSON-ready data: nodes (type, range, unit, equation, noise, parents),
    edges, domain-only edges, states (with the units the store gives them), parameters, domains,
    the intervention regime and its options, counterfactual pairing and temporal edits."""
    spec, spec_hash = plan.spec, plan.spec_hash
    g = spec.graph
    units = dict(zip(plan.array("state").values, plan.array("state_unit").values)) if plan.has("state_unit") else {}
    nodes = []
    for n in g.nodes:
        v = n.variable
        nodes.append({
            "name": n.name, "template": n.template, "object": n.object_index, "type": v.type,
            "range": list(v.bounds()) if v.type != "continuous" or getattr(v, "range", None) else None,
            "levels": list(getattr(v, "levels", ()) or ()) or None, "unit": v.unit, "description": v.description,
            "mechanism": n.mechanism, "noise": _shorthand(v.noise), "parents": list(n.parents),
            "parameters": list(n.parameters), "root": n.mechanism is None,
        })
    reg = spec.interventions
    options = [{"index": i, "targets": _shorthand(o)} for i, o in enumerate(spec.intervention_options())]
    return {
        "name": spec.name, "spec_hash": spec_hash, "generator": GENERATOR_VERSION, "world": spec.world,
        "nodes": nodes,
        "states": [{"name": s, "unit": units.get(s) or None} for s in g.states],
        "edges": [{"source": p, "target": c} for p, c in g.edges()],
        "extra_edges": [{"source": p, "target": c, "where": w} for p, c, w in g.extra_edges],
        "parameters": dict(spec.parameters),
        "domains": {k: d.model_dump(mode="json", exclude_defaults=True) for k, d in spec.domains.items()} or {"default": {}},
        "interventions": {"regime": reg.regime, "fraction": getattr(reg, "fraction", None),
                          "selection": "one uniformly random option per intervened sample" if isinstance(reg, SingleNode) else reg.regime,
                          "options": options},
        "counterfactuals": spec.counterfactuals.model_dump(mode="json", exclude_defaults=True) if spec.counterfactuals else None,
        "temporal_edits": [e.model_dump(mode="json", exclude_defaults=True) for e in spec.temporal_edits],
    }


def graphml(graph: dict[str, Any]) -> str:
    """The graph's nodes (with their attributes) and edges (``kind``: mechanism or where) as GraphML."""
    import networkx as nx

    G = nx.DiGraph(name=graph["name"])
    for n in graph["nodes"]:
        attrs = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in n.items()
                 if k not in ("name",) and v is not None}
        G.add_node(n["name"], **attrs)
    for e in graph["edges"]:
        G.add_edge(e["source"], e["target"], kind="mechanism")
    for e in graph["extra_edges"]:
        G.add_edge(e["source"], e["target"], kind=e["where"])
    return "\n".join(nx.generate_graphml(G)) + "\n"


def resolved_spec_yaml(spec: DatasetSpec) -> str:
    """The spec with every default written out (``DatasetSpec.resolved``), without where it was
    written and with credentials redacted: ``crlgen run spec.yaml`` regenerates the dataset from it."""
    data = spec.resolved().model_dump(mode="json")
    out = data.pop("output", None) or {}
    out.pop("url", None)  # where it was written is not part of the dataset
    if out.get("storage_options"):
        data["output"] = {"storage_options": redact_options(out["storage_options"])}
    return ("# Resolved spec (every default written out): `crlgen run spec.yaml` regenerates this dataset bit for bit.\n"
            + dump_yaml(data))


def manifest(plan: Plan, store: Store) -> dict[str, Any]:
    """The plan's summary with every shard's commit state and checksums."""
    shards = []
    for k, (a, b) in enumerate(plan.shards):
        m = store.marker(k)
        shards.append({"shard": k, "start": a, "stop": b, "committed": m is not None,
                       "checksums": (m or {}).get("checksums", {})})
    return {"generator": GENERATOR_VERSION, **plan.describe(), "complete": all(s["committed"] for s in shards), "shard_list": shards}


def _figures(files: list[str]) -> str:
    """The card's pictures: the preview files that exist, as Markdown images (paths relative to the store)."""
    titled = [(CONTACT_SHEET, "Samples (contact sheet)"), (VIDEO_GRID, "Videos"), (GRAPH_IMAGE, "Causal graph"),
              (BY_DOMAIN, "Latents per domain"), (BY_REGIME, "Latents per intervention regime")]
    parts = [f"![{title}]({name})" for name, title in titled if name in files]
    clips = [f for f in files if f.startswith(VIDEO_DIR + "/")]
    if clips:
        parts.append("Per-sample videos: " + ", ".join(f"[{f.rsplit('/', 1)[1]}]({f})" for f in clips))
    return "\n\n".join(parts)


def dataset_card(plan: Plan, graph: dict[str, Any], files: list[str] = ()) -> str:
    """The store's README: what it is, its pictures (``files``: the preview files written), its graph,
    every array (dims, shape, dtype, units, meaning), how to load it."""
    spec = plan.spec
    rows = "\n".join(
        f"| `{n['name']}` | {n['type']} | {n['unit'] or ''} | {', '.join(n['parents']) or '(root)'} | `{n['mechanism'] or n['noise']}` |"
        for n in graph["nodes"])
    edges = ", ".join(f"{e['source']} → {e['target']}" for e in graph["edges"]) or "none"
    arrays = "\n".join(f"| `{a.name}` | {', '.join(a.dims)} | {'×'.join(map(str, a.shape))} | {a.dtype} | "
                       f"{a.attrs.get('units', '')} | {a.attrs.get('description', '')} |"
                       for a in plan.arrays if a.source != "coordinate")
    keys = [f"- `{a.name}`: " + ", ".join(f"{k} = {v}" for k, v in a.attrs["ids"].items())
            for a in plan.arrays if "ids" in a.attrs]
    geometry = ""
    if any(a.name.startswith("camera_to_world") for a in plan.arrays):
        geometry = ("\nCamera geometry: `intrinsics` (K per view) and `camera_to_world` (4x4 per sample and frame) use "
                    "OpenCV's convention: camera x right, y down, z forward; pixel (u, v) = (column, row) with integer "
                    "values at pixel centres; world z up, metres. With R, t from camera_to_world, a world point X has "
                    "camera coordinates (x, y, z) = R^T (X - t) and lands at K (x/z, y/z, 1) for perspective views and "
                    "K (x, y, 1) for orthographic ones (see the `projection` coordinate); `depth` holds z.\n")
    ids = ("\nSegmentation ids:\n" + "\n".join(keys) + "\n") if keys else ""
    fills = ", ".join(f"`{a.name}` {_fill_text(a.fill)}" for a in plan.arrays
                      if a.per_sample and a.fill is not None and a.fill is not False)
    return f"""# {spec.name}

{spec.description.strip()}

Generated by {GENERATOR_VERSION} from `spec.yaml` (spec hash `{plan.spec_hash[:16]}`):
{spec.samples} samples, world `{spec.world or 'none (latents only)'}`, {len(spec.domains) or 1} domain(s),
intervention regime `{spec.interventions.regime}`.

{_figures(list(files))}

## Causal graph
Edges: {edges}. Full graph: `causal_graph.json` (and `causal_graph.graphml`).

| variable | type | unit | parents | equation / noise |
|---|---|---|---|---|
{rows}

## Arrays
| array | dims | shape | dtype | units | meaning |
|---|---|---|---|---|---|
{arrays}
{geometry}{ids}
`intervention_mask[i, j]` says whether latent j of sample i was intervened on, `intervention`
the regime option (see `causal_graph.json`), `pair` a counterfactual partner (same noise),
`split` the train / val / test split decided at generation.
Missing data never reads as a value: each array's fill value lies outside its domain ({fills}).

## Load it
```python
from crlgen.pipeline import open_store
ds = open_store("<this store's URL>")
ds.latents.sel(latent="{graph['nodes'][0]['name']}")

from crlgen.pipeline.loaders import StoreDataset   # pip install 'crlgen[torch]'
train = StoreDataset("<this store's URL>", split="train")   # items: x, z, domain, intervention_mask, ...
```
Check it: `crlgen validate <URL>` (the last report is in `validation.json`).
"""


def _fill_text(v) -> str:
    return "NaN" if isinstance(v, float) and v != v else f"{v:g}" if isinstance(v, float) else str(v)


def write_sidecars(plan: Plan, store: Store) -> None:
    """Write every sidecar (graph, GraphML, resolved spec, manifest, previews, card) into the store."""
    graph = causal_graph(plan)
    store.write_text("causal_graph.json", json.dumps(graph, indent=1))
    store.write_text("causal_graph.graphml", graphml(graph))
    store.write_text("spec.yaml", resolved_spec_yaml(plan.spec))
    store.write_text("manifest.json", json.dumps(manifest(plan, store), indent=1))
    write_previews(plan, store, graph, previews(plan, store, graph))


def write_previews(plan: Plan, store: Store, graph: dict[str, Any], files: PreviewFiles) -> None:
    """Write drawn preview ``files`` into the store and the dataset card (README.md) that embeds them."""
    for name, data in files.files.items():
        store.write_text(name, data)
    store.write_text("README.md", dataset_card(plan, graph, files.names()))
