"""Learning parity of two training-env backends (issue 18; docs/envpool.md): the same cells
trained on metaworld's envs and on EnvPool's (``env_backend``), both evaluated on metaworld's
envs and the benchmark's goals. Reads the committed run records only, so it re-renders after
either side is retrained:

    python -m analysis.backend_parity [--metaworld results/runs/cpu/MT10-v2/mtppo_ref] \\
        [--envpool results/runs/envpool_parity/MT10-v2/mtppo_ref] [--out-dir results/envpool_parity]

Writes ``backend_parity.png``/``.pdf`` (success curves, every seed and the mean over seeds,
of both backends; per-task final success), ``backend_parity.csv`` (one row per run: final
success and the mean of the last two evaluations) and ``backend_parity.md`` (the numbers,
the verdict, and where each side's records come from: the git commit that last changed
them and the trainer commits in their manifests).

The verdict compares the mean over seeds of the final success (mean over tasks at the last
evaluation): "same success within seed noise" when the 95% confidence interval of the
difference (Welch's t, unequal variances) contains 0, else "different". With 3 seeds a side
the interval is wide; its width is printed, so the reader sees what could be excluded.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = {"metaworld": "results/runs/cpu/MT10-v2/mtppo_ref",
            "envpool": "results/runs/envpool_parity/MT10-v2/mtppo_ref",
            "out_dir": "results/envpool_parity"}
NAME = "backend_parity"
LAST_N = 2  # evaluations averaged by the second statistic


class ParityError(ValueError):
    """Records that cannot be compared; the message names the path."""


@dataclass
class Side:
    backend: str
    root: Path
    evals: pd.DataFrame  # analysis.logs.load_evals rows of every seed
    manifests: pd.DataFrame

    @property
    def seeds(self) -> list[int]:
        return sorted(int(s) for s in self.evals.seed.unique())

    def curves(self) -> pd.DataFrame:
        """Mean success over tasks per (seed, step), a column per seed."""
        return self.evals.groupby(["step", "seed"]).success_rate.mean().unstack("seed")

    def final(self) -> pd.Series:
        """Per seed: mean success over tasks at the last evaluation."""
        c = self.curves()
        return c.iloc[-1]

    def last_n(self, n: int = LAST_N) -> pd.Series:
        """Per seed: mean over tasks and the last ``n`` evaluations."""
        return self.curves().iloc[-n:].mean()

    def per_task_final(self) -> pd.Series:
        last = self.evals[self.evals.step == self.evals.step.max()]
        return last.groupby(["task_index", "task"]).success_rate.mean()


def load_side(backend: str, root: str | Path) -> Side:
    from analysis import logs

    root = Path(root)
    evals = logs.load_evals([root])
    manifests = logs.load_manifests([root])
    recorded = manifests.get("env_backend", pd.Series(index=manifests.index, dtype=object))
    recorded = recorded.fillna("metaworld")  # manifests from before the setting: metaworld
    wrong = manifests.run_dir[recorded != backend].tolist()
    if wrong:
        raise ParityError(f"{root}: runs {wrong} were not trained with env_backend={backend}")
    if (manifests.status != "complete").any():
        raise ParityError(f"{root}: runs not complete: "
                          f"{manifests.run_dir[manifests.status != 'complete'].tolist()}")
    if evals.groupby(["benchmark", "reward_version", "variant"]).ngroups != 1:
        raise ParityError(f"{root}: holds more than one (benchmark, reward version, variant)")
    return Side(backend, root, evals, manifests)


@dataclass
class Comparison:
    metaworld: np.ndarray
    envpool: np.ndarray
    difference: float  # envpool - metaworld, mean over seeds
    ci_low: float
    ci_high: float
    p_value: float

    @property
    def same(self) -> bool:
        return self.ci_low <= 0.0 <= self.ci_high


def compare(metaworld: np.ndarray, envpool: np.ndarray) -> Comparison:
    """Difference of the seed means with Welch's 95% interval (unequal variances)."""
    from scipy import stats

    a, b = np.asarray(metaworld, float), np.asarray(envpool, float)
    if len(a) < 2 or len(b) < 2:
        raise ParityError(f"need at least 2 seeds a side, got {len(a)} and {len(b)}")
    diff = float(b.mean() - a.mean())
    if a.std() == 0 and b.std() == 0:  # no seed noise at all: equal or not
        return Comparison(a, b, diff, diff, diff, 1.0 if diff == 0 else 0.0)
    res = stats.ttest_ind(b, a, equal_var=False)
    ci = res.confidence_interval(0.95)
    return Comparison(a, b, diff, float(ci.low), float(ci.high), float(res.pvalue))


def records_commit(root: Path) -> str:
    """The git commit that last changed ``root``'s records, or why there is none."""
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%h %cs", "--", str(root)], cwd=REPO,
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"
    return out.stdout.strip() or "not committed"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _line(c: Comparison, what: str) -> str:
    return (f"{what}: metaworld {_pct(c.metaworld.mean())} ± {_pct(c.metaworld.std(ddof=1))}, "
            f"envpool {_pct(c.envpool.mean())} ± {_pct(c.envpool.std(ddof=1))} (mean ± std over "
            f"seeds, %); difference envpool − metaworld {c.difference * 100:+.1f} points, 95% "
            f"Welch interval [{c.ci_low * 100:+.1f}, {c.ci_high * 100:+.1f}], p = {c.p_value:.2f}")


def report(mw: Side, ep: Side) -> tuple[str, pd.DataFrame, Comparison, Comparison]:
    final = compare(mw.final().to_numpy(), ep.final().to_numpy())
    last = compare(mw.last_n().to_numpy(), ep.last_n().to_numpy())
    rows = []
    for side in (mw, ep):
        f, ln = side.final(), side.last_n()
        m = side.manifests.set_index("seed")
        for seed in side.seeds:
            rows.append({"env_backend": side.backend, "seed": seed, "final_step": int(side.evals.step.max()),
                         "final_success": round(float(f[seed]), 6),
                         f"last{LAST_N}_success": round(float(ln[seed]), 6),
                         "config_hash": m.config_hash[seed], "git_commit": m.git_commit[seed],
                         "wall_time_s": m.wall_time_s[seed], "run_dir": m.run_dir[seed]})
    table = pd.DataFrame(rows)
    first = mw.evals.iloc[0]
    tasks = pd.DataFrame({"metaworld": mw.per_task_final(), "envpool": ep.per_task_final()})
    lines = [
        f"# Learning parity: {first.benchmark} {first.reward_version.upper()} {first.variant}, "
        "training envs on metaworld vs EnvPool",
        "",
        "Written by `python -m analysis.backend_parity` from the committed records; do not edit.",
        "Both sides are evaluated on metaworld's envs and the benchmark's goals.",
        "",
    ]
    for side in (mw, ep):
        commits = ", ".join(sorted(set(side.manifests.git_commit.str[:10])))
        numerics = (side.manifests["machine.numerics"].fillna("not recorded").unique()
                    if "machine.numerics" in side.manifests else ["not recorded"])
        lines.append(f"* {side.backend}: `{side.root.as_posix()}`, seeds {side.seeds}, "
                     f"{len(side.curves())} evaluations to {int(side.evals.step.max()):,} env steps; "
                     f"records last changed in commit {records_commit(side.root)}; trained by "
                     f"commit(s) {commits}; configs {sorted(set(side.manifests.config_hash))}; "
                     f"numerics mode {', '.join(sorted(numerics))}")
    lines += ["", f"* {_line(final, 'final success (last evaluation, mean over tasks)')}",
              f"* {_line(last, f'mean of the last {LAST_N} evaluations')}", "",
              f"**Verdict: {'same success within seed noise' if final.same else 'different'}** "
              f"(final success; the 95% interval of the difference "
              f"{'contains' if final.same else 'excludes'} 0; its half-width, "
              f"{(final.ci_high - final.ci_low) * 50:.1f} points, is what {len(mw.seeds)} and "
              f"{len(ep.seeds)} seeds can resolve).", "",
              "| seed | backend | final success % | mean of last 2 % | wall time s |",
              "|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.seed} | {r.env_backend} | {_pct(r.final_success)} | "
                     f"{_pct(getattr(r, f'last{LAST_N}_success'))} | {r.wall_time_s:.0f} |")
    lines += ["", "Per task, final success (mean over seeds, %):", "",
              "| task | metaworld | envpool |", "|---|---|---|"]
    for (_, task), r in tasks.iterrows():
        lines.append(f"| {task} | {_pct(r.metaworld)} | {_pct(r.envpool)} |")
    return "\n".join(lines) + "\n", table, final, last


def figure(mw: Side, ep: Side, final: Comparison):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.figures import _fmt_steps

    colors = {"metaworld": "#1f77b4", "envpool": "#d62728"}
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1.2, 1]})
    for side in (mw, ep):
        c = side.curves() * 100
        for seed in c.columns:
            ax.plot(c.index, c[seed], color=colors[side.backend], alpha=0.35, lw=0.8)
        ax.plot(c.index, c.mean(axis=1), color=colors[side.backend], lw=2,
                label=f"{side.backend} (mean of {c.shape[1]} seeds)")
    ax.set_xlabel("training env steps")
    ax.set_ylabel("success rate (%), mean over tasks")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_fmt_steps))
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("Success during training (thin: each seed)", fontsize=9)
    tasks = pd.DataFrame({"metaworld": mw.per_task_final(), "envpool": ep.per_task_final()}) * 100
    y = np.arange(len(tasks))
    for i, backend in enumerate(("metaworld", "envpool")):
        bx.barh(y + (i - 0.5) * 0.4, tasks[backend], height=0.4, color=colors[backend], label=backend)
    bx.set_yticks(y, [t for _, t in tasks.index], fontsize=7)
    bx.invert_yaxis()
    bx.set_xlim(0, 100)
    bx.set_xlabel("final success (%), mean over seeds")
    bx.set_title("Per task, last evaluation", fontsize=9)
    first = mw.evals.iloc[0]
    fig.suptitle(f"{first.benchmark} {first.reward_version.upper()} {first.variant}: training envs "
                 "on metaworld vs EnvPool (env_backend), both evaluated on metaworld", fontsize=10)
    note = (f"{_line(final, 'Final success (mean over tasks)')}. Verdict: "
            f"{'same within seed noise' if final.same else 'different'}. "
            f"metaworld records: {mw.root.as_posix()} (commit {records_commit(mw.root)}); "
            f"envpool records: {ep.root.as_posix()} (commit {records_commit(ep.root)}).")
    import textwrap

    fig.supxlabel("\n".join(textwrap.wrap(note, width=170)), x=0.01, ha="left", fontsize=6.5,
                  color="0.25")
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.backend_parity",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--metaworld", type=Path, default=Path(DEFAULTS["metaworld"]),
                    help="run directories trained on metaworld's envs (default: %(default)s)")
    ap.add_argument("--envpool", type=Path, default=Path(DEFAULTS["envpool"]),
                    help="the same cells trained with env_backend=envpool (default: %(default)s)")
    ap.add_argument("--out-dir", type=Path, default=Path(DEFAULTS["out_dir"]),
                    help="where the figure, CSV and summary go (default: %(default)s)")
    args = ap.parse_args(argv)
    from analysis.figures import save_figure
    from analysis.logs import LogError
    from toppo.specs.runfiles import write_text_atomic

    try:
        mw, ep = load_side("metaworld", args.metaworld), load_side("envpool", args.envpool)
        for key in ("benchmark", "reward_version", "variant"):
            if set(mw.evals[key]) != set(ep.evals[key]):
                raise ParityError(f"{key} differs: {set(mw.evals[key])} vs {set(ep.evals[key])}")
        if sorted(mw.evals.step.unique()) != sorted(ep.evals.step.unique()):
            raise ParityError("the two sides were evaluated at different steps")
        text, table, final, _ = report(mw, ep)
    except (LogError, ParityError, OSError) as e:
        print(f"python -m analysis.backend_parity: error: {e}", file=sys.stderr)
        return 1
    out = args.out_dir
    paths = save_figure(figure(mw, ep, final), out, NAME)
    paths.append(write_text_atomic(out / f"{NAME}.csv", table.to_csv(index=False)))
    paths.append(write_text_atomic(out / f"{NAME}.md", text))
    print(text, end="")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
