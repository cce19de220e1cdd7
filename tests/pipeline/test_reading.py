"""Reading a finished store through ``open_store``: lazy xarray arrays whose damaged chunks raise
StoreReadError (one line naming the array, the samples and the storage object), and the one-line
refusals of stores that cannot be read at all."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from crlgen.pipeline import RunOptions, StoreReadError, UrlError, open_store, resolve, run
from support.stores import latent_spring


@pytest.fixture(scope="module")
def latent_store(tmp_path_factory) -> Path:
    """3000 latent-only samples in 3 shards of 1000 (one storage object per shard and array)."""
    root = tmp_path_factory.mktemp("reading") / "spring.zarr"
    assert run(latent_spring(), resolve(str(root)), RunOptions(executor="inline")).valid
    return root


def _flip_bytes(path: Path, count: int = 40) -> None:
    """Damage an object in place: ``count`` bytes in its middle inverted, its size unchanged."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid - count // 2, mid + count // 2):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_open_store_reads_what_xarray_reads(latent_store):
    """The checked arrays change nothing a reader sees: values, dims, coordinates, attributes, encoding."""
    ds, plain = open_store(str(latent_store)), xr.open_zarr(str(latent_store))
    assert ds.load().identical(plain.load())
    assert all(repr(ds[n].encoding) == repr(plain[n].encoding) for n in plain.variables)
    assert list(ds["latent"].values) == ["h", "r", "rho", "m", "k", "l"]


def test_a_chunk_damaged_in_place_raises_store_read_error_when_read(latent_store, tmp_path):
    """Sizes intact, so the store opens (lazily: nothing is read); a read that touches the damaged object
    raises StoreReadError naming the array, its samples and the object, not Zarr's bare RuntimeError."""
    root = shutil.copytree(latent_store, tmp_path / "flipped.zarr")
    good = xr.open_zarr(str(latent_store))["latents"].values
    _flip_bytes(root / "latents" / "c" / "1" / "0")
    ds = open_store(str(root))  # lazy: the damaged object is not read yet
    assert np.array_equal(ds["latents"][:1000].values, good[:1000])  # the other shards read as before
    assert np.array_equal(ds["latents"].isel(sample=[5, 2500]).values, good[[5, 2500]])
    reads = (lambda: ds["latents"][1500].values, lambda: ds["latents"].sel(latent="k").mean().values,
             lambda: ds["latents"].isel(sample=[5, 1200, 2500]).values, lambda: ds["latents"][::-1].values)
    for read in reads:
        with pytest.raises(StoreReadError) as e:
            read()
        line = str(e.value)
        assert "\n" not in line and line.startswith(f"file://{root}/latents: cannot decode its data (")
        assert "samples 1000-1999, object latents/c/1/0:" in line and "`crlgen validate --full`" in line


def test_damaged_metadata_is_named_not_called_a_foreign_folder(latent_store, tmp_path):
    """A root zarr.json that is not JSON is a damaged store; a finished store without its spec.yaml too."""
    garbled = shutil.copytree(latent_store, tmp_path / "garbled.zarr")
    (garbled / "zarr.json").write_text("{garbage\n")
    with pytest.raises(UrlError, match=r"its zarr\.json is damaged \(not valid JSON\): the store cannot be read") as e:
        open_store(str(garbled))
    assert "not a crlgen store" not in str(e.value)
    no_spec = shutil.copytree(latent_store, tmp_path / "no_spec.zarr")
    (no_spec / "spec.yaml").unlink()
    with pytest.raises(UrlError, match=r"the store is damaged: its spec\.yaml is missing \(status complete\); "
                                       r"`crlgen run` on the same spec writes it again"):
        open_store(str(no_spec))
    with pytest.raises(UrlError, match="is not a crlgen store"):
        open_store(str(tmp_path))
