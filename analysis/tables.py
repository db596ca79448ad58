"""The paper's tables as booktabs LaTeX, computed from run logs.

Each function returns the LaTeX of one ``table`` environment (needs ``\\usepackage{booktabs}``);
:func:`render_all` writes one file per name in ``TABLE_FILES``. Every number comes from
``analysis.protocols.RunSet`` (so tables and figures share protocol and metric code), and
every caption states the seeds, the budget actually reached, the protocol and the scale.

Which rows appear, and under which protocol, is the report spec (the ``report:`` section
of the workflow config, see ``analysis/default_report.yaml``), never this code.

Published baselines whose protocol differs from the table's are shown marked with a dagger
and a footnote ("different protocol: ..."), never bolded or compared; so are those whose
source does not state its protocol (``unstated`` in the baselines file; footnote "protocol
not stated by the source"). A baseline named in the spec without a row for that benchmark
and reward version is listed in a footnote. Which published row stands beside ours is
``analysis.protocols.pick_published``; the LaTeX (escaping, cells, the ``table``
environment) is ``analysis.latex``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import ablation_rows, logs, metrics
from analysis import diagnosis as diag
from analysis.latex import (
    DAGGER,
    DDAGGER,
    PILCROW,
    SECTION,
    Table,
    best_flags,
    fmt_cell,
    fmt_num,
    fmt_sci,
    latex_escape,
    report_cell,
    tt,
)
from analysis.numfmt import is_missing
from analysis.partial import write_coverage
from analysis.protocol_spec import PROTOCOL_NAMES, Protocol
from analysis.protocols import (
    UNSTATED_TEXT,
    RunSet,
    as_protocol,
    describe,
    fmt_count,
    phrase,
    pick_published,
    published_protocol_text,
    published_unstated,
    same_protocol,
    score_matrix,
)
from analysis.report_files import TABLE_FILES
from toppo.specs.registry import COMBINER_PAIRS, LABELS

DISPERSION_PHRASES = {"std": " $\\pm$ std over seeds", "sem": " $\\pm$ s.e.m.\\ over seeds",
                     "ci95": " with its 95\\% stratified-bootstrap CI over seeds", "none": ""}
DISPERSION_HEADS = {"std": "$\\pm$ std", "sem": "$\\pm$ s.e.m.", "ci95": "[95\\% CI]", "none": ""}
NO_RUNS = "no runs"


# ---------------------------------------------------------------- shared pieces
def _runset(evals: pd.DataFrame | RunSet, spec: dict, manifests: pd.DataFrame | None = None) -> RunSet:
    """A RunSet from a RunSet or an evals frame (manifests read from its run_dir column if not given)."""
    if isinstance(evals, RunSet):
        return evals
    if manifests is None and not evals.empty and "run_dir" in evals:
        manifests = logs.load_manifests(sorted(evals["run_dir"].unique()), missing_ok=True)
    return RunSet(evals, manifests, reps=spec.get("bootstrap_reps", metrics.DEFAULT_REPS),
                  seed=spec.get("bootstrap_seed", 0))


def _label(variant: str) -> str:
    return latex_escape(LABELS.get(variant, variant))


def _scale(scale: str, runs: RunSet | None = None) -> str:
    """The caption's scale, a partial report's cells and budget (analysis.partial), and the
    runs trained on another env backend than metaworld's (RunSet.backend_note)."""
    notes = [] if runs is None else [n for n in (runs.partial_note(), runs.backend_note()) if n]
    return f"scale {tt(scale)}." + "".join(f" {latex_escape(n[0].upper() + n[1:])}." for n in notes)


def _protocol_words(protocol) -> str:
    """"IQM $\\pm$ std over seeds of the success rate (\\%) at the final evaluation (protocol ...)"."""
    p = as_protocol(protocol)
    stat = metrics.statistic(p.aggregator).label
    return f"{stat}{DISPERSION_PHRASES[p.dispersion]} of the success rate (\\%) {phrase(p)} (protocol {tt(describe(p))})"


def _norm(x: Any) -> str:
    return "" if is_missing(x) else str(x).strip().lower()


# ---------------------------------------------------------------- table 3
def block_setting(t3: dict, block: dict) -> tuple[Protocol, str]:
    """A table-3 block's protocol and reward version: its own ``protocol`` / ``reward_version``
    keys, else the table's."""
    return as_protocol(block.get("protocol", t3["protocol"])), block.get("reward_version", t3["reward_version"])


def table3(evals: pd.DataFrame | RunSet, baselines_df: pd.DataFrame | None, spec: dict, scale: str,
           manifests: pd.DataFrame | None = None) -> str:
    """TOPPO vs published Meta-World+ baselines (``spec['table3']``): one block per benchmark."""
    runs = _runset(evals, spec, manifests)
    t3 = spec["table3"]
    p0, rv0 = as_protocol(t3["protocol"]), t3["reward_version"]
    stat_label = metrics.statistic(p0.aggregator).label
    baselines = baselines_df if baselines_df is not None else pd.DataFrame(columns=["method", "benchmark",
                                                                                   "reward_version"])
    table = Table("lrrl", ["Method", "Params", "Budget", f"Success ({stat_label} {DISPERSION_HEADS[p0.dispersion]})"],
                  caption="", label="tab:table3")
    facts, other_protocol, unstated, other_disp, skipped, sources = [], [], [], [], [], []
    approx, unverified, other_blocks = [], [], []
    for block in t3["blocks"]:
        bench = block["benchmark"]
        p, rv = block_setting(t3, block)
        own_setting = (p, rv) != (p0, rv0)
        ours = [(v, runs.report(bench, rv, v, p)) for v in block.get("ours", [])]
        budget = max((r["budget_reached"] for _, r in ours if r), default=None)
        entries = []  # (cells without value, value cell args, comparable)
        for variant, rep in ours:
            params = fmt_count(runs.param_total(bench, rv, variant))
            if rep is None:
                entries.append(([f"{_label(variant)} (ours)", "--", "--"], None, False))
            else:
                entries.append(([f"{_label(variant)} (ours)", params, fmt_count(rep["budget_reached"])], rep, True))
        for method in block.get("baselines", []):
            row = pick_published(baselines, method, bench, rv, budget, p, block.get("prefer_source"))
            if row is None:
                skipped.append((rv, f"{latex_escape(method)} ({bench})"))
                continue
            same = same_protocol(row, p)
            kind = _norm(row.get("dispersion_kind")) or p.dispersion
            mark = "" if same else DAGGER
            value_kind = _norm(row.get("value_kind"))
            if value_kind in ("read_off", "derived"):
                mark += SECTION
                approx.append(f"{latex_escape(method)} ({bench} {rv}) $\\pm${fmt_num(row.get('tolerance'), 2)}")
            elif value_kind == "unverified":
                mark += PILCROW
                unverified.append(f"{latex_escape(method)} ({bench} {rv})")
            if same and kind != p.dispersion and not is_missing(row.get("dispersion")):
                mark += DDAGGER
                other_disp.append(f"{latex_escape(method)} ({bench}): {latex_escape(kind)}"
                                  + ("" if not own_setting else f" (block: {p.dispersion})"))
            if not same and published_unstated(row):
                unstated.append(f"{latex_escape(method)} ({bench})")
            elif not same:
                other_protocol.append(f"{latex_escape(method)} ({bench}): {tt(published_protocol_text(row))}")
            # published spreads are shown as "+- number" whatever their kind (the footnote names it)
            rep = {"value": float(row["value"]), "dispersion": pd.to_numeric(row.get("dispersion"), errors="coerce"),
                   "dispersion_kind": "std", "ci_low": None, "ci_high": None}
            n_seeds = row.get("n_seeds")
            sources.append(f"{latex_escape(method)} {'?' if is_missing(n_seeds) else int(n_seeds)}")
            entries.append(([latex_escape(method) + mark, fmt_count(row.get("param_count")),
                             fmt_count(row.get("budget_steps"))], rep, same))
        heading = f"{latex_escape(bench)} ({latex_escape(rv.upper())} rewards)"
        if own_setting:
            heading += f", {tt(describe(p))}"
            other_blocks.append(f"{heading}: {_protocol_words(p)}")
        table.group(heading)
        flags = best_flags([r["value"] if (r is not None and ok) else None for _, r, ok in entries])
        for (cells, rep, _), bold in zip(entries, flags, strict=True):
            table.rows.append(cells + ([NO_RUNS] if rep is None else [report_cell(rep, bold=bold)]))
        facts.append(f"{latex_escape(bench)}: {runs.summary([r for _, r in ours])}")
    table.caption = (f"Meta-World+ with {latex_escape(rv0.upper())} rewards: {_protocol_words(p0)}, "
                     f"TOPPO against published baselines"
                     + (f" (a block whose heading names a protocol reports under it: {'; '.join(other_blocks)})"
                        if other_blocks else "")
                     + f". Ours: {'; '.join(facts)}; {_scale(scale, runs)} Best per block in bold.")
    if sources:
        table.notes.append("Published rows from the baselines file (seeds: "
                           + ", ".join(dict.fromkeys(sources)) + ").")
    if other_protocol:
        table.notes.append(f"{DAGGER} different protocol, not compared: " + "; ".join(other_protocol) + ".")
    if unstated:
        table.notes.append(f"{DAGGER} {UNSTATED_TEXT}, not compared: " + "; ".join(unstated) + ".")
    if other_disp:
        table.notes.append(f"{DDAGGER} published dispersion is not {p0.dispersion}: " + "; ".join(other_disp) + ".")
    if approx:
        table.notes.append(f"{SECTION} read off the source's figure or derived from its printed numbers, within: "
                           + "; ".join(approx) + ".")
    if unverified:
        table.notes.append(f"{PILCROW} transcribed from a secondary source, not verified against the cited one: "
                           + "; ".join(unverified) + ".")
    for rv in dict.fromkeys(r for r, _ in skipped):
        table.notes.append(f"No published row for {latex_escape(rv)}: " + ", ".join(m for r, m in skipped if r == rv)
                           + ".")
    return table.render()


# ---------------------------------------------------------------- ablations
def _ablation_setup(evals, spec, manifests):
    runs = _runset(evals, spec, manifests)
    ab = spec["ablations"]
    return runs, ab["benchmark"], ab["reward_version"], as_protocol(ab["protocol"])


def _worst_ks(runs: RunSet, bench: str, rv: str, variants: Sequence[str], spec: dict) -> tuple[list[int], list[str]]:
    """The spec's worst-k values that fit the benchmark's task count, and notes for the rest."""
    ks = [int(k) for k in spec.get("worst_k", [])]
    n_tasks = {runs.history(bench, rv, v).values.shape[1] for v in variants if runs.history(bench, rv, v)}
    if not n_tasks:
        return ks, []
    k_max = min(n_tasks)
    dropped = [k for k in ks if k > k_max]
    notes = [f"Worst-{k} not shown: {bench} has {k_max} tasks." for k in dropped]
    return [k for k in ks if k <= k_max], notes


def ablation_cumulative(evals: pd.DataFrame | RunSet, spec: dict, scale: str,
                        manifests: pd.DataFrame | None = None) -> str:
    """Cumulative ablation (``spec['ablations']['cumulative']``: MT-PPO -> ... -> TOPPO) and
    single-module rows (``...['single']``) under ``spec['ablations']``, with the spec's worst-k
    tail metrics; the cumulative rows once more for each of ``...['cumulative_also']`` (other
    reward versions: the paper has its cumulative table on V1 as well as V2)."""
    runs, bench, rv, p = _ablation_setup(evals, spec, manifests)
    cumulative, single = ablation_rows(spec, "cumulative"), ablation_rows(spec, "single")
    also = [r for r in spec["ablations"].get("cumulative_also", []) if r != rv]
    ks, notes = _worst_ks(runs, bench, rv, [*cumulative, *single], spec)
    stat_label = metrics.statistic(p.aggregator).label
    header = ["Variant", "Seeds", f"{stat_label} {DISPERSION_HEADS[p.dispersion]}", *[f"Worst-{k}" for k in ks]]
    table = Table("lr" + "l" * (1 + len(ks)), header, caption="", label="tab:ablation_cumulative",
                  size="\\small\\setlength{\\tabcolsep}{4pt}")
    used = []
    tag = (lambda r: f", {latex_escape(r.upper())}") if also else (lambda r: "")
    blocks = [(f"Cumulative{tag(rv)}: each row adds one module", rv, cumulative),
              *((f"Cumulative{tag(r)}: each row adds one module", r, cumulative) for r in also),
              (f"Single modules on MT-PPO{tag(rv)}", rv, single)]
    for title, block_rv, variants in blocks:
        table.group(title)
        columns = [[runs.report(bench, block_rv, v, p) for v in variants]]
        columns += [[runs.report(bench, block_rv, v, p, statistic=f"worst-{k}") for v in variants]
                    for k in ks]
        flags = [best_flags([r["value"] if r else None for r in col]) for col in columns]
        for i, variant in enumerate(variants):
            rep = columns[0][i]
            used.append(rep)
            if rep is None:
                table.rows.append([_label(variant), "--", NO_RUNS, *["--"] * len(ks)])
                continue
            table.rows.append([_label(variant), str(rep["n_seeds"]),
                               *[report_cell(col[i], bold=f[i]) for col, f in zip(columns, flags, strict=True)]])
    rewards = " and ".join(latex_escape(r.upper()) for r in [rv, *also])
    table.caption = (f"Ablations on {latex_escape(bench)} with {rewards} rewards: "
                     f"{_protocol_words(p)}; Worst-$k$: mean of each seed's $k$ lowest task success rates, "
                     f"averaged over seeds (same protocol and dispersion). "
                     f"{runs.summary(used)}; {_scale(scale, runs)} Best per column and block in bold.")
    table.notes += notes
    return table.render()


def ablation_combiners(evals: pd.DataFrame | RunSet, spec: dict, scale: str,
                       manifests: pd.DataFrame | None = None) -> str:
    """The actor-combiner x critic-combiner grid under ``spec['ablations']``: the cells of
    ``COMBINER_PAIRS`` (every pair of registered combiners) whose variants
    ``spec['ablations']['combiners']`` names."""
    runs, bench, rv, p = _ablation_setup(evals, spec, manifests)
    shown = set(ablation_rows(spec, "combiners"))
    grid = {cell: v for cell, v in COMBINER_PAIRS.items() if v in shown}
    actors = list(dict.fromkeys(a for a, _ in grid))
    critics = list(dict.fromkeys(c for _, c in grid))
    reports = {cell: runs.report(bench, rv, v, p) for cell, v in grid.items()}
    cells = list(reports)
    flags = dict(zip(cells, best_flags([reports[c]["value"] if reports[c] else None for c in cells]), strict=True))
    table = Table("l" + "l" * len(critics), ["Actor \\textbackslash{} critic", *[tt(c) for c in critics]],
                  caption="", label="tab:ablation_combiners")
    for a in actors:
        table.rows.append([tt(a), *[report_cell(reports.get((a, c)), bold=flags.get((a, c), False))
                                     for c in critics]])
    named = [f"({a}, {c}) is {_label(v)}" for (a, c), v in grid.items() if v in LABELS
             and not v.startswith("grid_")]
    missing = [f"({a}, {c})" for (a, c), r in reports.items() if r is None]
    table.caption = (f"Gradient combiners on top of PopArt + LN-c, {latex_escape(bench)} with "
                     f"{latex_escape(rv.upper())} rewards: {_protocol_words(p)}. Rows: actor combiner; "
                     f"columns: critic combiner. {runs.summary(list(reports.values()))}; "
                     f"{_scale(scale, runs)} Best cell in bold.")
    if named:
        table.notes.append("Named variants: " + "; ".join(named) + ".")
    if missing:
        table.notes.append("-- : no runs for " + ", ".join(missing) + ".")
    return table.render()


# ---------------------------------------------------------------- protocol breakdown
def breakdown_protocols(spec: dict) -> list:
    """The five protocols of the breakdown, sharing table 3's dispersion (last_n uses spec['last_n'])."""
    base = as_protocol(spec["table3"]["protocol"])
    return [dataclasses.replace(base, name=name, aggregator="mean",
                                last_n=int(spec["last_n"]) if name == "last_n" else None)
            for name in PROTOCOL_NAMES]


def protocol_breakdown(evals: pd.DataFrame | RunSet, spec: dict, scale: str,
                       manifests: pd.DataFrame | None = None) -> str:
    """Our variants under every protocol side by side: Mean, IQM and the worst-k metrics,
    for each benchmark of table 3 (its reward version and dispersion)."""
    runs = _runset(evals, spec, manifests)
    t3 = spec["table3"]
    protocols = breakdown_protocols(spec)
    disp = protocols[0].dispersion
    ks = [int(k) for k in spec.get("worst_k", [])]
    stats = ["mean", "iqm", *[f"worst-{k}" for k in ks]]
    table = Table("l" + "l" * len(stats), ["Protocol", *[metrics.statistic(s).label for s in stats]],
                  caption="", label="tab:protocols", size="\\small")
    used, too_few_tasks, too_few_evals, seen = [], False, False, set()
    for block in t3["blocks"]:
        bench, rv = block["benchmark"], block_setting(t3, block)[1]
        for variant in block.get("ours", []):
            if (bench, rv, variant) in seen:
                continue
            seen.add((bench, rv, variant))
            table.group(f"{_label(variant)}, {latex_escape(bench)} ({latex_escape(rv.upper())} rewards)")
            h = runs.history(bench, rv, variant)
            if h is None:
                table.rows.append([NO_RUNS, *["--"] * len(stats)])
                continue
            n_tasks, n_evals = h.values.shape[1:]
            for p in protocols:
                row = [tt(describe(p).split("/")[0])]
                if p.name == "last_n" and p.last_n > n_evals:
                    too_few_evals = True
                    table.rows.append(row + ["--"] * len(stats))
                    continue
                for s in stats:
                    if s.startswith("worst-") and int(s.split("-")[1]) > n_tasks:
                        too_few_tasks = True
                        row.append("--")
                        continue
                    rep = runs.report(bench, rv, variant, p, statistic=s)
                    used.append(rep)
                    row.append(report_cell(rep))
                table.rows.append(row)
    rvs = "/".join(dict.fromkeys(block_setting(t3, b)[1].upper() for b in t3["blocks"]))
    table.caption = (f"One run set, five evaluation protocols ({latex_escape(rvs)} rewards): "
                     "final = last evaluation; max\\_over\\_time = each (seed, task)'s best evaluation; "
                     "curve\\_peak = evaluation where the statistic over seeds and tasks peaks; "
                     "seed\\_peak = each seed's own peak evaluation; "
                     f"last\\_{protocols[-1].last_n} = mean of the last {protocols[-1].last_n} evaluations. "
                     f"Success rate (\\%){DISPERSION_PHRASES[disp]}; Worst-$k$ is per seed. "
                     f"{runs.summary(used)}; {_scale(scale, runs)}")
    if too_few_tasks:
        table.notes.append("-- : $k$ exceeds the benchmark's number of tasks.")
    if too_few_evals:
        table.notes.append(f"-- : fewer than {protocols[-1].last_n} evaluations for last\\_{protocols[-1].last_n}.")
    return table.render()


# ---------------------------------------------------------------- per task
def per_task(evals: pd.DataFrame | RunSet, spec: dict, scale: str, manifests: pd.DataFrame | None = None) -> str:
    """Success per task (rows) per variant (columns), one table per table-3 benchmark:
    mean over seeds $\\pm$ std under table 3's protocol name, best per task in bold."""
    runs = _runset(evals, spec, manifests)
    t3 = spec["table3"]
    p = dataclasses.replace(as_protocol(t3["protocol"]), aggregator="mean")
    out, seen = [], set()
    for block in t3["blocks"]:
        bench, variants = block["benchmark"], list(block.get("ours", []))
        rv = block_setting(t3, block)[1]
        if (bench, rv) in seen:
            continue
        seen.add((bench, rv))
        matrices, reps = {}, []
        for v in variants:
            h = runs.history(bench, rv, v)
            if h is not None:
                matrices[v] = (h, 100.0 * score_matrix(h, p)[0])
                reps.append(runs.report(bench, rv, v, p))
        table = Table("l" + "l" * len(variants), ["Task", *[_label(v) for v in variants]], caption="",
                      label=f"tab:per_task_{bench.lower()}" + ("" if rv == t3["reward_version"] else f"_{rv}"),
                      size="\\scriptsize")
        tasks = list(dict.fromkeys(t for h, _ in matrices.values() for t in h.tasks))
        if not tasks:
            table.rows.append([NO_RUNS, *["--"] * len(variants)])
        for task in tasks:
            vals, sds = [], []
            for v in variants:
                if v in matrices and task in matrices[v][0].tasks:
                    col = matrices[v][1][:, matrices[v][0].tasks.index(task)]
                    vals.append(float(col.mean()))
                    sds.append(float(col.std(ddof=1)) if col.size > 1 else float("nan"))
                else:
                    vals.append(None)
                    sds.append(None)
            flags = best_flags(vals)
            table.rows.append([latex_escape(task), *[fmt_cell(v, s, "std", bold=b)
                                                     for v, s, b in zip(vals, sds, flags, strict=True)]])
        table.caption = (f"Per-task success rate (\\%) on {latex_escape(bench)} with {latex_escape(rv.upper())} "
                         f"rewards: mean $\\pm$ std over seeds {phrase(p)} (protocol {tt(describe(p))}). "
                         f"{runs.summary(reps)}; {_scale(scale, runs)} Best per task in bold.")
        missing = [_label(v) for v in variants if v not in matrices]
        if missing and tasks:
            table.notes.append("No runs: " + ", ".join(missing) + ".")
        out.append(table.render())
    return "\n".join(out) if out else Table("l", ["Task"], "Per-task success: no benchmark in the spec.",
                                            "tab:per_task", rows=[[NO_RUNS]]).render()


def diagnosis_table(runs: RunSet, spec: dict, scale: str) -> str:
    """The critic-side diagnosis in the ablation setting, per cumulative variant: each
    statistic of ``analysis.diagnosis.TABLE`` as its per-seed median over updates, combined
    over seeds (geometric mean for ratios, mean otherwise) with [min, max] of the seeds."""
    bench, rv = spec["ablations"]["benchmark"], spec["ablations"]["reward_version"]
    header = ["Variant", "Seeds", "Updates", "Spread", "cos mean", "cos min", "Gram cond.", "Expl. var."]
    table = Table("lrr" + "l" * 5, header, caption="", label="tab:diagnosis",
                  size="\\small\\setlength{\\tabcolsep}{3pt}")
    steps = []
    for variant in ablation_rows(spec, "cumulative"):
        sums = {d.column: diag.run_summary(runs.train, bench, rv, variant, d) for d in diag.TABLE}
        have = [s for s in sums.values() if s is not None]
        if not have:
            table.rows.append([_label(variant), "--", "--", *[NO_RUNS if d is diag.TABLE[0] else "--"
                                                              for d in diag.TABLE]])
            continue
        steps.append(max(s["step"] for s in have))

        def cell(d: diag.Diagnostic) -> str:
            s = sums[d.column]
            if s is None:
                return "--"
            f = fmt_sci if d.log else (lambda x: f"{x:.2f}")
            return f"{f(s['center'])} {{\\scriptsize[{f(s['lo'])}, {f(s['hi'])}]}}"

        table.rows.append([_label(variant), str(max(s["n_seeds"] for s in have)),
                           str(max(s["n_updates"] for s in have)), *map(cell, diag.TABLE)])
    reached = (f"up to {fmt_count(max(steps))} env steps" if steps else "no runs")
    table.caption = (
        f"Critic-side diagnosis on {latex_escape(bench)} with {latex_escape(rv.upper())} rewards, "
        "per-task gradients of the critic body on a random sample of each task's rollout, every "
        "update: norm spread (max/min over tasks), mean and minimum pairwise cosine, condition "
        "number of their Gram matrix, and the critic's explained variance of the returns before "
        "the update. Each seed's median over its updates; geometric mean over seeds for spread "
        "and condition number, mean otherwise; [min, max] over seeds. A training diagnostic, no "
        f"evaluation protocol; {reached}; {_scale(scale, runs)}")
    return table.render()


# ---------------------------------------------------------------- all tables
def render_all(run_paths: Sequence[str | Path], spec: dict, baselines_path: str | Path | None,
               out_dir: str | Path, scale: str, reps: int | None = None, seed: int | None = None,
               log=print, partial: bool = False) -> list[Path]:
    """Write every table of ``TABLE_FILES`` as ``.tex``.

    ``reps`` / ``seed`` override the spec's bootstrap settings. Every file is written
    (atomically) even when some rows have no runs; those rows say so. ``partial``: from the
    cells evaluated so far (analysis.partial), with ``partial_cells.csv`` beside them.
    """
    spec = dict(spec)
    if reps is not None:
        spec["bootstrap_reps"] = reps
    if seed is not None:
        spec["bootstrap_seed"] = seed
    runs = RunSet.load(run_paths, reps=spec.get("bootstrap_reps", metrics.DEFAULT_REPS),
                       seed=spec.get("bootstrap_seed", 0), train=ablation_rows(spec, "cumulative"),
                       partial=partial)
    baselines = load_baselines_or_none(baselines_path)
    builders = {
        "table3": lambda: table3(runs, baselines, spec, scale),
        "ablation_cumulative": lambda: ablation_cumulative(runs, spec, scale),
        "ablation_combiners": lambda: ablation_combiners(runs, spec, scale),
        "protocols": lambda: protocol_breakdown(runs, spec, scale),
        "per_task": lambda: per_task(runs, spec, scale),
        "diagnosis": lambda: diagnosis_table(runs, spec, scale),
    }
    written = [] if runs.coverage is None else [write_coverage(runs, out_dir)]
    for name in TABLE_FILES:
        path = logs.write_text_atomic(Path(out_dir) / f"{name}.tex", builders[name]())
        written.append(path)
        if log:
            log(f"wrote {path}")
    return written


def load_baselines_or_none(path: str | Path | None) -> pd.DataFrame | None:
    """The validated baselines table (analysis.baselines), or None when no path is given."""
    if path is None:
        return None
    from analysis.baselines import load_baselines

    return load_baselines(path)
