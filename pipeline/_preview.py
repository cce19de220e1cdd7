"""Seeing a store: a contact sheet, one animation per video sample, the causal graph as an image,
and each latent's distribution per domain and per intervention regime.

Drawn with matplotlib (Agg, no display needed) and Pillow; every function returns the file's
bytes, so the same code writes into a store (``crlgen run``, ``crlgen preview``) or a folder
(``crlgen preview --out DIR``). Nothing here knows which world made the pixels: it reads the
plan's colour arrays (``kind == "rgb"``) and the per-sample arrays.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._plan import Plan
from ._reading import read
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
    domain, option = read(g["domain"]), read(g["intervention"])
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


def _target_text(t: Any) -> str:
    """One target's intervention in the spec's shorthand: ``do(0.09)``, ``shift(2000.0)``, and a soft
    one (a mapping in ``causal_graph.json``) as ``soft('g * 10 + eps', noise='normal(0.0, 1.0)')``."""
    if isinstance(t, dict) and t.get("kind") == "soft":
        noise = t.get("noise")
        return f"soft({t['mechanism']!r}" + (f", noise={str(noise)!r}" if noise else "") + ")"
    return str(t)


def option_label(option: dict[str, Any]) -> str:
    """A regime option (an entry of ``causal_graph.json``'s ``interventions.options``) as text: its
    ``name`` when the spec names it (a ``sets`` regime's ``name: s1``), else its targets in the spec's
    shorthand: ``h: do(0.09)``, ``rho: shift(2000.0), h: do(0.05)``, ``g: soft('g * 10 + eps')``."""
    if option.get("name"):
        return str(option["name"])
    return ", ".join(f"{name}: {_target_text(t)}" for name, t in option["targets"].items())


def _regime_text(i: int, option: np.ndarray, pair: np.ndarray, role: np.ndarray, options: list) -> str:
    if role[i] == 2:
        return f"counterfactual of #{pair[i]}"
    text = "observational" if option[i] < 0 else option_label(options[option[i]])
    return text + (f", partner #{pair[i]}" if role[i] == 1 else "")


def contact_sheet(plan: Plan, store: Store, graph: dict[str, Any], max_samples: int = 12, key_latents: int = 4) -> bytes | None:
    """A PNG grid of samples: every colour output and view side by side (first frame of videos),
    and under each its number, domain, regime (or the sample it is a counterfactual partner of),
    applied temporal edits and its first ``key_latents`` latents (intervened ones first, marked
    ``*``). None for a latents-only store. Cells are laid out in inches, so text never overlaps
    the next row whatever the images' aspect."""
    arrays = _rgb_arrays(plan)
    if not arrays:
        return None
    plt = _pyplot()
    g = store.group("r")
    idx = pick_samples(store, plan.spec.samples, max_samples)
    small = {name: read(g[name]) for name in ("latents", "intervention_mask", "domain", "intervention", "pair", "pair_role")}
    latents, mask = small["latents"], small["intervention_mask"]
    edits = None
    if "edit_frame" in g:
        edits = (read(g["edit_frame"]), [str(e) for e in plan.array("edit").values])
    names = [n["name"] for n in graph["nodes"]]
    nodes = {n["name"]: n for n in graph["nodes"]}
    domains = list(graph["domains"])
    options = graph["interventions"]["options"]
    tiles, texts = [], []
    for i in idx:
        views = []
        for a in arrays:
            x = read(g[a.name], int(i))
            while x.ndim > 4:  # (time, ..., view, y, x, 3): the first frame
                x = x[0]
            views.append(x)
        tiles.append(_row(views))
        d = int(small["domain"][i])
        lines = [f"#{i} {domains[d] if 0 <= d < len(domains) else d}",
                 _regime_text(int(i), small["intervention"], small["pair"], small["pair_role"], options)]
        if edits is not None:
            applied = [f"{n.split(':')[-1]}@f{f}" for n, f in zip(edits[1], edits[0][i]) if f >= 0]
            lines.append("edits: " + (", ".join(applied) if applied else "none"))
        order = sorted(range(len(names)), key=lambda j: (not mask[i, j], j))[:key_latents]
        lines += [f"{'*' if mask[i, j] else ''}{names[j]} = {_value_text(nodes[names[j]], latents[i, j])}" for j in order]
        texts.append(lines)
    h, w = tiles[0].shape[:2]
    cell_w = 2.8
    img_h = min(2.8, cell_w * h / w)
    img_w = img_h * w / h
    line_h, pad, title_h = 0.13, 0.12, 0.45
    text_h = line_h * max(len(t) for t in texts) + 0.05
    cols = max(1, min(len(tiles), 4 if img_h < 1.2 else 3))
    rows = int(np.ceil(len(tiles) / cols))
    cell_h = img_h + text_h + pad
    fig_w, fig_h = cols * (cell_w + pad) + pad, rows * cell_h + title_h
    fig = plt.figure(figsize=(fig_w, fig_h))
    for k, (tile, lines) in enumerate(zip(tiles, texts)):
        r, c = divmod(k, cols)
        left = pad + c * (cell_w + pad) + (cell_w - img_w) / 2
        top = fig_h - title_h - r * cell_h
        ax = fig.add_axes((left / fig_w, (top - img_h) / fig_h, img_w / fig_w, img_h / fig_h))
        ax.imshow(tile, interpolation="nearest")
        ax.axis("off")
        fig.text((pad + c * (cell_w + pad)) / fig_w, (top - img_h - 0.04) / fig_h, "\n".join(lines), fontsize=7,
                 family="monospace", va="top", ha="left", linespacing=1.25)
    fig.suptitle(f"{plan.spec.name}: {len(idx)} of {plan.spec.samples} samples (* = intervened)", fontsize=9,
                 y=1 - 0.12 / fig_h, va="top")
    return _png(fig)


def _gif(frames: list[np.ndarray], fps: float) -> bytes:
    """An endlessly looping animated GIF of ``frames`` (each (H, W, 3) uint8) at ``fps``."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=max(20, round(1000 / fps)), loop=0)
    return buf.getvalue()


def video_gifs(plan: Plan, store: Store, samples: np.ndarray, max_frames: int = 120) -> dict[str, bytes]:
    """One animated GIF per chosen video sample (every view of every video output side by side), named
    ``sample_<index>.gif``. Empty for still-image stores."""
    arrays = [a for a in _rgb_arrays(plan) if "time" in a.dims]
    if not arrays:
        return {}
    g = store.group("r")
    fps = float(arrays[0].attrs.get("fps", 10))
    out = {}
    for i in samples:
        clips = [read(g[a.name], (int(i), slice(0, max_frames))) for a in arrays]  # each (T, V, H, W, 3)
        out[f"sample_{int(i):06d}.gif"] = _gif([_row([c[t] for c in clips]) for t in range(clips[0].shape[0])], fps)
    return out


def video_grid(plan: Plan, store: Store, max_samples: int = 4, max_frames: int = 90) -> bytes | None:
    """An animated grid (rows = samples, columns = views) of every colour output with a ``time`` dim."""
    arrays = [a for a in _rgb_arrays(plan) if "time" in a.dims]
    if not arrays:
        return None
    g = store.group("r")
    n = min(max_samples, plan.spec.samples)
    clips = [read(g[a.name], (slice(0, n), slice(0, max_frames))) for a in arrays]  # each (n, T, V, H, W, 3)
    tiles = [np.concatenate([_row([c[i, t] for c in clips]) for i in range(n)], axis=0) for t in range(clips[0].shape[1])]
    return _gif(tiles, float(arrays[0].attrs.get("fps", 10)))


#: A latent's drawn radius (inches: node_size 2000 pt^2) plus a margin an edge keeps from nodes it does not join.
_NODE_CLEARANCE_IN = 0.5


#: Curvatures tried per edge, in order (matplotlib ``arc3`` ``rad``): straight first, then ever wider bows.
_BENDS = (0.0, 0.2, -0.2, 0.35, -0.35, 0.5, -0.5, 0.7, -0.7)


def edge_bends(edges: list[tuple[str, str]], pos_in: dict[str, tuple[float, float]]) -> dict:
    """Curvature per edge so that no edge runs through a node it does not join: the first ``rad`` of
    :data:`_BENDS` (matplotlib's ``arc3`` connection style, 0 = straight) whose curve keeps
    ``_NODE_CLEARANCE_IN`` inches from every other node, else the one that keeps farthest. ``pos_in``: node ->
    its centre (x, y) in inches on the figure as drawn. arc3's curve (in display space) is the quadratic
    Bezier with control point the chord's midpoint plus ``rad * (dy, -dx)``."""
    t = np.linspace(0.08, 0.92, 25)[:, None]
    out = {}
    for u, v in edges:
        a, b = np.array(pos_in[u], dtype=np.float64), np.array(pos_in[v], dtype=np.float64)
        others = np.array([p for n, p in pos_in.items() if n not in (u, v)], dtype=np.float64).reshape(-1, 2)
        d = b - a
        best, best_gap = 0.0, -1.0
        for rad in _BENDS:
            c = (a + b) / 2 + rad * np.array([d[1], -d[0]])
            curve = (1 - t) ** 2 * a + 2 * (1 - t) * t * c + t ** 2 * b
            gap = float(np.linalg.norm(curve[:, None] - others[None], axis=2).min()) if len(others) else np.inf
            if gap >= _NODE_CLEARANCE_IN:
                best = rad
                break
            if gap > best_gap:
                best, best_gap = rad, gap
        out[(u, v)] = best
    return out


def _outlined(graph: dict[str, Any]) -> set[str]:
    """The latents the graph image outlines: every regime option's targets and the counterfactual
    intervention's (a templated key, ``obj[i].mass``, stands for each object's latent)."""
    targets = {t for o in graph["interventions"]["options"] for t in o["targets"]}
    cf = (graph.get("counterfactuals") or {}).get("intervention") or {}
    keys = [re.compile(re.escape(k).replace(r"\[i\]", r"\[\d+\]")) for k in cf]
    return targets | {n["name"] for n in graph["nodes"] if any(k.fullmatch(n["name"]) for k in keys)}


def graph_image(graph: dict[str, Any]) -> bytes:
    """The causal graph as a PNG: latents in layers by causal order (roots on top), mechanism edges
    solid, domain-only edges dashed, intervention targets outlined in red. A context node (the domain,
    ``graph["context_nodes"]``: Joint Causal Inference, Mooij, Magliacane & Claassen 2020) is a green
    box right of the latents, its edges to the latents whose mechanism the domains change dash-dotted green."""
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
    contexts = [c["name"] for c in graph.get("context_nodes", ())]
    context = [(e["source"], e["target"]) for e in graph.get("context_edges", ())]
    width = max((len(row) for row in rows), default=1)
    for i, c in enumerate(contexts):  # a column of their own right of the latents, at mid height
        pos[c] = ((width - 1) / 2 + 1.1, -(len(rows) - 1) / 2 - i + (len(contexts) - 1) / 2)
    G.add_nodes_from(contexts)
    G.add_edges_from(context)
    targets = _outlined(graph)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.7 * (width + bool(contexts))), max(3.0, 1.2 * (len(rows) + bool(contexts)) + 0.8)))
    roots = [n["name"] for n in graph["nodes"] if n["root"]]
    latents = [n for n in G.nodes if n not in contexts]
    nx.draw_networkx_nodes(G, pos, ax=ax, nodelist=latents, node_size=2000,
                           node_color=["#cfe3f7" if n in roots else "#f3e3c3" for n in latents],
                           edgecolors=["#c0392b" if n in targets else "#555555" for n in latents],
                           linewidths=[2.5 if n in targets else 1.0 for n in latents])
    if contexts:
        nx.draw_networkx_nodes(G, pos, ax=ax, nodelist=contexts, node_size=2600, node_shape="s", node_color="#d8efd9",
                               edgecolors="#2e7d32", linewidths=1.5)
    nx.draw_networkx_labels(G, pos, ax=ax, font_size=7)
    ax.set_title(f"{graph['name']}: causal graph (blue = root, red outline = intervention target, counterfactual ones too"
                 + (", dashed = only in some domains" if dashed else "")
                 + (", green box = domain (context), its edges = mechanisms it changes" if contexts else "") + ")",
                 fontsize=8, wrap=True)
    ax.axis("off")
    ax.margins(0.15)
    fig.tight_layout()  # fixes the data -> display transform, so edges can be bent around nodes as drawn
    names = list(pos)
    drawn = ax.transData.transform(np.array([pos[n] for n in names], dtype=np.float64)) / fig.dpi
    bends = edge_bends(solid + dashed + context, dict(zip(names, map(tuple, drawn))))
    for rad in sorted(set(bends.values())):
        style = f"arc3,rad={rad}"
        group = [e for e in solid if bends[e] == rad]
        if group:
            nx.draw_networkx_edges(G, pos, ax=ax, edgelist=group, node_size=2000, arrowsize=16, width=1.4,
                                   arrows=True, connectionstyle=style)
        group = [e for e in dashed if bends[e] == rad]
        if group:
            nx.draw_networkx_edges(G, pos, ax=ax, edgelist=group, node_size=2000, arrowsize=14, style="dashed",
                                   edge_color="#777777", arrows=True, connectionstyle=style)
    for rad in sorted({bends[e] for e in context}):
        nx.draw_networkx_edges(G, pos, ax=ax, edgelist=[e for e in context if bends[e] == rad], node_size=2300,
                               arrowsize=14, style="dashdot", edge_color="#2e7d32", width=1.3, arrows=True,
                               connectionstyle=f"arc3,rad={rad}")
    return _png(fig)


#: Legend text size (points) and the width (inches) a character of it takes at most, about.
_LEGEND_PT = 7
_LEGEND_CHAR_IN = 0.062
#: Per legend column: its line sample, the gaps around it and the column spacing (inches).
_LEGEND_COL_PAD_IN = 0.7


def legend_layout(names: list[str], width_in: float) -> tuple[list[str], int]:
    """Entries of a figure-wide legend and its column count such that it fits ``width_in`` inches:
    the most columns (up to 4) whose entries fit unwrapped, else one column with every entry
    wrapped (at its ``, `` or spaces) to the figure's width."""
    import textwrap

    widths = [len(n) * _LEGEND_CHAR_IN for n in names]
    for ncol in range(min(4, max(1, len(names))), 0, -1):
        rows = -(-len(names) // ncol)  # matplotlib fills columns top to bottom, each as wide as its widest entry
        cols = [max(widths[c * rows:(c + 1) * rows], default=0.0) for c in range(ncol)]
        if sum(cols) + ncol * _LEGEND_COL_PAD_IN <= width_in - 0.2:
            return names, ncol
    chars = max(10, int(((width_in - 0.2) - _LEGEND_COL_PAD_IN) / _LEGEND_CHAR_IN))
    return ["\n".join(textwrap.wrap(n, chars, break_on_hyphens=False)) for n in names], 1


def distributions(store: Store, graph: dict[str, Any], by: str) -> bytes:
    """Histograms of every latent, one panel per latent, one curve per domain (``by="domain"``) or per
    intervention regime option (``by="regime"``; observational first)."""
    return _png(_distributions_figure(store, graph, by))


def _distributions_figure(store: Store, graph: dict[str, Any], by: str):
    plt = _pyplot()
    g = store.group("r")
    latents = read(g["latents"])
    nodes = graph["nodes"]
    if by == "domain":
        codes, labels = read(g["domain"]).astype(int), list(graph["domains"])
    elif by == "regime":
        codes = read(g["intervention"]).astype(int) + 1
        labels = ["observational"] + [option_label(o) for o in graph["interventions"]["options"]]
        partners = read(g["pair_role"]) == 2
        if partners.any():  # partners carry their factual's regime and their own intervention: a group of their own
            codes[partners] = len(labels)
            labels.append("counterfactual partners")
    else:
        raise ValueError(f"by: expected 'domain' or 'regime', got {by!r}")
    present = [c for c in range(len(labels)) if (codes == c).any()]
    cols = min(4, len(nodes))
    rows = int(np.ceil(len(nodes) / cols))
    names, ncol = legend_layout([f"{labels[c]} (n={int((codes == c).sum())})" for c in present], 3.2 * cols)
    legend_lines = sum(max(n.count("\n") + 1 for n in names[r * ncol:(r + 1) * ncol]) for r in range(-(-len(names) // ncol)))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows + 0.66 + 0.14 * legend_lines), squeeze=False,
                             layout="constrained")
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
    fig.legend(handles, names, loc="outside lower center", ncol=ncol, fontsize=_LEGEND_PT, frameon=False)
    fig.suptitle(f"{graph['name']}: latent distributions per {by} (density)", fontsize=9)
    return fig


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
