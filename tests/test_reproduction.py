"""The reproduction report (analysis.reproduction), the paper's MT50 V2 block of table 3 and the
published worst-k overlay: synthetic runs with known answers -> exact rows and verdicts."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import synthetic

from analysis import figures, load_report_spec, metrics, reproduction, tables
from analysis.__main__ import main
from analysis.baselines import COLUMNS, DEFAULT_PATH, load_baselines
from analysis.protocols import RunSet

K = 50
STEPS = [30_000_000, 60_000_000, 100_000_000]
# seed 0: 10 tasks at 20%, 40 at 100%; seed 1: 10 at 40%, 40 at 80% (final evaluation)
FINAL = {0: np.r_[np.full(10, 0.2), np.full(40, 1.0)], 1: np.r_[np.full(10, 0.4), np.full(40, 0.8)]}
MEAN = 100 * (FINAL[0].mean() + FINAL[1].mean()) / 2  # 78.0
WORST10 = (20.0 + 40.0) / 2  # 30.0


def history(seed):
    """(3 evals, K tasks): the mean peaks at the second evaluation (60M) for both seeds."""
    return np.vstack([np.full(K, 0.3), np.minimum(FINAL[seed] + 0.1, 1.0), FINAL[seed]])


def write_group(root, benchmark, rv, variant, seeds=(0, 1), steps=STEPS, tasks=K):
    for seed in seeds:
        success = history(seed)[:, :tasks]
        synthetic.write_run(root / f"{benchmark}-{rv}" / variant / f"seed{seed}", variant=variant,
                            benchmark=benchmark, reward_version=rv, seed=seed, success=success, steps=steps,
                            episodes=50, train_updates=None)


def paper_row(**over):
    row = {c: "" for c in COLUMNS}
    row.update(method="TOPPO (paper)", benchmark="MT50", reward_version="v2", budget_steps=100_000_000,
               protocol="final", aggregator="mean", value=78.0, dispersion_kind="none", n_seeds=2,
               source="fixture", location="Figure 1", value_kind="exact", provenance="https://example.org/f")
    row.update(over)
    return row


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    write_group(root, "MT50", "v2", "toppo")
    return RunSet.load([root], reps=200, seed=0)


SPEC = {"reproduction": {"methods": {"TOPPO (paper)": "toppo"}}}


def frame(rows):
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df.index = range(2, 2 + len(df))
    return df


# ---------------------------------------------------------------- verdicts
@pytest.mark.parametrize(("args", "expected"), [
    ((50.0, 40.0, 60.0), "inside our CI"),
    ((40.0, 40.0, 60.0), "inside our CI"),  # a bound is inside
    ((61.0, 40.0, 60.0), "outside our CI"),
    ((60.4, 40.0, 60.0, 0.5), "undecided: the paper's value is within its tolerance (+-0.5) of our CI bound"),
    ((59.6, 40.0, 60.0, 0.5), "undecided: the paper's value is within its tolerance (+-0.5) of our CI bound"),
    ((50.0, 40.0, 60.0, 0.5), "inside our CI"),
    ((50.0, 40.0, 60.0, None, ["budget (reached 1M of 100M)", "seeds (2 of 10)"]),
     "not comparable: budget (reached 1M of 100M), seeds (2 of 10)"),
    ((50.0, None, None), "not comparable: no interval (no runs)"),
])
def test_verdict(args, expected):
    assert reproduction.verdict(*args) == expected


# ---------------------------------------------------------------- rows with exact values
def test_full_budget_rows_are_compared_inside_or_outside_our_ci(runs):
    rows = [paper_row(), paper_row(aggregator="worst-10", value=10.0),
            paper_row(aggregator="worst-10", value=31.0, value_kind="read_off", tolerance=0.5, budget_steps=50e6)]
    entries = reproduction.reproduction(runs, frame(rows), SPEC)
    assert [e.statistic for e in entries] == ["mean", "worst-10", "worst-10"]
    mean, w_out, w_read = entries
    assert mean.ours_value == pytest.approx(MEAN) and mean.difference == pytest.approx(0.0)
    h = runs.history("MT50", "v2", "toppo")
    lo, hi = metrics.bootstrap_ci(100 * h.values[:, :, -1], "mean", reps=200, seed=0)
    assert (mean.ours_ci_low, mean.ours_ci_high) == (pytest.approx(lo), pytest.approx(hi))
    assert mean.verdict == "inside our CI" and mean.protocol == "final/mean/ci95"
    assert (mean.ours_seeds, mean.ours_budget_reached, mean.ours_reward_version) == (2, 100_000_000, "v2")
    assert w_out.ours_value == pytest.approx(WORST10) and w_out.difference == pytest.approx(WORST10 - 10.0)
    assert w_out.verdict == "outside our CI" and w_out.paper_line == 3
    # the per-seed worst-10 is 20 or 40: the seed bootstrap interval is [20, 40]
    assert (w_read.ours_ci_low, w_read.ours_ci_high) == (pytest.approx(20.0), pytest.approx(40.0))
    assert w_read.verdict == "inside our CI" and w_read.paper_tolerance == 0.5


def test_peak_and_its_step(runs):
    rows = [paper_row(protocol="curve_peak", value=90.0, at_step=60_000_000),
            paper_row(protocol="curve_peak", aggregator="iqm", value=90.0, at_step=96_500_000)]
    entries = reproduction.reproduction(runs, frame(rows), SPEC)
    assert [(e.statistic, e.quantity) for e in entries] == [("mean", "success"), ("mean", "step"),
                                                          ("iqm", "success"), ("iqm", "step")]
    peak_value = 100 * (np.minimum(FINAL[0] + 0.1, 1).mean() + np.minimum(FINAL[1] + 0.1, 1).mean()) / 2
    assert entries[0].ours_value == pytest.approx(peak_value)  # 85.2 at 60M
    step = entries[1]
    assert step.ours_value == 60_000_000 and (step.ours_ci_low, step.ours_ci_high) == (60_000_000, 60_000_000)
    assert step.verdict == "inside our CI" and step.difference == 0.0
    assert entries[3].verdict == "outside our CI" and entries[3].difference == -36_500_000


def test_not_comparable_reasons_and_ours_shown_anyway(tmp_path):
    root = tmp_path / "runs"
    write_group(root, "MT10", "v1", "toppo", seeds=(0,), steps=[50_000, 100_000, 150_000], tasks=10)
    small = RunSet.load([root], reps=50)
    rows = [paper_row(benchmark="MT10", budget_steps=20_000_000, n_seeds=10, eval_episodes=10),
            paper_row(aggregator="worst-10"), paper_row(benchmark="MT10", reward_version="v1", protocol="unstated",
                                                      budget_steps="")]
    entries = reproduction.reproduction(small, frame(rows), SPEC)
    assert [e.verdict for e in entries] == [
        "not comparable: budget (no runs of MT50)",
        "not comparable: budget (reached 150K of 20M), seeds (1 of 10), reward version (ours v1, paper v2), "
        "evaluation episodes (ours 50, paper 10)",
        "not comparable: protocol not stated by the source"]
    mt10 = entries[1]
    assert mt10.ours_reward_version == "v1" and mt10.ours_value == pytest.approx(100 * history(0)[-1, :10].mean())
    assert entries[0].ours_value is None and not any(e.comparable for e in entries)


def test_shipped_paper_rows_at_smoke_scale_all_say_not_comparable_budget(tmp_path):
    root = tmp_path / "runs"
    for variant in ("toppo", "mtppo"):
        write_group(root, "MT10", "v1", variant, steps=[50_000, 100_000, 150_000], tasks=10)
    spec = load_report_spec()
    entries = reproduction.reproduction(RunSet.load([root], reps=50), load_baselines(), spec)
    assert spec["reproduction"]["methods"] == {"TOPPO (paper)": "toppo", "MT-PPO (paper)": "mtppo"}
    # MT50 V2 mean and worst-k 5..50, peak and its step, MT50 V1 IQM, MT10 V2 mean; MT-PPO's read-offs
    assert [(e.method, e.benchmark, e.reward_version, e.statistic, e.quantity, e.paper_value) for e in entries] == [
        ("TOPPO (paper)", "MT50", "v2", "mean", "success", 90.88),
        ("TOPPO (paper)", "MT50", "v2", "worst-5", "success", 24.2),
        ("TOPPO (paper)", "MT50", "v2", "worst-10", "success", 56.5),
        ("TOPPO (paper)", "MT50", "v2", "worst-20", "success", 77.1),
        ("TOPPO (paper)", "MT50", "v2", "worst-30", "success", 84.8),
        ("TOPPO (paper)", "MT50", "v2", "worst-40", "success", 88.6),
        ("TOPPO (paper)", "MT50", "v2", "mean", "success", 91.3),
        ("TOPPO (paper)", "MT50", "v2", "mean", "step", 96_500_000),
        ("TOPPO (paper)", "MT50", "v1", "iqm", "success", 79.3),
        ("TOPPO (paper)", "MT10", "v2", "mean", "success", 97.2),
        ("MT-PPO (paper)", "MT50", "v2", "mean", "success", 78.7),
        *[("MT-PPO (paper)", "MT50", "v2", f"worst-{k}", "success", v)
          for k, v in ((5, 0.0), (10, 6.6), (20, 46.4), (30, 64.0), (40, 73.3))]]
    assert all(e.verdict.startswith("not comparable: budget") for e in entries)
    mt10 = entries[9]
    assert mt10.verdict == ("not comparable: budget (reached 150K of 20M), seeds (2 of 10), reward version "
                            "(ours v1, paper v2)")
    assert mt10.ours_value == pytest.approx(100 * (history(0)[-1, :10].mean() + history(1)[-1, :10].mean()) / 2)


def test_unknown_variant_or_method_is_named(runs):
    with pytest.raises(ValueError, match=r"report.reproduction.methods\['TOPPO \(paper\)'\]: unknown variant 'topo'"):
        reproduction.reproduction(runs, frame([paper_row()]), {"reproduction": {"methods": {"TOPPO (paper)": "topo"}}})
    with pytest.raises(ValueError, match="'X' is not a method of the baselines file"):
        reproduction.reproduction(runs, frame([paper_row()]), {"reproduction": {"methods": {"X": "toppo"}}})
    assert reproduction.reproduction(runs, frame([paper_row()]), {}) == []  # no paper method: no rows


def test_render_csv_and_tex(runs):
    rows = [paper_row(), paper_row(aggregator="worst-10", value=31.0, value_kind="read_off", tolerance=0.5)]
    entries = reproduction.reproduction(runs, frame(rows), SPEC)
    lines = reproduction.render_csv(entries).splitlines()
    assert lines[0] == ",".join(reproduction.CSV_COLUMNS)
    cells = dict(zip(reproduction.CSV_COLUMNS, lines[1].split(","), strict=True))
    assert (cells["paper_value"], cells["ours_value"], cells["difference"], cells["verdict"]) == \
        ("78", "78", "0", "inside our CI")
    assert (cells["paper_line"], cells["ours_seeds"], cells["ours_budget_reached"]) == ("2", "2", "100000000")
    tex = reproduction.render_tex(entries, "testscale", runs)
    assert "MT50 V2 Mean, final & 78 & 78.0 [" in tex and "& +0.0 & inside our CI & 2 \\\\" in tex
    assert "MT50 V2 worst-10, final & 31$^\\S$ & 30.0 [20.0, 40.0] & $-$1.0 & inside our CI & 3 \\\\" in tex
    assert "line 3 $\\pm$0.5" in tex and "scale \\texttt{testscale}" in tex and "2 seeds" in tex


def test_cli_writes_both_files(tmp_path, capsys):
    root = tmp_path / "runs"
    write_group(root, "MT50", "v2", "toppo")
    out = tmp_path / "out"
    rc = main(["reproduction", "--runs", str(root), "--out-dir", str(out), "--scale", "smoke", "--reps", "50"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["reproduction.csv", "reproduction.tex"]
    csv_lines = (out / "reproduction.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 16 and "reproduction: 16 numbers" in capsys.readouterr().out
    tex = (out / "reproduction.tex").read_text()
    assert "TOPPO (paper) vs toppo (ours)" in tex and "not comparable: seeds (2 of 10)" in tex


# ---------------------------------------------------------------- table 3's MT50 V2 block, worst-k overlay
def test_table3_leads_with_the_papers_mt50_v2_block(runs):
    spec = load_report_spec()
    spec["table3"]["blocks"] = spec["table3"]["blocks"][:1]
    tex = tables.table3(runs, load_baselines(DEFAULT_PATH), spec, "testscale")
    assert "MT50 (V2 rewards), \\texttt{final/mean/std}" in tex
    assert "TOPPO (ours) & 1M & 100M & 78.0 $\\pm$ 8.5" in tex
    # the paper's values as its figure prints them, bold only among rows under the block's protocol
    assert tables_row(tex, "TOPPO (paper)") == "TOPPO (paper)$^\\ddagger$ & -- & 100M & \\textbf{90.9} $\\pm$ 1.6 \\\\"
    assert tables_row(tex, "ARS-LN-1024") == "ARS-LN-1024$^\\ddagger$ & -- & -- & 88.9 $\\pm$ 2.6 \\\\"
    assert tables_row(tex, "ARS-LoRA") == "ARS-LoRA$^\\S$$^\\ddagger$ & -- & -- & 83.2 $\\pm$ 1.8 \\\\"
    assert tables_row(tex, "MT-PPO (paper)") == "MT-PPO (paper)$^\\S$ & -- & 100M & 78.7 \\\\"
    # MOORE: the TOPPO figure's read-off (prefer_source), not Meta-World+'s IQM; its protocol is unstated
    assert tables_row(tex, "MOORE") == "MOORE$^\\dagger$$^\\S$ & -- & -- & 64.2 $\\pm$ 3.1 \\\\"
    assert "protocol not stated by the source, not compared: MOORE (MT50); SM (MT50); PCGrad (MT50); SAC-MT (MT50)" \
        in tex
    assert "ARS-LoRA (MT50 v2) $\\pm$0.50" in tex and "ARS-LN-1024 (MT50): unstated" in tex


def tables_row(tex, start):
    lines = [ln for ln in tex.splitlines() if ln.startswith(start + "$") or ln.startswith(start + " &")]
    assert lines, f"no row {start!r} in\n{tex}"
    return lines[0]


def test_worst_k_figure_overlays_the_published_points(runs):
    spec = load_report_spec()
    spec["table3"]["blocks"] = spec["table3"]["blocks"][:1]
    fig = figures.worst_k_curve(runs, spec, "testscale", load_baselines(DEFAULT_PATH))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    for label in ("TOPPO (paper) (published worst-k, read off)", "MT-PPO (paper) (published worst-k, read off)",
                  "ARS-LoRA (published worst-k, read off)", "ARS (published worst-k, read off)",
                  "ARS-LN-400 (published worst-k, read off)", "ARS-LN-1024 (published mean)"):
        assert label in labels, labels
    assert not any(label.startswith(("MOORE", "SM ", "PCGrad", "SAC-MT")) for label in labels)  # unstated
    points = figures.published_worst_k(load_baselines(DEFAULT_PATH), "TOPPO (paper)", "MT50", "v2", "final", 50,
                                       "TOPPO: Rethinking")
    assert points == [(5, 24.2, 0.5), (10, 56.5, 0.0), (20, 77.1, 0.5), (30, 84.8, 0.5), (40, 88.6, 0.5),
                      (50, 90.88, 0.0)]
    assert figures.published_worst_k(load_baselines(DEFAULT_PATH), "ARS-LoRA", "MT50", "v2", "max_over_time", 50) == []
    plt.close(fig)
    assert math.isclose(MEAN, 78.0) and math.isclose(WORST10, 30.0)
