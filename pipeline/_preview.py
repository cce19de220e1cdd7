"""Seeing a store: a contact sheet, one animation per video sample, the causal graph as an image,
and each latent's distribution per domain and per intervention regime.

Drawn with matplotlib (Agg, no display needed) and Pillow; every function returns the file's
bytes, so the same code writes into a store (``crlgen run``, ``crlgen preview``) or a folder
(``crlgen preview --out DIR``). Nothing here knows which world made the pixels: it reads the
plan's colour arrays (``kind == "rgb"``) and the per-sample arrays.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._plan import Plan
from ._store import Store

#: Files a full preview writes, relative to the store root (or the --out folder).
CONTACT_SHEET = "preview.png"
GRAPH_IMAGE = "preview/causal_graph.png"
BY_DOMAIN = "preview/latents_by_domain.png"
BY_REGIME = "preview/latents_by_regime.png"
VIDEO_GRID = "preview.gif"
VIDEO_DIR = "preview/videos"


@dataclass(frozen=True)
class PreviewFiles:
    """What :func:`previews` made: file name (relative) -> bytes, in writing order."""

    files: dict[str, bytes]

    def names(self) -> list[str]:
        return list(self.files)


def _rgb_arrays(plan: Plan) -> list:
    return [a for a in plan.world_arrays if a.kind == "rgb"]


def _row(groups: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """One sample's views side by side, every camera group after the other, padded white to one height."""
    parts = [np.concatenate(list(views), axis=1) for views in groups]  # each (H, V*W, 3)
    h = max(p.shape[0] for p in parts)
    padded = []
    for p in parts:
        pad = np.full((h, p.shape[1] + gap, 3), 255, np.uint8)
        pad[:p.shape[0], :p.shape[1]] = p
        padded.append(pad)
    return np.concatenate(padded, axis=1)[:, :-gap]


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def pick_samples(store: Store, n_samples: int, k: int) -> np.ndarray:
    """Up to ``k`` sample indices that show the data's variety: one per (domain, regime option) first,
    then evenly spaced ones. Returns sorted int64 indices."""
    g = store.group("r")
    domain, option = np.asarray(g["domain"][:]), np.asarray(g["intervention"][:])
    chosen: list[int] = []
    for key in sorted(set(zip(domain.tolist(), option.tolist()))):
        if len(chosen) >= k:
            break
        chosen.append(int(np.flatnonzero((domain == key[0]) & (option == key[1]))[0]))
    for i in np.linspace(0, n_samples - 1, k).round().astype(int):
        if len(chosen) >= k:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    return np.array(sorted(chosen), dtype=np.int64)


def _value_text(graph_node: dict[str, Any], value: float) -> str:
    levels = graph_node.get("levels")
    if levels and np.isfinite(value) and 0 <= int(value) < len(levels):
        return str(levels[int(value)])
    if graph_node["type"] in ("integer", "categorical", "boolean"):
        return f"{value:.0f}"
    return f"{value:.3g}"


def option_label(option: dict[str, Any]) -> str:
    """A regime option (``causal_graph.json``'s ``interventions.options[i].targets``: name -> shorthand
    such as ``do(0.09)``) as text: ``do(h=0.09)``, ``do(k~uniform(300.0, 400.0))``, ``shift(rho, 2000.0)``."""
    parts = []
    for name, t in option.items():
        text = str(t)
        kind, _, inner = text.partition("(")
        inner = inner[:-1] if inner.endswith(")") else inner
        if not inner:
            parts.append(f"{kind}({name})")
        elif kind == "do":
            parts.append(f"do({name}{'~' if '(' in inner else '='}{inner})")
        else:
            parts.append(f"{kind}({name}, {inner})")
    return ", ".join(parts)


def contact_sheet(plan: Plan, store: Store, graph: dict[str, Any], max_samples: int = 12, key_latents: int = 4) -> bytes | None:
    """A PNG grid of samples: every colour output and view side by side (first frame of videos), the
    sample's number, domain and regime and its first ``key_latents`` latents (intervened ones first)
    written under it. None for a latents-only store."""
    arrays = _rgb_arrays(plan)
    if not arrays:
        return None
    plt = _pyplot()
    g = store.group("r")
    idx = pick_samples(store, plan.spec.samples, max_samples)
    latents, mask = np.asarray(g["latents"][:]), np.asarray(g["intervention_mask"][:])
    domain, option = np.asarray(g["domain"][:]), np.asarray(g["intervention"][:])
    names = [n["name"] for n in graph["nodes"]]
    nodes = {n["name"]: n for n in graph["nodes"]}
    domains = list(graph["domains"])
    options = graph["interventions"]["options"]
    tiles = []
    for i in idx:
        views = []
        for a in arrays:
            x = np.asarray(g[a.name][int(i)])
            while x.ndim > 4:  # (time, ..., view, y, x, 3): the first frame
                x = x[0]
            views.append(x)
        tiles.append(_row(views))
    cols = max(1, min(len(tiles), int(np.ceil(np.sqrt(len(tiles) * tiles[0].shape[0] / tiles[0].shape[1] * 1.6)))))
    rows = int(np.ceil(len(tiles) / cols))
    h, w = tiles[0].shape[:2]
    cell_w = max(2.2, 2.6 * w / max(h, w))
    fig, axes = plt.subplots(rows, cols, figsize=(cell_w * cols, (2.6 * h / max(h, w) + 0.25 * (key_latents + 1)) * rows),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i, tile in zip(axes.flat, idx, tiles):
        ax.imshow(tile, interpolation="nearest")
        order = sorted(range(len(names)), key=lambda j: (not mask[i, j], j))[:key_latents]
        regime = "observational" if option[i] < 0 else option_label(options[option[i]]["targets"])
        lines = [f"#{i}  {domains[domain[i]] if domain[i] < len(domains) else domain[i]}  {regime}"]
        lines += [f"{'*' if mask[i, j] else ''}{names[j]} = {_value_text(nodes[names[j]], latents[i, j])}" for j in order]
        ax.set_title("\n".join(lines), fontsize=7, loc="left", y=-0.02 - 0.075 * len(lines), va="top", family="monospace")
    fig.suptitle(f"{plan.spec.name}: {len(idx)} of {plan.spec.samples} samples (* = intervened)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def video_gifs(plan: Plan, store: Store, samples: np.ndarray, max_frames: int = 120) -> dict[str, bytes]:
    """One animated GIF per chosen video sample (every view of every video output side by side), named
    ``sample_<index>.gif``. Empty for still-image stores."""
    arrays = [a for a in _rgb_arrays(plan) if "time" in a.dims]
    if not arrays:
        return {}
    from PIL import Image

    g = store.group("r")
    fps = float(arrays[0].attrs.get("fps", 10))
    out = {}
    for i in samples:
        clips = [np.asarray(g[a.name][int(i), :max_frames]) for a in arrays]  # each (T, V, H, W, 3)
        frames = [Image.fromarray(_row([c[t] for c in clips])) for t in range(clips[0].shape[0])]
        buf = io.BytesIO()
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=max(20, round(1000 / fps)), loop=0)
        out[f"sample_{int(i):06d}.gif"] = buf.getvalue()
    return out


def video_grid(plan: Plan, store: Store, max_samples: int = 4, max_frames: int = 90) -> bytes | None:
    """An animated grid (rows = samples, columns = views) of every colour output with a ``time`` dim."""
    arrays = [a for a in _rgb_arrays(plan) if "time" in a.dims]
    if not arrays:
        return None
    from PIL import Image

    g = store.group("r")
    n = min(max_samples, plan.spec.samples)
    clips = [np.asarray(g[a.name][:n, :max_frames]) for a in arrays]  # each (n, T, V, H, W, 3)
    tiles = [np.concatenate([_row([c[i, t] for c in clips]) for i in range(n)], axis=0) for t in range(clips[0].shape[1])]
    images = [Image.fromarray(t) for t in tiles]
    fps = arrays[0].attrs.get("fps", 10)
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=max(20, round(1000 / fps)), loop=0)
    return buf.getvalue()


def graph_image(graph: dict[str, Any]) -> bytes:
    """The causal graph as a PNG: latents in layers by causal order (roots on top), mechanism edges
    solid, domain-only edges dashed, intervention targets outlined in red."""
    import networkx as nx

    plt = _pyplot()
    G = nx.DiGraph()
    for n in graph["nodes"]:
        G.add_node(n["name"])
    solid = [(e["source"], e["target"]) for e in graph["edges"]]
    dashed = [(e["source"], e["target"]) for e in graph["extra_edges"] if (e["source"], e["target"]) not in set(solid)]
    G.add_edges_from(solid + dashed)
    layered = nx.DiGraph(solid) if nx.is_directed_acyclic_graph(nx.DiGraph(solid)) else nx.DiGraph()
    layered.add_nodes_from(G.nodes)
    order = [n["name"] for n in graph["nodes"]]
    rows: list[list[str]] = []  # causal order top to bottom; a wide layer wraps every `per_row` nodes
    per_row = 6
    for layer in nx.topological_generations(layered):
        layer = sorted(layer, key=lambda n: (layered.out_degree(n) > 0, order.index(n)))  # parents nearest their children
        rows += [layer[k:k + per_row] for k in range(0, len(layer), per_row)]
    pos = {name: (x - (len(row) - 1) / 2 + 0.25 * (r % 2 and len(row) == per_row), -r)
           for r, row in enumerate(rows) for x, name in enumerate(row)}
    targets = {t for o in graph["interventions"]["options"] for t in o["targets"]}
    width = max((len(row) for row in rows), default=1)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.7 * width), max(3.0, 1.2 * len(rows) + 0.8)))
    roots = [n["name"] for n in graph["nodes"] if n["root"]]
    nx.draw_networkx_nodes(G, pos, ax=ax, node_size=2000, node_color=["#cfe3f7" if n in roots else "#f3e3c3" for n in G.nodes],
                           edgecolors=["#c0392b" if n in targets else "#555555" for n in G.nodes],
                           linewidths=[2.5 if n in targets else 1.0 for n in G.nodes])
    nx.draw_networkx_labels(G, pos, ax=ax, font_size=7)
    nx.draw_networkx_edges(G, pos, ax=ax, edgelist=solid, node_size=2000, arrowsize=16, width=1.4)
    if dashed:
        nx.draw_networkx_edges(G, pos, ax=ax, edgelist=dashed, node_size=2000, arrowsize=14, style="dashed", edge_color="#777777")
    ax.set_title(f"{graph['name']}: causal graph (blue = root, red outline = intervention target"
                 + (", dashed = only in some domains" if dashed else "") + ")", fontsize=8)
    ax.axis("off")
    ax.margins(0.15)
    fig.tight_layout()
    return _png(fig)


def distributions(store: Store, graph: dict[str, Any], by: str) -> bytes:
    """Histograms of every latent, one panel per latent, one curve per domain (``by="domain"``) or per
    intervention regime option (``by="regime"``; observational first)."""
    plt = _pyplot()
    g = store.group("r")
    latents = np.asarray(g["latents"][:])
    nodes = graph["nodes"]
    if by == "domain":
        codes, labels = np.asarray(g["domain"][:]).astype(int), list(graph["domains"])
    elif by == "regime":
        codes = np.asarray(g["intervention"][:]).astype(int) + 1
        labels = ["observational"] + [option_label(o["targets"]) for o in graph["interventions"]["options"]]
    else:
        raise ValueError(f"by: expected 'domain' or 'regime', got {by!r}")
    present = [c for c in range(len(labels)) if (codes == c).any()]
    cols = min(4, len(nodes))
    rows = int(np.ceil(len(nodes) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows + 0.8), squeeze=False, layout="constrained")
    for ax in axes.flat[len(nodes):]:
        ax.axis("off")
    colors = plt.get_cmap("tab10" if len(present) <= 10 else "tab20")
    for j, (ax, node) in enumerate(zip(axes.flat, nodes)):
        col = latents[:, j]
        finite = col[np.isfinite(col)]
        if node["type"] in ("integer", "categorical", "boolean") and finite.size:
            lo, hi = np.floor(finite.min()), np.ceil(finite.max())
            bins = np.arange(lo - 0.5, hi + 1.5) if hi - lo < 60 else 30
        else:
            bins = np.histogram_bin_edges(finite, bins=30) if finite.size and np.ptp(finite) > 0 else 10
        for k, c in enumerate(present):
            vals = col[(codes == c) & np.isfinite(col)]
            if vals.size:
                ax.hist(vals, bins=bins, density=True, histtype="step", linewidth=1.3, color=colors(k % colors.N))
        ax.set_title(node["name"] + (f" [{node['unit']}]" if node.get("unit") else ""), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    handles = [plt.Line2D([], [], color=colors(k % colors.N)) for k in range(len(present))]
    names = [f"{labels[c]} (n={int((codes == c).sum())})" for c in present]
    fig.legend(handles, names, loc="outside lower center", ncol=min(4, max(1, len(names))), fontsize=7, frameon=False)
    fig.suptitle(f"{graph['name']}: latent distributions per {by} (density)", fontsize=9)
    return _png(fig)


def previews(plan: Plan, store: Store, graph: dict[str, Any], *, samples: int = 12, videos: int = 4) -> PreviewFiles:
    """Every preview file of a store (names as in this module's constants): the contact sheet of
    ``samples`` samples, the video grid and ``videos`` per-sample GIFs (video stores), the graph
    image and the distribution plots (per regime only when the spec has interventions)."""
    files: dict[str, bytes] = {}
    sheet = contact_sheet(plan, store, graph, max_samples=samples)
    if sheet is not None:
        files[CONTACT_SHEET] = sheet
    grid = video_grid(plan, store)
    if grid is not None:
        files[VIDEO_GRID] = grid
        for name, data in video_gifs(plan, store, pick_samples(store, plan.spec.samples, videos)).items():
            files[f"{VIDEO_DIR}/{name}"] = data
    files[GRAPH_IMAGE] = graph_image(graph)
    files[BY_DOMAIN] = distributions(store, graph, "domain")
    if graph["interventions"]["options"]:
        files[BY_REGIME] = distributions(store, graph, "regime")
    return PreviewFiles(files)
