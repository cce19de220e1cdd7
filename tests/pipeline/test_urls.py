"""Every way a store location can be wrong gives one `error:` line naming the argument and the
location (credentials redacted), exit 2, and nothing is written.

S3 cases talk to the loopback SeaweedFS only: the endpoint is on 127.0.0.1, the EC2 metadata
lookup is off (conftest), and credential files point at /dev/null.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from crlgen.pipeline._cli import main
from support.stores import latent_spring


@pytest.fixture(scope="module")
def latent_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("urls") / "latent.yaml"
    latent_spring(samples=200).dump(p)
    return p


def one_error(capsys, *args: str) -> str:
    code = main(list(args))
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _bucket_keys(s3) -> list[str]:
    import fsspec

    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3.storage_options)
    return sorted(fs.find(s3.bucket))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


# ----- local paths -------------------------------------------------------------------------
def test_out_naming_a_regular_file(capsys, latent_file, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    line = one_error(capsys, "run", str(latent_file), "--out", str(f), "--inline", "--quiet")
    assert line.startswith(f"error: --out: {f}: is a file")
    assert f.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_out_below_a_regular_file(capsys, latent_file, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    line = one_error(capsys, "run", str(latent_file), "--out", str(f / "x.zarr"), "--inline", "--quiet")
    assert line.startswith(f"error: --out: {f}/x.zarr: {f} is a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_out_where_nothing_can_be_written(capsys, latent_file):
    line = one_error(capsys, "run", str(latent_file), "--out", "/proc/crlgen-test/x.zarr", "--inline", "--quiet")
    assert line.startswith("error: --out: /proc/crlgen-test/x.zarr: cannot create it")
    assert not Path("/proc/crlgen-test").exists()


@pytest.mark.parametrize("command", ["validate", "inspect"])
def test_store_argument_naming_a_regular_file(capsys, command, tmp_path):
    f = tmp_path / "data.csv"
    f.write_text("a,b\n")
    line = one_error(capsys, command, str(f))
    assert line.startswith(f"error: URL: {f}: is a file")


@pytest.mark.parametrize("command", ["validate", "inspect"])
def test_store_argument_naming_a_missing_folder(capsys, command, tmp_path):
    line = one_error(capsys, command, str(tmp_path / "nope.zarr"))
    assert line == f"error: URL: {tmp_path / 'nope.zarr'}: does not exist"


def test_store_url_errors_name_the_url_argument_not_out(capsys):
    line = one_error(capsys, "validate", "gs://b/x.zarr")
    assert line.startswith("error: URL: unsupported URL scheme 'gs'")


# ----- object storage on the loopback server ------------------------------------------------
def test_missing_credentials(capsys, monkeypatch, latent_file, s3):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint_url)  # the endpoint, but no keys anywhere
    before = _bucket_keys(s3)
    url = f"s3://{s3.bucket}/nocreds/x.zarr"
    line = one_error(capsys, "run", str(latent_file), "--out", url, "--inline", "--quiet")
    assert line.startswith(f"error: --out: {url}: no credentials found; set AWS_ACCESS_KEY_ID")
    assert one_error(capsys, "validate", url).startswith(f"error: URL: {url}: no credentials found")
    assert _bucket_keys(s3) == before


def test_unreachable_endpoint(capsys, monkeypatch, latent_file, s3):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    for k, v in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": s3.key, "AWS_SECRET_ACCESS_KEY": s3.secret}.items():
        monkeypatch.setenv(k, v)
    line = one_error(capsys, "run", str(latent_file), "--out", "s3://b/x.zarr", "--inline", "--quiet")
    assert line.startswith(f"error: --out: s3://b/x.zarr: cannot reach {endpoint}")
    assert s3.secret not in line


def test_missing_bucket(capsys, monkeypatch, latent_file, s3):
    for k, v in s3.env.items():
        monkeypatch.setenv(k, v)
    before = _bucket_keys(s3)
    line = one_error(capsys, "run", str(latent_file), "--out", "s3://no-such-bucket/x.zarr", "--inline", "--quiet")
    assert line == "error: --out: s3://no-such-bucket/x.zarr: the bucket 'no-such-bucket' does not exist; create it first"
    assert _bucket_keys(s3) == before


def test_no_write_permission(capsys, monkeypatch, latent_file, s3):
    """A read-only identity: the listing works, the first write is refused, nothing lands."""
    for k, v in {**s3.env, "AWS_ACCESS_KEY_ID": s3.reader_key, "AWS_SECRET_ACCESS_KEY": s3.reader_secret}.items():
        monkeypatch.setenv(k, v)
    before = _bucket_keys(s3)
    url = f"s3://{s3.bucket}/readonly/x.zarr"
    line = one_error(capsys, "run", str(latent_file), "--out", url, "--inline", "--quiet")
    assert line.startswith(f"error: --out: {url}: permission denied to write it")
    assert s3.reader_secret not in line
    assert _bucket_keys(s3) == before


def test_wrong_secret(capsys, monkeypatch, latent_file, s3):
    for k, v in {**s3.env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}.items():
        monkeypatch.setenv(k, v)
    line = one_error(capsys, "run", str(latent_file), "--out", f"s3://{s3.bucket}/x.zarr", "--inline", "--quiet")
    assert line.startswith(f"error: --out: s3://{s3.bucket}/x.zarr: permission denied") and "not-the-secret" not in line
