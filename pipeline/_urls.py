"""Store locations: URL checks, fsspec filesystems, one-line errors for every way a location can be wrong,
and keeping credentials out of logs."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

#: Object stores: the URL's host part names a bucket (a container on Azure), and a store lives
#: under a prefix in it. Any other fsspec protocol whose package is installed names a path on a host.
_BUCKETS = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "oss", "oci", "tos", "tosfs"})
#: Azure URLs may name their container as ``container@account.dfs.core.windows.net``: a user part that is no credential.
_AZURE = frozenset({"abfs", "abfss", "az"})
#: crlgen's extras that bring a protocol's filesystem package.
EXTRAS = {"gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs"), "abfs": ("adlfs", "azure"), "abfss": ("adlfs", "azure"),
          "az": ("adlfs", "azure")}
_WRAPS = "it wraps another filesystem; give the URL of the storage itself"
#: fsspec protocols that are no place to write a store, and why.
_NOT_STORES = {
    **dict.fromkeys(("cached", "blockcache", "filecache", "simplecache", "dir", "reference", "generic", "async_wrapper",
                     "asyncwrapper"), _WRAPS),
    **dict.fromkeys(("zip", "tar", "libarchive"), "an archive cannot be written shard by shard; write to a folder or an object store"),
    **dict.fromkeys(("http", "https", "github", "gist", "git", "data", "jupyter", "jlab", "pyscript", "dask", "dvc"),
                    "it is read-only or not a storage location"),
    "ftp": "FTP sends passwords in clear text; use an object store (s3://, gs://, abfs://), sftp:// or a local path",
    **dict.fromkeys(("local", "asynclocal"), "for this machine's files give a path or file:///abs/path"),
}
_EXPECTED = "a local path, file://, s3://bucket/prefix, gs://bucket/prefix, abfs://container/prefix, memory://name"
_SECRET_KEYS = re.compile(r"(secret|token|password|key$|^key|credential|session|connection_string|^sas)", re.I)
#: credentials that may appear in an error text of a filesystem (SAS signatures, connection strings)
_SECRET_TEXT = re.compile(r"((?:sig|AccountKey|SharedAccessSignature|access_token|X-Amz-Signature)=)[^&;\s'\"]+", re.I)

#: The one retry layer for object storage: botocore's "standard" mode (exponential backoff
#: with jitter on throttling, 5xx and connection errors), 5 attempts per request. crlgen
#: itself never retries a storage call; Ray retries a crashed task (see ``_run``).
S3_RETRIES = {"max_attempts": 5, "mode": "standard"}


class UrlError(ValueError):
    """A store location crlgen cannot use; the message is one line naming the argument."""


@dataclass(frozen=True)
class Location:
    """Where a store lives: a normalised URL, fsspec options (never logged), and the
    argument that named it (``--out``, ``URL``, ``output.url``), for error messages."""

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)
    arg: str = "location"

    @property
    def protocol(self) -> str:
        return urlsplit(self.url).scheme or "file"

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    def redacted(self) -> str:
        """The URL without any credentials."""
        return redact_url(self.url)

    def options(self, attempts: int | None = None) -> dict[str, Any]:
        """fsspec options, with crlgen's storage retry policy where the user set none.

        Filesystems are not shared through fsspec's instance cache: one made before the
        environment's credentials or endpoint changed would keep using the old ones.
        S3 requests are retried by botocore's standard mode (``attempts`` overrides its
        count); other object stores retry in their own client library (gcsfs: 6 attempts,
        the Azure SDK: its exponential policy).
        """
        opts = dict(self.storage_options)
        if self.protocol != "file":
            opts.setdefault("skip_instance_cache", True)
        if self.protocol in ("s3", "s3a"):
            cfg = dict(opts.get("config_kwargs") or {})
            cfg.setdefault("retries", S3_RETRIES if attempts is None else {**S3_RETRIES, "max_attempts": attempts})
            opts["config_kwargs"] = cfg
        return opts

    def fs(self, attempts: int | None = None):
        """(filesystem, root path) for sidecars, markers and listings; ``attempts`` overrides the retry policy."""
        import fsspec

        if self.protocol not in ("file", "memory", "s3"):
            _quiet_library_shutdown()
            _quiet_library_logs()
        return fsspec.core.url_to_fs(self.url, **self.options(attempts))

    def zarr_store(self, read_only: bool = False):
        """A zarr-python store over this location."""
        import zarr.storage

        if self.is_local:
            return zarr.storage.LocalStore(self.url, read_only=read_only)
        if self.protocol not in ("memory", "s3"):
            _quiet_library_shutdown()
            _quiet_library_logs()
        return zarr.storage.FsspecStore.from_url(self.url, storage_options=self.options() or None, read_only=read_only)

    def error(self, what: str) -> UrlError:
        """A one-line :class:`UrlError`: ``"<arg>: <redacted url>: <what>"``."""
        return UrlError(f"{self.arg}: {self.redacted()}: {what}")


class _Flag:
    done = False


_SHUTDOWN_QUIET = _Flag()
#: (file name part, function) of the object-store clients' session-closing finalizers
_CLOSERS = (("gcsfs", "close_session"), ("adlfs", "close_service_client"))


def _from_closer(tb) -> bool:
    while tb is not None:
        code = tb.tb_frame.f_code
        if any(f"{os.sep}{pkg}{os.sep}" in code.co_filename and code.co_name == fn for pkg, fn in _CLOSERS):
            return True
        called = tb.tb_frame.f_locals.get("func") if code.co_name == "sync" else None  # fsspec.asyn.sync(loop, func)
        if getattr(called, "__name__", None) in [fn for _, fn in _CLOSERS]:
            return True
        tb = tb.tb_next
    return False


def _quiet_library_shutdown() -> None:
    """Keep gcsfs's and adlfs's session-closing finalizers from printing tracebacks.

    Their clients close idle HTTP sessions in ``weakref.finalize`` callbacks, on fsspec's
    event loop while zarr opened them on its own, or after that loop stopped at exit
    ("attached to a different loop", "Loop is not running"); the data was written and
    committed before. Only exceptions raised inside those two functions are dropped (both
    when Python reports them as unraisable and at exit); every other one reaches the hooks
    that were there before. At exit, asyncio's notes about the same unclosed sessions are
    dropped too.
    """
    if _SHUTDOWN_QUIET.done:
        return
    import atexit
    import sys
    import weakref

    previous_unraisable = sys.unraisablehook

    def unraisable(info) -> None:
        if not _from_closer(info.exc_traceback):
            previous_unraisable(info)

    sys.unraisablehook = unraisable
    weakref.finalize(_SHUTDOWN_QUIET, lambda: None)  # weakref's exit hook is registered before ours, so ours runs first

    def at_exit() -> None:  # weakref reports finalizer errors at exit through sys.excepthook
        import logging

        previous = sys.excepthook
        sys.excepthook = lambda t, v, tb: None if _from_closer(tb) else previous(t, v, tb)
        unclosed = ("Unclosed client session", "Unclosed connector", "Task was destroyed but it is pending")
        logging.getLogger("asyncio").addFilter(lambda r: not str(r.msg).startswith(unclosed))

    atexit.register(at_exit)
    _SHUTDOWN_QUIET.done = True


#: Azure's credential chains: their warning lists, on many lines, every credential they tried,
#: which the ClientAuthenticationError then raised (and reported in one line) says again.
_AZURE_CHAINS = ("azure.identity._credentials.chained", "azure.identity.aio._credentials.chained")


def _not_reraised(record) -> bool:
    """False for gcsfs's records of an exception its retry loop then raises (it logs them with a traceback)."""
    msg = str(record.msg)
    return "out of retries on exception" not in msg and "non-retriable exception" not in msg


def _quiet_library_logs() -> None:
    """Keep the object-store clients from printing an exception they are about to raise, which
    the caller reports in one line: gcsfs's "out of retries" and "non-retriable exception"
    records (each with a traceback) and the warnings of Azure's credential chains. Their other
    records are untouched, and a logging configuration that sets the chains' levels keeps them."""
    import logging

    gcsfs_log = logging.getLogger("gcsfs")
    if _not_reraised not in gcsfs_log.filters:
        gcsfs_log.addFilter(_not_reraised)
    for name in _AZURE_CHAINS:
        chain = logging.getLogger(name)
        if chain.level == logging.NOTSET:
            chain.setLevel(logging.ERROR)


def redact_url(url: str) -> str:
    """The URL without credentials: any user:password@ part dropped (an Azure URL's
    ``container@account`` keeps its container), a ?query or #fragment (SAS tokens, signatures)
    shown as ``?***`` / ``#***``, each part of a chained URL (``a::b``) redacted alike."""
    if "::" in url:
        return "::".join(redact_url(part) for part in url.split("::"))
    parts = urlsplit(url)
    if len(parts.scheme) < 2:  # a local path ('?' and '#' are part of its names) or a Windows drive
        return url
    query, fragment = ("***" if parts.query else ""), ("***" if parts.fragment else "")
    host = parts.netloc
    if parts.password or (parts.username and parts.scheme.lower() not in _AZURE):
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    if (host, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    return urlunsplit((parts.scheme, host, parts.path, query, fragment))


def redact_text(text: str) -> str:
    """A filesystem's message with credentials it may quote (SAS signatures, account keys) replaced by '***'."""
    return _SECRET_TEXT.sub(lambda m: m.group(1) + "***", text)


def redact_options(opts: dict[str, Any]) -> dict[str, Any]:
    """Storage options with every credential-looking value replaced by '***'."""
    out: dict[str, Any] = {}
    for k, v in opts.items():
        if isinstance(v, dict):
            out[k] = redact_options(v)
        elif _SECRET_KEYS.search(str(k)):
            out[k] = "***"
        else:
            out[k] = v
    return out


def resolve(url: str | Location, storage_options: dict[str, Any] | None = None, arg: str = "location") -> Location:
    """Check and normalise a store URL (syntax, and that its filesystem package is installed; nothing is contacted).

    Local paths become absolute paths (``file://`` URLs percent-decoded); ``s3://`` URLs pick
    up ``AWS_ENDPOINT_URL``, ``gs://`` URLs ``STORAGE_EMULATOR_HOST`` (then anonymous, as
    Google's own client does); any other fsspec protocol is accepted when its package is
    installed (``gs://``: ``crlgen[gcs]``, ``abfs://``: ``crlgen[azure]``). A :class:`Location`
    is returned as it is. Raises :class:`UrlError` naming ``arg`` (``--out``, ``URL``,
    ``output.url``) and what is wrong.
    """
    if isinstance(url, Location):
        return url
    if not isinstance(url, str) or not url.strip():
        raise UrlError(f"{arg}: expected {_EXPECTED}")
    if storage_options is not None and not isinstance(storage_options, dict):
        raise UrlError(f"{arg}: storage options must be a mapping, got {type(storage_options).__name__}")
    url = url.strip()
    if "\x00" in url or "\n" in url:
        raise UrlError(f"{arg}: the URL contains a NUL byte or a line break")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter is a path
        scheme = ""
    opts = dict(storage_options or {})
    if scheme and (parts.query or parts.fragment):
        raise UrlError(f"{arg}: {redact_url(url)}: a store URL takes no ?query or #fragment")
    if scheme in ("", "file"):
        path = unquote(parts.path) if scheme == "file" else url
        if scheme == "file" and parts.netloc not in ("", "localhost"):
            raise UrlError(f"{arg}: file URLs name a local path (file:///abs/path), got host {parts.netloc!r}")
        if not path.strip():
            raise UrlError(f"{arg}: {url} names no path; expected file:///abs/path/name.zarr")
        path = os.path.abspath(os.path.expanduser(path))
        if len(path.encode()) > 4000 or any(len(c.encode()) > 255 for c in path.split(os.sep)):
            raise UrlError(f"{arg}: {path[:80]}...: the path is too long for a filesystem (255 bytes a name, 4000 in all)")
        return Location(path, opts, arg)
    if "::" in url:
        raise UrlError(f"{arg}: {redact_url(url)}: chained URLs (a::b) are not store locations; give the storage's own URL")
    if scheme != "memory":
        _check_protocol(scheme, url, arg)
    if parts.password or (parts.username and scheme not in _AZURE):
        raise UrlError(f"{arg}: {redact_url(url)}: do not put credentials in the URL; use the environment "
                       "(AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*) or output.storage_options")
    if scheme in _BUCKETS:
        if not parts.netloc:
            raise UrlError(f"{arg}: {scheme} URLs need a bucket: {scheme}://bucket/prefix")
        if not parts.path.strip("/"):
            raise UrlError(f"{arg}: write under a prefix, not a bucket's root: {scheme}://bucket/name.zarr")
    elif scheme != "memory" and not parts.path.strip("/"):
        raise UrlError(f"{arg}: {redact_url(url)} names no path; expected {scheme}://host/path/name.zarr")
    if scheme in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("S3_ENDPOINT_URL")
        client = opts.get("client_kwargs")
        if endpoint and "endpoint_url" not in opts and not (isinstance(client, dict) and "endpoint_url" in client):
            opts["endpoint_url"] = endpoint
    if scheme in ("gs", "gcs"):
        emulator = os.environ.get("STORAGE_EMULATOR_HOST", "")
        if emulator not in ("", "default") and "endpoint_url" not in opts:
            opts["endpoint_url"] = emulator if "://" in emulator else f"http://{emulator}"
            opts.setdefault("token", "anon")  # an emulator takes no credentials (google-cloud-storage does the same)
    return Location(f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}", opts, arg)


def _check_protocol(scheme: str, url: str, arg: str) -> None:
    """Raise UrlError unless fsspec knows ``scheme`` as a writable storage and its package imports."""
    import fsspec
    from fsspec.registry import known_implementations, registry

    if scheme in _NOT_STORES:
        raise UrlError(f"{arg}: unsupported URL scheme {scheme!r}: {_NOT_STORES[scheme]}")
    if scheme not in known_implementations and scheme not in registry:
        raise UrlError(f"{arg}: unsupported URL scheme {scheme!r}; expected {_EXPECTED}, "
                       "or another fsspec protocol whose package is installed")
    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError as e:
        cause = " ".join(str(e).split()) or type(e).__name__
        if scheme in EXTRAS:
            package, extra = EXTRAS[scheme]
            raise UrlError(f"{arg}: {redact_url(url)}: {scheme}:// needs the {package} package, which is not "
                           f"installed ({cause}): pip install 'crlgen[{extra}]'") from None
        raise UrlError(f"{arg}: {redact_url(url)}: {scheme}:// needs a filesystem package that is not installed "
                       f"({cause})") from None


# ----- is the location usable? ------------------------------------------------------------
_NO_CREDENTIALS = {
    "s3": "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or output.storage_options key/secret)",
    "gs": "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (or output.storage_options token)",
    "azure": "set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY "
             "(or output.storage_options)",
}
_DENIED = ("AccessDenied", "Forbidden", "AuthorizationFailure", "AuthenticationFailed", "AuthorizationPermissionMismatch")


def _family(protocol: str) -> str:
    return {"s3a": "s3", "gcs": "gs"}.get(protocol, "azure" if protocol in _AZURE else protocol)


def storage_error(loc: Location, exc: BaseException, doing: str = "access") -> UrlError | None:
    """The one-line :class:`UrlError` for an exception a filesystem raised, or None if it is no
    location problem (a bug, which should surface as itself).

    Covers missing or wrong credentials, an unreachable endpoint, a missing bucket,
    missing permission, and a file where a folder should be, for S3 (botocore), GCS
    (gcsfs) and Azure (adlfs); credentials quoted by a library's message are redacted.
    """
    name = type(exc).__name__
    mro = {c.__name__ for c in type(exc).__mro__}
    full = redact_text(str(exc))
    text = full.splitlines()[0] if full else name
    family = _family(loc.protocol)
    status = getattr(exc, "status_code", None) or getattr(exc, "code", None)
    if name == "ParamValidationError" or "Invalid bucket name" in text:
        return loc.error(f"not a valid object-store location ({' '.join(text.split())})")
    if isinstance(exc, ValueError) and "endpoint" in text.lower():
        endpoint = loc.storage_options.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL") or "?"
        return loc.error(f"cannot use the endpoint {endpoint!r} ({text}); expected a URL such as http://127.0.0.1:8333 "
                         "(AWS_ENDPOINT_URL or storage_options.endpoint_url)")
    if isinstance(exc, (TypeError, AttributeError)):
        return loc.error(f"the storage options do not fit the {loc.protocol} filesystem ({text}); check output.storage_options")
    # Azure's credential chain finding nothing to sign with raises without an HTTP answer (a refused key is a 403)
    if (name in ("NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError", "DefaultCredentialsError")
            or (name in ("ClientAuthenticationError", "CredentialUnavailableError") and status is None)
            or "Unable to locate credentials" in text or "Must provide either a connection_string" in text):
        return loc.error(f"no credentials found; {_NO_CREDENTIALS.get(family, 'pass them in output.storage_options')}")
    if family == "azure" and isinstance(exc, ValueError) and "unable to connect to account" in text:
        return loc.error(f"the Azure account settings are not usable ({text}); {_NO_CREDENTIALS['azure']}")
    if ("EndpointConnectionError" in mro or "ConnectTimeoutError" in mro or "ServiceRequestError" in mro
            or name in ("ClientConnectorError", "ConnectionRefusedError")):
        endpoint = loc.storage_options.get("endpoint_url") or "the default endpoint"
        hint = {"s3": "AWS_ENDPOINT_URL", "gs": "STORAGE_EMULATOR_HOST", "azure": "the connection string's BlobEndpoint"}
        return loc.error(f"cannot reach {endpoint} ({text}); check the endpoint URL ({hint.get(family, 'storage_options')}) "
                         "and the network")
    if isinstance(exc, NotADirectoryError) or isinstance(exc, FileExistsError):
        return loc.error(f"a file stands where a folder is needed ({text}); choose another location")
    if isinstance(exc, PermissionError) or status in (401, 403) or any(d in full for d in _DENIED):
        return loc.error(f"permission denied to {doing} it ({text}); check the credentials' rights or choose another location")
    if isinstance(exc, FileNotFoundError) and ("bucket" in text.lower()):
        bucket = urlsplit(loc.url).netloc
        return loc.error(f"the bucket {bucket!r} does not exist; create it first")
    if isinstance(exc, OSError) and exc.errno is not None:
        return loc.error(f"cannot {doing} it: {exc.strerror or text}")
    return None


def _nearest_existing(path: str) -> str:
    p = path
    while not os.path.lexists(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    return p


def check_local_folder(path: str, arg: str, *, empty: bool, files: tuple[str, ...] = (),
                       not_inside: str | None = None) -> None:
    """Make sure ``path`` is a local folder crlgen may write into, before anything is written:
    it exists as a folder (``empty``: holding nothing) or can be created, each of ``files``
    (relative paths) can be created below it, and it does not lie inside ``not_inside``. Writes
    nothing (a write check creates and removes an empty temporary folder). Raises
    :class:`UrlError` (one line, starting with ``arg``)."""
    if not isinstance(path, str) or not path.strip():
        raise UrlError(f"{arg}: expected a folder path, got {path!r}")
    if "://" in path or "\x00" in path or "\n" in path:
        raise UrlError(f"{arg}: expected a local folder path, got {redact_url(path)!r}")
    full = os.path.abspath(path)
    if not_inside is not None and (full + os.sep).startswith(os.path.abspath(not_inside).rstrip(os.sep) + os.sep):
        raise UrlError(f"{arg}: {path} lies inside the store being read; choose a folder outside it")
    if os.path.lexists(full) and not os.path.isdir(full):
        raise UrlError(f"{arg}: {path} exists and is not a folder")
    if os.path.isdir(full):
        if empty and os.listdir(full):
            raise UrlError(f"{arg}: {path} exists and is not empty; choose a new folder")
        for rel in files:
            target = os.path.join(full, rel)
            base = _nearest_existing(target)
            if base == target and os.path.isdir(target):
                raise UrlError(f"{arg}: {os.path.join(path, rel)} is a folder; crlgen writes a file there")
            if base != target and not os.path.isdir(base):
                raise UrlError(f"{arg}: {os.path.relpath(base, full)} in {path} is a file; crlgen writes {rel} below it")
        base = full
    else:
        base = _nearest_existing(full)
        if not os.path.isdir(base):
            raise UrlError(f"{arg}: {base} is a file, so no folder can be created below it")
    try:
        probe = tempfile.mkdtemp(prefix=".crlgen-write-check-", dir=base)
        shutil.rmtree(probe, ignore_errors=True)
    except OSError as e:
        raise UrlError(f"{arg}: cannot write in {base}: {e.strerror or e}") from None


def check_location(loc: Location, *, write: bool) -> None:
    """Make sure a location can be read (``write=False``: it must exist) or written, before anything is.

    Local: a file where the store's folder (or one of its parents) should be, a
    missing store, or a folder that cannot be written. Remote: credentials, the
    endpoint and the bucket, with one listing call. Writes nothing (a local write
    check creates and removes an empty temporary folder). Raises :class:`UrlError`.
    """
    if loc.protocol == "memory":
        return
    if loc.is_local:
        path = loc.url
        if os.path.lexists(path) and not os.path.isdir(path):
            raise loc.error("is a file, not a folder; a Zarr store is a folder" + ("" if write else " (is this a crlgen store?)"))
        if not write:
            if not os.path.isdir(path):
                raise loc.error("does not exist")
            return
        if os.path.isdir(path):
            return  # an existing folder: what it holds is Store.existing's question, a refused write the first write's
        base = _nearest_existing(path)
        if not os.path.isdir(base):
            raise loc.error(f"{base} is a file, so no folder can be created below it; choose another location")
        try:  # where the store will be created: an empty folder made and removed again
            probe = tempfile.mkdtemp(prefix=".crlgen-write-check-", dir=base)
            shutil.rmtree(probe, ignore_errors=True)
        except OSError as e:
            raise loc.error(f"cannot create it: {e.strerror or e} in {base}; choose a folder you can write") from None
        return
    try:
        fs, root = loc.fs(attempts=1)  # a location mistake should not wait out the retry policy
        if loc.protocol in _BUCKETS:
            bucket = root.split("/", 1)[0]
            try:
                fs.ls(bucket, detail=False)
            except FileNotFoundError:
                kind = "container" if _family(loc.protocol) == "azure" else "bucket"
                raise loc.error(f"the {kind} {bucket!r} does not exist; create it first") from None
        if write and fs.isfile(root):
            raise NotADirectoryError(f"{root} is an object, not a prefix")
        if not write and not fs.exists(f"{root}/zarr.json"):
            raise loc.error("no store there (no zarr.json)")
    except UrlError:
        raise
    except Exception as e:  # noqa: BLE001 - classified below; anything else is re-raised
        err = storage_error(loc, e, "write" if write else "read")
        if err is None:
            raise
        raise err from None
