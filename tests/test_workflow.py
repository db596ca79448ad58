"""The Snakemake workflow: the DAG of the paper grid, config validation, lint, and one real
end-to-end run of the smallest DAG (train -> aggregate -> tables -> figures).

Every Snakemake call runs with --directory in a temporary folder, so .snakemake/ and results/
are created there and never in the repository.
"""

import csv
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from dag_configs import grid_cells, tiny_dag_config

from analysis.figures import FIGURE_NAMES
from analysis.reference_check import OUTPUT_FILES as REFERENCE_CHECK_FILES
from analysis.tables import TABLE_FILES
from toppo.specs import numerics_mode
from toppo.specs.grid import CONFIG_SCHEMA, Grid, GridError, group_variants, load_config
from toppo.specs.registry import COMBINER_GRID, GROUPS, PAPER_COMBINERS, VARIANTS

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
PAPER = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
SMOKE = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
CPU = yaml.safe_load((REPO / "config" / "cpu.yaml").read_text())
ENVPOOL_PARITY = yaml.safe_load((REPO / "config" / "envpool_parity.yaml").read_text())

# The paper grid, counted from its config and the registry's groups (not by toppo.specs.grid): on
# each (benchmark, reward version) the distinct variants its groups name, 10 seeds each
# (test_paper_config_names_the_variant_groups checks both); one aggregate per pair.
PAPER_VARIANTS: dict[tuple[str, str], set[str]] = {}
for _group in PAPER["grid"]:
    for _pair in ((b, r) for b in _group["benchmarks"] for r in _group["reward_versions"]):
        PAPER_VARIANTS.setdefault(_pair, set()).update(GROUPS[_group["variants"]])
PAPER_TRAIN_JOBS = 10 * sum(map(len, PAPER_VARIANTS.values()))
PAPER_AGGREGATES = len(PAPER_VARIANTS)  # MT10-v1, MT10-v2, MT50-v1, MT50-v2


def snakemake(workdir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                                     os.environ.get("PYTHONPATH")]))}
    return subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def job_counts(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """The 'Job stats' table of a (dry) run; {} when there is nothing to do."""
    lines = output(proc).splitlines()
    if "Job stats:" not in lines:
        assert "Nothing to be done" in output(proc), output(proc)[-3000:]
        return {}
    counts = {}
    for line in lines[lines.index("Job stats:") + 3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def output(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def dry_run(workdir: Path, *args: str) -> dict[str, int]:
    proc = snakemake(workdir, "--dry-run", *args)
    assert proc.returncode == 0, output(proc)[-3000:]
    return job_counts(proc)


def job_files(proc: subprocess.CompletedProcess) -> dict[str, set[str]]:
    """Every file a (dry) run's jobs write, by rule: the 'output:', 'log:' and 'benchmark:'
    lines of each job's listing."""
    files: dict[str, set[str]] = {}
    rule = None
    for line in output(proc).splitlines():
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            rule = line.split()[1][:-1]
            files.setdefault(rule, set())
        elif rule and line.startswith(("    output: ", "    log: ", "    benchmark: ")):
            files[rule] |= set(line.split(": ", 1)[1].split(", "))
    assert files, output(proc)[-3000:]
    return files


def report_files(root: str) -> dict[str, set[str]]:
    """The report's files below `root`, by rule, from the names analysis writes."""
    return {"tables": {f"{root}/{n}.tex" for n in TABLE_FILES},
            "figures": {f"{root}/figures/{n}.{e}" for n in FIGURE_NAMES for e in ("pdf", "png")},
            "reproduction": {f"{root}/reproduction.tex", f"{root}/reproduction.csv"},
            "reference_check": {f"{root}/{n}" for n in REFERENCE_CHECK_FILES}}


def write_config(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# ---------------------------------------------------------------------- the paper grid
def test_paper_config_names_the_variant_groups():
    groups = {g["name"]: g for g in PAPER["grid"]}
    for name in ("main", "cumulative", "single", "combiners", "reference_check"):  # named
        assert groups[name]["variants"] == name
    variants = {name: group_variants(g) for name, g in groups.items()}
    assert variants["main"] == ["mtppo", "toppo"]
    assert variants["cumulative"] == ["mtppo", "mtppo_lnc", "mtppo_lnc_pcga", "mtppo_lnc_pcga_fgc",
                                      "toppo"]
    assert groups["cumulative"]["reward_versions"] == ["v1", "v2"]  # the paper's Appendix D.5
    assert variants["single"] == ["mtppo", "mtppo_popart", "mtppo_lnc", "mtppo_fgc", "mtppo_pcga",
                                  "mtppo_strat", "mtppo_mhc"]
    assert variants["reference_check"] == ["mtppo", "toppo", "mtppo_ref", "toppo_ref"]
    assert variants["combiners"] == list(COMBINER_GRID.values())  # the paper's combiners only
    assert len(variants["combiners"]) == len(PAPER_COMBINERS) ** 2
    assert {v for vs in variants.values() for v in vs} <= set(VARIANTS)
    assert PAPER["budgets"] == {"MT10": 20_000_000, "MT50": 100_000_000}
    assert all(g["seeds"] == 10 for g in PAPER["grid"])


def test_the_workflow_doc_states_the_paper_grid_as_counted():
    """docs/workflow.md's table of the paper grid (each group's cells) and its job count per
    (benchmark, reward version), against the config and the registry."""
    doc = (REPO / "docs" / "workflow.md").read_text()
    table = doc[doc.index("The paper grid (10 seeds everywhere):"):doc.index("After removing duplicates")]
    stated = dict(re.findall(r"^\| `(\w+)` \|.*\| (\d+) \|$", table, re.M))
    assert stated == {g["name"]: str(len(g["benchmarks"]) * len(g["reward_versions"])
                                     * len(GROUPS[g["variants"]]) * g["seeds"]) for g in PAPER["grid"]}
    per_pair = "; ".join(f"{b}-{r}: {10 * len(v)}" for (b, r), v in sorted(PAPER_VARIANTS.items()))
    assert f"**{PAPER_TRAIN_JOBS} training jobs** ({per_pair}," in " ".join(doc.split())
    assert f"plus {PAPER_AGGREGATES} aggregates" in " ".join(doc.split())


def test_schema_accepts_the_configs_and_the_default_report():
    import copy

    from snakemake.utils import validate  # as the Snakefile does: resolves the report $ref

    from analysis import report_errors

    schema = str(REPO / "workflow" / "schemas" / "config.schema.yaml")
    default = yaml.safe_load((REPO / "analysis" / "default_report.yaml").read_text())["report"]
    validate(copy.deepcopy(PAPER), schema)
    validate({**PAPER, **SMOKE}, schema)  # as merged by --configfile (top level)
    assert PAPER["report"] == default  # config/config.yaml carries analysis's default report
    assert report_errors(default) == [] and report_errors(SMOKE["report"]) == []


def test_paper_grid_dag(tmp_path):
    cells = grid_cells(PAPER)
    assert len(cells) == PAPER_TRAIN_JOBS
    groups = {(b, r) for b, r, _, _ in cells}
    assert len(groups) == PAPER_AGGREGATES
    proc = snakemake(tmp_path, "--dry-run")  # default target: the report and the aggregates
    assert proc.returncode == 0, output(proc)[-3000:]
    assert job_counts(proc) == {"train": PAPER_TRAIN_JOBS, "aggregate": PAPER_AGGREGATES,
                                "resolved_config": 1, "tables": 1, "figures": 1, "reproduction": 1,
                                "reference_check": 1, "all": 1,
                                "total": PAPER_TRAIN_JOBS + PAPER_AGGREGATES + 6}
    # The paper scale's report is at the top level (the documented `snakemake
    # results/table3.tex`); its aggregates, config and logs under results/paper/.
    files = job_files(proc)
    report = report_files("results")
    for rule in ("tables", "figures", "reproduction", "reference_check"):
        assert files[rule] == report[rule] | {f"results/paper/logs/{rule}.log"}, rule
    assert {"results/table3.tex", "results/per_task.tex", "results/figures/curves.pdf",
            "results/figures/heatmap.png", "results/reproduction.csv"} <= files["tables"] | \
        files["figures"] | files["reproduction"]
    assert files["aggregate"] >= {f"results/paper/aggregate/{g}.csv"
                                  for g in ("MT10-v1", "MT10-v2", "MT50-v1", "MT50-v2")}
    assert dry_run(tmp_path, "results/table3.tex") == {
        "train": PAPER_TRAIN_JOBS, "resolved_config": 1, "tables": 1,
        "total": PAPER_TRAIN_JOBS + 2}
    assert not (tmp_path / "results").exists()


def test_partial_report_never_trains(tmp_path):
    """`snakemake partial_report` renders from what exists; it schedules no training job."""
    proc = snakemake(tmp_path, "--dry-run", "partial_report")
    assert proc.returncode == 0, output(proc)[-3000:]
    assert job_counts(proc) == {"resolved_config": 1, "partial_report": 1, "total": 2}
    files = job_files(proc)["partial_report"]
    report = report_files("results/partial")
    assert files == set().union(*report.values()) | {
        "results/partial/partial_cells.csv", "results/partial/figures/partial_cells.csv",
        "results/paper/logs/partial_report.log"}


@pytest.mark.slow
def test_partial_report_of_the_cpu_study_reruns_when_a_cell_trains_further(tmp_path):
    tracked = subprocess.run(["git", "ls-files", "-z", "results/runs/cpu"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split("\0")
    for name in filter(None, tracked):
        dst = tmp_path / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, dst)
    cpu = str(REPO / "config/cpu.yaml")
    proc = snakemake(tmp_path, "--cores", "1", "partial_report", "--configfile", cpu, timeout=1200)
    assert proc.returncode == 0, output(proc)[-3000:]
    assert job_counts(proc) == {"resolved_config": 1, "partial_report": 1, "total": 2}
    report = tmp_path / "results" / "cpu" / "partial"
    assert "Partial report, 33 of 33 cells" in (report / "table3.tex").read_text()
    assert (report / "figures" / "curves.png").stat().st_size > 0
    assert "partial: seeds 0-2 to 600K env steps" in (report / "reproduction.csv").read_text()
    assert not (tmp_path / "results" / "cpu" / "table3.tex").exists()  # the full report untouched
    assert dry_run(tmp_path, "partial_report", "--configfile", cpu) == {}
    # a cell's trainer writes its checkpoint after an update: the partial report is out of date
    ckpt = tmp_path / "results/runs/cpu/MT10-v2/toppo/seed0/checkpoints/latest.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"")
    assert dry_run(tmp_path, "partial_report", "--configfile", cpu) == {"partial_report": 1, "total": 1}


def test_a_run_that_trains_prints_its_plan_first(tmp_path):
    """The plan (analysis.plan, the Snakefile's onstart) before any job: device cuda on this
    CPU machine, so the training job fails at once, after the plan was printed. One cell (a
    trainer process is seconds of the quick tier); tests/test_plan.py plans several."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without a GPU (the job would train)")
    cfg = write_config(tmp_path / "tiny.yaml", TINY.replace("scale: e2e", "scale: plan")
                       .replace("variants: [mtppo, toppo]", "variants: [toppo]"))
    proc = snakemake(tmp_path, "--cores", "2", "results/plan/table3.tex", "--configfile", str(cfg),
                     "--config", "device=cuda", timeout=600)
    assert proc.returncode != 0
    out = output(proc)
    assert out.index("Plan (scale plan, ") < out.index("rule train:")  # before any job starts
    plan = out[out.index("Plan (scale plan, "):]
    assert plan.splitlines()[0].endswith(": 1 cell to train (main 1)")
    assert "  each job: device cpu; MT10 1 thread, 20K env steps" in plan
    # the documented model (tests/test_plan.py has its numbers): evaluation and env builds in
    assert re.search(r"\n  MT10 rate \d+ env steps/s: docs/throughput.md \(another machine: "
                     r"H200 node, cpu with 1 thread\), toppo rows, with 2 evaluations \(at "
                     r"most 2K env steps\), 2 env builds of 10 s.*; expect within 2x\n", plan), plan
    assert "No GPU here: device cuda jobs will fail (the trainer needs CUDA)." in plan
    assert "paper-scale" not in plan  # 20K steps per cell


def test_one_cell_is_one_job(tmp_path):
    target = "results/runs/paper/MT50-v2/mtppo_popart/seed3/eval.csv"
    proc = snakemake(tmp_path, "--dry-run", target)
    assert proc.returncode == 0, output(proc)[-3000:]
    assert job_counts(proc) == {"train": 1, "total": 1}
    out = output(proc)
    assert "wildcards: benchmark=MT50, reward=v2, variant=mtppo_popart, seed=3" in out
    assert "mem_mb=32000" in out and "runtime=2880" in out and "gpu=1" in out
    assert dry_run(tmp_path, "--force", target) == {"train": 1, "total": 1}
    # a variant that does not exist has no rule
    proc = snakemake(tmp_path, "--dry-run", "results/runs/paper/MT50-v2/nonesuch/seed3/eval.csv")
    assert proc.returncode != 0 and "MissingRuleException" in output(proc)


def test_smoke_config_dag(tmp_path):
    smoke = str(REPO / "config/smoke.yaml")
    counts = dry_run(tmp_path, "results/smoke/table3.tex", "--configfile", smoke)
    assert counts == {"train": len(grid_cells(SMOKE)), "resolved_config": 1, "tables": 1,
                      "total": len(grid_cells(SMOKE)) + 2}
    assert len(grid_cells(SMOKE)) == 4
    assert {b for g in SMOKE["grid"] for b in g["benchmarks"]} == {"MT10"}
    assert {r for g in SMOKE["grid"] for r in g["reward_versions"]} == {"v1"}

    # Every file of every job is the smoke scale's: its report under results/smoke/, nothing
    # of the committed CPU study (results/cpu/, results/runs/cpu/) nor the paper's report.
    proc = snakemake(tmp_path, "--dry-run", "--configfile", smoke)
    assert proc.returncode == 0, output(proc)[-3000:]
    files = job_files(proc)
    everything = set().union(*files.values())
    assert {p for p in everything
            if not p.startswith(("results/smoke/", "results/runs/smoke/"))} == set()
    report = report_files("results/smoke")
    for rule in ("tables", "figures", "reproduction"):
        assert files[rule] == report[rule] | {f"results/smoke/logs/{rule}.log"}, rule
    assert {"results/smoke/table3.tex", "results/smoke/figures/curves.png",
            "results/smoke/reproduction.tex"} <= everything
    top_level = set().union(*report_files("results").values())
    assert "results/table3.tex" in top_level and not everything & top_level


def test_cpu_config_writes_its_report_under_results_cpu(tmp_path):
    assert CPU["scale"] == "cpu"
    proc = snakemake(tmp_path, "--dry-run", "--configfile", str(REPO / "config/cpu.yaml"))
    assert proc.returncode == 0, output(proc)[-3000:]
    assert job_counts(proc)["train"] == len(grid_cells(CPU)) == 33
    files = job_files(proc)
    report = report_files("results/cpu")
    for rule in ("tables", "figures", "reproduction", "reference_check"):
        assert files[rule] == report[rule] | {f"results/cpu/logs/{rule}.log"}, rule
    assert "results/cpu/table3.tex" in files["tables"]
    assert "results/cpu/figures/gradnorm_spread.pdf" in files["figures"]
    assert {p for p in set().union(*files.values())
            if not p.startswith(("results/cpu/", "results/runs/cpu/"))} == set()


def test_a_fresh_checkout_of_the_cpu_study_trains_nothing(tmp_path):
    """Git keeps no file times: however a checkout orders them (here every committed run file
    is older than the workflow's scripts, the worst case), the committed CPU study's cells are
    found done and only the report is rendered (profiles/default: no "code" rerun trigger)."""
    tracked = subprocess.run(["git", "ls-files", "-z", "results/runs/cpu"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split("\0")
    assert len([n for n in tracked if n.endswith("/eval.csv")]) == len(grid_cells(CPU))
    for name in filter(None, tracked):
        dst = tmp_path / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, dst)
        os.utime(dst, (946684800, 946684800))  # 2000-01-01
    counts = dry_run(tmp_path, "--configfile", str(REPO / "config/cpu.yaml"))
    assert "train" not in counts and counts["tables"] == counts["figures"] == 1, counts


# cpu in the slow tier: the quick tier asks smoke, another scale with its own folder, and paper
@pytest.mark.parametrize(("configfile", "target", "message"), [
    ("config/smoke.yaml", "results/table3.tex",
     "scale smoke writes its report under results/smoke/: ask for results/smoke/table3.tex, "
     "not results/table3.tex"),
    pytest.param("config/cpu.yaml", "results/figures/curves.png",
                 "scale cpu writes its report under results/cpu/: ask for results/cpu/figures/curves.png, "
                 "not results/figures/curves.png", marks=pytest.mark.slow),
    (None, "results/paper/reproduction.tex",
     "scale paper writes its report under results/: ask for results/reproduction.tex, "
     "not results/paper/reproduction.tex"),
])
def test_report_asked_where_the_scale_does_not_write_it(tmp_path, configfile, target, message):
    args = ["--configfile", str(REPO / configfile)] if configfile else []
    proc = snakemake(tmp_path, "--dry-run", target, *args)
    assert proc.returncode != 0
    assert message in output(proc), output(proc)[-3000:]
    assert not (tmp_path / "results").exists()


def test_slurm_profile_dry_run(tmp_path):
    proc = snakemake(tmp_path, "--workflow-profile", str(REPO / "profiles/slurm"), "--dry-run",
                     "results/runs/paper/MT10-v1/toppo/seed0/eval.csv")
    assert proc.returncode == 0, output(proc)[-3000:]
    out = output(proc)
    assert "slurm_partition=gpu" in out and "gpu=1" in out and "runtime=2880" in out


# ---------------------------------------------------------------------- validation
GROUP = "grid:\n  - {name: main, benchmarks: [MT10], reward_versions: [v1], variants: [mtppo], %s}\n"


BAD_CONFIGS = [
    (GROUP % "seeds: -1", "seeds"),
    (GROUP % "seeds: 2, seed_count: 3", "seed_count"),
    (GROUP % "seeds: 2" + "bugdets: {MT10: 5}\n", "bugdets"),
    (GROUP % "seeds: 2" + "device: tpu\n", "tpu"),
    (GROUP % "seeds: 2" + "budgets: {MT10: 0}\n", "budgets"),
    (GROUP % "seeds: 2" + "report: {bootstrap_reps: 0}\n", "bootstrap_reps"),
    (GROUP % "seeds: 2" + "trainer_overrides: {eval_episods: 5}\n", "trainer_overrides.eval_episods"),
    (GROUP % "seeds: 2" + "trainer_overrides: {total_steps: 5}\n", "trainer_overrides.total_steps"),
    (GROUP % "seeds: 2" + "trainer_overrides: {num_minibatches: 20000}\n", "num_minibatches"),
    (GROUP % "seeds: 2" + "benchmark_overrides: {MT10: {eval_episods: 5}}\n", "benchmark_overrides.MT10.eval_episods"),
    (GROUP % "seeds: 2" + "benchmark_overrides: {MT10: {seed: 3}}\n", "benchmark_overrides.MT10.seed"),
    (GROUP % "seeds: 2" + "benchmark_overrides: {MT20: {num_epochs: 2}}\n", "MT20"),
    (GROUP % "seeds: 2" + "benchmark_overrides: {MT10: {num_minibatches: 20000}}\n", "num_minibatches"),
    (GROUP % "seeds: 2" + "wandb: {project: toppo, mode: cloud}\n", "cloud"),
    (GROUP % "seeds: 2" + "numerics: fast\n", "fast"),
    (GROUP % "seeds: 2" + "wandb: {entity: me}\n", "project"),
    (GROUP % "seeds: 2" + "trainer_overrides: {wandb_project: toppo}\n",
     "trainer_overrides.wandb_project: set by the workflow from wandb.project"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS)
def test_bad_config_is_a_clear_error(tmp_path, text, expected):
    """What the Snakefile checks (common.smk: the merged config, then its grid), in this
    process; a Snakemake run shows the same error (the slow test below, and here
    tests/test_config_errors.py and test_unknown_variant_is_named)."""
    bad = write_config(tmp_path / "bad.yaml", text)
    with pytest.raises(GridError, match=re.escape(expected)):
        Grid(load_config([bad]))


@pytest.mark.slow  # a Snakemake process for each config
@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS)
def test_snakemake_stops_on_a_bad_config_with_its_error(tmp_path, text, expected):
    bad = write_config(tmp_path / "bad.yaml", text)
    proc = snakemake(tmp_path, "--dry-run", "--configfile", str(bad))
    assert proc.returncode != 0
    assert expected in output(proc), output(proc)[-3000:]


def test_live_curve_settings_reach_the_trainer_as_execution_only_fields():
    from toppo.specs.grid import Grid, live_settings

    assert live_settings(PAPER) == {"tensorboard": True}
    live = {**PAPER, "tensorboard": False, "wandb": {"project": "toppo", "mode": "offline"}}
    assert live_settings(live) == {"tensorboard": False, "wandb_project": "toppo", "wandb_mode": "offline"}
    cell = Grid(PAPER).cells[0]
    cfg, cfg_live = Grid(PAPER).train_config(cell), Grid(live).train_config(cell)
    assert (cfg_live.tensorboard, cfg_live.wandb_project, cfg_live.wandb_mode) == (False, "toppo", "offline")
    assert cfg_live.config_hash() == cfg.config_hash()  # execution only: re-runs nothing


def test_the_recorded_studies_run_portable_and_the_paper_grid_the_trainers_default():
    schema = yaml.safe_load(CONFIG_SCHEMA.read_text())
    assert schema["properties"]["numerics"]["enum"] == list(numerics_mode.MODES)
    assert CPU["numerics"] == SMOKE["numerics"] == ENVPOOL_PARITY["numerics"] == "portable"
    assert "numerics" not in PAPER and numerics_mode.DEFAULT_MODE == "native"
    assert Grid(PAPER).numerics is None


def train_cell_script():
    """workflow/scripts/train_cell.py as a module (it runs only under Snakemake's `snakemake`)."""
    spec = importlib.util.spec_from_file_location("train_cell", REPO / "workflow" / "scripts" / "train_cell.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("configfiles", "extra", "expected"), [
    ([], "", None),  # the paper grid: the trainer's default (TOPPO_NUMERICS, else native)
    (["config/cpu.yaml"], "", "portable"),
    (["config/smoke.yaml"], "retrain: true\n", "portable"),
    (["config/cpu.yaml"], "numerics: native\n", "native"),
])
def test_the_workflow_passes_its_numerics_key_to_the_trainer(tmp_path, configfiles, extra, expected):
    from toppo.train import build_parser

    over = write_config(tmp_path / "over.yaml", extra or "{}\n")
    grid = Grid(load_config([REPO / f for f in configfiles] + [over]))
    cmd = train_cell_script().trainer_command(grid, "toppo", tmp_path / "cell.yaml", tmp_path / "run")
    assert cmd[1:3] == ["-m", "toppo.train"]
    args = build_parser().parse_args(cmd[3:])  # as the trainer reads it
    assert args.numerics == expected and ("--numerics" in cmd) == (expected is not None)
    assert args.retrain == ("retrain" in extra) and args.variant == "toppo"
    assert (args.config, args.out_dir) == (tmp_path / "cell.yaml", tmp_path / "run")
    cell = grid.cells[0]  # not hashed: the cells' configs are the same in either mode
    native = Grid({**grid.config, "numerics": "native"})
    assert grid.train_config(cell).config_hash() == native.train_config(cell).config_hash()


def test_unknown_variant_is_named(tmp_path):
    bad = write_config(tmp_path / "bad.yaml", """\
        grid:
          - {name: main, benchmarks: [MT10], reward_versions: [v1], variants: [toppo_x], seeds: 1}
        """)
    proc = snakemake(tmp_path, "--dry-run", "--configfile", str(bad))
    assert proc.returncode != 0 and "unknown variant 'toppo_x'" in output(proc)


def test_lint(tmp_path):
    proc = snakemake(tmp_path, "--lint")
    assert proc.returncode == 0, output(proc)[-3000:]
    assert "Congratulations" in output(proc)


# ---------------------------------------------------------------------- end to end
TINY = tiny_dag_config("e2e", rollout_steps_per_task=1000, num_minibatches=4, mem_mb=2000,
                       runtime=30, max_episode_steps=100)


@pytest.mark.slow
def test_end_to_end_smallest_dag(tmp_path):
    cfg = write_config(tmp_path / "tiny.yaml", TINY)
    proc = snakemake(tmp_path, "--cores", "2", "--configfile", str(cfg), timeout=1200)
    assert proc.returncode == 0, output(proc)[-5000:]
    # the trainers' progress lines reach the terminal, tagged with their cell
    assert "MT10-v1/toppo/seed0 [toppo" in output(proc) and "ETA" in output(proc)

    report = tmp_path / "results" / "e2e"  # a non-paper scale's report: results/{scale}/
    table = (report / "table3.tex").read_text()
    for token in ("\\begin{table", "\\begin{tabular", "\\toprule", "\\end{tabular}", "\\end{table"):
        assert token in table, token
    assert "e2e" in table  # the table states its scale
    for fig in ("curves", "worst_k", "gradnorm_spread", "heatmap"):
        assert (report / "figures" / f"{fig}.png").stat().st_size > 0
    # the paper's numbers against ours: at this scale every one is not comparable for budget
    with open(report / "reproduction.csv", newline="") as f:
        verdicts = [r["verdict"] for r in csv.DictReader(f)]
    assert len(verdicts) == 16 and all(v.startswith("not comparable: budget") for v in verdicts)
    assert "e2e" in (report / "reproduction.tex").read_text()
    assert not (tmp_path / "results" / "table3.tex").exists()

    run = tmp_path / "results" / "runs" / "e2e" / "MT10-v1" / "toppo" / "seed0"
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
    assert (run / "checkpoints" / "latest.pt").exists() and (run / "benchmark.tsv").exists()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))  # tensorboard: true (default)
    assert "tensorboard=true" in (run / "train.log").read_text()  # passed by the job, not a param
    agg = (tmp_path / "results" / "e2e" / "aggregate" / "MT10-v1.csv").read_text().splitlines()
    assert len(agg) == 1 + 2 * 2 * 10  # header + 2 runs x 2 evaluations x 10 tasks
    effective = yaml.safe_load((tmp_path / "results" / "e2e" / "config.yaml").read_text())
    assert effective["scale"] == "e2e" and effective["report"]["worst_k"] == [3]

    # Up to date: nothing to do. A new cell in the grid is the only training job; a changed
    # trainer override re-runs every cell (its params changed), a budget of a benchmark the
    # grid does not use re-runs no training.
    assert dry_run(tmp_path, "--configfile", str(cfg)) == {}
    base = yaml.safe_load(cfg.read_text())

    def variant_config(name: str, change) -> str:
        data = yaml.safe_load(cfg.read_text())
        change(data)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)

    extra_cell = variant_config("extra", lambda d: d["grid"].append(
        {"name": "x", "benchmarks": ["MT10"], "reward_versions": ["v1"], "variants": ["toppo"],
         "seeds": [1]}))
    assert dry_run(tmp_path, "--configfile", extra_cell)["train"] == 1
    more_episodes = variant_config("episodes", lambda d: d["trainer_overrides"].update(
        eval_episodes=2))
    proc = snakemake(tmp_path, "--dry-run", "--configfile", more_episodes)
    assert job_counts(proc)["train"] == 2 and "params have changed" in output(proc)
    other_budget = variant_config("mt50", lambda d: d["budgets"].update(MT50=5))
    assert "train" not in dry_run(tmp_path, "--configfile", other_budget)  # only re-rendering
    assert base["budgets"] == {"MT10": 20000}

    # Forcing a finished cell re-runs only it: its outputs are update()d, not deleted, so the
    # trainer finds the run complete and does nothing; with retrain=true it trains from scratch.
    target = "results/runs/e2e/MT10-v1/toppo/seed0/eval.csv"
    record = (run / "eval.csv").read_bytes()
    proc = snakemake(tmp_path, "--cores", "2", "--force", target, "--configfile", str(cfg))
    assert proc.returncode == 0, output(proc)[-3000:]
    assert job_counts(proc) == {"train": 1, "total": 1}
    log = (run / "train.log").read_text()
    assert "nothing to do" in log.split("$ ")[-1] and (run / "eval.csv").read_bytes() == record
    proc = snakemake(tmp_path, "--cores", "2", "--force", target, "--configfile", str(cfg),
                     "--config", "retrain=true")
    assert proc.returncode == 0, output(proc)[-3000:]
    log = (run / "train.log").read_text()
    assert "retrain: moved the finished run" in log and "resumed from" not in log.split("$ ")[-1]
    assert (run / "checkpoints" / "previous.pt").exists()  # the new run's rotation
    (aside,) = (run / "superseded").iterdir()  # the finished run, checkpoints and all
    assert (aside / "checkpoints" / "latest.pt").exists()
