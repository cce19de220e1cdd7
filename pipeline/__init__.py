"""Everything that executes (``crlgen.pipeline``): load and check specs, plan, sample, run on Ray,
write Zarr stores, validate them, and open them for reading.

The names below are the public face; the ``_``-prefixed modules behind them are
free to change. A typical session::

    from crlgen.pipeline import RunOptions, check_spec, load_spec, open_store, resolve, run

    spec = check_spec(load_spec("static/spring").with_samples(200))
    result = run(spec, resolve("out/spring.zarr"), RunOptions(workers=2))
    ds = open_store("out/spring.zarr")          # xarray.Dataset
    ds.latents.sel(latent="k")
"""

from __future__ import annotations

from ._plan import FORMAT_VERSION, ArraySpec, Plan, make_plan
from ._reading import StoreReadError, open_readable
from ._run import RunError, RunOptions, RunResult, run
from ._scm import SAMPLE_FIELDS, CompiledSCM, SampleBatch
from ._specs import check_spec, load_spec
from ._store import Store, StoreError
from ._urls import Location, UrlError, resolve
from ._validate import validate_store
from ._version import __version__
from ..schemas import SpecError


def open_store(url: str | Location, storage_options: dict | None = None):
    """A crlgen store as an ``xarray.Dataset`` (lazy, read-only), dims named as in the plan.

    ``latents`` has dims (sample, latent) with the latent names as the ``latent``
    coordinate; pixel arrays (sample, [time,] view, y, x[, channel]). Raises
    :class:`UrlError` when the location cannot be read or holds no finished crlgen store, and
    :class:`StoreReadError` when a shard's storage objects are missing or of the wrong size
    (checked for this crlgen's store format; older formats open unchecked). A chunk damaged
    in place (same size) fails its checksum when it is read: that read raises
    :class:`StoreReadError` naming the array, the samples and the storage object.
    """
    from ._reading import not_a_store, open_dataset, unfinished
    from ._urls import check_location

    loc = resolve(url, storage_options, arg="URL")
    check_location(loc, write=False)
    store = Store(loc)
    attrs = store.attrs()
    if not attrs:
        raise UrlError(not_a_store(store, f"{loc.arg}: {loc.redacted()}"))
    problem = unfinished(store, attrs)
    if problem:
        raise loc.error(problem)
    if attrs.get("format") == FORMAT_VERSION:
        open_readable(loc)
    return open_dataset(loc)


__all__ = [
    "FORMAT_VERSION", "ArraySpec", "CompiledSCM", "Location", "Plan", "RunError", "RunOptions", "RunResult",
    "SAMPLE_FIELDS", "SampleBatch", "SpecError", "Store", "StoreError", "StoreReadError", "UrlError", "__version__", "check_spec", "load_spec",
    "make_plan", "open_store", "resolve", "run", "validate_store",
]
