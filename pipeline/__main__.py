"""``python -m crlgen.pipeline``: the ``crlgen`` command line."""

from ._cli import entry

entry()
