"""The CLI's commands, their --json output and their exit codes (in-process, so fast)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from support.cli import run_cli
from support.stores import latent_spring


@pytest.fixture(scope="module")
def latent_spec_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli") / "latent.yaml"
    latent_spring(samples=2000).dump(p)
    return p


def test_scenes_lists_the_catalogue(capsys):
    code, out, _ = run_cli(capsys, "scenes", "--json")
    names = {e["name"] for e in json.loads(out)}
    assert code == 0 and "static/spring" in names and len([n for n in names if n.startswith("physics/")]) == 6


def test_schema_prints_the_committed_json_schema(capsys):
    from crlgen.schemas.jsonschema import SCHEMA_PATH

    code, out, _ = run_cli(capsys, "schema")
    assert code == 0 and json.loads(out) == json.loads(SCHEMA_PATH.read_text())


def test_check_json(capsys):
    code, out, _ = run_cli(capsys, "check", "static/spring", "--json")
    info = json.loads(out)
    assert code == 0 and info["ok"] and info["latents"] == 6 and info["edges"] == 5


def test_check_says_a_latents_only_spec_s_render_settings_are_unused(capsys, tmp_path):
    """``extends: static/spring`` + ``world: null`` is the way to a world's SCM without pixels, so its inherited
    ``render`` block is accepted, and check says it is unused (a spec that forgot `world:` learns why no images)."""
    path = tmp_path / "latent.yaml"
    path.write_text("extends: static/spring\nworld: null\nsamples: 30\n")
    code, out, _ = run_cli(capsys, "check", str(path))
    assert code == 0 and out.splitlines()[1].startswith("note: no world, so no pixels: the `render` settings are unused")
    path.write_text("extends: static/spring\nworld: null\nrender: null\nsamples: 30\n")
    code, out, _ = run_cli(capsys, "check", str(path))
    assert code == 0 and "note:" not in out


def test_plan_json_reports_shards_shapes_and_bytes(capsys):
    code, out, _ = run_cli(capsys, "plan", "static/spring", "--samples", "300", "--no-calibrate", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["samples"] == 300 and plan["shards"] * plan["shard_size"] >= 300
    arrays = {a["name"]: a for a in plan["arrays"]}
    assert arrays["images"]["shape"] == [300, 4, 64, 64, 3] and arrays["images"]["dims"][0] == "sample"
    assert plan["bytes_uncompressed"] == sum(a["bytes"] for a in plan["arrays"])


def test_plan_calibrates_a_run_time_estimate(capsys):
    code, out, _ = run_cli(capsys, "plan", "static/spring", "--samples", "20", "--workers", "2", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["calibration_seconds_per_sample"] > 0
    assert plan["estimated_seconds"] == pytest.approx(plan["calibration_seconds_per_sample"] * 20 / 2)


def test_plan_of_a_world_that_cannot_run_here_prints_the_plan_without_an_estimate(capsys, monkeypatch):
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CRLGEN_CARLA_HOST", "127.0.0.1")
    monkeypatch.setenv("CRLGEN_CARLA_PORT", str(port))
    code, out, err = run_cli(capsys, "plan", "traffic/carla_town", "--samples", "4", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["samples"] == 4 and "estimated_seconds" not in plan
    assert f"no CARLA server answers at 127.0.0.1:{port}" in plan["calibration_skipped"]


def test_run_inspect_validate_round_trip(capsys, latent_spec_file, tmp_path):
    out_url = str(tmp_path / "s.zarr")
    code, out, err = run_cli(capsys, "run", str(latent_spec_file), "--out", out_url, "--inline", "--quiet")
    assert code == 0, err
    assert "passed" in out
    code, out, _ = run_cli(capsys, "inspect", out_url, "--json")
    info = json.loads(out)
    assert code == 0 and info["status"] == "complete" and info["validation"] is True
    assert info["arrays"]["latents"]["shape"] == [2000, 6]
    code, out, _ = run_cli(capsys, "validate", out_url, "--json")
    assert code == 0 and json.loads(out)["passed"]
    # a store whose marker is gone fails validation with exit 1
    broken = tmp_path / "broken.zarr"
    shutil.copytree(out_url, broken)
    (broken / "_crlgen/shards/000000.json").unlink()
    code, out, _ = run_cli(capsys, "validate", str(broken))
    assert code == 1 and "FAIL integrity" in out


@pytest.mark.parametrize("args, fragment", [
    (["run", "static/spring", "--samples", "0"], "--samples: expected a positive count"),
    (["run", "static/spring", "--workers", "0"], "--workers: expected at least 1"),
    (["run", "static/spring", "--out", "ftp://host/x"], "unsupported URL scheme 'ftp'"),
    (["run", "static/spring", "--out", "s3://"], "s3 URLs need a bucket"),
    (["run", "static/spring", "--out", "s3://bucket"], "not a bucket's root"),
    (["run", "static/spring", "--out", "s3://key:secret@bucket/x.zarr"], "do not put credentials in the URL"),
    (["run", "static/spring", "--frobnicate"], "No such option '--frobnicate'"),
    (["plan", "nope/nothing"], "no such spec file or catalogue scene"),
    (["validate", "/nonexistent/store.zarr"], "URL: /nonexistent/store.zarr: does not exist"),
    (["inspect", "/"], "is not a crlgen store"),
    (["check"], "Missing argument"),
])
def test_user_mistakes_exit_2_with_one_line(capsys, args, fragment):
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
    assert "Traceback" not in err and "secret" not in err.replace("do not put credentials", "")


def test_json_output_stays_clean_when_engines_load():
    """Engines that print on import (pybullet) must not corrupt --json on stdout."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "crlgen.pipeline", "plan", "physics/falling_simple", "--samples", "2", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["estimated_seconds"] > 0


def test_a_store_an_older_sampler_drew_still_opens_and_is_never_resumed(capsys, tmp_path):
    """tests/data/sampler1_latents.zarr was written by sampler 1 (before intervention and edit fractions
    counted counterfactual partners): 40 latent-only spring samples in 20 intervention pairs."""
    from crlgen.pipeline import open_store
    from crlgen.pipeline._scm import SAMPLER_VERSION

    old = shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "sampler1_latents.zarr", tmp_path / "old.zarr")
    ds = open_store(str(old))
    assert ds["latents"].shape == (40, 6) and int((ds["pair_role"] > 0).sum()) == 40
    code, out, _ = run_cli(capsys, "inspect", str(old), "--json")
    assert code == 0 and json.loads(out)["status"] == "complete"
    # validation checks its integrity and says why it cannot re-derive its samples
    code, out, _ = run_cli(capsys, "validate", str(old), "--json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == 0 and checks["integrity"]["passed"] and checks["integrity"]["skipped"] is None
    assert all(f"drawn by sampler 1 and this crlgen draws with sampler {SAMPLER_VERSION}" in checks[n]["skipped"]
               for n in ("reproducibility", "mechanisms", "interventions", "statistics", "rendering", "dynamics"))
    # the same spec run into it again is another dataset now: refused, naming both sampler versions
    before = sorted(p.name for p in old.rglob("*"))
    code, _, err = run_cli(capsys, "run", str(old / "spec.yaml"), "--out", str(old), "--inline", "--quiet")
    assert code == 2 and err == (f"error: --out: {old} holds a different dataset (spring_sampler1, drawn by sampler 1; "
                                 f"this crlgen draws with sampler {SAMPLER_VERSION}); pass --overwrite to replace it or "
                                 "choose another --out\n")
    assert sorted(p.name for p in old.rglob("*")) == before


def test_a_format_1_store_still_opens_and_validate_says_what_to_do(capsys, tmp_path):
    """tests/data/format1_latents.zarr was written by crlgen 0.1 (store format 1, 40 samples)."""
    from crlgen.pipeline import open_store

    old = shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "format1_latents.zarr", tmp_path / "old.zarr")
    ds = open_store(str(old))
    assert ds["latents"].shape == (40, 6) and list(ds["latent"].values) == ["h", "r", "rho", "m", "k", "l"]
    code, _, err = run_cli(capsys, "validate", str(old))
    assert code == 2 and err.strip() == (f"error: URL: {old}: store format 1 (written by crlgen 0.1); this crlgen "
                                         "validates format 2: regenerate it with `crlgen run` on its spec.yaml")


def test_inspect_reports_a_truncated_chunk_and_when_validation_was_recorded(capsys, latent_spec_file, tmp_path):
    """A chunk cut short after the run is found from one listing and the commit markers (no data
    read): inspect names the array, exits 1, and says the stored validation is a past report."""
    good = tmp_path / "good.zarr"
    code, _, err = run_cli(capsys, "run", str(latent_spec_file), "--out", str(good), "--inline", "--quiet")
    assert code == 0, err
    code, out, _ = run_cli(capsys, "inspect", str(good))
    assert code == 0 and "(complete)" in out and "damaged" not in out
    assert "last validation (validation.json, written " in out and " UTC): passed;" in out
    assert "`crlgen validate` checks the store as it is now" in out
    cut = shutil.copytree(good, tmp_path / "cut.zarr")
    chunk = cut / "latents" / "c" / "1" / "0"  # the second shard of 1000 samples
    chunk.write_bytes(chunk.read_bytes()[:10])
    code, out, _ = run_cli(capsys, "inspect", str(cut))
    damaged = [line for line in out.splitlines() if line.startswith("damaged:")]
    assert code == 1 and "(complete, damaged)" in out
    assert len(damaged) == 1 and "shard 1: latents object latents/c/1/0 has 10 bytes" in damaged[0]
    code, out, _ = run_cli(capsys, "inspect", str(cut), "--json")
    assert code == 1 and json.loads(out)["problems"][0].startswith("shard 1: latents object")


def test_inspect_of_a_half_written_store_prints_no_zarr_warnings(capsys, tmp_path):
    """Without consolidated metadata Zarr lists the group and warns about each of our files
    beside the arrays (markers, run logs); inspect silences that and says the run is unfinished."""
    import warnings

    from crlgen.pipeline import make_plan, resolve
    from crlgen.pipeline._store import Store

    store = Store(resolve(str(tmp_path / "half.zarr")))
    store.create(make_plan(latent_spring(samples=20)))
    store.write_run_log("r1", {"started": 0})
    store.write_text("_crlgen/shards/000000.json", "{}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = run_cli(capsys, "inspect", str(tmp_path / "half.zarr"))
    assert code == 0 and "(writing)" in out and "the run writing this store has not finished" in out
    assert not [w for w in caught if "not recognized" in str(w.message)] and "Warning" not in err


@pytest.fixture(scope="module")
def latent_store_file(latent_spec_file, tmp_path_factory) -> Path:
    """A finished latent-only store of ``latent_spec_file`` (2000 samples, 2 shards), read-only: copy it."""
    root = tmp_path_factory.mktemp("cli_store") / "good.zarr"
    from crlgen.pipeline._cli import main

    assert main(["run", str(latent_spec_file), "--out", str(root), "--inline", "--quiet"]) == 0
    return root


def test_an_array_without_its_zarr_json_is_damage_and_a_rerun_restores_it(capsys, latent_spec_file, latent_store_file, tmp_path):
    """Consolidated metadata still describes the array, so only a listing sees the loss: inspect names it
    (exit 1) like validate; the same spec run into the store writes the metadata again (a function of the
    spec: byte for byte as created), says so, and the store validates."""
    from support.stores import tree_digest

    root = shutil.copytree(latent_store_file, tmp_path / "m1.zarr")
    (root / "latents" / "zarr.json").unlink()
    line = "array latents has no zarr.json (its metadata); `crlgen run` on the same spec writes it again"
    code, out, _ = run_cli(capsys, "inspect", str(root))
    assert code == 1 and "(complete, damaged)" in out and "shards: every object" not in out
    assert [x for x in out.splitlines() if x.startswith("damaged:")] == [
        f"damaged: 1 problem(s) with its shards or metadata, first: {line}; `crlgen validate` reports them all"]
    code, out, _ = run_cli(capsys, "validate", str(root))
    assert code == 1 and f"     - {line}" in out.splitlines() and "array latents is missing" not in out
    code, out, err = run_cli(capsys, "run", str(latent_spec_file), "--out", str(root), "--inline", "--quiet")
    assert code == 0, err
    assert "the metadata (zarr.json) of latents, which" in out and "passed" in out
    assert tree_digest(root) == tree_digest(latent_store_file)
    code, out, _ = run_cli(capsys, "inspect", str(root))
    assert code == 0 and "damaged" not in out


def test_a_finished_store_without_its_spec_is_damaged_in_inspect_and_validate_alike(capsys, latent_spec_file,
                                                                                   latent_store_file, tmp_path):
    root = shutil.copytree(latent_store_file, tmp_path / "m4.zarr")
    (root / "spec.yaml").unlink()
    line = "the store is damaged: its spec.yaml is missing (status complete); `crlgen run` on the same spec writes it again"
    code, out, _ = run_cli(capsys, "inspect", str(root))
    assert code == 1 and f"first: {line};" in out and "not a committed" not in out
    code, out, _ = run_cli(capsys, "validate", str(root))
    assert code == 1 and f"     - {line}" in out.splitlines() and "has not finished" not in out
    code, out, err = run_cli(capsys, "run", str(latent_spec_file), "--out", str(root), "--inline", "--quiet")
    assert code == 0 and (root / "spec.yaml").is_file(), err
    assert run_cli(capsys, "validate", str(root))[0] == 0


def test_a_garbled_root_zarr_json_is_damage_not_a_foreign_folder(capsys, latent_spec_file, latent_store_file, tmp_path):
    """Every command says the store's zarr.json is damaged; run refuses to write into it without
    --overwrite (exit 2, nothing written) and replaces it with --overwrite: crlgen's commit markers
    say it is crlgen's (it was refused even with --overwrite)."""
    root = shutil.copytree(latent_store_file, tmp_path / "m2.zarr")
    (root / "zarr.json").write_text("{garbage\n")
    line = (f"URL: {root}: its zarr.json is damaged (not valid JSON): the store cannot be read; "
            "regenerate it (`crlgen run SPEC --out URL --overwrite`)")
    code, out, _ = run_cli(capsys, "inspect", str(root))
    assert code == 1 and out == f"damaged: {line}\n"
    code, out, _ = run_cli(capsys, "validate", str(root))
    assert code == 1 and f"     - {line.removeprefix('URL: ')}" in out.splitlines()
    code, _, err = run_cli(capsys, "preview", str(root))
    assert code == 2 and err == f"error: {line}\n"
    before = sorted(p.name for p in root.rglob("*"))
    code, _, err = run_cli(capsys, "run", str(latent_spec_file), "--out", str(root), "--inline", "--quiet")
    assert code == 2 and err == (f"error: --out: {root}: its zarr.json is damaged (not valid JSON), so it cannot be resumed; "
                                 "pass --overwrite to replace it or choose another --out\n")
    assert sorted(p.name for p in root.rglob("*")) == before
    code, _, err = run_cli(capsys, "run", str(latent_spec_file), "--out", str(root), "--inline", "--quiet", "--overwrite")
    assert code == 0, err
    assert run_cli(capsys, "validate", str(root))[0] == 0


def test_a_garbled_zarr_json_without_crlgen_markers_is_never_written(capsys, latent_spec_file, tmp_path):
    """Without crlgen's commit markers a garbled zarr.json may be anyone's: refused, --overwrite or not."""
    root = tmp_path / "theirs.zarr"
    root.mkdir()
    (root / "zarr.json").write_text("{garbage\n")
    (root / "data.bin").write_bytes(b"theirs")
    for extra in ((), ("--overwrite",)):
        code, _, err = run_cli(capsys, "run", str(latent_spec_file), "--out", str(root), "--inline", "--quiet", *extra)
        assert code == 2 and err == (f"error: --out: {root}: its zarr.json is damaged (not valid JSON), so it is not written: "
                                     "remove it or choose another location\n")
        assert sorted(p.name for p in root.iterdir()) == ["data.bin", "zarr.json"]
    code, out, _ = run_cli(capsys, "inspect", str(root))
    assert code == 1 and out.endswith("the store cannot be read; regenerate it into an empty location\n")


def test_check_notes_that_time_varying_states_are_not_simulated_without_a_world(capsys, tmp_path):
    """A time-varying variable in a spec without a world vanished without a word (`OK tv: 1 latents`)."""
    path = tmp_path / "tv.yaml"
    path.write_text("name: tv\nsamples: 5\nvariables: {a: {noise: 'uniform(0,1)'}, b: {time_varying: true}}\n")
    code, out, _ = run_cli(capsys, "check", str(path))
    assert code == 0 and out.splitlines()[1] == (
        "note: no world, so the time-varying states (b) are not simulated: the store holds the static latents only; "
        "name a `world` that simulates them (see `crlgen scenes`)")
    path.write_text("extends: traffic/grid_town\nworld: null\nvideo: null\ntemporal_edits: null\ncounterfactuals: null\n")
    code, out, _ = run_cli(capsys, "check", str(path))
    assert code == 0 and "time-varying states (vehicle[0].x, vehicle[0].y, vehicle[0].heading, vehicle[0].speed, ... (64 in all))" in out


def test_check_json_carries_the_notes(capsys, tmp_path):
    """`check --json` left out the note lines the text output prints."""
    path = tmp_path / "latent.yaml"
    path.write_text("extends: static/spring\nworld: null\nsamples: 30\n")
    code, out, _ = run_cli(capsys, "check", str(path), "--json")
    notes = json.loads(out)["notes"]
    assert code == 0 and len(notes) == 1 and notes[0].startswith("no world, so no pixels: the `render` settings are unused")
    code, out, _ = run_cli(capsys, "check", "static/spring", "--json")
    assert json.loads(out)["notes"] == []


def test_a_sample_count_from_samples_is_blamed_on_the_flag(capsys, tmp_path):
    """`--samples 10` against domains whose counts add up to 30 blamed `domains` alone; the line says where 10 came from."""
    path = tmp_path / "h1.yaml"
    path.write_text("name: h1\nsamples: 30\nvariables: {x: {noise: 'uniform(0, 1)'}}\n"
                    "domains: {A: {samples: 10}, B: {samples: 20}}\n")
    code, _, err = run_cli(capsys, "plan", str(path), "--samples", "10", "--no-calibrate")
    assert code == 2 and err.strip() == ("error: domains: domain sample counts add up to 30, expected samples = 10 "
                                         "(samples = 10 came from --samples)")
    path.write_text("name: h1\nsamples: 10\nvariables: {x: {noise: 'uniform(0, 1)'}}\ndomains: {A: {samples: 10}, B: {samples: 20}}\n")
    code, _, err = run_cli(capsys, "plan", str(path), "--samples", "10", "--no-calibrate")
    assert code == 2 and "--samples" not in err  # the spec's own count is wrong: no flag to blame


@pytest.mark.parametrize("write, message", [
    (lambda p: p.write_text("name: a1\nsamples: 40\n"), "it is not a .npy array (no .npy header)"),
    (lambda p: __import__("numpy").save(p, __import__("numpy").array([{"a": 1}] * 3, dtype=object), allow_pickle=True),
     "it holds Python objects, not numbers"),
])
def test_evaluate_says_what_a_file_that_is_no_array_is(capsys, spring_store, tmp_path, write, message):
    """A spec passed as REPRESENTATIONS gave numpy's "Cannot load file containing pickled data when allow_pickle=False"."""
    path = tmp_path / "z.npy"
    write(path)
    code, _, err = run_cli(capsys, "evaluate", str(spring_store), str(path))
    assert code == 2 and err.strip() == (f"error: REPRESENTATIONS: cannot read {path}: {message}; expected a .npy file of "
                                         "numbers (samples, K), as np.save writes")


def test_run_refuses_a_store_inside_another_store_and_notes_a_memory_store(capsys, latent_spec_file, latent_store_file, tmp_path):
    """The tester's `--out a2.zarr/sub.zarr` wrote a store among another store's arrays; `--out memory://x.zarr`
    reported success for a store that is gone when the process ends."""
    from support.stores import tree_digest

    root = shutil.copytree(latent_store_file, tmp_path / "outer.zarr")
    before = tree_digest(root)
    code, out, err = run_cli(capsys, "run", str(latent_spec_file), "--out", str(root / "sub.zarr"), "--inline", "--quiet")
    assert (code, out) == (2, "") and err.strip() == (f"error: --out: {root / 'sub.zarr'} lies inside the crlgen store "
                                                      f"{root}; choose a folder outside any store")
    assert tree_digest(root) == before and not (root / "sub.zarr").exists()
    code, out, _ = run_cli(capsys, "run", str(latent_spec_file), "--out", str(root), "--inline", "--quiet")
    assert code == 0 and "shards run / skipped (resumed)" in out  # its own store: resumed, not refused
    code, _, err = run_cli(capsys, "run", str(latent_spec_file), "--out", "memory://cli-note.zarr", "--inline", "--quiet",
                           "--samples", "50")
    assert code == 0 and "note: a memory:// store lives in this process only" in err
