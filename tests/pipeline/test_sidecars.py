"""The graph sidecar's context node: the domain as a JCI context variable (Mooij, Magliacane & Claassen
2020) with edges to the latents whose mechanism the domains change, in JSON, GraphML, the card and the
graph image; a categorical noise's probabilities as drawn. Built from plans only (no store), so these run in a blink."""

from __future__ import annotations

import io
import json

import networkx as nx
from PIL import Image

from support.stores import latent_spring

from crlgen.pipeline import make_plan
from crlgen.pipeline._preview import graph_image
from crlgen.pipeline._sidecars import causal_graph, context_edges, dataset_card, graphml


def _graph(**changes) -> dict:
    return json.loads(json.dumps(causal_graph(make_plan(latent_spring(samples=20, **changes)))))


def test_the_spring_s_domain_is_a_context_node_pointing_at_l():
    g = _graph()
    assert g["context_nodes"] == [{
        "name": "domain", "kind": "context", "array": "domain", "labels": ["earth", "moon"],
        "description": g["context_nodes"][0]["description"]}]
    assert "Joint Causal Inference" in g["context_nodes"][0]["description"]
    assert g["context_edges"] == [{"source": "domain", "target": "l", "changes": [
        {"kind": "parameter", "name": "g", "values": {"earth": 9.81, "moon": 1.62}}]}]
    # the existing keys keep their meaning: the context is in neither `nodes` nor `edges`
    assert "domain" not in {n["name"] for n in g["nodes"]}
    assert {(e["source"], e["target"]) for e in g["edges"]} == {("h", "m"), ("r", "m"), ("rho", "m"), ("k", "l"), ("m", "l")}


def test_graphml_marks_the_context_node_and_its_edges():
    g = _graph()
    G = nx.parse_graphml(graphml(g))
    assert G.nodes["domain"]["kind"] == "context" and json.loads(G.nodes["domain"]["labels"]) == ["earth", "moon"]
    assert G.nodes["domain"]["array"] == "domain"
    assert {n for n, k in G.nodes(data="kind") if k == "latent"} == {"h", "r", "rho", "m", "k", "l"}
    assert [(a, b) for a, b, k in G.edges(data="kind") if k == "context"] == [("domain", "l")]
    assert json.loads(G.edges["domain", "l"]["changes"]) == g["context_edges"][0]["changes"]
    assert {(a, b) for a, b, k in G.edges(data="kind") if k == "mechanism"} == {(e["source"], e["target"]) for e in g["edges"]}


def test_the_card_names_the_context_node_its_codes_and_what_it_changes():
    plan = make_plan(latent_spring(samples=20))
    card = dataset_card(plan, causal_graph(plan))
    graph_section = card[card.index("## Causal graph"):card.index("## Arrays")]
    assert "Context node `domain`" in graph_section and "`domain` array (0 = earth, 1 = moon)" in graph_section
    assert "domain → l (parameter g: earth 9.81, moon 1.62)" in graph_section


def test_one_domain_or_domains_that_change_nothing_give_no_context_edges():
    one = _graph(domains={})
    assert one["context_nodes"] == [] and one["context_edges"] == []
    assert "Context node" not in dataset_card(make_plan(latent_spring(samples=20, domains={})), one)
    same = _graph(domains={"a": {"weight": 1}, "b": {"weight": 3, "parameters": {"g": 9.81}}})
    assert [c["labels"] for c in same["context_nodes"]] == [["a", "b"]] and same["context_edges"] == []


def test_overridden_mechanisms_and_noises_are_context_edges_naming_the_change():
    spec = latent_spring(samples=20, domains={
        "a": {"weight": 1, "noise": {"k": "uniform(200, 300)", "l": "normal(0, 0.002)"}},
        "b": {"weight": 1, "overrides": {"m": "rho * r**2 * h * 3"}, "parameters": {"rest": 0.12}},
        "c": {"weight": 1, "parameters": {"g": 1.62, "rest": 0.12}},
    })
    edges = {e["target"]: e["changes"] for e in context_edges(spec)}
    assert set(edges) == {"m", "k", "l"}  # h, r, rho: untouched in every domain
    assert edges["m"] == [{"kind": "mechanism", "values": {"a": "rho * 3.14159265 * r**2 * h",
                                                             "b": "rho * r**2 * h * 3", "c": "rho * 3.14159265 * r**2 * h"}}]
    assert [c["kind"] for c in edges["k"]] == ["noise"] and edges["k"][0]["values"]["a"] != edges["k"][0]["values"]["b"]
    assert edges["l"] == [  # g differs in c; rest is the same everywhere, so it is no change
        {"kind": "parameter", "name": "g", "values": {"a": 9.81, "b": 9.81, "c": 1.62}},
        {"kind": "noise", "values": {"a": "normal(0.0, 0.002)", "b": "normal(0.0, 0.001)", "c": "normal(0.0, 0.001)"}}]


def test_a_noise_the_equation_never_reads_is_no_change():
    clamp = "max(rest - g * m / k, 0.01)"  # l without its eps: its noise no longer matters
    spec = latent_spring(samples=20, domains={"a": {"weight": 1, "overrides": {"l": clamp}},
                                              "b": {"weight": 1, "overrides": {"l": clamp}, "noise": {"l": "normal(0, 0.005)"}}})
    assert context_edges(spec) == []
    spec = latent_spring(samples=20, domains={"a": {"weight": 1, "overrides": {"l": clamp}},
                                              "b": {"weight": 1, "noise": {"l": "normal(0, 0.005)"}}})
    (edge,) = context_edges(spec)  # b keeps the eps: its equation and its noise both differ from a's
    assert [c["kind"] for c in edge["changes"]] == ["mechanism", "noise"]
    assert edge["changes"][1]["values"] == {"a": None, "b": "normal(0.0, 0.005)"}


def test_a_latent_named_domain_does_not_collide_with_the_context_node():
    variables = {**latent_spring(samples=20).to_dict()["variables"]}
    variables["domain"] = {"range": [0, 1], "noise": "uniform(0, 1)"}
    g = _graph(variables=variables)
    assert [c["name"] for c in g["context_nodes"]] == ["_domain"] and g["context_edges"][0]["source"] == "_domain"
    assert nx.parse_graphml(graphml(g)).nodes["_domain"]["kind"] == "context"


def test_the_graph_image_gives_the_context_node_a_column_of_its_own():
    def size(g: dict) -> tuple[int, int]:
        with Image.open(io.BytesIO(graph_image(g))) as im:
            assert im.format == "PNG"
            return im.size

    with_context, without = size(_graph()), size(_graph(domains={}))
    assert with_context[0] > without[0] and with_context[1] >= without[1]


def test_every_temporal_edit_record_names_its_op_and_fraction():
    """Set-edits (``=``, the schema's default op) and edits of every sample (fraction 1) carry
    ``op`` and ``fraction`` like the others, so a reader needs no schema defaults."""
    from crlgen.pipeline import load_spec

    spec = load_spec("physics/falling_simple").replace(video={"fps": 15, "frames": 12}, temporal_edits=[
        {"at_frame": 6, "do": "gravity = 1.62"}, {"at_frame": 4, "do": "gravity += 1", "fraction": 0.5},
        {"at_frame": 2, "do": "gravity *= 2"}])
    edits = json.loads(json.dumps(causal_graph(make_plan(spec))))["temporal_edits"]
    assert [(e["target"], e["op"], e["value"], e["at_frame"], e["fraction"]) for e in edits] == [
        ("gravity", "set", 1.62, 6, 1.0), ("gravity", "add", 1.0, 4, 0.5), ("gravity", "scale", 2.0, 2, 1.0)]


def test_a_latents_only_spec_lists_no_states_the_store_does_not_hold():
    """`extends: traffic/grid_town` + `world: null` keeps the world's SCM but simulates no states: the graph listed
    64 of them (unit None) though the store has no `states` array. A world's states carry the spec's units."""
    from crlgen.pipeline import load_spec

    world = load_spec("traffic/grid_town")
    g = causal_graph(make_plan(world))
    units = {name: var.unit for name, (_, _, var) in world.expand_keyed(world.variables.items()).items()}
    assert len(g["states"]) == len(world.graph.states) == 64
    assert all(s["unit"] == units[s["name"]] and s["unit"] for s in g["states"])
    latents_only = world.replace(world=None, video=None, temporal_edits=[], counterfactuals=None)
    plan = make_plan(latents_only)
    assert latents_only.graph.states and not plan.has("state")
    assert causal_graph(plan)["states"] == []


def test_named_sets_carry_their_name_and_weight():
    """`interventions.options` listed only index and targets: a `sets` regime's name and weight come along."""
    sets = {"regime": "sets", "fraction": 0.5, "sets": [
        {"name": "tall", "targets": {"h": "do(0.09)"}, "weight": 2},
        {"targets": {"k": "do(uniform(300, 400))", "m": "soft('2 * h', noise='normal(0, 0.01)')"}}]}
    options = _graph(interventions=sets)["interventions"]["options"]
    assert options == [
        {"index": 0, "name": "tall", "weight": 2.0, "targets": {"h": "do(0.09)"}},
        {"index": 1, "weight": 1.0, "targets": {"k": "do(uniform(300.0, 400.0))",
                                                 "m": {"kind": "soft", "mechanism": "2 * h", "noise": "normal(0.0, 0.01)"}}}]
    assert "name" not in _graph()["interventions"]["options"][0] and "weight" not in _graph()["interventions"]["options"][0]


def test_categorical_weights_show_the_probabilities_they_are_drawn_with():
    """`categorical(1, 1, 2)` is drawn with probabilities 0.25, 0.25, 0.5 (its probs normalised), while the
    graph and the card showed only the weights as written: the node carries `probabilities`, and the card
    adds them where the written probs do not sum to 1 (and says nothing where they do)."""
    import numpy as np

    from crlgen.pipeline import CompiledSCM

    variables = {"c": {"type": "categorical", "levels": ["a", "b", "z"], "noise": "categorical(1, 1, 2)"},
                 "d": {"type": "categorical", "levels": ["a", "b"], "noise": "categorical(0.3, 0.7)"},
                 "x": {"noise": "uniform(0, 1)"}}
    spec = latent_spring(samples=4000).replace(variables=variables, domains={}, interventions={"regime": "observational"},
                                               counterfactuals=None)
    plan = make_plan(spec)
    nodes = {n["name"]: n for n in json.loads(json.dumps(causal_graph(plan)))["nodes"]}
    assert nodes["c"]["noise"] == "categorical([1.0, 1.0, 2.0])" and nodes["c"]["probabilities"] == [0.25, 0.25, 0.5]
    assert nodes["d"]["probabilities"] == [0.3, 0.7] and nodes["x"]["probabilities"] is None
    card = dataset_card(plan, causal_graph(plan))
    assert "| `categorical([1.0, 1.0, 2.0])` (drawn with probabilities 0.25, 0.25, 0.5) |" in card
    assert "| `categorical([0.3, 0.7])` |" in card
    drawn = np.asarray(CompiledSCM(spec).sample(0, 4000).column("c"))  # what the sampler does: the shares agree
    assert np.allclose(np.bincount(drawn.astype(int), minlength=3) / 4000, [0.25, 0.25, 0.5], atol=0.03)
