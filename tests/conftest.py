"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

# Under pytest-xdist (`make test` runs two workers) each worker is one of several processes sharing
# the cores: one BLAS/OpenMP thread each. With each worker's OpenBLAS pool as wide as the machine,
# KCI's eigendecompositions (tests/pipeline/test_outside_discovery.py) ran past the 600 s timeout
# on two cores; serially they take 1-2 min. A plugin has loaded numpy before this file, so its pool
# is narrowed by threadpoolctl; the variables cover what loads later (torch, scipy, subprocesses).
if os.environ.get("PYTEST_XDIST_WORKER"):
    import threadpoolctl

    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")
    threadpoolctl.threadpool_limits(1)  # kept for the worker's life (not used as a context)

import pytest  # noqa: E402

pytest.register_assert_rewrite("crlgen.scenes.testing")  # the world contract ships in the package

from support.s3server import LocalS3  # noqa: E402

# Every Ray this suite starts (embedded clusters, `ray start`) keeps its addresses on 127.0.0.1;
# Ray reads this once, on import, so it is set before any test imports ray.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


@pytest.fixture(autouse=True)
def _no_outside_cluster_or_endpoint(monkeypatch) -> None:
    """The suite never talks to a Ray cluster, an S3 endpoint or credentials from the developer's environment.

    Tests that need an endpoint pass the loopback server's settings explicitly; the EC2
    metadata lookup is off so a missing credential never leaves the machine.
    """
    for name in list(os.environ):
        if name.startswith("AWS_") or name in ("RAY_ADDRESS", "S3_ENDPOINT_URL"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(scope="session")
def s3() -> Iterator[LocalS3]:
    """A local SeaweedFS S3 endpoint on 127.0.0.1 with a bucket (one per session)."""
    with LocalS3() as server:
        yield server


@pytest.fixture(scope="session")
def toyworld(tmp_path_factory) -> Iterator[str]:
    """tests/data/toyworld (a world package from outside crlgen) pip-installed into a folder put on
    sys.path and PYTHONPATH for the session; yields that folder. Offline: no index, no build isolation."""
    import importlib
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    src = tmp_path_factory.mktemp("toysrc") / "toyworld"
    shutil.copytree(Path(__file__).parent / "data" / "toyworld", src)
    target = tmp_path_factory.mktemp("toysite")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                        "--target", str(target), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    sys.path.insert(0, str(target))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), old]))
    importlib.invalidate_caches()
    yield str(target)
    sys.path.remove(str(target))
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old
