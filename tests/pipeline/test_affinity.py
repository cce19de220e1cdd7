"""One-CPU workers claim distinct cores; a claim ends with its process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# Each process claims a core, reports it, then holds the claim until the test closes its stdin
# (a barrier: every claim is made while all the others are still held).
CLAIM = textwrap.dedent("""
    import os, sys
    from crlgen.pipeline._affinity import claim_cpu
    cpu = claim_cpu(sys.argv[1])
    print(cpu, sorted(os.sched_getaffinity(0)), flush=True)
    sys.stdin.read()
""")


def _start(lock_dir) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLAIM, str(lock_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _release(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.stdin.close()
    for p in procs:
        assert p.wait(timeout=30) == 0


def test_workers_claim_distinct_cores_and_release_them(tmp_path):
    cpus = sorted(os.sched_getaffinity(0))
    procs = []
    try:
        lines = []
        for _ in range(len(cpus) + 1):  # one after another, each holding its claim
            procs.append(_start(tmp_path))
            lines.append(procs[-1].stdout.readline().split(" ", 1))
    finally:
        _release(procs)
    claimed = [int(c) for c, _ in lines if c != "None"]
    assert sorted(claimed) == cpus  # every core once, none twice
    assert [c for c, _ in lines][-1] == "None"  # the extra worker stays unpinned
    for c, mask in lines:
        if c != "None":
            assert mask.strip() == f"[{c}]"
    again = _start(tmp_path)  # the locks died with their processes
    try:
        assert again.stdout.readline().split(" ", 1)[0] != "None"
    finally:
        _release([again])
