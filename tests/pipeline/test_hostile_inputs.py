"""Hostile and broken inputs, as a new user tried them: every one is a single `error:` line (exit 2)
or, for a damaged store, a failed validation (exit 1) - never a traceback, never a write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from crlgen.pipeline._cli import main
from support.stores import latent_spring


def cli(capsys, *args: str) -> tuple[int, str, list[str]]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    return code, out, [ln for ln in err.splitlines() if ln.strip()]


def one_error(capsys, *args: str) -> str:
    code, out, lines = cli(capsys, *args)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, out, lines)
    return lines[0]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A small committed latents-only store the damage tests copy."""
    d = tmp_path_factory.mktemp("hostile")
    spec = d / "l.yaml"
    latent_spring(samples=300).replace(shard_size=100).dump(spec)
    assert main(["run", str(spec), "--out", str(d / "s.zarr"), "--inline", "--quiet"]) == 0
    return d / "s.zarr"


def damaged(store: Path, tmp_path: Path, how) -> Path:
    root = tmp_path / "d.zarr"
    shutil.copytree(store, root)
    how(root)
    return root


# ----- spec arguments -----------------------------------------------------------------------
def test_spec_arguments_that_are_not_spec_files(capsys, tmp_path):
    assert one_error(capsys, "check", "") == "error: SPEC: expected a spec file or a catalogue name, got an empty string"
    assert one_error(capsys, "check", str(tmp_path)).endswith(": is a folder, not a spec file")
    long = "a" * 5000
    assert one_error(capsys, "check", long).endswith("...: no such spec file or catalogue scene")
    (tmp_path / "empty.yaml").write_text("\n")
    assert "the file is empty" in one_error(capsys, "check", str(tmp_path / "empty.yaml"))
    (tmp_path / "bin.yaml").write_bytes(b"\x00\xff\xfe")
    (tmp_path / "x.yaml").write_text("extends: bin.yaml\n")
    assert one_error(capsys, "check", str(tmp_path / "x.yaml")) == f"error: extends: {tmp_path / 'bin.yaml'}: not a text file (not UTF-8)"
    (tmp_path / "👍.yaml").write_text("name: [\n")
    assert "👍.yaml" in one_error(capsys, "check", str(tmp_path / "👍.yaml"))  # no emoji codes interpreted


def test_python_specs_that_exit_or_raise_multi_line_errors(capsys, tmp_path):
    (tmp_path / "exits.py").write_text('raise SystemExit("shadowed")\n')
    assert one_error(capsys, "check", str(tmp_path / "exits.py")).endswith("the Python spec raised SystemExit: shadowed")
    (tmp_path / "lines.py").write_text('raise ValueError("a\\nb\\nc")\n')
    assert one_error(capsys, "check", str(tmp_path / "lines.py")).endswith("raised ValueError: a b c")


def test_json_mode_reports_errors_as_json_too(capsys):
    code, out, lines = cli(capsys, "check", "nope/nothing", "--json")
    assert code == 2 and json.loads(out) == {"ok": False, "errors": ["nope/nothing: no such spec file or catalogue scene"]}


# ----- locations ------------------------------------------------------------------------------
@pytest.mark.parametrize("url, fragment", [
    ("file://", "names no path"),
    ("s3://bucket/x.zarr#frag", "takes no ?query or #fragment"),
    ("s3://bucket/x.zarr?versionId=3", "takes no ?query or #fragment"),
    ("/tmp/" + "n" * 300 + ".zarr", "the path is too long"),
])
def test_location_syntax(capsys, url, fragment):
    assert fragment in one_error(capsys, "run", "static/spring", "--samples", "2", "--out", url)


@pytest.mark.parametrize("options, fragment", [
    ({"key": 5, "secret": [1]}, "the storage options do not fit the s3 filesystem"),
    ({"endpoint_url": "not a url", "key": "k", "secret": "s"}, "cannot use the endpoint 'not a url'"),
    ({"bogus_option": 1, "key": "k", "secret": "s"}, "the storage options do not fit the s3 filesystem"),
    ({"client_kwargs": 5, "key": "k", "secret": "s"}, "the storage options do not fit the s3 filesystem"),
])
def test_unusable_storage_options(capsys, tmp_path, options, fragment):
    spec = tmp_path / "s.yaml"
    latent_spring(samples=20).replace(output={"url": "s3://bucket/x.zarr", "storage_options": options}).dump(spec)
    line = one_error(capsys, "run", str(spec), "--inline", "--quiet")
    assert line.startswith("error: output.url: s3://bucket/x.zarr: ") and fragment in line, line


def test_bad_endpoint_and_bucket_names(capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "notaurl")
    assert "cannot use the endpoint 'notaurl'" in one_error(capsys, "inspect", "s3://bucket/x.zarr")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    assert "not a valid object-store location" in one_error(capsys, "inspect", "s3://BAD_bucket!/x.zarr")
    assert "not a valid object-store location" in one_error(capsys, "inspect", f"s3://{'a' * 300}/x")


def test_empty_output_url_in_a_spec(capsys, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("extends: static/spring\noutput: {url: ''}\n")
    assert one_error(capsys, "check", str(spec)).startswith("error: output.url: ")


def test_an_existing_foreign_folder_is_left_untouched(capsys, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"x")
    before = folder.stat().st_mtime_ns
    assert "not a crlgen store" in one_error(capsys, "run", "static/spring", "--samples", "2", "--out", str(folder))
    assert folder.stat().st_mtime_ns == before and [p.name for p in folder.iterdir()] == ["a.jpg"]


# ----- broken stores ----------------------------------------------------------------------------
@pytest.mark.parametrize("how", [
    lambda r: (r / "zarr.json").write_text("[]"),
    lambda r: ((r / "zarr.json").unlink(), (r / "zarr.json").mkdir()),
    lambda r: (r / "zarr.json").write_text(json.dumps({"node_type": "group", "zarr_format": 3, "attributes": {"crlgen": "x"}})),
], ids=["zarr-json-a-list", "zarr-json-a-folder", "crlgen-attribute-a-string"])
@pytest.mark.parametrize("command", ["validate", "inspect", "run"])
def test_stores_that_are_not_crlgen_stores(capsys, store, tmp_path, how, command):
    root = damaged(store, tmp_path, how)
    args = {"validate": ["validate", str(root)], "inspect": ["inspect", str(root)],
            "run": ["run", "static/spring", "--samples", "2", "--out", str(root), "--overwrite", "--quiet"]}[command]
    assert "not a crlgen store" in one_error(capsys, *args)


def _unfinish(root: Path) -> None:
    """The store as a run leaves it before its commit: status writing, no spec.yaml yet."""
    meta = root / "zarr.json"
    meta.write_text(meta.read_text().replace('"status": "complete"', '"status": "writing"'))
    (root / "spec.yaml").unlink()


def test_an_unfinished_store_says_so(capsys, store, tmp_path):
    root = damaged(store, tmp_path, _unfinish)
    line = one_error(capsys, "validate", str(root))
    assert "the run writing this store has not finished (status writing)" in line and "run `crlgen run`" in line


def test_a_finished_store_without_its_spec_yaml_is_damaged_not_unfinished(capsys, store, tmp_path):
    """Its status says the run finished: a missing spec.yaml is damage, said so in one line, not an unfinished run."""
    root = damaged(store, tmp_path, lambda r: (r / "spec.yaml").unlink())
    code, out, _ = cli(capsys, "validate", str(root))
    assert code == 1 and "the store is damaged: its spec.yaml is missing (status complete)" in out
    assert "has not finished" not in out


def test_damaged_stores_fail_validation_in_words(capsys, store, tmp_path):
    def check(how, fragment):
        root = damaged(store, tmp_path, how)
        code, out, _ = cli(capsys, "validate", str(root), "--full")
        assert code == 1 and fragment in out, out
        shutil.rmtree(root)

    check(lambda r: (r / "_crlgen/shards/000001.json").write_text("[]"), "shard 1: no commit marker (or an unreadable one)")
    check(lambda r: (r / "latents/zarr.json").unlink(), "array latents has no zarr.json")
    check(lambda r: (r / "causal_graph.json").write_text("[1"), "causal_graph.json is missing or not valid JSON")
    code, out, lines = cli(capsys, "inspect", str(damaged(store, tmp_path, lambda r: (r / "causal_graph.json").write_text("[1"))))
    assert code == 0 and "causal_graph.json is missing or unreadable" in out


def test_a_corrupted_shard_is_rewritten_by_the_next_run(capsys, store, tmp_path):
    chunk = "latents/c/1/0"
    root = damaged(store, tmp_path, lambda r: (r / chunk).write_bytes(b"xx"))
    code, out, _ = cli(capsys, "validate", str(root))
    assert code == 1 and "shard 1: latents object" in out
    spec = tmp_path / "l.yaml"
    latent_spring(samples=300).replace(shard_size=100).dump(spec)
    code, out, _ = cli(capsys, "run", str(spec), "--out", str(root), "--inline", "--quiet")
    assert code == 0 and "1 / 2" in out  # shard 1 run again, the others kept
    assert cli(capsys, "validate", str(root), "--full")[0] == 0


# ----- the Python API --------------------------------------------------------------------------
def test_the_python_api_takes_urls_and_refuses_wrong_types(tmp_path):
    from crlgen.pipeline import RunOptions, SpecError, check_spec, load_spec, make_plan, open_store, resolve, run, validate_store

    res = run(latent_spring(samples=200), str(tmp_path / "api.zarr"), RunOptions(executor="inline"))
    assert res.valid and validate_store(str(tmp_path / "api.zarr"))["passed"]
    assert open_store(resolve(str(tmp_path / "api.zarr")))["latents"].shape == (200, 6)
    for fn in (make_plan, check_spec):
        with pytest.raises(TypeError, match="expected a DatasetSpec"):
            fn("static/spring")
    with pytest.raises(ValueError, match="executor"):
        RunOptions(executor="bogus")
    with pytest.raises(ValueError, match="workers"):
        RunOptions(workers=0)
    with pytest.raises(SpecError, match="no such spec file"):  # the error check_spec and load_spec raise, exported
        load_spec("nope/nothing")
