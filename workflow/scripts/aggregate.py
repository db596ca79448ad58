"""Concatenate the eval.csv of run directories, with each run's provenance from manifest.json.

    python workflow/scripts/aggregate.py --scale smoke --out results/smoke/aggregate/MT10-v1.csv \
        results/runs/smoke/MT10-v1/mtppo/seed0 results/runs/smoke/MT10-v1/toppo/seed0 ...

Also the script of rule `aggregate` (params.scale, params.runs, output[0], log[0]).

Output: the eval.csv columns (docs/design.md) followed by scale, status, config_hash,
git_commit, device, env_steps, total_steps, wall_time_s, env_backend (only when a run's
training envs were not metaworld's: issue 18) and run_dir; one row per (run, evaluation,
task), sorted by variant, seed, step, task_index.
"""


import argparse
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]  # a copy under .snakemake/scripts: see __main__
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PROVENANCE = ["status", "config_hash", "git_commit", "device", "env_steps", "total_steps",
              "wall_time_s"]


def aggregate(run_dirs: list[Path], scale: str) -> pd.DataFrame:
    """Every run's eval.csv, validated against its benchmark and its manifest
    (analysis.logs), with the manifest's provenance."""
    from analysis.logs import read_eval_csv, read_manifest

    frames = []
    for run in run_dirs:
        manifest = read_manifest(run)
        if manifest.get("status") != "complete":
            raise SystemExit(f"{run}: manifest status is {manifest.get('status')!r}, not complete")
        ev = read_eval_csv(run / "eval.csv").drop(columns="run_dir")
        ev["scale"] = scale
        for key in PROVENANCE:
            ev[key] = manifest.get(key)
        ev["env_backend"] = manifest.get("env_backend", "metaworld")  # absent: from before it
        ev["run_dir"] = str(run)
        frames.append(ev)
    if not frames:
        raise SystemExit("no run directories given")
    out = pd.concat(frames, ignore_index=True)
    if (out.env_backend == "metaworld").all():  # a column only where a run used another
        out = out.drop(columns="env_backend")
    return out.sort_values(["variant", "seed", "step", "task_index"], kind="stable")


def write(runs: list[Path], scale: str, out: Path) -> str:
    from toppo.specs.runfiles import write_text_atomic

    df = aggregate(runs, scale)
    write_text_atomic(out, df.to_csv(index=False))
    return f"{out}: {len(df)} rows from {len(runs)} runs"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("runs", type=Path, nargs="+", help="run directories")
    args = p.parse_args(argv)
    from analysis.logs import LogError

    try:
        print(write(args.runs, args.scale, args.out))
    except (LogError, OSError) as exc:  # bad logs, unwritable output: one line naming the path
        print(f"aggregate: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if "snakemake" in globals():  # run by the workflow's `script:` directive
        smk = snakemake  # noqa: F821
        sys.path.insert(0, str(Path(smk.scriptdir).resolve().parents[1]))
        from analysis.logs import LogError

        try:
            msg = write([Path(r) for r in smk.params.runs], smk.params.scale, Path(smk.output[0]))
        except (LogError, OSError) as exc:
            Path(smk.log[0]).write_text(f"error: {exc}\n")
            sys.exit(f"aggregate: error: {exc}")
        Path(smk.log[0]).write_text(msg + "\n")
    else:
        sys.exit(main())
