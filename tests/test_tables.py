"""Golden tests of analysis.tables: synthetic logs with known answers -> exact LaTeX content."""

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import synthetic
import yaml

from analysis import latex, load_report_spec, tables
from analysis.__main__ import main
from analysis.baselines import load_baselines
from analysis.numfmt import fmt_count
from analysis.protocols import RunSet, pick_published

K = 50
STEPS = [50_000_000, 100_000_000]
BASELINE_COLUMNS = ["method", "benchmark", "reward_version", "budget_steps", "protocol", "aggregator", "value",
                    "dispersion", "dispersion_kind", "n_seeds", "eval_episodes", "param_count", "source", "arxiv",
                    "location", "notes", "value_kind", "tolerance", "at_step", "provenance"]
BASELINES = [
    # method, benchmark, reward, budget, protocol, aggregator, value, dispersion, kind, seeds, params
    ("MTMHSAC", "MT50", "v1", 1e8, "final", "iqm", 45.2, 3.1, "std", 10, 3_000_000),
    ("MT-PPO", "MT50", "v1", 1e8, "final", "iqm", 60.0, 2.0, "std", 10, None),
    ("MT-PPO", "MT50", "v1", 2e8, "final", "iqm", 65.0, 2.0, "std", 10, None),  # other budget: not shown
    ("MOORE", "MT50", "v1", 1e8, "max_over_time", "mean", 88.0, 1.0, "std", 10, 2_500_000),  # other protocol
    ("PaCo", "MT50", "v1", 1e8, "final", "iqm", 50.0, 1.5, "sem", 5, None),  # other dispersion
    ("TOPPO (paper)", "MT50", "v1", 1e8, "final", "iqm", 75.3, 1.2, "std", 10, 1_200_000),
    ("MTMHSAC", "MT10", "v1", 2e7, "final", "iqm", 55.0, 4.0, "std", 10, None),
    ("A&B_1%", "MT10", "v1", 2e7, "final", "iqm", 30.0, None, None, 3, None),
]


def constant(per_seed_final, first=0.3):
    """(2 evals, K tasks): every task at ``first`` then at the seed's final value."""
    return {s: np.vstack([np.full(K, first), np.full(K, v)]) for s, v in per_seed_final.items()}


def write_group(root, benchmark, rv, variant, hist, param_total=1_000_000):
    for seed, success in hist.items():
        synthetic.write_run(root / f"{benchmark}-{rv}" / variant / f"seed{seed}", variant=variant, benchmark=benchmark,
                            reward_version=rv, seed=seed, success=success, steps=STEPS, episodes=10,
                            param_total=param_total, train_updates=None)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    write_group(root, "MT50", "v1", "toppo", constant({0: 0.8, 1: 0.6}))  # IQM 70, per-seed 80/60: std 14.14
    write_group(root, "MT50", "v1", "mtppo", constant({0: 0.5, 1: 0.5}), param_total=2_500_000)
    write_group(root, "MT50", "v2", "mtppo", constant({0: 0.4, 1: 0.4}))
    tail = {0: np.r_[np.full(10, 0.2), np.full(40, 1.0)], 1: np.r_[np.full(10, 0.4), np.full(40, 0.8)]}
    write_group(root, "MT50", "v2", "toppo", {s: np.vstack([np.full(K, 0.3), v]) for s, v in tail.items()})
    return root


@pytest.fixture(scope="module")
def baselines_csv(tmp_path_factory):
    keys = BASELINE_COLUMNS[:10] + ["param_count"]
    rows = [{**dict(zip(keys, r, strict=True)), "eval_episodes": 50, "source": "test fixture",
             "arxiv": "2505.00000", "location": "Table 1", "notes": "", "value_kind": "exact",
             "provenance": "https://example.org/fixture"} for r in BASELINES]
    df = pd.DataFrame(rows, columns=BASELINE_COLUMNS)
    path = tmp_path_factory.mktemp("data") / "baselines.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def spec():
    s = load_report_spec()
    s["table3"]["blocks"] = s["table3"]["blocks"][1:]  # the V1 blocks (the paper's V2 block: test_reproduction.py)
    s["last_n"] = 2
    s["bootstrap_reps"] = 200
    s["table3"]["blocks"][1]["baselines"] = ["MTMHSAC", "SM", "A&B_1%"]
    return s


@pytest.fixture(scope="module")
def runs(root, spec):
    return RunSet.load([root], reps=spec["bootstrap_reps"])


def check_structure(tex):
    assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") >= 1
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert rule in tex
    assert tex.index("\\toprule") < tex.index("\\midrule") < tex.index("\\bottomrule")
    bare = tex.replace("\\{", "").replace("\\}", "")
    depth = 0
    for ch in bare:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    assert "\\caption{" in tex and "scale \\texttt{testscale}" in tex


def row(tex, start):
    """The table row beginning with ``start``."""
    lines = [ln for ln in tex.splitlines() if ln.startswith(start)]
    assert lines, f"no row starting {start!r} in\n{tex}"
    return lines[0]


def test_table3_golden(runs, baselines_csv, spec):
    tex = tables.table3(runs, pd.read_csv(baselines_csv), spec, "testscale")
    check_structure(tex)
    assert row(tex, "TOPPO (ours)") == "TOPPO (ours) & 1M & 100M & 70.0 $\\pm$ 14.1 \\\\"
    assert row(tex, "MT-PPO (ours)") == "MT-PPO (ours) & 2.5M & 100M & 50.0 $\\pm$ 0.0 \\\\"
    assert row(tex, "TOPPO (paper)") == "TOPPO (paper) & 1.2M & 100M & \\textbf{75.3} $\\pm$ 1.2 \\\\"  # best
    assert row(tex, "MT-PPO &") == "MT-PPO & -- & 100M & 60.0 $\\pm$ 2.0 \\\\"  # the 100M row, not 200M
    assert row(tex, "MOORE") == "MOORE$^\\dagger$ & 2.5M & 100M & 88.0 $\\pm$ 1.0 \\\\"  # not bold: other protocol
    assert row(tex, "PaCo").startswith("PaCo$^\\ddagger$")
    assert "different protocol, not compared: MOORE (MT50): \\texttt{max\\_over\\_time/mean}" in tex
    assert "not std: PaCo (MT50): sem" in tex
    assert "SM (MT50)" in tex and "SM (MT10)" in tex  # named in the spec, absent from the file
    # MT10: no runs of ours, the block still renders; the only comparable published row is bold
    mt10 = tex[tex.index("MT10 (V1 rewards)"):]
    assert row(mt10, "TOPPO (ours)") == "TOPPO (ours) & -- & -- & no runs \\\\"
    assert row(mt10, "MTMHSAC") == "MTMHSAC & -- & 20M & \\textbf{55.0} $\\pm$ 4.0 \\\\"
    assert row(mt10, "A\\&B\\_1\\%") == "A\\&B\\_1\\% & -- & 20M & 30.0 \\\\"  # escaped, no dispersion given
    caption = tex[tex.index("\\caption{"):tex.index("\\label")]
    for fact in ("IQM $\\pm$ std over seeds", "final/iqm/std", "MT50: 2 seeds, budget reached 100M env steps",
                 "(of 100M configured)", "MT10: no runs", "V1 rewards"):
        assert fact in caption


def test_table3_footnotes_an_unstated_protocol_as_not_compared(runs, baselines_csv, spec, tmp_path):
    # SM on MT50: only its own paper's number, whose protocol the source does not state; higher
    # than everything else, so it would be bold if it were compared
    extra = {"method": "SM", "benchmark": "MT50", "reward_version": "v1", "budget_steps": "",
             "protocol": "unstated", "aggregator": "mean", "value": "99.0", "dispersion": "",
             "dispersion_kind": "none", "n_seeds": "", "eval_episodes": "", "param_count": "",
             "source": "test fixture", "arxiv": "", "location": "Table 9", "notes": "", "value_kind": "exact",
             "tolerance": "", "at_step": "", "provenance": "https://example.org/fixture"}
    fixture = pd.read_csv(baselines_csv, dtype=str, keep_default_na=False)  # cells as written
    df = pd.concat([fixture, pd.DataFrame([extra])], ignore_index=True)
    path = tmp_path / "baselines.csv"
    df.to_csv(path, index=False)
    for frame in (pd.read_csv(path), load_baselines(path)):  # raw and validated frames alike
        tex = tables.table3(runs, frame, spec, "testscale")
        check_structure(tex)
        assert row(tex, "SM") == "SM$^\\dagger$ & -- & -- & 99.0 \\\\"  # shown, not bold, not compared
        assert row(tex, "TOPPO (paper)") == "TOPPO (paper) & 1.2M & 100M & \\textbf{75.3} $\\pm$ 1.2 \\\\"
        assert "$^\\dagger$ protocol not stated by the source, not compared: SM (MT50)." in tex
        assert "different protocol, not compared: MOORE (MT50): \\texttt{max\\_over\\_time/mean}." in tex
        assert "SM (MT50): " not in tex and "unreported" not in tex and "unstated" not in tex
        assert "No published row for v1: SM (MT10)" in tex  # SM on MT10 is still absent from the file
    # a stated row of the same method, benchmark and reward is preferred when the budget matches
    stated = dict(extra, budget_steps="100000000", protocol="final", aggregator="iqm", value="40.0")
    pd.concat([df, pd.DataFrame([stated])], ignore_index=True).to_csv(tmp_path / "both.csv", index=False)
    both = pd.read_csv(tmp_path / "both.csv")
    picked = pick_published(both, "SM", "MT50", "v1", 100_000_000, "final/iqm/std")
    assert (picked["protocol"], picked["value"]) == ("final", 40.0)
    tex = tables.table3(runs, both, spec, "testscale")
    assert row(tex, "SM") == "SM & -- & 100M & 40.0 \\\\" and "protocol not stated by the source" not in tex


def test_table3_without_baselines_file(runs, spec):
    tex = tables.table3(runs, None, spec, "testscale")
    check_structure(tex)
    assert "\\textbf{70.0} $\\pm$ 14.1" in tex and "No published row for v1: MTMHSAC (MT50)" in tex


def test_ablation_cumulative_golden(runs, spec):
    tex = tables.ablation_cumulative(runs, spec, "testscale")
    check_structure(tex)
    # mtppo: 40 everywhere; toppo: per-seed means 84/72, worst-10 20/40, worst-20 60/60
    assert row(tex, "MT-PPO &") == "MT-PPO & 2 & 40.0 $\\pm$ 0.0 & \\textbf{40.0} $\\pm$ 0.0 & 40.0 $\\pm$ 0.0 \\\\"
    assert row(tex, "TOPPO &") == ("TOPPO & 2 & \\textbf{78.0} $\\pm$ 8.5 & 30.0 $\\pm$ 14.1 & "
                                   "\\textbf{60.0} $\\pm$ 0.0 \\\\")
    assert row(tex, "+ LN-c + PCGrad-a &") == "+ LN-c + PCGrad-a & -- & no runs & -- & -- \\\\"
    assert "Worst-10 & Worst-20" in tex and "final/mean/std" in tex
    # the cumulative rows once more on V1 (ablations.cumulative_also), after V2's
    assert "MT50 with V2 and V1 rewards" in tex
    titles = [ln for ln in tex.splitlines() if ln.startswith("\\multicolumn")]
    assert ["Cumulative, V2" in titles[0], "Cumulative, V1" in titles[1],
            "Single modules on MT-PPO, V2" in titles[2]] == [True] * 3
    assert "2 seeds, budget reached 100M env steps" in tex


def test_ablation_combiners_grid(runs, spec):
    tex = tables.ablation_combiners(runs, spec, "testscale")
    check_structure(tex)
    # TOPPO is the (pcgrad, fairgrad) cell; every other cell has no runs
    assert row(tex, "\\texttt{pcgrad}") == "\\texttt{pcgrad} & -- & -- & -- & \\textbf{78.0} $\\pm$ 8.5 \\\\"
    assert row(tex, "\\texttt{sum}") == "\\texttt{sum} & -- & -- & -- & -- \\\\"
    assert "(pcgrad, fairgrad) is TOPPO" in tex and "no runs for (sum, sum)" in tex


def test_ablation_rows_are_the_specs(runs, spec):
    """The ablation tables draw the rows the report spec lists (variant names, as table 3's
    `ours`) or names (a variant group), not a list of their own."""
    own = {**spec, "ablations": {**spec["ablations"], "cumulative": ["toppo", "mtppo"],
                                 "cumulative_also": [],
                                 "single": "main", "combiners": ["toppo", "grid_a-sum_c-sum"]}}
    tex = tables.ablation_cumulative(runs, own, "testscale")
    labels = [ln.split(" & ")[0] for ln in tex.splitlines() if ln.startswith(("TOPPO &", "MT-PPO &"))]
    assert labels == ["TOPPO", "MT-PPO", "MT-PPO", "TOPPO"] and "+ LN-c" not in tex
    grid = tables.ablation_combiners(runs, own, "testscale")
    assert row(grid, "\\texttt{pcgrad}") == "\\texttt{pcgrad} & -- & \\textbf{78.0} $\\pm$ 8.5 \\\\"
    assert row(grid, "\\texttt{sum}") == "\\texttt{sum} & -- & -- \\\\"  # (sum, sum), (sum, fairgrad)
    assert "cagrad" not in grid


def test_protocol_breakdown_golden(runs, spec):
    tex = tables.protocol_breakdown(runs, spec, "testscale")
    check_structure(tex)
    block = tex[tex.index("TOPPO, MT50"):]
    # toppo MT50 v1: every task .3 then .8 (seed 0) / .6 (seed 1)
    assert row(block, "\\texttt{final}") == ("\\texttt{final} & 70.0 $\\pm$ 14.1 & 70.0 $\\pm$ 14.1 & "
                                            "70.0 $\\pm$ 14.1 & 70.0 $\\pm$ 14.1 \\\\")
    assert row(block, "\\texttt{last\\_2}").startswith("\\texttt{last\\_2} & 50.0 $\\pm$ 7.1")
    for name in ("max\\_over\\_time", "curve\\_peak", "seed\\_peak"):
        assert row(block, f"\\texttt{{{name}}}").startswith(f"\\texttt{{{name}}} & 70.0 $\\pm$ 14.1")
    assert "Mean & IQM & Worst-10 & Worst-20" in tex
    assert "TOPPO, MT10 (V1 rewards)" in tex and "no runs &" in tex


def test_per_task_golden(runs, spec):
    tex = tables.per_task(runs, spec, "testscale")
    check_structure(tex)
    assert row(tex, "button-press-wall-v3") == "button-press-wall-v3 & \\textbf{70.0} $\\pm$ 14.1 & 50.0 $\\pm$ 0.0 \\\\"
    assert tex.count("\\begin{table}") == 2 and "no runs" in tex[tex.index("MT10"):]


def test_render_all_writes_five_files_that_compile(root, baselines_csv, spec, tmp_path, capsys):
    out = tables.render_all([root], spec, baselines_csv, tmp_path / "tex", "testscale", reps=100, seed=1)
    assert [p.name for p in out] == [f"{n}.tex" for n in tables.TABLE_FILES]
    assert all(line.startswith("wrote ") for line in capsys.readouterr().out.splitlines())
    for p in out:
        check_structure(p.read_text())
    if shutil.which("pdflatex") is None:
        return  # the only assertion that needs a TeX installation
    doc = tmp_path / "tex" / "all.tex"
    doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n"
                   + "".join(f"\\input{{{p.stem}}}\\clearpage\n" for p in out) + "\\end{document}\n")
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=doc.parent, check=False,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:]


def test_render_all_without_any_runs_still_writes_every_table(tmp_path, spec):
    (tmp_path / "runs").mkdir()
    out = tables.render_all([tmp_path / "runs"], spec, None, tmp_path / "tex", "testscale", log=None)
    assert [p.name for p in out] == [f"{n}.tex" for n in tables.TABLE_FILES]
    for p in out:
        text = p.read_text()
        check_structure(text)
        assert "no runs" in text


def test_incomplete_run_is_refused_by_name(tmp_path, spec):
    write_group(tmp_path, "MT50", "v1", "toppo", constant({0: 0.8}))
    synthetic.write_run(tmp_path / "MT50-v1" / "toppo" / "seed1", variant="toppo", benchmark="MT50",
                        reward_version="v1", seed=1, success=np.full((1, K), 0.5), steps=STEPS[:1],
                        status="running", train_updates=None)
    with pytest.raises(ValueError, match=r"seed 1 .*seed1.*incomplete"):
        tables.render_all([tmp_path], spec, None, tmp_path / "tex", "testscale", log=None)


def test_formatting_helpers():
    assert latex.latex_escape("a_b&c%d$e#f{g}h~i^j\\k") == \
        "a\\_b\\&c\\%d\\$e\\#f\\{g\\}h\\textasciitilde{}i\\textasciicircum{}j\\textbackslash{}k"
    assert [fmt_count(n) for n in (100e6, 1.5e6, 420_000, 999_999, 5_940, 999, None)] == \
        ["100M", "1.5M", "420K", "1M", "5.94K", "999", "--"]
    assert latex.fmt_cell(70.04, 1.26, "std", bold=True) == "\\textbf{70.0} $\\pm$ 1.3"
    assert latex.fmt_cell(70.0, 5.0, "ci95", ci=(61.23, 77.0)) == "70.0 [61.2, 77.0]"
    assert latex.fmt_cell(70.0, float("nan"), "std") == "70.0"
    assert latex.best_flags([70.04, 69.96, None, 12.0]) == [True, True, False, False]  # tie once rounded


def test_cli_tables(root, baselines_csv, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"scales": {}, "report": {"bootstrap_reps": 50, "last_n": 2}}))
    rc = main(["tables", "--runs", str(root), "--config", str(config), "--baselines", str(baselines_csv),
               "--out-dir", str(tmp_path / "out"), "--scale", "testscale", "--reps", "60", "--seed", "3"])
    out = capsys.readouterr().out
    n = len(tables.TABLE_FILES)
    assert rc == 0 and out.count("wrote ") == n and f"{n} files" in out
    assert re.search(r"TOPPO \(ours\) & 1M & 100M & 70\.0", (tmp_path / "out" / "table3.tex").read_text())
    assert main(["tables", "--runs", str(tmp_path / "nope"), "--scale", "s", "--no-baselines"]) == 1
    assert "no such file or directory" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("scales: {}\n")
    assert main(["tables", "--runs", str(root), "--scale", "s", "--no-baselines", "--config",
                 str(tmp_path / "bad.yaml")]) == 1
    assert "no 'report:' section" in capsys.readouterr().err


def test_cli_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as e:
        main(["tables", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--runs", "--config", "--baselines", "--no-baselines", "--out-dir", "--scale", "--reps", "--seed"):
        assert opt in text
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "convert" in capsys.readouterr().out
