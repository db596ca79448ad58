"""Concatenate the eval.csv of run directories, with each run's provenance from manifest.json.

    python workflow/scripts/aggregate.py --scale smoke --out results/smoke/aggregate/MT10-v1.csv \
        results/runs/smoke/MT10-v1/mtppo/seed0 results/runs/smoke/MT10-v1/toppo/seed0 ...

Also the script of rule `aggregate` (params.scale, params.runs, output[0], log[0]).

Output: the eval.csv columns (docs/design.md) followed by scale, status, config_hash,
git_commit, device, env_steps, total_steps, wall_time_s and run_dir; one row per
(run, evaluation, task), sorted by variant, seed, step, task_index.
"""


import argparse
import json
import sys
from pathlib import Path

import pandas as pd

PROVENANCE = ["status", "config_hash", "git_commit", "device", "env_steps", "total_steps",
              "wall_time_s"]


def aggregate(run_dirs: list[Path], scale: str) -> pd.DataFrame:
    frames = []
    for run in run_dirs:
        manifest = json.loads((run / "manifest.json").read_text())
        if manifest.get("status") != "complete":
            raise SystemExit(f"{run}: manifest status is {manifest.get('status')!r}, not complete")
        ev = pd.read_csv(run / "eval.csv")
        ev["scale"] = scale
        for key in PROVENANCE:
            ev[key] = manifest.get(key)
        ev["run_dir"] = str(run)
        frames.append(ev)
    if not frames:
        raise SystemExit("no run directories given")
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["variant", "seed", "step", "task_index"], kind="stable")


def write(runs: list[Path], scale: str, out: Path) -> str:
    df = aggregate(runs, scale)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    return f"{out}: {len(df)} rows from {len(runs)} runs"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("runs", type=Path, nargs="+", help="run directories")
    args = p.parse_args(argv)
    print(write(args.runs, args.scale, args.out))
    return 0


if __name__ == "__main__":
    if "snakemake" in globals():  # run by the workflow's `script:` directive
        smk = snakemake  # noqa: F821
        msg = write([Path(r) for r in smk.params.runs], smk.params.scale, Path(smk.output[0]))
        Path(smk.log[0]).write_text(msg + "\n")
    else:
        sys.exit(main())
