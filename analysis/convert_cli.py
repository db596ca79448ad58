"""``python -m analysis convert {published,ours}``: compare with published numbers honestly.

``published`` re-expresses one row of the baselines table under our protocol, where that is
exact (dispersion kind, percent/fraction), and otherwise refuses (exit 2) saying why and what
to run instead. ``ours`` is that alternative: it re-reports our runs under an external
protocol (``analysis.protocols.report``), so the comparison is made in the published terms.

Exit codes: 0 done; 1 our run logs cannot be reported under the protocol (``ours``); 2 a
refused conversion, an invalid baselines file or a row selection that matches no / several
rows. Bad arguments are argparse errors (exit 2, with usage).

Standalone (same options): ``python -m analysis.convert_cli {published,ours} ...``.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from pathlib import Path
from typing import Any

from analysis.baselines import (
    BENCHMARKS,
    DEFAULT_PATH,
    BaselineError,
    SelectionError,
    describe_row,
    describe_rows,
    load_baselines,
    select,
)
from analysis.conversion import ConversionRefused, convert_published
from analysis.protocol_spec import FORMAT_HELP, REWARD_VERSIONS, Protocol, ProtocolSpecError

PROG = "python -m analysis convert"
DESCRIPTION = """\
published: re-express one row of the published-baselines table under our protocol, where that
           is exact (dispersion kind, percent/fraction); otherwise refuse (exit 2) saying why.
ours:      re-report our runs under an external protocol, the comparable direction.
Exit codes: 0 done, 1 our runs cannot be reported under the protocol, 2 refused / bad
baselines file / ambiguous row selection (argparse errors also exit 2)."""

PUBLISHED_EXAMPLES = """\
examples (published; rows of analysis/data/baselines.csv):
  # MOORE on MT50 with V2 rewards as rerun by Meta-World+ (line 13: final/iqm, 72.0), as a fraction:
  python -m analysis convert published --method MOORE --benchmark MT50 --reward-version v2 \\
      --budget 100000000 --to final/iqm/none --fraction
  # the same row as a mean: refused (exit 2), with the command that re-reports our runs instead:
  python -m analysis convert published --method MOORE --benchmark MT50 --reward-version v2 \\
      --budget 100000000 --to final/mean/std
  # several rows match (Meta-World+, line 11, and MOORE's own paper, line 18): pick one by
  # --budget, --source or --line
  python -m analysis convert published --method MOORE --benchmark MT10 --reward-version v2 \\
      --source "Meta-World+" --to final/iqm/none
  # MOORE's own MT10 number (line 18) has protocol 'unstated' (the original paper's protocol
  # was not read): refused (exit 2) whatever --to, with the reverse command to fill in
  python -m analysis convert published --method MOORE --benchmark MT10 --reward-version v2 \\
      --source "Orthogonal Experts" --to final/mean/none
"""

OURS_EXAMPLES = """\
examples (ours):
  # our MT50 V1 runs under Meta-World+'s reporting (final-checkpoint IQM, std over seeds):
  python -m analysis convert ours --runs results/runs/paper --protocol final/iqm/std \\
      --benchmark MT50 --reward-version v1
  # under the protocol of the TOPPO paper's MT50 V2 number (line 20: final/mean), only the toppo
  # variant, as CSV:
  python -m analysis convert ours --runs results/runs/paper --protocol final/mean/std \\
      --benchmark MT50 --reward-version v2 --variant toppo --format csv
"""


def _protocol_arg(text: str) -> Protocol:
    try:
        return Protocol.parse(text)
    except ProtocolSpecError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _budget_arg(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of env steps like 100000000 or 1e8, got {text!r}") from None
    if not math.isfinite(value) or not value.is_integer() or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer number of env steps, got {text!r}")
    return int(value)


def _add_modes(parser: argparse.ArgumentParser) -> None:
    modes = parser.add_subparsers(dest="mode", required=True, metavar="{published,ours}")
    pub = modes.add_parser(
        "published", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PUBLISHED_EXAMPLES,
        help="re-express a published baseline under our protocol (exactly, or refuse)",
        description="Select one row of the baselines table and re-express it under --to.\n"
                    "Only the dispersion kind (std / sem / ci95, given the row's n_seeds) and the unit\n"
                    "(percent / fraction) change exactly; a different statistic, protocol, reward version\n"
                    "or number of evaluation episodes is refused (exit 2) with the command that re-reports\n"
                    "our runs under the published protocol instead. A row whose protocol is 'unstated'\n"
                    "(its source does not say when in training its number was read) is always refused.")
    pub.add_argument("--baselines", type=Path, default=DEFAULT_PATH, metavar="CSV",
                     help="baselines table (default: the packaged analysis/data/baselines.csv)")
    pub.add_argument("--method", required=True, metavar="M",
                     help="method as written in the table's method column, e.g. MOORE, PaCo, SM, 'TOPPO (paper)'")
    pub.add_argument("--benchmark", required=True, choices=BENCHMARKS, help="MT10 or MT50")
    pub.add_argument("--reward-version", required=True, choices=REWARD_VERSIONS, help="Meta-World reward version")
    pub.add_argument("--budget", type=_budget_arg, default=None, metavar="N",
                     help="total env steps of the row (budget_steps), e.g. 100000000 or 1e8; needed when the "
                          "method has rows at several budgets")
    pub.add_argument("--source", default=None, metavar="TEXT",
                     help="keep rows whose source contains TEXT (case-insensitive), e.g. 'Meta-World+'")
    pub.add_argument("--line", type=_positive_int, default=None, metavar="L",
                     help="the row on CSV line L of the baselines file (the header is line 1)")
    pub.add_argument("--to", required=True, type=_protocol_arg, metavar="PROTOCOL",
                     help=f"target protocol: {FORMAT_HELP}")
    pub.add_argument("--fraction", action="store_true",
                     help="give value and dispersion as fractions in [0, 1] (default: percent)")

    ours = modes.add_parser(
        "ours", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=OURS_EXAMPLES,
        help="re-report our runs under an external (published) protocol",
        description="Read our run directories and report each (benchmark, reward_version, variant)\n"
                    "group under --protocol, in percent: the comparable direction when a published\n"
                    "number cannot be converted to our protocol (analysis.protocols.report).")
    ours.add_argument("--runs", nargs="+", required=True, metavar="DIR",
                      help="run directories (containing eval.csv) or roots searched recursively for them")
    ours.add_argument("--protocol", required=True, type=_protocol_arg, metavar="PROTOCOL",
                      help=f"the external protocol: {FORMAT_HELP}; episodes=N / reward=vX make the report "
                           "refuse runs that differ")
    ours.add_argument("--benchmark", nargs="+", choices=BENCHMARKS, default=None, metavar="B",
                      help="only these benchmarks (MT10, MT50; default: all found)")
    ours.add_argument("--reward-version", nargs="+", choices=REWARD_VERSIONS, default=None, metavar="V",
                      help="only these reward versions (v1, v2; default: all found)")
    ours.add_argument("--variant", nargs="+", default=None, metavar="NAME",
                      help="only these variants (e.g. toppo mtppo; default: all found)")
    ours.add_argument("--reps", type=_positive_int, default=None, metavar="N",
                      help="bootstrap resamples for ci95 (default: analysis.metrics.DEFAULT_REPS)")
    ours.add_argument("--seed", type=int, default=0, metavar="S", help="bootstrap seed (default: 0)")
    ours.add_argument("--format", choices=("text", "csv"), default="text",
                      help="text lines (default) or CSV with one row per group")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``convert`` subcommand (with modes ``published`` and ``ours``) on the
    ``python -m analysis`` subparsers; ``run(args)`` executes it."""
    conv = subparsers.add_parser(
        "convert", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="convert a published baseline to our protocol, or our runs to a published one",
        description=DESCRIPTION,
        epilog=PUBLISHED_EXAMPLES + "\n" + OURS_EXAMPLES)
    _add_modes(conv)
    return conv


def build_parser() -> argparse.ArgumentParser:
    """The standalone parser of ``python -m analysis.convert_cli``."""
    parser = argparse.ArgumentParser(prog="python -m analysis.convert_cli",
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description=DESCRIPTION,
                                     epilog=PUBLISHED_EXAMPLES + "\n" + OURS_EXAMPLES)
    _add_modes(parser)
    return parser


def _err(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _fmt(x: float | None, digits: int) -> str:
    return "--" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _published(args: argparse.Namespace) -> int:
    df = load_baselines(args.baselines)
    rows = select(df, method=args.method, benchmark=args.benchmark, reward_version=args.reward_version,
                  budget_steps=args.budget, source=args.source, line=args.line)
    if rows.empty:
        raise SelectionError(f"no row of {args.method} for {args.benchmark} {args.reward_version}")
    if len(rows) > 1:
        raise SelectionError(f"{len(rows)} rows of {args.method} match; choose one with --budget, --source or "
                             f"--line:\n{describe_rows(rows)}")
    row = rows.iloc[0]
    unit = "fraction" if args.fraction else "percent"
    result = convert_published(row, args.to, unit=unit)
    digits = 4 if args.fraction else 2
    n = "?" if result.n_seeds is None else result.n_seeds
    try:
        shown = Path(args.baselines).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        shown = Path(args.baselines)
    print(f"row        {shown}:{row.name}: {describe_row(row, line=False)}")
    print(f"published  {_fmt(float(row['value']), 2)}"
          + ("" if math.isnan(row["dispersion"]) else f" +- {_fmt(float(row['dispersion']), 2)}")
          + f" ({result.source_protocol}, percent), {n} seeds")
    print(f"converted  {result.text(digits)}")
    for step in result.steps:
        print(f"step       {step}")
    for caveat in result.caveats:
        print(f"caveat     {caveat}")
    return 0


def _ours(args: argparse.Namespace) -> int:
    from analysis import (  # lazily: the run-log stack is not needed for `published`
        logs,
        metrics,
        protocols,
    )

    evals = logs.load_evals(args.runs)
    for col, wanted in (("benchmark", args.benchmark), ("reward_version", args.reward_version),
                        ("variant", args.variant)):
        if wanted:
            present = sorted(evals[col].astype(str).unique())
            missing = [w for w in wanted if w not in present]
            if missing:
                raise protocols.ProtocolError(f"no runs with {col} {', '.join(missing)} under "
                                              f"{', '.join(args.runs)} (present: {', '.join(present)})")
            evals = evals[evals[col].astype(str).isin(wanted)]
    reps = metrics.DEFAULT_REPS if args.reps is None else args.reps
    results = []
    for key, group in evals.groupby(["benchmark", "reward_version", "variant"], sort=True):
        rep = protocols.report(group, args.protocol, reps=reps, seed=args.seed)
        results.append((key, rep))
    if args.format == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["benchmark", "reward_version", "variant", "protocol", "value", "dispersion",
                         "dispersion_kind", "ci_low", "ci_high", "n_seeds", "n_tasks", "budget_reached"])
        for (bench, rv, variant), r in results:
            writer.writerow([bench, rv, variant, str(args.protocol), f"{r['value']:.6g}",
                             "" if math.isnan(r["dispersion"]) else f"{r['dispersion']:.6g}", r["dispersion_kind"],
                             "" if math.isnan(r["ci_low"]) else f"{r['ci_low']:.6g}",
                             "" if math.isnan(r["ci_high"]) else f"{r['ci_high']:.6g}",
                             r["n_seeds"], r["n_tasks"], r["budget_reached"]])
        sys.stdout.write(buf.getvalue())
        return 0
    for (bench, rv, variant), r in results:
        spread = ""
        if args.protocol.dispersion != "none" and not math.isnan(r["dispersion"]):
            spread = f" +- {r['dispersion']:.2f} ({args.protocol.dispersion})"
            if args.protocol.dispersion == "ci95":
                spread += f" [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
        print(f"{bench} {rv} {variant}: {args.protocol} = {r['value']:.2f}{spread} %; {r['n_seeds']} seeds, "
              f"{r['n_tasks']} tasks, budget reached {protocols.fmt_count(r['budget_reached'])} env steps")
    return 0


def run(args: argparse.Namespace) -> int:
    """Execute a parsed ``convert`` command; returns the exit code (messages on stderr)."""
    try:
        if args.mode == "published":
            return _published(args)
        return _ours(args)
    except (BaselineError, SelectionError, ConversionRefused) as e:
        _err(str(e))
        return 2
    except ValueError as e:  # LogError / ProtocolError from our runs (both ValueError subclasses)
        _err(str(e))
        return 1


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
