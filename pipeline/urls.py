"""Output locations: URL checks, fsspec filesystems, and keeping credentials out of logs."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SUPPORTED = ("file", "s3", "memory")
_SECRET_KEYS = re.compile(r"(secret|token|password|key$|^key|credential|session)", re.I)


class UrlError(ValueError):
    """An output URL crlgen cannot write to."""


@dataclass(frozen=True)
class Location:
    """Where a store lives: a normalised URL plus fsspec options (never logged)."""

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def protocol(self) -> str:
        return urlsplit(self.url).scheme or "file"

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    def redacted(self) -> str:
        return redact_url(self.url)

    def fs(self):
        """(filesystem, root path) for sidecars and markers."""
        import fsspec

        return fsspec.core.url_to_fs(self.url, **self.storage_options)

    def zarr_store(self, read_only: bool = False):
        import zarr.storage

        if self.is_local:
            return zarr.storage.LocalStore(urlsplit(self.url).path if self.url.startswith("file://") else self.url, read_only=read_only)
        return zarr.storage.FsspecStore.from_url(self.url, storage_options=self.storage_options or None, read_only=read_only)


def redact_url(url: str) -> str:
    """Drop any user:password@ part of a URL."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


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


def resolve(url: str, storage_options: dict[str, Any] | None = None) -> Location:
    """Check and normalise an output URL; raises UrlError naming what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise UrlError("--out: expected a path or a URL (file://, s3://bucket/prefix, memory://name)")
    url = url.strip()
    if "\x00" in url:
        raise UrlError("--out: the URL contains a NUL byte")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter is a path
        scheme = ""
    opts = dict(storage_options or {})
    if scheme in ("", "file"):
        path = parts.path if scheme == "file" else url
        if scheme == "file" and parts.netloc not in ("", "localhost"):
            raise UrlError(f"--out: file URLs name a local path (file:///abs/path), got host {parts.netloc!r}")
        path = os.path.abspath(os.path.expanduser(path))
        return Location(path, opts)
    if scheme not in SUPPORTED:
        raise UrlError(f"--out: unsupported URL scheme {scheme!r}; expected a local path, file://, s3:// or memory://")
    if scheme == "s3":
        if not parts.netloc:
            raise UrlError("--out: s3 URLs need a bucket: s3://bucket/prefix")
        if parts.username or parts.password:
            raise UrlError("--out: do not put credentials in the URL; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or storage_options")
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("S3_ENDPOINT_URL")
        if endpoint and "endpoint_url" not in opts and "endpoint_url" not in opts.get("client_kwargs", {}):
            opts["endpoint_url"] = endpoint
        if not parts.path.strip("/"):
            raise UrlError("--out: write under a prefix, not a bucket's root: s3://bucket/name.zarr")
    return Location(f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}", opts)
