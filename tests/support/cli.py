"""Running the CLI in-process from tests."""

from __future__ import annotations

from crlgen.pipeline._cli import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``crlgen ARGS`` in this process: (exit code, stdout, stderr) as captured by pytest's ``capsys``."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err
