"""The plan printed before a run that trains (analysis.plan): cells per group, each job's
device and threads, hours from measured rates with their source, and the smaller scales
where paper budgets would train on a CPU."""

from pathlib import Path

from analysis.plan import documented_rate, plan_text
from toppo.grid import Grid, load_config

REPO = Path(__file__).resolve().parents[1]


def test_paper_grid_on_a_gpu_cluster():
    grid = Grid(load_config())
    text = plan_text(grid, grid.cells, gpu=True)
    # rates of docs/throughput.md (H200, cuda): MT10 toppo 1,436, mtppo 1,390; MT50 toppo 1,227
    # (also every other variant's), mtppo 1,522 env steps/s, each also its _ref row's; 20M and
    # 100M steps per cell. MT10: 30 mtppo(_ref) and 30 toppo(_ref) cells; MT50: 30 mtppo(_ref)
    # cells and 290 of the other variants.
    hours = 30 * (20e6 / 1436 + 20e6 / 1390 + 100e6 / 1522) / 3600 + 290 * 100e6 / 1227 / 3600
    assert text == (
        "Plan (scale paper, config/config.yaml): 380 cells to train (main 80, cumulative 100, "
        "single 70, combiners 160, reference_check 80)\n"
        "  each job: device cuda (1 GPU); MT10 8 threads, 20M env steps; MT50 16 threads, 100M env steps\n"
        f"  expected: MT10 3.9 h to 4.0 h, MT50 18.3 h to 22.6 h per cell; {hours:,.1f} node-hours in all\n"
        "  MT10 rate 1,390 to 1,436 env steps/s: docs/throughput.md (H200 node, cuda with 16 threads, "
        "no evaluation), mtppo and toppo rows\n"
        "  MT50 rate 1,227 to 1,522 env steps/s: docs/throughput.md (H200 node, cuda with 16 threads, "
        "no evaluation), mtppo and toppo rows\n")
    assert f"{hours:,.1f}" == "7,348.7"


def test_paper_grid_on_a_two_core_laptop_says_so_and_names_the_smaller_scales():
    grid = Grid(load_config())
    text = plan_text(grid, grid.cells, gpu=False, cores=2)
    assert "  each job: device cpu; MT10 2 threads, 20M env steps; MT50 2 threads, 100M env steps\n" in text
    assert "days at 1 job at once" in text
    assert "No GPU here: device auto trains on this machine's CPU." in text
    assert text.endswith("These are paper-scale budgets on a CPU. For a run that fits a CPU machine "
                         "use --configfile config/smoke.yaml (4 cells, minutes each on a CPU) or "
                         "config/cpu.yaml (33 cells, about 4 h on 2 cores).\n")


def test_rates_of_finished_cells_come_first():
    grid = Grid(load_config([REPO / "config" / "cpu.yaml"]))
    text = plan_text(grid, [c for c in grid.cells if c.benchmark == "MT50"][:2], root=REPO, gpu=False,
                     cores=2)
    assert "2 cells to train (diagnosis 2)" in text.splitlines()[0]
    assert "  MT50 rate" in text and "the median of 21 finished MT50 cells' benchmark.tsv" in text
    assert "paper-scale" not in text and "No GPU" not in text  # device: cpu


def test_other_variants_take_toppos_documented_rate():
    rate = documented_rate("MT50", "mtppo_lnc_pcga", "cpu", 8)
    assert (rate.env_steps_per_s, rate.what) == (1220.0, "toppo")
    assert rate.source == "docs/throughput.md (H200 node, cpu with 8 threads, no evaluation)"
    assert documented_rate("MT10", "mtppo", "cpu", 3).env_steps_per_s == 1264.0  # nearest: 1 thread
    # a reference row takes its paper row's rate (measured under that name before issue 27)
    assert documented_rate("MT10", "mtppo_ref", "cpu", 3) == documented_rate("MT10", "mtppo", "cpu", 3)
