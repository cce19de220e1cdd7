"""The causal graph a spec implies: per-object templates expanded, parents derived.

Pure data derived from a :class:`~schemas.dataset.DatasetSpec`; the sampler,
the sidecars and the validation stage all read this one structure.
"""

from __future__ import annotations

import graphlib
import re
from dataclasses import dataclass, field
from typing import Iterable

from .expression import parse_expression

#: ``ball[i].mass`` -> prefix ``ball``; ``[i]`` is replaced by 0..N-1.
TEMPLATE = re.compile(r"\[i\]")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\[(\d+|i)\])?(\.[A-Za-z][A-Za-z0-9_]*)*$")


def template_prefix(name: str) -> str | None:
    """``"ball[i].mass"`` -> ``"ball"``; None for a plain name."""
    m = re.match(r"^([A-Za-z][A-Za-z0-9_]*)\[i\]", name)
    return m.group(1) if m else None


#: A latent named ``present`` on an indexed kind (``vehicle[3].present``) gates its object: the object exists in a
#: sample only where the flag is 1. The sampler draws a templated do-target only among present objects, applies
#: a templated target only to them, and drops temporal edits on absent ones; ``crlgen check`` refuses an explicitly
#: indexed target, edit or camera mount whose flag is not constant 1.
PRESENCE = "present"
_OBJECT = re.compile(r"^([A-Za-z][A-Za-z0-9_]*\[\d+\])(?:\.|$)")


def presence_name(name: str) -> str | None:
    """``"vehicle[3].reaction_time"`` or ``"vehicle[3]"`` (a mount) -> ``"vehicle[3].present"``; None for a
    plain or templated name and for the flag itself (whether the spec declares the flag is the caller's
    question: see ``DatasetSpec.presence_flag``)."""
    m = _OBJECT.match(name)
    if m is None:
        return None
    flag = f"{m.group(1)}.{PRESENCE}"
    return None if flag == name else flag


def expand(text: str, k: int) -> str:
    return TEMPLATE.sub(f"[{k}]", text)


@dataclass(frozen=True)
class Node:
    """One expanded latent variable."""

    name: str
    template: str  # the name as written in the spec (``ball[i].mass``) or the name itself
    object_index: int | None
    variable: object  # schemas.variables.Continuous | Integer | Categorical | Boolean
    mechanism: str | None  # expanded source
    parents: tuple[str, ...]
    parameters: tuple[str, ...]  # parameter names the mechanism reads


@dataclass(frozen=True)
class CausalGraph:
    """Static latents in topological order, plus the world-simulated states."""

    nodes: tuple[Node, ...]
    states: tuple[str, ...]
    extra_edges: tuple[tuple[str, str, str], ...] = field(default=())
    """(parent, child, where) edges that exist only in a domain or a soft intervention."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    def node(self, name: str) -> Node:
        return self._by_name[name]

    @property
    def _by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def edges(self) -> list[tuple[str, str]]:
        return [(p, n.name) for n in self.nodes for p in n.parents]

    def descendants(self, name: str, extra: bool = False) -> set[str]:
        """Every variable downstream of ``name`` along mechanism edges (and, with ``extra``, along the
        edges only a domain or a soft intervention adds)."""
        return self._reach(name, extra, downstream=True)

    def ancestors(self, name: str, extra: bool = False) -> set[str]:
        """Every variable upstream of ``name`` (what its mechanisms read, directly or through others; with
        ``extra`` also along the edges only a domain or a soft intervention adds)."""
        return self._reach(name, extra, downstream=False)

    def _reach(self, name: str, extra: bool, downstream: bool) -> set[str]:
        step: dict[str, list[str]] = {}
        for p, c in [*self.edges(), *((p, c) for p, c, _ in (self.extra_edges if extra else ()))]:
            a, b = (p, c) if downstream else (c, p)
            step.setdefault(a, []).append(b)
        out, stack = set(), [name]
        while stack:
            for c in step.get(stack.pop(), ()):
                if c not in out:
                    out.add(c)
                    stack.append(c)
        return out


def find_cycle(edges: Iterable[tuple[str, str]], nodes: Iterable[str]) -> list[str] | None:
    """A cycle as a list of names (first == last), or None."""
    ts = graphlib.TopologicalSorter({n: set() for n in nodes})
    for p, c in edges:
        ts.add(c, p)
    try:
        ts.prepare()
    except graphlib.CycleError as e:
        return list(e.args[1])  # graphlib lists each node before its child: already parent -> child
    return None


def topological(nodes: list[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """Deterministic topological order: ties broken by declaration order."""
    order = {n: i for i, n in enumerate(nodes)}
    indeg = {n: 0 for n in nodes}
    children: dict[str, list[str]] = {n: [] for n in nodes}
    for p, c in set(edges):
        indeg[c] += 1
        children[p].append(c)
    import heapq

    ready = [(order[n], n) for n in nodes if indeg[n] == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        _, n = heapq.heappop(ready)
        out.append(n)
        for c in children[n]:
            indeg[c] -= 1
            if indeg[c] == 0:
                heapq.heappush(ready, (order[c], c))
    return out


def mechanism_names(src: str) -> frozenset[str]:
    return parse_expression(src).names
