"""crlgen's version: read from the installed package's metadata (``pyproject.toml`` is the one source)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crlgen")
except PackageNotFoundError:  # pragma: no cover - the sources run without being installed
    __version__ = "0+unknown"
