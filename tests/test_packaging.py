"""The built wheel, installed into a fresh virtual environment, works from an unrelated folder.

The wheel is built offline from a copy of the sources (no build isolation, no network).
The fresh environment gets crlgen from that wheel only; its dependencies come from this
test environment's site-packages through a ``.pth`` line (so nothing is downloaded), and
this environment's editable install of crlgen is not active there. The folder the
commands run from holds a ``schemas.py`` and a ``pipeline.py`` that fail when imported.
A second round hides every engine (bpy, pybullet, OpenEXR) with an import hook, as on
a machine that installed the core alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

HIDE_ENGINES = '''
import importlib.abc

HIDDEN = {"bpy", "pybullet", "pybullet_utils", "OpenEXR", "mathutils", "_cycles", "carla",
          "torch", "pyarrow", "webdataset"}


class Finder(importlib.abc.MetaPathFinder):
    """Makes the engines look uninstalled."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
'''


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src") / "crlgen"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".venv", ".git", "out", "tests", "build", "dist", "*.egg-info",
                                                              "__pycache__", ".pytest_cache", ".hypothesis", ".gl", ".whl"))
    dist = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                        "-w", str(dist), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (whl,) = dist.glob("crlgen-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    env = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=300)
    py = env / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    purelib = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()] or [sysconfig.get_paths()["purelib"]]
    (purelib / "zz_crlgen_test_deps.pth").write_text("\n".join(ours) + "\n")
    (purelib / "_crlgen_hide_engines.py").write_text(HIDE_ENGINES)
    (purelib / "_crlgen_hide_engines.pth").write_text(
        "import os, sys; os.environ.get('CRLGEN_TEST_HIDE_ENGINES') and sys.meta_path.insert(0, __import__('_crlgen_hide_engines').Finder())\n")
    return env


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("unrelated")
    for name in ("schemas", "pipeline", "scenes"):
        (d / f"{name}.py").write_text(f"raise SystemExit('the user\\'s own {name}.py was imported instead of crlgen')\n")
    return d


def _run(venv: Path, workdir: Path, *args: str, hide: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    if hide:
        env["CRLGEN_TEST_HIDE_ENGINES"] = "1"
    return subprocess.run(list(args), cwd=workdir, capture_output=True, text=True, timeout=300, env=env)


def readme_snippet() -> str:
    """The README's first Python example (the one users copy)."""
    text = (REPO / "README.md").read_text()
    return next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "load_spec" in b)


def test_the_wheel_holds_crlgen_only_with_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"crlgen", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    assert "crlgen/schemas/json/dataset.schema.json" in names
    assert "crlgen/scenes/catalog/static/spring.yaml" in names
    assert sum(n.startswith("crlgen/scenes/catalog/physics/") for n in names) == 6
    packages = {str(Path(n).parent) for n in names if n.endswith("/__init__.py")}
    sources = {"crlgen/" + str(p.parent.relative_to(REPO)) for pkg in ("pipeline", "scenes", "schemas")
               for p in (REPO / pkg).rglob("__init__.py")}
    assert packages == sources  # every package of the source tree is in the wheel


def test_crlgen_is_imported_from_the_wheel(venv, workdir):
    r = _run(venv, workdir, "python", "-c", "import crlgen.pipeline as p, crlgen.schemas, crlgen.scenes; print(p.__file__, p.__version__)")
    assert r.returncode == 0, r.stderr
    path, version = r.stdout.split()
    assert path.startswith(str(venv)) and version == re.search(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), re.M)[1]
    # nothing generic was installed at top level
    r = _run(venv, venv, "python", "-c", "import importlib.util as u; print([m for m in ('pipeline', 'schemas', 'scenes') if u.find_spec(m)])")
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_cli_check_scenes_and_schema(venv, workdir):
    r = _run(venv, workdir, "crlgen", "check", "static/spring")
    assert r.returncode == 0 and r.stdout.startswith("OK spring"), r.stdout + r.stderr
    r = _run(venv, workdir, "crlgen", "scenes", "--json")
    assert r.returncode == 0, r.stderr
    entries = json.loads(r.stdout)
    assert {"static/spring", "physics/collision_simple"} <= {e["name"] for e in entries}
    assert all(e["path"].startswith(str(venv)) for e in entries)
    r = _run(venv, workdir, "crlgen", "schema")
    assert r.returncode == 0 and json.loads(r.stdout) == json.loads((REPO / "schemas/json/dataset.schema.json").read_text())


def test_the_readme_python_snippet(venv, workdir):
    r = _run(venv, workdir, "python", "-c", readme_snippet())
    assert r.returncode == 0, r.stderr
    dumped = workdir / "my_spring.yaml"
    assert dumped.is_file() and "k: do(350.0)" in dumped.read_text()
    dumped.unlink()


def test_without_engines_the_core_runs_and_worlds_name_their_extra(venv, workdir, tmp_path):
    r = _run(venv, workdir, "python", "-c", "import crlgen.pipeline, crlgen.scenes.registry; import bpy", hide=True)
    assert r.returncode == 1 and "No module named 'bpy'" in r.stderr  # the hook works
    r = _run(venv, workdir, "crlgen", "check", "static/spring", hide=True)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == [
        "error: world: world static/spring needs Blender's Python module 'bpy', which is not installed: pip install 'crlgen[blender]'",
        "error: world: world static/spring needs the OpenEXR package, which is not installed: pip install 'crlgen[blender]'"]
    r = _run(venv, workdir, "crlgen", "check", "physics/falling_simple", hide=True)
    assert r.returncode == 2 and "pip install 'crlgen[bullet]'" in r.stderr and "Traceback" not in r.stderr
    spec = tmp_path / "latent.yaml"
    spec.write_text("extends: static/spring\nworld: null\nsamples: 300\n")
    r = _run(venv, workdir, "crlgen", "run", str(spec), "--out", str(tmp_path / "l.zarr"), "--inline", "--quiet", hide=True)
    assert r.returncode == 0 and "passed" in r.stdout, r.stdout + r.stderr
    # the data tools that need an extra say which one, in one line
    r = _run(venv, workdir, "crlgen", "probe", str(tmp_path / "l.zarr"), hide=True)
    assert r.returncode == 2 and r.stderr.strip() == "error: crlgen probe needs PyTorch: pip install 'crlgen[torch]'", r.stderr
    for fmt, extra in (("parquet", "pyarrow"), ("webdataset", "webdataset")):
        r = _run(venv, workdir, "crlgen", "export", str(tmp_path / "l.zarr"), str(tmp_path / fmt), "--format", fmt, hide=True)
        assert r.returncode == 2 and r.stderr.strip() == f"error: --format {fmt}: needs {extra}: pip install 'crlgen[export]'"
        assert not (tmp_path / fmt).exists()
    r = _run(venv, workdir, "python", "-c", "import crlgen.pipeline.loaders", hide=True)
    assert r.returncode == 1 and "ImportError: crlgen.pipeline.loaders needs PyTorch: pip install 'crlgen[torch]'" in r.stderr
    r = _run(venv, workdir, "crlgen", "preview", str(tmp_path / "l.zarr"), "--out", str(tmp_path / "pv"), hide=True)
    assert r.returncode == 0 and (tmp_path / "pv" / "preview" / "causal_graph.png").is_file(), r.stderr  # matplotlib is core
