"""Presence flags: a latent named ``present`` on an indexed kind (``vehicle[3].present``) gates its object.

The sampler draws a templated do-target only among the objects present in a sample, applies a templated
target of a set or a counterfactual only to present objects, and drops a temporal edit on an absent one;
``crlgen check`` refuses an explicitly indexed target, edit or camera mount whose flag is not constant 1.
(Before, 15 % of grid_town's interventions were labelled applied on cars that were not there.)
"""

from __future__ import annotations

import numpy as np
import pytest

from crlgen.pipeline import load_spec
from crlgen.pipeline._scm import BLOCK, ROLE_COUNTERFACTUAL, CompiledSCM
from crlgen.scenes import check_world
from crlgen.schemas import DatasetSpec, SpecError


def _absent_targets(batch) -> int:
    """How many (sample, latent) intervention marks fall on an object whose present flag is 0."""
    names = list(batch.names)
    bad = 0
    for j, name in enumerate(names):
        flag = name.split(".", 1)[0] + ".present"
        if "[" in name and flag in names and flag != name:
            bad += int((batch.intervention_mask[:, j] & (batch.column(flag) == 0)).sum())
    return bad


def test_grid_town_never_intervenes_on_an_absent_car():
    spec = load_spec("traffic/grid_town").with_samples(2000)
    batch = CompiledSCM(spec).sample(0, 2000)
    assert (batch.column("vehicle[3].present") == 0).sum() > 300  # cars are absent often enough to matter
    assert _absent_targets(batch) == 0
    # the regime's fraction still holds (grid_town always has the ego car, so every draw finds a target)
    assert abs(float(np.mean(batch.intervention >= 0)) - 0.3) < 3 * np.sqrt(0.21 / 2000)
    # every car is still a target somewhere, and the intervened car is present in each sample
    names = list(batch.names)
    hit = {names[j].split(".")[0] for j in np.flatnonzero(batch.intervention_mask.any(axis=0))}
    assert {f"vehicle[{k}]" for k in range(8)} <= hit


def _objects(regime: dict, n: int = 3000, **extra) -> DatasetSpec:
    data = {
        "name": "present", "objects": {"obj": 3}, "samples": n, "seed": 4,
        "variables": {
            "obj[i].present": {"type": "boolean", "noise": "bernoulli(0.3)"},
            "obj[i].x": {"range": [-10, 10], "noise": "uniform(0, 1)"},
            "y": {"mechanism": "obj[0].x + obj[1].x + obj[2].x"},
        },
        "interventions": regime, **extra,
    }
    return DatasetSpec.from_dict(data)


def test_single_node_draws_a_template_target_among_present_objects_or_none():
    spec = _objects({"regime": "single_node", "fraction": 0.5, "targets": {"obj[i].x": "do(5)"}})
    b = CompiledSCM(spec).sample(0, 3000)
    present = np.stack([b.column(f"obj[{k}].present") for k in range(3)], axis=1) == 1
    assert _absent_targets(b) == 0
    hit = b.intervention >= 0
    # a sample without any object stays observational; every other intervened sample has exactly one target
    assert not (hit & ~present.any(axis=1)).any()
    assert (b.intervention_mask[hit].sum(axis=1) == 1).all()
    assert abs(hit.mean() - 0.5 * present.any(axis=1).mean()) < 0.03
    # the target is uniform among the present objects: with all three present each gets about a third
    full = hit & present.all(axis=1)
    counts = np.bincount(b.intervention[full], minlength=3)
    assert full.sum() > 30 and counts.min() > 0


def test_a_set_or_counterfactual_template_applies_to_present_objects_only():
    spec = _objects({"regime": "sets", "fraction": 0.5, "sets": [{"targets": {"obj[i].x": "do(5)"}}]},
                    counterfactuals={"fraction": 0.2, "intervention": {"obj[i].x": "do(-5)"}})
    b = CompiledSCM(spec).sample(0, 3000)
    present = np.stack([b.column(f"obj[{k}].present") for k in range(3)], axis=1) == 1
    xs = [list(b.names).index(f"obj[{k}].x") for k in range(3)]
    assert _absent_targets(b) == 0
    on = b.intervention >= 0
    assert np.array_equal(b.intervention_mask[on][:, xs], present[on])  # every present object, no absent one
    assert not (on & ~present.any(axis=1)).any()  # nobody there: the sample is observational
    cf = b.pair_role == ROLE_COUNTERFACTUAL
    assert cf.sum() > 100 and np.array_equal(b.intervention_mask[cf][:, xs], present[cf])


def test_an_edit_on_an_absent_object_is_not_applied():
    data = load_spec("traffic/grid_town").to_dict()
    data["temporal_edits"] = [{"at_frame": 5, "do": "pedestrian[1].walking = 1", "fraction": 1.0}]
    data["samples"] = 500
    b = CompiledSCM(DatasetSpec.from_dict(data)).sample(0, 500)
    absent = b.column("pedestrian[1].present") == 0
    assert absent.sum() > 50
    assert (b.edit_frame[absent, 0] == -1).all() and (b.edit_frame[~absent, 0] == 5).all()
    assert np.isnan(b.edit_value[absent, 0]).all() and (b.edit_value[~absent, 0] == 1).all()


def test_gated_sampling_is_the_same_in_any_shards():
    spec = _objects({"regime": "single_node", "fraction": 0.4, "targets": {"obj[i].x": "do(5)", "y": "do(1)"}},
                    n=2 * BLOCK + 100, counterfactuals={"fraction": 0.1, "intervention": {"obj[i].x": "shift(1)"}})
    m = CompiledSCM(spec)
    whole = m.sample(0, spec.samples)
    parts = [m.sample(a, min(a + 700, spec.samples)) for a in range(0, spec.samples, 700)]
    for f in ("latents", "intervention", "intervention_mask", "pair"):
        assert np.array_equal(np.concatenate([getattr(p, f) for p in parts]), getattr(whole, f), equal_nan=True), f
    # a partner keeps its factual sample's option
    cf = np.flatnonzero(whole.pair_role == ROLE_COUNTERFACTUAL)
    assert np.array_equal(whole.intervention[cf], whole.intervention[cf - 1])


def test_an_intervention_that_reaches_its_own_object_s_flag_is_refused():
    data = _objects({"regime": "single_node", "fraction": 0.4, "targets": {"obj[i].x": "do(5)"}}).to_dict()
    data["variables"]["obj[i].present"] = {"type": "boolean", "mechanism": "obj[i].x > 0.5"}
    with pytest.raises(SpecError, match=r"reaches obj\[0\]\.present, the presence flag of its target obj\[0\]\.x"):
        CompiledSCM(DatasetSpec.from_dict(data))


# ----- crlgen check -------------------------------------------------------------------------------------------
def _grid(**changes) -> dict:
    data = load_spec("traffic/grid_town").to_dict()
    data.update(changes)
    return data


@pytest.mark.parametrize("field,change,line", [
    ("interventions.targets.vehicle[3].reaction_time",
     {"interventions": {"regime": "single_node", "fraction": 0.3, "targets": {"vehicle[3].reaction_time": "do(1.5)"}}},
     "vehicle[3].reaction_time is a do-target on vehicle[3], which is absent where vehicle[3].present is 0 (it is not "
     "constant 1); give vehicle[3].present the mechanism \"1\" or use the template vehicle[i].reaction_time"),
    ("temporal_edits[0].target", {"temporal_edits": [{"at_frame": 5, "do": "pedestrian[1].walking = 1"}]},
     "pedestrian[1].walking is an edit target on pedestrian[1], which is absent where pedestrian[1].present is 0 "
     "(it is not constant 1); give pedestrian[1].present the mechanism \"1\""),
    ("counterfactuals.intervention.vehicle[2].aggressiveness",
     {"counterfactuals": {"fraction": 0.1, "intervention": {"vehicle[2].aggressiveness": "do(1)"}}},
     "vehicle[2].aggressiveness is a counterfactual target on vehicle[2]"),
    ("counterfactuals.edit.target",
     {"counterfactuals": {"fraction": 0.1, "edit": {"at_frame": 5, "do": "vehicle[5].desired_speed = 4"}}},
     "vehicle[5].desired_speed is an edit target on vehicle[5]"),
    ("render.views[1].mount", None,
     "vehicle[3] is a camera mount on vehicle[3], which is absent where vehicle[3].present is 0 (it is not constant 1); "
     "give vehicle[3].present the mechanism \"1\""),
])
def test_check_refuses_an_explicit_index_on_an_object_that_may_be_absent(field, change, line):
    data = _grid(**(change or {}))
    if change is None:
        data["render"]["views"][1]["mount"] = "vehicle[3]"
    problems = check_world(DatasetSpec.from_dict(data))
    assert len(problems) == 1 and problems[0].startswith(f"{field}: {line}"), problems
    # the fix it names: the object made always present
    data["variables"][_object(line) + ".present"] = {"type": "boolean", "mechanism": "1"}
    assert check_world(DatasetSpec.from_dict(data)) == []


def _object(line: str) -> str:
    return line.split(" on ", 1)[1].split(",", 1)[0]


def test_check_accepts_templates_and_always_present_objects():
    data = _grid()  # catalogue grid_town: templated do-targets, edits and the dashcam on always-present objects
    assert check_world(DatasetSpec.from_dict(data)) == []
    data["variables"]["vehicle[3].present"] = {"type": "boolean", "mechanism": "1"}
    data["interventions"]["targets"]["vehicle[3].present"] = "do(0)"  # an intervention may remove it ...
    data["render"]["views"][1]["mount"] = "vehicle[3]"
    problems = check_world(DatasetSpec.from_dict(data))
    # ... so the line names that intervention, not the mechanism (which is "1" already)
    assert problems == ["render.views[1].mount: a camera mount (vehicle[3]) needs vehicle[3] present in every sample, "
                        "but the intervention interventions.targets.vehicle[3].present can make vehicle[3].present "
                        "other than 1 (vehicle[3] absent); drop it or let it set vehicle[3].present only to 1"]


def test_a_redrawn_sample_is_gated_on_its_new_draw():
    """A sample its world could not start from is redrawn (``attempts``): its flags are read from the new noise,
    so its target is still a present object, and the redraw is the same in any shard."""
    spec = _objects({"regime": "single_node", "fraction": 1.0, "targets": {"obj[i].x": "do(5)"}}, n=400)
    m = CompiledSCM(spec)
    attempts = np.zeros(400, np.int64)
    attempts[::3] = 2
    whole = m.sample(0, 400, attempts=attempts)
    assert _absent_targets(whole) == 0
    first = m.sample(0, 400)
    assert not np.array_equal(whole.intervention[::3], first.intervention[::3])  # re-gated on the new flags
    part = m.sample(99, 250, attempts=attempts[99:250])
    assert np.array_equal(part.intervention, whole.intervention[99:250])
    assert np.array_equal(part.latents, whole.latents[99:250])
