"""One-CPU workers claim distinct cores; a claim ends with its process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

CLAIM = textwrap.dedent("""
    import os, sys, time
    from pipeline.affinity import claim_cpu
    cpu = claim_cpu(sys.argv[1])
    print(cpu, sorted(os.sched_getaffinity(0)), flush=True)
    time.sleep(float(sys.argv[2]))
""")


def _start(lock_dir, hold: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLAIM, str(lock_dir), str(hold)], stdout=subprocess.PIPE, text=True)


def test_workers_claim_distinct_cores_and_release_them(tmp_path):
    cpus = sorted(os.sched_getaffinity(0))
    procs = [_start(tmp_path, 3.0) for _ in range(len(cpus) + 1)]
    lines = [p.stdout.readline().split(" ", 1) for p in procs]
    for p in procs:
        p.wait(timeout=30)
    claimed = [int(c) for c, _ in lines if c != "None"]
    assert sorted(claimed) == cpus  # every core once, none twice
    assert [c for c, _ in lines].count("None") == 1  # the extra worker stays unpinned
    for c, mask in lines:
        if c != "None":
            assert mask.strip() == f"[{c}]"
    again = _start(tmp_path, 0.0)  # the locks died with their processes
    assert again.stdout.readline().split(" ", 1)[0] != "None"
    again.wait(timeout=30)
