"""Counterfactual pairs that change nothing (pipeline._pairs) and the note `crlgen check` prints about them.

A partner copies its factual sample's noise and applies ``counterfactuals.intervention``: ``do(1)`` on a boolean root
drawn bernoulli(0.4) leaves about 40 % of pairs unchanged; ``soft('1 - eps')`` flips the root in every pair.
"""

from __future__ import annotations

import json

import pytest
import yaml

from crlgen.pipeline import load_spec
from crlgen.pipeline._pairs import unchanged_pairs
from crlgen.schemas import DatasetSpec
from support.cli import run_cli


def _spec(cf: dict | None, targets: dict | None = None) -> DatasetSpec:
    d = {
        "name": "pairs", "samples": 2000, "seed": 1,
        "variables": {
            "press": {"type": "boolean", "noise": "bernoulli(0.4)"},
            "x": {"range": [0, 1], "noise": "uniform(0, 1)"},
            "lamp": {"type": "boolean", "mechanism": "press"},
        },
        "interventions": {"regime": "single_node", "fraction": 0.3, "targets": targets or {"x": "do(0.5)"}},
    }
    if cf is not None:
        d["counterfactuals"] = cf
    return DatasetSpec.from_dict(d)


def test_a_do_value_the_factual_already_has_leaves_pairs_unchanged():
    r = unchanged_pairs(_spec({"fraction": 0.2, "intervention": {"press": "do(1)"}}))
    assert r.pairs == 400  # 20 % of 2000 samples are partners, each with its factual sample
    assert 0.33 <= r.fraction <= 0.47  # P(press = 1) = 0.4 in the factual samples
    assert r.targets == ("press",) and "soft('1 - eps')" in r.note()


def test_a_flip_of_the_roots_noise_changes_every_pair():
    r = unchanged_pairs(_spec({"fraction": 0.2, "intervention": {"press": "soft('1 - eps')"}}))
    assert (r.unchanged, r.pairs, r.note()) == (0, 400, "")


def test_a_factual_intervened_on_the_flipped_root_keeps_its_value():
    """do(press = 1) in the factual sample and the partner's flip of the noise: 1 - eps is 1 where eps was 0."""
    r = unchanged_pairs(_spec({"fraction": 0.2, "intervention": {"press": "soft('1 - eps')"}}, {"press": "do(1)"}))
    assert 0 < r.unchanged < r.pairs


def test_no_count_without_an_intervention_pair():
    assert unchanged_pairs(_spec(None)) is None


def test_crlgen_check_notes_unchanged_pairs(tmp_path, capsys):
    path = tmp_path / "pairs.yaml"
    path.write_text(yaml.safe_dump(_spec({"fraction": 0.2, "intervention": {"press": "do(1)"}}).to_dict(), sort_keys=False))
    code, out, err = run_cli(capsys, "check", str(path))
    assert code == 0, err
    note = next(line for line in out.splitlines() if line.startswith("counterfactuals:"))
    assert "of the first 400 pairs" in note and "counterfactuals.intervention on press" in note
    code, out, err = run_cli(capsys, "check", str(path), "--json")
    pairs = json.loads(out)["counterfactual_pairs"]
    assert pairs["drawn"] == 400 and 0 < pairs["unchanged"] < 400


@pytest.mark.parametrize("name", ["robotics/buttons_lights", "static/figure_rooms", "static/spring"])
def test_catalogue_pairs_all_change(name):
    """The buttons scene's partner flips button[2].press (it set do(1), a no-op in 45 % of its pairs)."""
    r = unchanged_pairs(load_spec(name))
    assert r is not None and r.pairs > 0 and r.unchanged == 0
