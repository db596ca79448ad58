"""``python -m analysis convert {published,ours}``: compare with published numbers honestly.

``published`` re-expresses one row of the baselines table, or a number typed on the command
line (``--value``, validated by the same rules as a row), under our protocol, where that is
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
    DEFAULT_PATH,
    TYPED_PATH,
    UNSTATED_DISPERSION,
    UNSTATED_PROTOCOL,
    BaselineError,
    SelectionError,
    describe_row,
    describe_rows,
    load_baselines,
    select,
    typed_row,
)
from analysis.conversion import ConversionRefused, convert_published
from analysis.protocol_spec import FORMAT_HELP, Protocol, ProtocolSpecError
from toppo.specs.registry import BENCHMARKS, REWARD_VERSIONS

PROG = "python -m analysis convert"
DESCRIPTION = """\
published: re-express one row of the published-baselines table (or a number typed with --value)
           under our protocol, where that is exact (dispersion kind, percent/fraction);
           otherwise refuse (exit 2) saying why.
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
  # a number that is not in the table, typed here (8 seeds, std over seeds) as a s.e.m.:
  python -m analysis convert published --value 83.2 --dispersion 1.8 --seeds 8 \\
      --protocol final/mean/std --benchmark MT50 --reward-version v2 --to final/mean/sem
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


def _typed_protocol_arg(text: str) -> dict[str, Any]:
    """The protocol of a typed number: Protocol.parse's form, where NAME may be ``unstated`` and
    DISPERSION ``unstated`` (an error bar of unstated kind), as baselines-file cells."""
    parts = [p.strip() for p in str(text).strip().split("/")]
    name = parts[0].lower() if parts else ""
    kind = parts[2].lower() if len(parts) > 2 else ""
    check = list(parts)
    if name == UNSTATED_PROTOCOL:
        check[0] = "final"
    if kind == UNSTATED_DISPERSION:
        check[2] = "none"
    try:
        p = Protocol.parse("/".join(check))
    except ProtocolSpecError as e:
        raise argparse.ArgumentTypeError(str(e).replace("/".join(check), text)) from None
    cells = {"protocol": UNSTATED_PROTOCOL if name == UNSTATED_PROTOCOL else p.name, "aggregator": p.aggregator,
             "dispersion_kind": UNSTATED_DISPERSION if kind == UNSTATED_DISPERSION else p.dispersion,
             "eval_episodes": p.eval_episodes, "reward_version": p.reward_version, "last_n": p.last_n}
    if p.last_n is not None:
        raise argparse.ArgumentTypeError(f"{text}: a typed last_n number is not supported (the baselines file "
                                         "has no column for n); use a row of the table")
    return cells


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
    pub.add_argument("--baselines", type=Path, default=None, metavar="CSV",
                     help="baselines table (default: the packaged analysis/data/baselines.csv)")
    pub.add_argument("--method", default=None, metavar="M",
                     help="a row of the table: its method column, e.g. MOORE, PaCo, SM, 'TOPPO (paper)' "
                          "(or give --value for a number that is not in the table)")
    pub.add_argument("--benchmark", required=True, choices=list(BENCHMARKS),
                     help=" or ".join(BENCHMARKS))
    pub.add_argument("--reward-version", required=True, choices=REWARD_VERSIONS, help="Meta-World reward version")
    pub.add_argument("--budget", type=_budget_arg, default=None, metavar="N",
                     help="total env steps of the row (budget_steps), e.g. 100000000 or 1e8; needed when the "
                          "method has rows at several budgets")
    pub.add_argument("--source", default=None, metavar="TEXT",
                     help="keep rows whose source contains TEXT (case-insensitive), e.g. 'Meta-World+'")
    pub.add_argument("--aggregator", default=None, metavar="AGG",
                     help="keep rows whose aggregator is AGG (mean, iqm, median, worst-K), e.g. worst-10")
    pub.add_argument("--line", type=_positive_int, default=None, metavar="L",
                     help="the row on CSV line L of the baselines file (the header is line 1)")
    pub.add_argument("--to", required=True, type=_protocol_arg, metavar="PROTOCOL",
                     help=f"target protocol: {FORMAT_HELP}")
    pub.add_argument("--fraction", action="store_true",
                     help="give value and dispersion as fractions in [0, 1] (default: percent)")
    typed = pub.add_argument_group(
        "a number typed here (instead of --method: a paper that is not in the table)",
        "validated by the same rules as a row of the table and converted by the same exact-or-refuse rules; "
        "--benchmark, --reward-version and --to as above, --budget optional")
    typed.add_argument("--value", default=None, metavar="V",
                       help="the published success rate, in percent [0, 100]")
    typed.add_argument("--protocol", default=None, type=_typed_protocol_arg, metavar="PROTOCOL",
                       help="how the number was computed: NAME/AGGREGATOR/DISPERSION[/episodes=N] as for --to "
                            "(DISPERSION the kind of --dispersion: std, sem, ci95, unstated for an error bar of "
                            "unstated kind, or none); NAME 'unstated' when the paper does not say when in "
                            "training the number was read (then it is always refused)")
    typed.add_argument("--dispersion", default=None, metavar="D",
                       help="the published spread in percent points (its kind is the protocol's DISPERSION)")
    typed.add_argument("--seeds", default=None, metavar="N", help="number of seeds behind the number")

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
    ours.add_argument("--benchmark", nargs="+", choices=list(BENCHMARKS), default=None, metavar="B",
                      help=f"only these benchmarks ({', '.join(BENCHMARKS)}; default: all found)")
    ours.add_argument("--reward-version", nargs="+", choices=REWARD_VERSIONS, default=None, metavar="V",
                      help=f"only these reward versions ({', '.join(REWARD_VERSIONS)}; default: all found)")
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


# the option that sets each column of a typed number (for error messages)
TYPED_OPTIONS = {"value": "--value", "dispersion": "--dispersion", "dispersion_kind": "--protocol (its DISPERSION)",
                 "n_seeds": "--seeds", "budget_steps": "--budget", "eval_episodes": "--protocol (episodes=N)",
                 "aggregator": "--protocol", "protocol": "--protocol", "benchmark": "--benchmark",
                 "reward_version": "--reward-version"}


class TypedNumberError(ValueError):
    """A number typed on the command line that a baselines row could not hold."""


def _typed_row(args: argparse.Namespace):
    for opt, given in (("--line", args.line is not None), ("--source", args.source is not None),
                       ("--aggregator", args.aggregator is not None),
                       ("--baselines", args.baselines is not None), ("--method", args.method is not None)):
        if given:
            raise TypedNumberError(f"{opt} selects a row of the baselines table; a typed number (--value) is not "
                                   "in it: give one or the other")
    if args.protocol is None:
        raise TypedNumberError("a typed number (--value) needs --protocol: how it was computed, e.g. final/mean/std")
    p = args.protocol
    if p["reward_version"] is not None and p["reward_version"] != args.reward_version:
        raise TypedNumberError(f"--protocol says reward={p['reward_version']} but --reward-version is "
                               f"{args.reward_version}")
    cells = {"benchmark": args.benchmark, "reward_version": args.reward_version, "budget_steps": args.budget,
             "protocol": p["protocol"], "aggregator": p["aggregator"], "value": args.value,
             "dispersion": args.dispersion, "dispersion_kind": p["dispersion_kind"], "n_seeds": args.seeds,
             "eval_episodes": p["eval_episodes"]}
    try:
        return typed_row(cells)
    except BaselineError as e:
        option = TYPED_OPTIONS.get(e.column or "", e.column)
        raise TypedNumberError(f"{option}: {e.problem}") from None


def _print_result(row, result, shown: str, digits: int) -> None:
    n = "?" if result.n_seeds is None else result.n_seeds
    print(f"row        {shown}: {describe_row(row, line=False)}")
    disp = row["dispersion"]
    kind = "" if row.get("dispersion_kind") not in (UNSTATED_DISPERSION,) else " (kind unstated)"
    print(f"published  {_fmt(float(row['value']), 2)}"
          + ("" if math.isnan(disp) else f" +- {_fmt(float(disp), 2)}{kind}")
          + f" ({result.source_protocol}, percent), {n} seeds")
    print(f"converted  {result.text(digits)}")
    for step in result.steps:
        print(f"step       {step}")
    for caveat in result.caveats:
        print(f"caveat     {caveat}")


def _published(args: argparse.Namespace) -> int:
    unit = "fraction" if args.fraction else "percent"
    digits = 4 if args.fraction else 2
    if args.value is not None:
        row = _typed_row(args)
        _print_result(row, convert_published(row, args.to, unit=unit), TYPED_PATH, digits)
        return 0
    for opt, given in (("--protocol", args.protocol is not None), ("--dispersion", args.dispersion is not None),
                       ("--seeds", args.seeds is not None)):
        if given:
            raise TypedNumberError(f"{opt} describes a number typed with --value; a row of the table has its own")
    if args.method is None:
        raise TypedNumberError("give --method (a row of the baselines table) or --value (a number typed here)")
    if args.baselines is None:
        args.baselines = DEFAULT_PATH
    df = load_baselines(args.baselines)
    rows = select(df, method=args.method, benchmark=args.benchmark, reward_version=args.reward_version,
                  budget_steps=args.budget, aggregator=args.aggregator, source=args.source, line=args.line)
    if rows.empty:
        raise SelectionError(f"no row of {args.method} for {args.benchmark} {args.reward_version}")
    if len(rows) > 1:
        raise SelectionError(f"{len(rows)} rows of {args.method} match; choose one with --budget, --aggregator, "
                             f"--source or --line:\n{describe_rows(rows)}")
    row = rows.iloc[0]
    result = convert_published(row, args.to, unit=unit)
    try:
        shown = Path(args.baselines).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        shown = Path(args.baselines)
    _print_result(row, result, f"{shown}:{row.name}", digits)
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
    except (BaselineError, SelectionError, ConversionRefused, TypedNumberError) as e:
        _err(str(e))
        return 2
    except ValueError as e:  # LogError / ProtocolError from our runs (both ValueError subclasses)
        _err(str(e))
        return 1


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
