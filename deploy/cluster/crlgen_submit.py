"""Entry script for ``ray submit``: runs ``crlgen run SPEC ... --address auto`` on the cluster's head.

    ray submit deploy/cluster/aws.yaml deploy/cluster/crlgen_submit.py -- SPEC --out s3://bucket/name.zarr [RUN FLAGS]

``ray submit`` copies this file to the head and runs it there with the head's ``python``; it calls
crlgen's own command line (``crlgen.pipeline._cli.main``) with ``run``, the arguments given after
``--`` and ``--address auto``, so the run joins the cluster the head belongs to and takes the same
code path as ``crlgen run --address auto`` typed on the head. The exit code is the run's: 0 when
the store was written and validated, 1 when the run or its validation failed, 2 for a mistake in
the spec, a flag or the location (Ray's ``ray submit`` reports every non-zero code as 1). The run's
one-line reason is the last ``error:`` line on stderr.

SPEC is a catalogue name (``static/spring``) or a spec file on the head (``ray rsync-up CLUSTER.yaml
my.yaml my.yaml`` copies one to the head's home). Arguments containing spaces are split by
``ray submit``.
"""

from __future__ import annotations

import sys


def crlgen_argv(args: list[str]) -> list[str]:
    """``crlgen`` arguments for ``ray submit``'s arguments: ``run ARGS --address auto``. An ``--address`` of
    the user's is refused (the script exists to join the head's own cluster)."""
    if any(a == "--address" or a.startswith("--address=") for a in args):
        raise ValueError("--address: crlgen_submit.py always joins the cluster it runs on (--address auto); "
                         "leave the flag out")
    return ["run", *args, "--address", "auto"]


def main(args: list[str]) -> int:
    """Run ``crlgen run`` with ``args`` on this Ray cluster; returns crlgen's exit code."""
    try:
        argv = crlgen_argv(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        from crlgen.pipeline._cli import main as crlgen
    except ImportError as e:
        print(f"error: crlgen is not installed in this Python ({sys.executable}): {e}; "
              "run `ray up` again so the setup commands install it", file=sys.stderr)
        return 2
    return crlgen(argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
