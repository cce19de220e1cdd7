"""Blender's render scratch directories: a killed process's are removed by the next process."""

import os
import subprocess
import sys

from crlgen.scenes.engines import blender


def test_scratch_dirs_of_dead_processes_are_removed_and_live_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(blender.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(blender, "_swept", False)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead = tmp_path / f"crlgen-bpy-{int(gone.stdout)}-abc"
    dead.mkdir()
    (dead / "view.exr").write_bytes(b"x" * 100)
    live = tmp_path / f"crlgen-bpy-{os.getpid()}-def"
    live.mkdir()
    other = tmp_path / "crlgen-bpy-notapid"  # not ours to judge
    other.mkdir()
    mine = blender._scratch_dir()
    assert not dead.exists() and live.is_dir() and other.is_dir()
    assert os.path.basename(mine).startswith(f"crlgen-bpy-{os.getpid()}-") and os.path.isdir(mine)
    again = blender._scratch_dir()  # the sweep runs once per process
    assert os.path.isdir(again) and again != mine
