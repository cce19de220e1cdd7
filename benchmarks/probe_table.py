"""The supervised probe's held-out scores for catalogue scenes, as a Markdown table.

For each scene: generate the store with `crlgen run` (skipped when the folder already holds
it: a re-run resumes or does nothing), then `crlgen probe` it. Rows are per latent (and per
state for videos): R^2 for real and integer latents, accuracy for categorical ones, the
circular score for periodic ones.

    python benchmarks/probe_table.py --root /tmp/probe-stores --samples 800 static/spring physics/falling_simple
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
DEFAULT = ("static/spring", "physics/falling_simple", "physics/falling_complex", "physics/projectile_simple",
           "physics/projectile_complex", "physics/collision_simple", "physics/collision_complex")


def crlgen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crlgen.pipeline", *args], capture_output=True, text=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenes", nargs="*", default=list(DEFAULT))
    ap.add_argument("--root", default="probe-stores", help="folder for the generated stores")
    ap.add_argument("--samples", type=int, default=None, help="samples per scene (default: the catalogue's)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--json", dest="json_out", default=None, help="also write every result to this JSON file")
    a = ap.parse_args()
    results = {}
    for scene in a.scenes:
        url = str(Path(a.root) / (scene.replace("/", "_") + ".zarr"))
        t = time.perf_counter()
        args = ["run", scene, "--out", url, "--quiet", "--no-validate"] + (["--samples", str(a.samples)] if a.samples else [])
        r = crlgen(*args)
        if r.returncode != 0:
            raise SystemExit(f"{scene}: crlgen run failed:\n{r.stderr}")
        gen = time.perf_counter() - t
        t = time.perf_counter()
        r = crlgen("probe", url, "--epochs", str(a.epochs), "--json")
        if r.returncode != 0:
            raise SystemExit(f"{scene}: crlgen probe failed:\n{r.stderr}")
        res = json.loads(r.stdout)
        res.update(generate_s=round(gen, 1), probe_s=round(time.perf_counter() - t, 1))
        results[scene] = res
        print(f"{scene}: generated in {gen:.0f} s, probed in {res['probe_s']:.0f} s ({res['train']} train / {res['test']} test)",
              file=sys.stderr)
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(results, indent=1))
    print("| scene | train / test | identifiable latents >= 0.95 | states >= 0.95 | declared unidentifiable | probe s |")
    print("|---|---|---|---|---|---|")
    for scene, res in results.items():
        lat, st = res["summary"]["latents"], res["summary"]["states"]
        states = f"{st['reached']} / {st['identifiable']}" if st["identifiable"] else "-"
        print(f"| {scene} | {res['train']} / {res['test']} | {lat['reached']} / {lat['identifiable']} | {states} | "
              f"{lat['unidentifiable']} | {res['probe_s']:.0f} |")
    print()
    for scene, res in results.items():
        print(f"{scene}: " + "; ".join(
            f"{target}s " + ", ".join(_cell(r) for r in res["rows"] if r["target"] == target)
            for target in ("latent", "state") if any(r["target"] == target for r in res["rows"])) + ".\n")


def _cell(row: dict) -> str:
    """``name score`` with the metric when not R^2; ``(unidentifiable)`` / ``(constant)`` marks rows
    the summary leaves out, ``**`` one below the target."""
    score = row["score"]
    text = "n/a" if score is None else f"{score:.3f}"
    metric = "" if row["metric"] == "r2" else f" ({row['metric']})"
    if row.get("unidentifiable"):
        return f"{row['name']} {text}{metric} (unidentifiable)"
    if row.get("constant"):
        return f"{row['name']} (constant)"
    return f"{row['name']} {text}{metric}" + (" **" if score is None or score < 0.95 else "")

if __name__ == "__main__":
    main()
