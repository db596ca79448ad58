"""How low the analysis benchmark could go if the figures were not what they are.

    taskset -c 0 .venv/bin/python benchmarks/measurements/analysis-floor-2026-12-07/floor.py RUNS {as_is,no_layout,no_save}

RUNS is the ``runs`` folder an earlier ``bench_analysis.py --keep DIR`` wrote (DIR/runs). The
pipeline is bench_analysis.py's (import, load, tables, figures), run three ways:
``as_is`` (what the benchmark times), ``no_layout`` (every figure saved with its layout engine
off: no constrained layout, so different bytes), ``no_save`` (the figures built, never drawn
or saved). A measurement of issue 28's 5 s goal, not a mode of the product.
"""

import time

START = (time.perf_counter(), time.process_time())

import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_analysis  # noqa: E402  (imports analysis, as the benchmark does)
import matplotlib.pyplot as plt  # noqa: E402

from analysis import figures, load_report_spec  # noqa: E402

runs, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "no_layout":
    real_save = figures.save_figure

    def save_without_layout(fig, out_dir, name):
        fig.set_layout_engine(None)
        return real_save(fig, out_dir, name)

    figures.save_figure = save_without_layout
elif mode == "no_save":
    figures.save_figure = lambda fig, out_dir, name: plt.close(fig)
elif mode != "as_is":
    sys.exit(f"mode {mode!r}: one of as_is, no_layout, no_save")

stages = bench_analysis.Stages()
stages.times["import"] = (time.perf_counter() - START[0], time.process_time() - START[1])
spec = load_report_spec()
with tempfile.TemporaryDirectory() as tmp:
    bench_analysis.pipeline(runs, Path(tmp), spec, spec["bootstrap_reps"], stages)
print(f"mode {mode}")
stages.report()
