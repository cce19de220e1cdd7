"""Opening a finished store for reading: one gate for every reader (loaders, preview, export,
evaluate, probe, ``open_store``), so none of them serves a damaged store's fill values as data.

A store is readable when it is a crlgen store of this format whose run has finished and every
shard's storage objects have the sizes its commit marker records (one listing, no data read).
Damage that keeps an object's size (a flipped bit) is caught when the chunk is decoded: stores
are written with Zstandard's content checksum, and :func:`read` turns any decode failure into
:class:`StoreReadError`. ``crlgen validate --full`` re-hashes everything.
"""

from __future__ import annotations

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
        raise StoreReadError(f"{where} is not a crlgen store (no zarr group with crlgen attributes)")
    problem = format_problem(attrs)
    if problem:
        raise StoreReadError(f"{where}: {problem}")
    if attrs.get("status") not in ("complete", "invalid") or store.read_text("spec.yaml") is None:
        raise StoreReadError(f"{where}: the run writing this store has not finished (status {attrs.get('status')}); "
                             "run `crlgen run` on the same spec again to finish it")
    plan = load_plan(store)
    if check_shards:
        broken = shard_problems(store, plan)
        if broken:
            raise StoreReadError(f"{where}: {len(broken)} problem(s) with its shards, first: {broken[0]}; "
                                 "`crlgen validate` reports them all")
    return loc, store, plan


def shard_problems(store: Store, plan: Plan) -> list[str]:
    """Every shard's problems (no commit marker, an object missing or of another size than its
    marker records; each line names the shard and array) from one listing of the store and the
    markers: no data is read, so damage that keeps an object's size is not seen here."""
    listing = store.listing()
    return [p for k in range(len(plan.shards)) for p in store.verify_sizes(plan, k, listing)]


def read(array, selection: Any = slice(None), *, orthogonal: bool = False) -> np.ndarray:
    """``array[selection]`` as numpy; a chunk that fails to decode (damaged bytes, a checksum that
    does not match) raises :class:`StoreReadError` naming the array."""
    try:
        return np.asarray(array.get_orthogonal_selection(selection) if orthogonal else array[selection])
    except (RuntimeError, ValueError, OSError) as e:
        where = str(getattr(array, "store_path", "") or getattr(array, "path", "") or "?")
        raise StoreReadError(f"{redact_url(where)}: cannot decode its data ({' '.join(str(e).split())}); the store is damaged: "
                             "`crlgen validate --full` reports where") from None


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
