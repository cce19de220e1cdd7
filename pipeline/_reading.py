"""Opening a finished store for reading: one gate for every reader (loaders, preview, export,
evaluate, probe, ``open_store``), so none of them serves a damaged store's fill values as data.

A store is readable when it is a crlgen store of this format whose run has finished and every
shard's storage objects have the sizes its commit marker records (one listing, no data read).
Damage that keeps an object's size (a flipped bit) is caught when the chunk is decoded: stores
are written with Zstandard's content checksum, and :func:`read` turns any decode failure into
:class:`StoreReadError`. ``crlgen validate --full`` re-hashes everything.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from ..schemas import DatasetSpec, SpecError
from ..schemas._yaml import parse_text
from ._plan import FORMAT_VERSION, Plan, make_plan
from ._store import Store, StoreError
from ._urls import Location, check_location, redact_url, resolve

#: Which crlgen wrote each older store format.
WRITTEN_BY = {1: "crlgen 0.1"}


class StoreReadError(StoreError, IOError):
    """A store that cannot be read completely (not a crlgen store, an older format, an unfinished
    run, missing or damaged shards). The message is one line naming the store and what to do."""


def format_problem(attrs: dict[str, Any], verb: str = "reads") -> str | None:
    """Why a store of another format cannot be used, or None."""
    fmt = attrs.get("format")
    if fmt == FORMAT_VERSION:
        return None
    return (f"store format {fmt} (written by {WRITTEN_BY.get(fmt, 'another crlgen')}); this crlgen {verb} format "
            f"{FORMAT_VERSION}: regenerate it with `crlgen run` on its spec.yaml")


def load_plan(store: Store) -> Plan:
    """The plan of a committed store, from its resolved ``spec.yaml`` and the sampler version it
    records (stores from before that attribute were drawn by sampler 1); raises SpecError."""
    text = store.read_text("spec.yaml")
    if text is None:
        raise SpecError(["spec.yaml: the store has no resolved spec; not a committed crlgen store"])
    sampler = (store.attrs() or {}).get("sampler", 1)
    if not isinstance(sampler, int) or isinstance(sampler, bool) or sampler < 1:
        raise SpecError([f"zarr.json: crlgen.sampler: expected a sampler version (an integer >= 1), got {sampler!r}"])
    return make_plan(DatasetSpec.from_dict(parse_text(text, "spec.yaml")), sampler=sampler)


def open_readable(url: str | Location, storage_options: dict | None = None, arg: str = "URL",
                  check_shards: bool = True) -> tuple[Location, Store, Plan]:
    """(location, store, plan) of a finished store, after checking every shard's object sizes
    (``check_shards``). Raises :class:`StoreReadError` (or :class:`UrlError` for a location that
    cannot be read), one line starting with ``arg``."""
    loc = resolve(url if not hasattr(url, "__fspath__") else str(url), storage_options, arg=arg)
    check_location(loc, write=False)
    store = Store(loc)
    attrs = store.attrs()
    where = f"{arg}: {loc.redacted()}"
    if not attrs:
        raise StoreReadError(not_a_store(store, where))
    problem = format_problem(attrs) or unfinished(store, attrs)
    if problem:
        raise StoreReadError(f"{where}: {problem}")
    if attrs.get("status") not in FINISHED:
        raise StoreReadError(f"{where}: {UNFINISHED.format(status=attrs.get('status'))}")
    plan = load_plan(store)
    if check_shards:
        broken = shard_problems(store, plan)
        if broken:
            raise StoreReadError(f"{where}: {len(broken)} problem(s) with its shards or array metadata, first: {broken[0]}; "
                                 "`crlgen validate` reports them all")
    return loc, store, plan


#: The statuses of a store whose run has finished (``invalid``: its validation failed).
FINISHED = ("complete", "invalid")
#: Why a store whose run has not finished is not read (its status formatted in).
UNFINISHED = "the run writing this store has not finished (status {status}); run `crlgen run` on the same spec again to finish it"


def not_a_store(store: Store, where: str) -> str:
    """The line for a location without crlgen attributes (``where`` is ``ARG: URL``): a root
    ``zarr.json`` that is not valid JSON (or missing beside crlgen's commit markers) is a damaged
    store (:meth:`Store.root_damage`), anything else is not a crlgen store."""
    damage = store.root_damage()
    if damage and store.is_damaged_crlgen():
        return f"{where}: {damage}: the store cannot be read; regenerate it (`crlgen run SPEC --out URL --overwrite`)"
    if damage:
        return f"{where}: {damage}: the store cannot be read; regenerate it into an empty location"
    return f"{where} is not a crlgen store (no zarr group with crlgen attributes)"


def unfinished(store: Store, attrs: dict[str, Any]) -> str | None:
    """Why a store without its resolved ``spec.yaml`` cannot be read (None when it has one): a run
    that finished (status complete or invalid) wrote it, so then it is damage; else the run has not
    finished. Either way a run of the same spec writes it (again)."""
    if store.read_text("spec.yaml") is not None:
        return None
    status = attrs.get("status")
    if status in FINISHED:
        return (f"the store is damaged: its spec.yaml is missing (status {status}); `crlgen run` on the same spec "
                "writes it again")
    return UNFINISHED.format(status=status)


def shard_problems(store: Store, plan: Plan) -> list[str]:
    """Every problem one listing of the store and the commit markers show: an array without its
    ``zarr.json``, a shard without a marker, an object missing or of another size than its marker
    records (each line names the array, and the shard). No data is read, so damage that keeps an
    object's size is not seen here."""
    listing = store.listing()
    return ([f"array {name} has no zarr.json (its metadata); `crlgen run` on the same spec writes it again"
             for name in store.missing_metadata(plan, listing)]
            + [p for k in range(len(plan.shards)) for p in store.verify_sizes(plan, k, listing)])


#: What a chunk that cannot be read or decoded raises inside Zarr (a checksum that does not match, damaged bytes).
_DECODE_ERRORS = (RuntimeError, ValueError, OSError)


def read(array, selection: Any = slice(None), *, orthogonal: bool = False) -> np.ndarray:
    """``array[selection]`` as numpy; a chunk that fails to decode (damaged bytes, a checksum that
    does not match) raises :class:`StoreReadError` naming the array and, where it can be found
    again, the samples and storage object it stumbled on."""
    try:
        return np.asarray(array.get_orthogonal_selection(selection) if orthogonal else array[selection])
    except _DECODE_ERRORS as e:
        where = str(getattr(array, "store_path", "") or getattr(array, "path", "") or "?")
        at = _damaged_object(array, selection)
        raise StoreReadError(f"{redact_url(where)}: cannot decode its data ({at + ': ' if at else ''}{' '.join(str(e).split())}); "
                             "the store is damaged: `crlgen validate --full` reports where") from None


def _damaged_object(array, selection: Any) -> str | None:
    """Which storage object a failed read of ``selection`` stumbled on (e.g. ``sample 3, object
    images/c/3/0/0/0/0``): the selection read again one object along the first axis at a time.
    Only on the failure path; None where it cannot be told."""
    try:
        sel = selection if isinstance(selection, tuple) else (selection,)
        first, rest = (slice(None), sel) if not sel or sel[0] is Ellipsis else (sel[0], sel[1:])
        n = int(array.shape[0])
        if isinstance(first, slice):
            rows = np.arange(*first.indices(n))
        elif np.ndim(first) == 0:
            rows = np.array([int(first) % n])
        else:
            rows = np.asarray(first)
            rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64) % n
        per = int((getattr(array, "shards", None) or array.chunks)[0])
        dim = (getattr(array.metadata, "dimension_names", None) or ("index",))[0] or "index"
        for o in np.unique(rows // per):
            mine = rows[rows // per == o]
            try:
                array.get_orthogonal_selection((mine, *rest))
            except _DECODE_ERRORS:
                lo, hi = int(o) * per, min(n, (int(o) + 1) * per) - 1
                key = array.metadata.encode_chunk_key((int(o),) + (0,) * (array.ndim - 1))
                span = f"{dim} {lo}" if lo == hi else f"{dim}s {lo}-{hi}"
                return f"{span}, object {array.path}/{key}"
    except Exception:  # noqa: BLE001 - only a better message is lost
        return None
    return None


@cache
def _checked_zarr():
    """xarray's Zarr reading (dims, coordinates, attributes, encoding as ``xr.open_zarr`` gives
    them) as a backend (xarray's documented plug-in interface) whose numeric arrays are read
    through :func:`read`. Defined on first use: importing xarray costs every command a third of
    a second, and only ``open_store`` needs it."""
    import xarray as xr
    import zarr
    from xarray.backends import BackendArray, BackendEntrypoint
    from xarray.core import indexing

    class CheckedArray(BackendArray):
        """A Zarr array read lazily, every read through :func:`read` (a chunk that cannot be
        decoded raises :class:`StoreReadError`, never Zarr's bare error)."""

        def __init__(self, array) -> None:
            self._array = array  # not ``array``: xarray would evaluate an attribute of that name
            self.shape = tuple(array.shape)
            self.dtype = np.dtype(array.dtype)

        def __getitem__(self, key):
            return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._raw)

        def _raw(self, key: tuple) -> np.ndarray:
            return read(self._array, key, orthogonal=True)

    class CheckedZarr(BackendEntrypoint):
        description = "a crlgen store, whose chunks raise StoreReadError when they cannot be decoded"

        def open_dataset(self, filename_or_obj, *, drop_variables=None):
            ds = xr.open_zarr(filename_or_obj, consolidated=True, chunks=None, drop_variables=drop_variables)
            group = zarr.open_consolidated(filename_or_obj, mode="r")
            checked = {}
            for name, var in ds.variables.items():
                arr = group[name] if name not in ds.indexes else None
                # only arrays xarray reads as stored (no decoding between): text coordinates stay xarray's
                if arr is not None and np.dtype(arr.dtype) == var.dtype and var.dtype.kind != "O":
                    checked[name] = xr.Variable(var.dims, indexing.LazilyIndexedArray(CheckedArray(arr)), var.attrs, var.encoding)
            return ds.assign_coords({k: v for k, v in checked.items() if k in ds.coords}).assign(
                {k: v for k, v in checked.items() if k not in ds.coords})

    return CheckedZarr


def open_dataset(loc: Location):
    """The store at ``loc`` as a lazy, read-only ``xarray.Dataset`` (``open_store``'s), whose every
    read of a chunk that cannot be decoded raises :class:`StoreReadError` naming the array, samples and object."""
    import xarray as xr

    try:
        import dask  # noqa: F401 - ``xr.open_zarr``'s default: dask arrays where dask is installed
        chunks: dict | None = {}
    except ImportError:
        chunks = None
    return xr.open_dataset(loc.zarr_store(read_only=True), engine=_checked_zarr(), chunks=chunks)


def read_rows(array, rows: np.ndarray, shards: list[tuple[int, int]] | tuple) -> np.ndarray:
    """``array[rows]`` for sample indices ``rows`` (any order; result in that order), read shard by
    shard: the rows of one shard in one call, from the first to the last asked for (a Zarr read has
    a fixed cost per call, and a chunk of several samples is decoded whole however few of them are
    asked for); with one sample per chunk, rows scattered over more than twice their number are read
    one by one instead. ``shards`` is the
    plan's (start, stop) list. Decode failures raise :class:`StoreReadError` (see :func:`read`)."""
    rows = np.asarray(rows, dtype=np.int64)
    per_chunk = int(getattr(array, "chunks", (1,))[0] or 1)  # samples one decode yields
    bounds = np.array([b for _, b in shards])
    shard_of = np.searchsorted(bounds, rows, side="right")
    out: np.ndarray | None = None
    for s in np.unique(shard_of):
        where = np.flatnonzero(shard_of == s)
        lo, hi = int(rows[where].min()), int(rows[where].max()) + 1
        if per_chunk == 1 and hi - lo > 2 * where.size:  # a few scattered rows: the span would decode mostly others
            parts = [read(array, int(rows[pos])) for pos in where]
        else:
            block = read(array, slice(lo, hi))
            parts = [block[int(rows[pos]) - lo] for pos in where]
        if out is None:
            out = np.empty((rows.size, *parts[0].shape), dtype=parts[0].dtype)
        out[where] = parts
    if out is None:
        return np.empty((0, *array.shape[1:]), dtype=array.dtype)
    return out
