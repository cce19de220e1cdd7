"""Fixtures shared by the deployment tests: the real command lines' parsers.

A deployment file that runs ``crlgen ...`` or ``ray ...`` is checked by parsing its arguments with
the very click commands those programs run (``make_context``: options, arguments and their types
are checked, nothing is invoked), so a renamed subcommand or flag fails here, not on a cluster.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence

import click
import pytest


def _parse(group: click.Group, prog: str, argv: Sequence[str]) -> click.Context:
    """Walk ``argv`` through ``group``'s subcommands and parse the rest with the leaf command."""
    args = list(argv)
    if not args or args[0] != prog:
        raise AssertionError(f"expected a `{prog} ...` command line, got {shlex.join(args)!r}")
    cmd: click.Command = group
    path = [prog]
    args = args[1:]
    while isinstance(cmd, click.Group):
        if not args or args[0] not in cmd.commands:
            raise AssertionError(f"`{' '.join(path)}` has no subcommand {args[0] if args else '(none)'!r}; "
                                 f"it has {sorted(cmd.commands)}")
        path.append(args[0])
        cmd = cmd.commands[args.pop(0)]
    try:
        return cmd.make_context(" ".join(path), args)
    except click.ClickException as e:
        raise AssertionError(f"`{shlex.join(argv)}`: {e.format_message()}") from None


@pytest.fixture(scope="session")
def parse_crlgen() -> Callable[[Sequence[str]], click.Context]:
    """Parse a ``crlgen ...`` argv with crlgen's own CLI (``crlgen.pipeline._cli.app``); returns the
    click context (``.info_name`` is the subcommand, ``.params`` the parsed options); raises
    AssertionError naming the unknown subcommand, option or bad value."""
    from crlgen.pipeline._cli import app

    return lambda argv: _parse(app, "crlgen", argv)


@pytest.fixture(scope="session")
def parse_ray() -> Callable[[Sequence[str]], click.Context]:
    """Parse a ``ray ...`` argv (``ray start``, ``ray job submit``) with the installed Ray's CLI."""
    from ray.scripts.scripts import cli

    return lambda argv: _parse(cli, "ray", argv)
