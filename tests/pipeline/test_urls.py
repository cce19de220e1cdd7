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
    line = one_error(capsys, "validate", "nosuchfs://b/x.zarr")
    assert line.startswith("error: URL: unsupported URL scheme 'nosuchfs'; expected a local path, file://, s3://")


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


# ----- any fsspec protocol: what is refused before anything is contacted ------------------
@pytest.mark.parametrize("url, message", [
    ("ftp://host/x.zarr", "unsupported URL scheme 'ftp': FTP sends passwords in clear text"),
    ("zip://x.zarr", "unsupported URL scheme 'zip': an archive cannot be written shard by shard"),
    ("https://example.org/x.zarr", "unsupported URL scheme 'https': it is read-only or not a storage location"),
    ("simplecache://x.zarr", "unsupported URL scheme 'simplecache': it wraps another filesystem"),
    ("simplecache::s3://b/x.zarr", "simplecache::s3://b/x.zarr: chained URLs (a::b) are not store locations"),
    ("gs://bucket", "write under a prefix, not a bucket's root: gs://bucket/name.zarr"),
    ("abfs:///x.zarr", "abfs URLs need a bucket: abfs://bucket/prefix"),
    ("gs://tok:pw@bucket/x.zarr", "gs://bucket/x.zarr: do not put credentials in the URL"),
    ("oss://bucket/x.zarr", "oss://bucket/x.zarr: oss:// needs a filesystem package that is not installed (Install ossfs"),
])
def test_refused_before_anything_is_contacted(capsys, latent_file, tmp_path, monkeypatch, url, message):
    monkeypatch.chdir(tmp_path)
    line = one_error(capsys, "run", str(latent_file), "--out", url, "--inline", "--quiet")
    assert line.startswith(f"error: --out: {message}"), line
    assert "pw" not in line and list(tmp_path.iterdir()) == []


def test_a_known_protocol_without_its_package_names_the_extra(latent_file, tmp_path):
    """gcsfs made unimportable in a fresh interpreter: gs:// names crlgen's gcs extra, exit 2, nothing written."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['gcsfs'] = None; from crlgen.pipeline._cli import main; "
            f"raise SystemExit(main(['run', {str(latent_file)!r}, '--out', 'gs://b/x.zarr', '--inline', '--quiet']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --out: gs://b/x.zarr: gs:// needs the gcsfs package, "
                                                   "which is not installed ("), r.stderr
    assert lines[0].endswith(": pip install 'crlgen[gcs]'")
    assert list(tmp_path.iterdir()) == []


def test_azure_container_at_account_urls_keep_their_container_and_lose_passwords():
    from crlgen.pipeline._urls import redact_options, redact_text, redact_url, resolve

    loc = resolve("abfs://data@myacct.dfs.core.windows.net/runs/x.zarr/", arg="--out")
    assert loc.url == "abfs://data@myacct.dfs.core.windows.net/runs/x.zarr" and loc.redacted() == loc.url
    assert redact_url("abfs://data:pw@myacct.dfs.core.windows.net/x") == "abfs://myacct.dfs.core.windows.net/x"
    assert redact_options({"connection_string": "AccountKey=abc", "sas_token": "sv=1&sig=abc", "account_name": "a"}) == {
        "connection_string": "***", "sas_token": "***", "account_name": "a"}
    text = "GET https://a.blob.core.windows.net/c?sv=2020&sig=S3CR3T%2B&se=1 failed; AccountKey=K3Y==;BlobEndpoint=x"
    assert redact_text(text) == "GET https://a.blob.core.windows.net/c?sv=2020&sig=***&se=1 failed; AccountKey=***;BlobEndpoint=x"


def test_gcs_emulator_variable_is_carried_in_the_location(monkeypatch):
    """STORAGE_EMULATOR_HOST becomes the location's endpoint (so Ray workers on other nodes use it too), anonymous."""
    from crlgen.pipeline._urls import resolve

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")
    loc = resolve("gs://b/x.zarr")
    assert loc.storage_options == {"endpoint_url": "http://127.0.0.1:4443", "token": "anon"}
    assert resolve("gs://b/x.zarr", {"endpoint_url": "http://127.0.0.1:9", "token": "t"}).storage_options == {
        "endpoint_url": "http://127.0.0.1:9", "token": "t"}


# ----- a second and third object store on loopback: fake-gcs-server (gs://), Azurite (abfs://) ---
def _gcs():
    from support.emulators import EmulatorMissing, LocalGCS

    try:
        return LocalGCS().start()
    except EmulatorMissing as e:
        pytest.skip(str(e))


def _azurite():
    from support.emulators import EmulatorMissing, LocalAzurite

    try:
        return LocalAzurite().start()
    except EmulatorMissing as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def gcs():
    server = _gcs()
    server.make_bucket("crlgen-test")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def azurite():
    server = _azurite()
    server.make_container("crlgen-test")
    yield server
    server.stop()


@pytest.fixture()
def azure_env_only(monkeypatch):
    """No Azure settings from the developer's environment (adlfs would otherwise try Azure's own credential chain)."""
    import os

    for name in list(os.environ):
        if name.startswith("AZURE_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def two_shard_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("urls2") / "latent2.yaml"
    latent_spring(samples=200).replace(shard_size=100).dump(p)
    return p


def _run_validate_resume(capsys, spec: Path, url: str, *run_flags: str) -> None:
    """`crlgen run` writes and validates, `crlgen validate` (a fresh process: its whole stderr, exit included, is
    checked) passes, a second run resumes (both shards skipped)."""
    import json
    import os
    import subprocess
    import sys

    code = main(["run", str(spec), "--out", url, "--quiet", *run_flags])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "passed" in out and "2 / 0" in out, out
    r = subprocess.run([sys.executable, "-m", "crlgen.pipeline", "validate", url, "--json"], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    assert r.returncode == 0 and json.loads(r.stdout)["passed"], r.stderr
    assert r.stderr == ""  # no traceback from the client libraries' session finalizers at exit
    code = main(["run", str(spec), "--out", url, "--quiet", *run_flags])
    out, err = capsys.readouterr()
    assert code == 0 and "0 / 2" in out, out + err


@pytest.mark.slow
def test_gcs_run_on_ray_validates_and_resumes(capsys, monkeypatch, gcs, two_shard_file):
    for k, v in gcs.env.items():
        monkeypatch.setenv(k, v)
    url = "gs://crlgen-test/runs/spring.zarr"
    _run_validate_resume(capsys, two_shard_file, url, "--workers", "1")
    keys = gcs.filesystem().find("crlgen-test/runs/spring.zarr")
    assert "crlgen-test/runs/spring.zarr/_crlgen/shards/000001.json" in keys
    assert "crlgen-test/runs/spring.zarr/validation.json" in keys


@pytest.mark.slow
def test_gcs_missing_bucket(capsys, monkeypatch, gcs, latent_file):
    for k, v in gcs.env.items():
        monkeypatch.setenv(k, v)
    line = one_error(capsys, "run", str(latent_file), "--out", "gs://no-such-bucket/x.zarr", "--inline", "--quiet")
    assert line == "error: --out: gs://no-such-bucket/x.zarr: the bucket 'no-such-bucket' does not exist; create it first"
    assert "no-such-bucket" not in gcs.filesystem().ls("")


@pytest.mark.slow
def test_azure_run_validates_and_resumes(capsys, monkeypatch, azure_env_only, azurite, two_shard_file):
    for k, v in azurite.env.items():
        monkeypatch.setenv(k, v)
    url = "abfs://crlgen-test/runs/spring.zarr"
    _run_validate_resume(capsys, two_shard_file, url, "--inline")
    keys = azurite.filesystem().find("crlgen-test/runs/spring.zarr")
    assert "crlgen-test/runs/spring.zarr/_crlgen/shards/000001.json" in keys
    assert all(b"Eby8vdM02" not in azurite.filesystem().cat_file(k) for k in keys if not "/c/" in k)


@pytest.mark.slow
def test_azure_errors(capsys, monkeypatch, azure_env_only, azurite, latent_file):
    """A missing container, a wrong account key (the key never printed), no credentials at all."""
    from support.emulators import AZURITE_KEY

    before = sorted(azurite.filesystem().find("crlgen-test"))
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string())
    line = one_error(capsys, "run", str(latent_file), "--out", "abfs://nope/x.zarr", "--inline", "--quiet")
    assert line == "error: --out: abfs://nope/x.zarr: the container 'nope' does not exist; create it first"
    wrong = "d3Jvbmcta2V5LW5vdC10aGUtb25l"
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string(key=wrong))
    line = one_error(capsys, "run", str(latent_file), "--out", "abfs://crlgen-test/w.zarr", "--inline", "--quiet")
    assert line.startswith("error: --out: abfs://crlgen-test/w.zarr: permission denied to write it")
    assert wrong not in line and AZURITE_KEY not in line
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    line = one_error(capsys, "validate", "abfs://crlgen-test/w.zarr")
    assert line.startswith("error: URL: abfs://crlgen-test/w.zarr: no credentials found; set AZURE_STORAGE_CONNECTION_STRING")
    assert sorted(azurite.filesystem().find("crlgen-test")) == before


# ----- credentials in odd places, and client libraries that print what they then raise ---------
@pytest.mark.parametrize("url, shown", [
    ("s3://bucket/x.zarr?X-Amz-Signature=S3CR3T&token=S3CR3T", "s3://bucket/x.zarr?***: a store URL takes no ?query"),
    ("https://acct.blob.core.windows.net/c/x?sv=1&sig=S3CR3T", "https://acct.blob.core.windows.net/c/x?***: a store URL"),
    ("abfs://c/x.zarr#sig=S3CR3T", "abfs://c/x.zarr#***: a store URL takes no ?query or #fragment"),
    ("simplecache::s3://AKIA:S3CR3T@b/x.zarr", "simplecache::s3://b/x.zarr: chained URLs"),
])
def test_credentials_in_a_query_fragment_or_chained_url_are_never_printed(capsys, latent_file, tmp_path, monkeypatch,
                                                                          url, shown):
    monkeypatch.chdir(tmp_path)
    line = one_error(capsys, "run", str(latent_file), "--out", url, "--inline", "--quiet")
    assert line.startswith(f"error: --out: {shown}"), line
    assert "S3CR3T" not in line and list(tmp_path.iterdir()) == []


def test_local_paths_keep_question_marks_and_hashes():
    from crlgen.pipeline._urls import redact_url

    assert redact_url("/data/what?#x.zarr") == "/data/what?#x.zarr"


def test_azure_credential_chain_failure_is_no_credentials_not_a_traceback():
    """adlfs with an account but no key asks DefaultAzureCredential, which raises ClientAuthenticationError
    without an HTTP answer (a refused key is a 403: permission denied)."""
    from azure.core.exceptions import ClientAuthenticationError

    from crlgen.pipeline._urls import resolve, storage_error

    loc = resolve("abfs://data@myacct.dfs.core.windows.net/x.zarr", arg="--root")
    chain = ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
                                      "Attempted credentials:\n\tEnvironmentCredential: unavailable")
    assert str(storage_error(loc, chain, "write")).startswith(
        "--root: abfs://data@myacct.dfs.core.windows.net/x.zarr: no credentials found; set AZURE_STORAGE_CONNECTION_STRING")


def test_gcsfs_and_azure_records_of_an_exception_they_raise_are_dropped(caplog):
    """gcsfs logs an exhausted retry with its traceback (logger.exception) before raising it, and Azure's credential
    chain warns with every credential it tried: crlgen reports the exception in one line, so neither is printed."""
    import asyncio
    import logging

    import aiohttp
    from gcsfs.retry import retry_request

    from crlgen.pipeline._urls import resolve

    resolve("gs://b/x.zarr", {"token": "anon"}).fs()  # any non-S3 filesystem installs the filters

    async def refused():
        raise aiohttp.ClientConnectionError("Cannot connect to host 127.0.0.1:9")

    with caplog.at_level(logging.DEBUG):
        with pytest.raises(aiohttp.ClientConnectionError):
            asyncio.run(retry_request(retries=1)(refused)())
        logging.getLogger("azure.identity._credentials.chained").warning("DefaultAzureCredential failed ...")
        logging.getLogger("gcsfs").warning("another gcsfs warning")
    messages = [r.getMessage() for r in caplog.records if r.name.startswith(("gcsfs", "azure"))]
    assert messages == ["another gcsfs warning"], messages
