"""Files beside the arrays: the causal graph (JSON + GraphML), the resolved spec, the manifest,
a dataset card and preview images. All are functions of the spec and the data, and all are
written from the plan's arrays: nothing here knows which world made them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..schemas import DatasetSpec
from ..schemas._yaml import dump_yaml
from ..schemas.graph import mechanism_names
from ..schemas.interventions import Sets, SingleNode
from ..schemas.variables import NOISE_NAME
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


def _probabilities(noise: Any) -> list[float] | None:
    """A categorical noise's level probabilities as drawn: its ``probs`` divided by their sum
    (the spec may write weights, e.g. ``categorical(1, 1, 2)``); None for any other noise."""
    probs = getattr(noise, "probs", None) if getattr(noise, "dist", None) == "categorical" else None
    if probs is None:
        return None
    total = float(sum(probs))
    return [float(p) / total for p in probs]


def causal_graph(plan: Plan) -> dict[str, Any]:
    """The causal graph as JSON-ready data: nodes (type, range, unit, equation, noise, parents, and
    ``unidentifiable``: the spec's reason the observations cannot determine it, or None),
    edges, domain-only edges, the states the store holds (with the units the store or else the spec
    gives them; none without a world, which alone simulates them), parameters, domains,
    the intervention regime and its options (with the set's ``name`` and ``weight`` for a ``sets``
    regime), counterfactual pairing and temporal edits.

    With two or more domains the domain is also a *context node* (``context_nodes``), in the sense of
    Joint Causal Inference (Mooij, Magliacane & Claassen 2020, "Joint Causal Inference from Multiple
    Contexts", JMLR 21(99)): an exogenous variable (no latent causes it) whose data is the store's
    ``domain`` array, with ``context_edges`` to every latent whose mechanism differs between domains
    (see :func:`context_edges`). A node's ``spaces`` holds its intervention spaces (``{"A": [low, high],
    "B": [low, high]}``, or None); ``domains`` gives each domain's ``space``. Key by key: ``docs/causal-graph.md``."""
    spec, spec_hash = plan.spec, plan.spec_hash
    g = spec.graph
    stored = [str(s) for s in plan.array("state").values] if plan.has("state") else []  # none without a world
    units = dict(zip(plan.array("state").values, plan.array("state_unit").values)) if plan.has("state_unit") else {}
    declared = {name: var.unit for name, (_, _, var) in spec.expand_keyed(spec.variables.items()).items()}
    nodes = []
    for n in g.nodes:
        v = n.variable
        nodes.append({
            "name": n.name, "template": n.template, "object": n.object_index, "type": v.type,
            "range": list(v.bounds()) if v.type != "continuous" or getattr(v, "range", None) else None,
            "levels": list(getattr(v, "levels", ()) or ()) or None, "unit": v.unit, "description": v.description,
            "mechanism": n.mechanism, "noise": _shorthand(v.noise), "probabilities": _probabilities(v.noise),
            "parents": list(n.parents),
            "parameters": list(n.parameters), "root": n.mechanism is None, "unidentifiable": v.unidentifiable,
            "spaces": {k: list(r) for k, r in v.spaces.items()} if getattr(v, "spaces", None) else None,
        })
    reg = spec.interventions
    named = reg.sets if isinstance(reg, Sets) else ()  # sets carry a weight and may carry a name
    options = [{"index": i, **({"name": named[i].name} if i < len(named) and named[i].name else {}),
                **({"weight": named[i].weight} if i < len(named) else {}), "targets": _shorthand(o)}
               for i, o in enumerate(spec.intervention_options())]
    return {
        "name": spec.name, "spec_hash": spec_hash, "generator": GENERATOR_VERSION, "world": spec.world,
        "nodes": nodes,
        "states": [{"name": s, "unit": units.get(s) or declared.get(s) or None} for s in stored],
        "edges": [{"source": p, "target": c} for p, c in g.edges()],
        "extra_edges": [{"source": p, "target": c, "where": w} for p, c, w in g.extra_edges],
        "context_nodes": context_nodes(spec),
        "context_edges": context_edges(spec),
        "parameters": dict(spec.parameters),
        "domains": {k: d.model_dump(mode="json", exclude_defaults=True) for k, d in spec.domains.items()} or {"default": {}},
        "interventions": {"regime": reg.regime, "fraction": getattr(reg, "fraction", None),
                          "selection": "one uniformly random option per intervened sample" if isinstance(reg, SingleNode) else reg.regime,
                          "options": options},
        "counterfactuals": spec.counterfactuals.model_dump(mode="json", exclude_defaults=True) if spec.counterfactuals else None,
        "temporal_edits": [_edit_record(e) for e in spec.temporal_edits],
    }


def _edit_record(edit) -> dict[str, Any]:
    """A temporal edit as the graph lists it: the spec's fields, with ``op`` (set/add/scale) and
    ``fraction`` always present, also where the spec left them at their defaults (``=``, 1.0)."""
    record = edit.model_dump(mode="json", exclude_defaults=True)
    return {"target": record.pop("target"), "op": edit.op, **record, "fraction": edit.fraction}


#: The context node's name when no latent, state or parameter already uses it.
CONTEXT_NAME = "domain"


def _context_name(spec: DatasetSpec) -> str:
    taken = {*spec.graph.names, *spec.graph.states, *spec.parameters}
    name = CONTEXT_NAME
    while name in taken:
        name = "_" + name
    return name


def context_nodes(spec: DatasetSpec) -> list[dict[str, Any]]:
    """The domain as a JCI context variable: ``[]`` for a spec with fewer than two domains, else one
    node ``{"name": "domain", "kind": "context", "array": "domain", "labels": [label of code 0, 1, ...],
    "description": ...}``. Its data is the store's ``domain`` array (one int16 code per sample, code i
    meaning ``labels[i]``); it is exogenous, so an analysis may forbid edges into it (Mooij, Magliacane
    & Claassen 2020, JMLR 21(99), assumption 1). The name is ``domain`` unless a latent, state or
    parameter already has it (then underscores are prefixed)."""
    if len(spec.domains) < 2:
        return []
    return [{"name": _context_name(spec), "kind": "context", "array": "domain", "labels": list(spec.domains),
             "description": "the domain (environment) each sample was drawn in: a context variable in the sense of Joint "
                            "Causal Inference (Mooij, Magliacane & Claassen 2020), exogenous (no latent causes it); its "
                            "data is the store's `domain` array, code i meaning labels[i]; its edges point at the latents "
                            "whose mechanism the domains change"}]


def _effective(spec: DatasetSpec, node, dname: str, overrides: tuple[dict, dict]) -> tuple[str | None, Any, dict[str, float]]:
    """(mechanism source, noise or None when the mechanism ignores it, parameter values it reads) of
    ``node`` in domain ``dname``: the spec's own, or the domain's ``overrides`` (``spec.domain_overrides``)."""
    mechs, noises = overrides
    mech = mechs.get(node.name, node.mechanism)
    noise = noises.get(node.name, node.variable.noise)
    dom = spec.domains[dname]
    names = mechanism_names(mech) if mech else frozenset()
    if mech is not None and NOISE_NAME not in names:
        noise = None  # the equation never reads eps: its distribution changes nothing
    params = {p: float(dom.parameters.get(p, v)) for p, v in spec.parameters.items() if p in names}
    return mech, _shorthand(noise), params


def context_edges(spec: DatasetSpec) -> list[dict[str, Any]]:
    """Edges from the context node (:func:`context_nodes`) to every latent whose mechanism is not the
    same in all domains, in the graph's topological order; ``[]`` with fewer than two domains.

    A domain changes a latent when it overrides a parameter the latent's equation reads, the equation
    itself (``overrides``), or the distribution of a noise the latent uses (``noise``: a root's value,
    or ``eps`` in an equation), and the result differs from another domain's. Each edge is
    ``{"source": "domain", "target": latent, "changes": [...]}``, one change per thing that differs:
    ``{"kind": "parameter", "name": "g", "values": {domain: value}}``, ``{"kind": "mechanism",
    "values": {domain: equation or None for a root}}`` or ``{"kind": "noise", "values": {domain: noise}}``.
    In the Joint Causal Inference model (Mooij, Magliacane & Claassen 2020, JMLR 21(99)) these are the
    context variable's children among the latents."""
    if len(spec.domains) < 2:
        return []
    name = _context_name(spec)
    over = {d: spec.domain_overrides(d) for d in spec.domains}
    out = []
    for node in spec.graph.nodes:
        per = {d: _effective(spec, node, d, over[d]) for d in spec.domains}
        changes: list[dict[str, Any]] = []
        for p in sorted({p for _, _, ps in per.values() for p in ps}):
            vals = {d: ps[p] for d, (_, _, ps) in per.items() if p in ps}  # where the equation reads it
            if len(set(vals.values())) > 1:
                changes.append({"kind": "parameter", "name": p, "values": vals})
        for what, i in (("mechanism", 0), ("noise", 1)):
            vals = {d: e[i] for d, e in per.items()}
            if len({json.dumps(v, sort_keys=True) for v in vals.values()}) > 1:
                changes.append({"kind": what, "values": vals})
        if changes:
            out.append({"source": name, "target": node.name, "changes": changes})
    return out


def change_text(change: dict[str, Any]) -> str:
    """One context edge's change in words: ``"parameter g: earth 9.81, moon 1.62"``, or ``"mechanism: ..."``
    / ``"noise: ..."`` with each domain's equation (``none (root)`` for a root) or noise (``none (unused)``
    where the domain's equation reads no ``eps``)."""
    none = {"mechanism": "none (root)", "noise": "none (unused)"}.get(change["kind"], "none")

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:g}"
        return none if v is None else f"`{v}`" if isinstance(v, str) else json.dumps(v)

    vals = ", ".join(f"{d} {fmt(v)}" for d, v in change["values"].items())
    return f"{change['kind']}{' ' + change['name'] if change.get('name') else ''}: {vals}"


def graphml(graph: dict[str, Any]) -> str:
    """The graph's nodes (with their attributes; ``kind``: latent or context) and edges (``kind``:
    mechanism, where (e.g. ``domain moon``) or context) as GraphML. A context node (see
    :func:`context_nodes`) carries ``kind="context"``, ``array`` and ``labels`` (JSON); its edges carry
    ``kind="context"`` and ``changes`` (the JSON list of what the domains change)."""
    import networkx as nx

    def plain(d: dict[str, Any]) -> dict[str, Any]:
        return {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in d.items() if v is not None}

    G = nx.DiGraph(name=graph["name"])
    for n in graph["nodes"]:
        G.add_node(n["name"], kind="latent", **plain({k: v for k, v in n.items() if k != "name"}))
    for n in graph.get("context_nodes", ()):
        G.add_node(n["name"], **plain({k: v for k, v in n.items() if k != "name"}))
    for e in graph["edges"]:
        G.add_edge(e["source"], e["target"], kind="mechanism")
    for e in graph["extra_edges"]:
        G.add_edge(e["source"], e["target"], kind=e["where"])
    for e in graph.get("context_edges", ()):
        G.add_edge(e["source"], e["target"], kind="context", changes=json.dumps(e["changes"]))
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
    noise = {n.name: n.variable.noise for n in spec.graph.nodes}
    rows = "\n".join(
        f"| `{n['name']}` | {n['type']} | {n['unit'] or ''} | {', '.join(n['parents']) or '(root)'} | "
        f"`{n['mechanism'] or n['noise']}`{'' if n['mechanism'] else _drawn_text(noise.get(n['name']))} |"
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
    context = ""
    for c in graph.get("context_nodes", ()):
        codes = ", ".join(f"{i} = {label}" for i, label in enumerate(c["labels"]))
        out = [e for e in graph.get("context_edges", ()) if e["source"] == c["name"]]
        context += (f"\nContext node `{c['name']}` (Joint Causal Inference, Mooij, Magliacane & Claassen 2020): the domain, "
                    f"an exogenous variable whose data is the `{c['array']}` array ({codes}). "
                    + ("It points at the latents whose mechanism the domains change: "
                       + "; ".join(f"{c['name']} → {e['target']} (" + "; ".join(change_text(x) for x in e["changes"]) + ")"
                                   for e in out) + "." if out else "The domains change no latent's mechanism.")
                    + " Data pooled over domains mixes these mechanisms: analyse it within a domain, or with the "
                      f"`{c['array']}` array as a context variable.\n")
    hidden = [n for n in graph["nodes"] if n.get("unidentifiable")]
    unident = ("\nNot identifiable from the observations (the spec says why; `crlgen probe` scores these apart):\n"
               + "\n".join(f"- `{n['name']}`: {n['unidentifiable']}" for n in hidden) + "\n") if hidden else ""
    rendered = _engine_text(spec)
    fills = ", ".join(f"`{a.name}` {_fill_text(a.fill)}" for a in plan.arrays
                      if a.per_sample and a.fill is not None and a.fill is not False)
    return f"""# {spec.name}

{spec.description.strip()}

Generated by {GENERATOR_VERSION} from `spec.yaml` (spec hash `{plan.spec_hash[:16]}`):
{spec.samples} samples, world `{spec.world or 'none (latents only)'}`, {len(spec.domains) or 1} domain(s),
intervention regime `{spec.interventions.regime}`.{rendered}

{_figures(list(files))}

## Causal graph
Edges: {edges}. Full graph: `causal_graph.json` (and `causal_graph.graphml`).
{context}
| variable | type | unit | parents | equation / noise |
|---|---|---|---|---|
{rows}
{unident}{_spaces_text(spec)}
## Arrays
| array | dims | shape | dtype | units | meaning |
|---|---|---|---|---|---|
{arrays}
{geometry}{ids}
`intervention_mask[i, j]` says whether latent j of sample i was intervened on, `intervention`
the regime option (see `causal_graph.json`), `pair` a counterfactual partner (same noise),
`split` the train / val / test split decided at generation.{_resampled_text(plan)}
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


def _drawn_text(noise: Any) -> str:
    """The card's note on a categorical noise whose ``probs`` are weights (their sum is not 1): the
    probabilities it is drawn with; empty for any other noise."""
    probs = _probabilities(noise)
    if probs is None or abs(sum(noise.probs) - 1.0) < 1e-9:
        return ""
    return " (drawn with probabilities " + ", ".join(f"{p:.6g}" for p in probs) + ")"


def _spaces_text(spec: DatasetSpec) -> str:
    """The card's section on intervention spaces A and B (CausalWorld's space_a / space_b), if the spec declares any."""
    spaces = spec.spaces()
    if not spaces:
        return ""
    rows = "\n".join(f"| `{name}` | [{sp['A'][0]:g}, {sp['A'][1]:g}] | [{sp['B'][0]:g}, {sp['B'][1]:g}] |"
                      for name, sp in spaces.items())
    doms = "; ".join(f"`{d}` draws in space {dom.space}" for d, dom in spec.domains.items() if dom.space) or \
        "no domain selects a space"
    held = spec.splits.test_space
    split = (f" Split: the samples of space {held}'s domains ({', '.join(spec.domains_in_space(held))}) go to test"
             + (f", a few_shot share of {spec.splits.few_shot:g} staying in train" if spec.splits.few_shot else "")
             + "." if held else "")
    return (f"\n## Intervention spaces\nTwo disjoint value ranges per variable (CausalWorld's space A and space B, Ahmed et "
            f"al. ICLR 2021): a domain with `space` draws the roots among these latents uniformly in that space (a latent with "
            f"an equation keeps it), `do(space)` draws an intervened value in the space of the sample's domain. Domains: {doms}.{split}\n\n"
            f"| latent | space A | space B |\n|---|---|---|\n{rows}\n")


def _resampled_text(plan: Plan) -> str:
    """The card's words on feasibility redraws (stores whose world checks feasibility), else nothing."""
    if not plan.has("resampled"):
        return ""
    return (f"\n`resampled` counts how often a sample's exogenous noise was redrawn because world `{plan.spec.world}` "
            f"could not start from its latents (at most max_resamples = {plan.spec.max_resamples}; the sample keeps its "
            "index, domain, intervention and pairing, and its split unless a test_range rule applies to the redrawn latents; "
            "a pair is redrawn together). The data therefore follow "
            "the spec's distribution conditioned on feasibility; `crlgen validate` re-derives every redrawn sample.")


def _engine_text(spec: DatasetSpec) -> str:
    """The card's words on the render engine: which one, and whether it is a lower-fidelity preview."""
    if not spec.world:
        return ""
    from ..scenes.registry import world_info  # noqa: PLC0415 - sidecars of latents-only specs need no world

    info = world_info(spec.world)
    engine = spec.render.engine or (info.engines[0] if info.engines else info.engine)
    if engine in info.preview_engines:
        return (f"\n**Rendered with `{engine}`, a preview engine: lower fidelity than `{info.engines[0]}`.** "
                "Re-render with the default engine before using these pixels for research.")
    return f"\nRendered with `{engine}`."


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
