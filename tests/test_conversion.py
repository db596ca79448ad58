"""Protocol records, exact dispersion conversions, refusals, and the ``convert`` command."""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
import shlex

import numpy as np
import pytest

from analysis.baselines import COLUMNS, load_baselines, select
from analysis.conversion import (
    ConversionRefused,
    ci95_halfwidth_to_sem,
    convert_dispersion,
    convert_published,
    fraction_to_percent,
    percent_to_fraction,
    protocol_unstated,
    reverse_command,
    row_protocol,
    sem_to_ci95_halfwidth,
    sem_to_std,
    std_to_sem,
    t_critical,
)
from analysis.convert_cli import build_parser
from analysis.convert_cli import main as convert_main
from analysis.protocol_spec import (
    AGGREGATORS,
    DISPERSIONS,
    PROTOCOL_NAMES,
    Protocol,
    ProtocolSpecError,
)

T_0975_3 = 3.182446305284263  # t_{0.975, 3}
NS = [2, 3, 4, 5, 7, 10, 16, 30, 100, 1000]
SPREADS = [0.0, 1e-9, 0.3, 1.0, 2.5, 17.25, 49.9, 1e4]


# ---------------------------------------------------------------- Protocol
def test_protocol_parse_and_str_round_trip_everything():
    for name, agg, disp in itertools.product(PROTOCOL_NAMES, AGGREGATORS, DISPERSIONS):
        for extra in ({}, {"eval_episodes": 50}, {"reward_version": "v1"}, {"eval_episodes": 10, "reward_version": "v2"}):
            for last_n in ((None, 5) if name == "last_n" else (None,)):
                p = Protocol(name, agg, disp, last_n=last_n, **extra)
                assert Protocol.parse(str(p)) == p
                assert hash(Protocol.parse(str(p))) == hash(p)


def test_protocol_text_forms():
    assert str(Protocol.parse("final/iqm/std")) == "final/iqm/std"
    p = Protocol.parse(" last_5 / Mean / sem ")
    assert (p.name, p.last_n, p.aggregator, p.dispersion) == ("last_n", 5, "mean", "sem") and str(p) == "last_5/mean/sem"
    assert Protocol.parse("last_n/mean/std").last_n is None
    p = Protocol.parse("final/mean/none/reward=v2/episodes=50")
    assert (p.eval_episodes, p.reward_version) == (50, "v2") and str(p) == "final/mean/none/episodes=50/reward=v2"
    assert Protocol.parse("final/mean/none/eval_episodes=50/reward_version=v1") == \
        Protocol("final", "mean", "none", eval_episodes=50, reward_version="v1")


@pytest.mark.parametrize(("text", "match"), [
    ("final/iqm", "expected NAME/AGGREGATOR/DISPERSION"),
    ("final//std", "expected NAME/AGGREGATOR/DISPERSION"),
    ("best/iqm/std", "unknown protocol name 'best'"),
    ("final/avg/std", "unknown protocol aggregator 'avg'"),
    ("final/iqm/var", "unknown protocol dispersion 'var'"),
    ("last_0/mean/std", "positive integer"),
    ("final/iqm/std/seeds=10", "expected episodes=N or reward=v1|v2"),
    ("final/iqm/std/episodes=0", "positive integer"),
    ("final/iqm/std/episodes=ten", "positive integer"),
    ("final/iqm/std/reward=v3", "unknown protocol reward_version 'v3'"),
    ("final/iqm/std/reward=v1/reward=v2", "sets reward_version twice"),
])
def test_protocol_parse_errors_are_clear(text, match):
    with pytest.raises(ProtocolSpecError, match=match):
        Protocol.parse(text)


def test_protocol_is_validated_frozen_and_hashable():
    with pytest.raises(ProtocolSpecError, match="only applies to protocol last_n"):
        Protocol("final", "mean", "std", last_n=3)
    with pytest.raises(ProtocolSpecError, match="unknown protocol name"):
        Protocol("max", "mean", "std")
    with pytest.raises(ValueError):
        Protocol.parse(42)  # type: ignore[arg-type]
    p = Protocol("last_n", "mean", "std", last_n=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "final"  # type: ignore[misc]
    assert {p: 1}[Protocol.parse("last_2/mean/std")] == 1


# ---------------------------------------------------------------- dispersion maths
def test_exact_expectations():
    assert std_to_sem(2.0, 4) == 1.0
    assert sem_to_std(1.0, 4) == 2.0
    assert t_critical(4) == pytest.approx(T_0975_3, rel=1e-12)
    assert sem_to_ci95_halfwidth(1.0, 4) == pytest.approx(T_0975_3, rel=1e-12)
    assert ci95_halfwidth_to_sem(T_0975_3, 4) == pytest.approx(1.0, rel=1e-12)
    assert convert_dispersion(2.0, "std", "ci95", 4) == pytest.approx(T_0975_3, rel=1e-12)
    assert t_critical(10**6) == pytest.approx(1.959964, abs=1e-5)


@pytest.mark.parametrize("n", NS)
def test_round_trips_and_path_independence(n):
    for x in SPREADS:
        assert sem_to_std(std_to_sem(x, n), n) == pytest.approx(x, rel=1e-12, abs=1e-300)
        assert ci95_halfwidth_to_sem(sem_to_ci95_halfwidth(x, n), n) == pytest.approx(x, rel=1e-12, abs=1e-300)
        for a, b in itertools.permutations(("std", "sem", "ci95"), 2):
            there = convert_dispersion(x, a, b, n)
            assert convert_dispersion(there, b, a, n) == pytest.approx(x, rel=1e-12, abs=1e-300)
        via_sem = sem_to_ci95_halfwidth(std_to_sem(x, n), n)
        assert convert_dispersion(x, "std", "ci95", n) == pytest.approx(via_sem, rel=1e-12, abs=1e-300)
        for kind in ("std", "sem", "ci95"):
            assert convert_dispersion(x, kind, kind, None) == x
            assert convert_dispersion(x, kind, "none", n) is None


def test_monotonicity():
    for n in NS:
        cis = [sem_to_ci95_halfwidth(s, n) for s in SPREADS]
        assert all(b > a for a, b in itertools.pairwise(cis))  # grows with sem
    for std in (0.5, 3.0, 40.0):
        cis = [convert_dispersion(std, "std", "ci95", n) for n in range(2, 400)]
        assert all(b < a for a, b in itertools.pairwise(cis))  # shrinks with n at fixed std
        sems = [std_to_sem(std, n) for n in range(2, 400)]
        assert all(b < a for a, b in itertools.pairwise(sems))
    ts = [t_critical(n) for n in range(2, 400)]
    assert all(b < a for a, b in itertools.pairwise(ts)) and ts[-1] > 1.959963


def test_undefined_and_invalid_inputs_are_clear_errors():
    for f in (std_to_sem, sem_to_std, sem_to_ci95_halfwidth, ci95_halfwidth_to_sem):
        with pytest.raises(ValueError, match=r"needs n >= 2 seeds, got n=1 \(a standard deviation over one seed"):
            f(1.0, 1)
        with pytest.raises(ValueError, match="must be an integer"):
            f(1.0, 2.5)
        with pytest.raises(ValueError, match="must be an integer"):
            f(1.0, True)
        with pytest.raises(ValueError, match=">= 0"):
            f(-1.0, 4)
        with pytest.raises(ValueError, match="finite"):
            f(float("nan"), 4)
    assert std_to_sem(np.float64(2.0), np.int64(4)) == 1.0
    with pytest.raises(ValueError, match="no spread to convert"):
        convert_dispersion(1.0, "none", "std", 4)
    with pytest.raises(ValueError, match="unknown dispersion kind 'var'"):
        convert_dispersion(1.0, "var", "std", 4)
    with pytest.raises(ValueError, match="needs the number of seeds"):
        convert_dispersion(1.0, "std", "sem", None)
    with pytest.raises(ValueError, match="n >= 2"):
        convert_dispersion(1.0, "std", "sem", 1)


def test_percent_and_fraction():
    assert percent_to_fraction(72.0) == pytest.approx(0.72) and fraction_to_percent(0.5) == 50.0
    for x in (0.0, 1.0, 33.3, 99.99, 100.0):
        assert fraction_to_percent(percent_to_fraction(x)) == pytest.approx(x, rel=1e-15)
    with pytest.raises(ValueError, match="finite"):
        percent_to_fraction(float("inf"))
    with pytest.raises(ValueError, match="finite"):
        fraction_to_percent("0.5")  # type: ignore[arg-type]


# ---------------------------------------------------------------- published rows
ROW = {"method": "X", "benchmark": "MT50", "reward_version": "v1", "budget_steps": 100_000_000, "protocol": "final",
       "aggregator": "mean", "value": 60.0, "dispersion": 4.0, "dispersion_kind": "std", "n_seeds": 4,
       "eval_episodes": 50, "param_count": float("nan"), "source": "S", "arxiv": "", "location": "T1", "notes": "",
       "value_kind": "exact", "tolerance": float("nan"), "at_step": float("nan"), "provenance": "https://example.org/s"}


def test_convert_published_exact_cases():
    r = convert_published(ROW, "final/mean/sem")
    assert (r.value, r.dispersion, r.unit, r.n_seeds) == (60.0, 2.0, "percent", 4)
    assert str(r.protocol) == "final/mean/sem/episodes=50/reward=v1" and str(r.source_protocol).startswith("final/mean/std")
    assert r.steps == ("std 4 -> sem 2 with n=4 seeds",) and r.caveats == ()
    r = convert_published(ROW, Protocol("final", "mean", "ci95", eval_episodes=50, reward_version="v1"))
    assert r.dispersion == pytest.approx(2.0 * T_0975_3, rel=1e-12) and "t interval" in r.caveats[0]
    r = convert_published(ROW, "final/mean/std", unit="fraction")
    assert (r.value, r.dispersion) == (pytest.approx(0.6), pytest.approx(0.04)) and "percent -> fraction" in r.steps[-1]
    r = convert_published(ROW, "final/mean/std")
    assert (r.value, r.dispersion) == (60.0, 4.0) and "nothing to convert" in r.steps[0]
    r = convert_published(ROW, "final/mean/none")
    assert r.dispersion is None and "dropped the std" in r.steps[0]
    assert "60.00 (final/mean/none" in r.text()


def _refusal(row, target) -> str:
    with pytest.raises(ConversionRefused) as info:
        convert_published(row, target)
    msg = str(info.value)
    assert "re-report our runs under the external protocol: python -m analysis convert ours --protocol " in msg
    assert "--runs RUN_DIR" in msg
    return msg


@pytest.mark.parametrize(("target", "why"), [
    ("final/iqm/std", "a mean cannot become an IQM"),
    ("final/median/std", "a mean cannot become a median"),
    ("max_over_time/mean/std", "a final number cannot become a max_over_time number"),
    ("curve_peak/mean/std", "a final number cannot become a curve_peak number"),
    ("seed_peak/mean/std", "a final number cannot become a seed_peak number"),
    ("last_5/mean/std", "a final number cannot become a last_n number"),
    ("final/mean/std/reward=v2", "reward version v1, the target is v2; different reward functions"),
    ("final/mean/std/episodes=10", "used 50 evaluation episodes per task, the target needs 10"),
])
def test_refusals_explain_and_offer_the_reverse(target, why):
    msg = _refusal(ROW, target)
    assert why in msg
    assert "--protocol final/mean/std/episodes=50/reward=v1 --benchmark MT50 --reward-version v1" in msg


def test_refusals_for_missing_information():
    assert "does not state its evaluation episodes" in _refusal(dict(ROW, eval_episodes=None), "final/mean/std/episodes=50")
    msg = _refusal(dict(ROW, dispersion=float("nan"), dispersion_kind="none"), "final/mean/sem")
    assert "states no dispersion, so no sem can be derived" in msg and "--protocol final/mean/sem/" in msg
    assert "needs the number of seeds" in _refusal(dict(ROW, n_seeds=float("nan")), "final/mean/sem")
    assert "n >= 2 seeds, got n=1" in _refusal(dict(ROW, n_seeds=1), "final/mean/sem")
    last = dict(ROW, protocol="last_n", dispersion_kind="std")
    msg = _refusal(last, "last_5/mean/std")
    assert "last n (unstated)" in msg and "write last_K with the source's K" in msg
    assert convert_published(last, "last_n/mean/sem").dispersion == 2.0  # same (unstated) n: allowed


def test_reverse_command_uses_target_dispersion_when_the_source_has_none():
    row = dict(ROW, dispersion=float("nan"), dispersion_kind="none", eval_episodes=float("nan"))
    assert reverse_command(row, Protocol.parse("final/mean/ci95")) == \
        "python -m analysis convert ours --protocol final/mean/ci95/reward=v1 --benchmark MT50 " \
        "--reward-version v1 --runs RUN_DIR [RUN_DIR ...]"


def test_convert_a_shipped_row():
    row = select(load_baselines(), method="MOORE", benchmark="MT50", reward_version="v2",
                 budget_steps=100_000_000).iloc[0]
    r = convert_published(row, "final/iqm/none", unit="fraction")
    assert r.value == pytest.approx(0.72) and r.n_seeds == 10 and r.row["source"].startswith("Meta-World+")
    msg = _refusal(row, "final/mean/std")
    assert "an IQM cannot become a mean" in msg and "MOORE MT50 v2 (baselines line 13)" in msg


# ---------------------------------------------------------------- rows whose protocol is unstated
UNSTATED = dict(ROW, protocol="unstated")
UNSTATED_WHY = ("the source does not state when in training (or how) its number was read (protocol 'unstated' in "
                "the baselines file), so it cannot be converted to any protocol")
UNSTATED_REVERSE = ("re-report our runs under the protocol you believe the source used: python -m analysis convert "
                    "ours --protocol PROTOCOL --benchmark MT50 --reward-version v1 --runs RUN_DIR [RUN_DIR ...]")


@pytest.mark.parametrize("target", ["final/mean/std", "final/mean/none", "final/iqm/std", "curve_peak/mean/none",
                                    "max_over_time/mean/sem", "last_5/mean/std", "final/mean/std/reward=v1"])
@pytest.mark.parametrize("unit", ["percent", "fraction"])
def test_unstated_protocol_is_refused_whatever_the_target(target, unit):
    # even a target with the row's aggregator, dispersion, reward and episodes: when the number was
    # read is unknown, so it is not any protocol's number
    with pytest.raises(ConversionRefused) as info:
        convert_published(UNSTATED, target, unit=unit)
    msg = str(info.value)
    assert msg.startswith(f"cannot convert X MT50 v1 to {Protocol.parse(target)}: {UNSTATED_WHY}")
    assert "never compared with our numbers" in msg and UNSTATED_REVERSE in msg
    assert "the one you believe the source used" in msg and "say that it is your assumption" in msg


def test_unstated_protocol_row_protocol_and_reverse_command_do_not_crash():
    assert protocol_unstated(UNSTATED) and protocol_unstated(dict(ROW, protocol=" Unstated "))
    assert not protocol_unstated(ROW) and not protocol_unstated(dict(ROW, protocol=None))
    assert row_protocol(UNSTATED) is None
    assert row_protocol(ROW) == Protocol("final", "mean", "std", eval_episodes=50, reward_version="v1")
    with pytest.raises(ProtocolSpecError):  # any other non-protocol is still an error, not "unstated"
        row_protocol(dict(ROW, protocol="best"))
    for target in (None, Protocol.parse("final/mean/ci95")):
        cmd = reverse_command(UNSTATED, target)
        assert cmd.startswith("python -m analysis convert ours --protocol PROTOCOL --benchmark MT50 "
                              "--reward-version v1 --runs RUN_DIR [RUN_DIR ...]  (PROTOCOL: ")
    # the reverse command is a working `convert ours` command once PROTOCOL and RUN_DIR are filled in
    line = reverse_command(UNSTATED).split("  (")[0]
    words = shlex.split(line.replace("PROTOCOL", "final/mean/std").replace("RUN_DIR [RUN_DIR ...]", "runs/a runs/b"))
    assert words[:4] == ["python", "-m", "analysis", "convert"]
    args = build_parser().parse_args(words[4:])
    assert (args.mode, str(args.protocol), args.benchmark, args.reward_version, args.runs) == \
        ("ours", "final/mean/std", ["MT50"], ["v1"], ["runs/a", "runs/b"])


def test_shipped_unstated_rows_are_refused():
    df = load_baselines()
    for line in range(14, 20):
        row = df.loc[line]
        assert row["protocol"] == "unstated" and row_protocol(row) is None
        for target in ("final/iqm/none", f"final/{row['aggregator']}/none"):
            with pytest.raises(ConversionRefused) as info:
                convert_published(row, target)
            msg = str(info.value)
            assert f"{row['method']} {row['benchmark']} {row['reward_version']} (baselines line {line})" in msg
            assert UNSTATED_WHY in msg
            assert (f"--protocol PROTOCOL --benchmark {row['benchmark']} --reward-version {row['reward_version']} "
                    "--runs RUN_DIR") in msg


def test_cli_refuses_an_unstated_row_with_exit_2(tmp_path, capsys):
    path = _write_baselines(tmp_path / "b.csv", [UNSTATED])
    rc = convert_main(["published", "--baselines", str(path), "--method", "X", "--benchmark", "MT50",
                       "--reward-version", "v1", "--to", "final/mean/std"])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    assert captured.err.startswith("python -m analysis convert: cannot convert X MT50 v1 (baselines line 2) to "
                                   f"final/mean/std: {UNSTATED_WHY}")
    assert UNSTATED_REVERSE in captured.err


# ---------------------------------------------------------------- the convert command
def _write_baselines(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})
    return path


def test_cli_published_converts(tmp_path, capsys):
    path = _write_baselines(tmp_path / "b.csv", [ROW])
    rc = convert_main(["published", "--baselines", str(path), "--method", "X", "--benchmark", "MT50",
                       "--reward-version", "v1", "--to", "final/mean/sem"])
    out = capsys.readouterr().out
    assert rc == 0
    assert f"{path}:2: X MT50 v1 100,000,000 steps final/mean = 60" in out
    assert "published  60.00 +- 4.00 (final/mean/std/episodes=50/reward=v1, percent), 4 seeds" in out
    assert "converted  60.00 +- 2.00 (final/mean/sem/episodes=50/reward=v1, percent)" in out


def test_cli_published_refuses_with_exit_2(tmp_path, capsys):
    path = _write_baselines(tmp_path / "b.csv", [ROW])
    rc = convert_main(["published", "--baselines", str(path), "--method", "X", "--benchmark", "MT50",
                       "--reward-version", "v1", "--to", "final/iqm/std"])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    assert "a mean cannot become an IQM" in captured.err and "python -m analysis convert ours" in captured.err


def test_cli_bad_baselines_file_and_selection(tmp_path, capsys):
    path = _write_baselines(tmp_path / "b.csv", [ROW, dict(ROW, aggregator="iqm"), dict(ROW, value=120)])
    args = ["published", "--baselines", str(path), "--method", "X", "--benchmark", "MT50", "--reward-version", "v1",
            "--to", "final/mean/none"]
    assert convert_main(args) == 2
    assert f"{path}:4: column 'value': must be a percentage in [0, 100]" in capsys.readouterr().err
    path = _write_baselines(tmp_path / "c.csv", [ROW, dict(ROW, aggregator="iqm")])
    args[2] = str(path)
    assert convert_main(args) == 2
    err = capsys.readouterr().err
    assert "2 rows of X match; choose one with --budget, --aggregator, --source or --line" in err
    assert "line 3: X MT50" in err
    assert convert_main([*args, "--line", "2"]) == 0
    assert convert_main([*args[:4], "Y", *args[5:]]) == 2
    assert "no baseline row for method 'Y'; methods present: X" in capsys.readouterr().err


BASE_ARGS = {"--method": "MOORE", "--benchmark": "MT50", "--reward-version": "v2", "--to": "final/iqm/none"}


@pytest.mark.parametrize("bad", [{"--to": "final/avg/std"}, {"--budget": "1.5"}, {"--line": "0"},
                                 {"--benchmark": "MT20"}, {"--reward-version": "V1"}])
def test_cli_bad_arguments_are_argparse_errors(bad, capsys):
    args = ["published"] + [x for k, v in {**BASE_ARGS, **bad}.items() for x in (k, v)]
    with pytest.raises(SystemExit) as info:
        convert_main(args)
    assert info.value.code == 2 and "error: argument " + next(iter(bad)) in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        convert_main(["published", "--method", "MOORE"])  # missing required options
    assert info.value.code == 2


def test_cli_help_documents_every_option_with_real_examples(capsys):
    for mode, options in (("published", ["--baselines", "--method", "--benchmark", "--reward-version", "--budget",
                                          "--source", "--aggregator", "--line", "--to", "--fraction", "--value",
                                          "--protocol", "--dispersion", "--seeds"]),
                          ("ours", ["--runs", "--protocol", "--benchmark", "--reward-version", "--variant", "--reps",
                                    "--seed", "--format"])):
        with pytest.raises(SystemExit):
            convert_main([mode, "--help"])
        out = capsys.readouterr().out
        for opt in options:
            assert opt in out, (mode, opt)
        assert "examples" in out and "python -m analysis convert" in out
    # the help's published examples name real rows and run on the shipped file as documented
    df = load_baselines()
    assert (df.loc[13, "method"], df.loc[13, "benchmark"], df.loc[13, "protocol"], df.loc[13, "value"]) == \
        ("MOORE", "MT50", "final", 72.0)
    assert (df.loc[18, "method"], df.loc[18, "benchmark"], df.loc[18, "protocol"]) == ("MOORE", "MT10", "unstated")
    assert (df.loc[11, "method"], df.loc[11, "benchmark"], df.loc[11, "protocol"], df.loc[11, "value"]) == \
        ("MOORE", "MT10", "final", 83.2)
    assert (df.loc[20, "method"], df.loc[20, "benchmark"], df.loc[20, "reward_version"], df.loc[20, "protocol"],
            df.loc[20, "aggregator"]) == ("TOPPO (paper)", "MT50", "v2", "final", "mean")
    assert convert_main(["published", "--method", "MOORE", "--benchmark", "MT50", "--reward-version", "v2",
                         "--budget", "100000000", "--to", "final/iqm/none", "--fraction"]) == 0
    assert "converted  0.7200 (final/iqm/none/episodes=50/reward=v2, fraction)" in capsys.readouterr().out
    assert convert_main(["published", "--method", "MOORE", "--benchmark", "MT50", "--reward-version", "v2",
                         "--budget", "100000000", "--to", "final/mean/std"]) == 2
    capsys.readouterr()
    assert convert_main(["published", "--method", "MOORE", "--benchmark", "MT10", "--reward-version", "v2",
                         "--to", "final/iqm/none"]) == 2  # several rows match
    err = capsys.readouterr().err
    assert "3 rows of MOORE match" in err and "line 11: MOORE MT10 v2" in err and "line 18: MOORE MT10 v2" in err
    assert "line 58: MOORE MT10 v2 budget ? unstated/mean = 80.9667 (Multi-Task Reinforcement Learning Enables" in err
    assert convert_main(["published", "--method", "MOORE", "--benchmark", "MT10", "--reward-version", "v2",
                         "--source", "Meta-World+", "--to", "final/iqm/none"]) == 0
    assert "analysis/data/baselines.csv:11: MOORE MT10 v2" in capsys.readouterr().out
    assert convert_main(["published", "--method", "MOORE", "--benchmark", "MT10", "--reward-version", "v2",
                         "--source", "Orthogonal Experts", "--to", "final/mean/none"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "(baselines line 18)" in captured.err and UNSTATED_WHY in captured.err


def test_cli_ours_reports_our_runs_under_the_external_protocol(tmp_path, capsys):
    from synthetic import write_run

    from analysis.__main__ import main as analysis_main

    root = tmp_path / "runs"
    success = {0: [[0.2, 0.4], [0.6, 1.0]], 1: [[0.4, 0.6], [0.8, 0.6]]}  # (evals, tasks) per seed
    for seed, s in success.items():
        write_run(root / f"MT10-v1/toppo/seed{seed}", variant="toppo", benchmark="MT10", reward_version="v1",
                  seed=seed, success=np.array(s), steps=[10, 20], train_updates=None)
    write_run(root / "MT50-v2/mtppo/seed0", variant="mtppo", benchmark="MT50", reward_version="v2", seed=0,
              success=np.full((2, 3), 0.5), steps=[10, 20], train_updates=None)
    rc = convert_main(["ours", "--runs", str(root), "--protocol", "final/mean/std", "--benchmark", "MT10"])
    out = capsys.readouterr().out
    # final evaluation: seed0 mean(0.6, 1.0) = 80%, seed1 mean(0.8, 0.6) = 70% -> 75 +- std(80, 70) = 7.07
    assert rc == 0 and out.startswith("MT10 v1 toppo: final/mean/std = 75.00 +- 7.07 (std) %; 2 seeds, 2 tasks")
    rc = analysis_main(["convert", "ours", "--runs", str(root), "--protocol", "max_over_time/mean/sem",
                        "--format", "csv"])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0 and lines[0].startswith("benchmark,reward_version,variant,protocol,value,dispersion")
    assert lines[1].startswith("MT10,v1,toppo,max_over_time/mean/sem,75,5,sem,,,2,2,20")
    assert lines[2].startswith("MT50,v2,mtppo,max_over_time/mean/sem,50,,sem")  # one seed: no spread
    assert convert_main(["ours", "--runs", str(root), "--protocol", "final/mean/std/episodes=10"]) == 1
    assert "needs 10 evaluation episodes" in capsys.readouterr().err
    assert convert_main(["ours", "--runs", str(root), "--protocol", "final/mean/std", "--variant", "nope"]) == 1
    assert "no runs with variant nope" in capsys.readouterr().err
    assert convert_main(["ours", "--runs", str(tmp_path / "absent"), "--protocol", "final/mean/std"]) == 1


# ---------------------------------------------------------------- a number typed on the command line
TYPED = ["published", "--value", "83.2", "--dispersion", "1.8", "--seeds", "8", "--benchmark", "MT50",
         "--reward-version", "v2"]


def test_cli_typed_number_converts_exactly(capsys):
    assert convert_main([*TYPED, "--protocol", "final/mean/std", "--to", "final/mean/sem"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "row        command line: typed number MT50 v2 budget ? final/mean = 83.2 (command line; command line)"
    assert out[1] == "published  83.20 +- 1.80 (final/mean/std/reward=v2, percent), 8 seeds"
    assert out[2] == f"converted  83.20 +- {1.8 / math.sqrt(8):.2f} (final/mean/sem/reward=v2, percent)"
    assert convert_main([*TYPED, "--protocol", "final/worst-10/std", "--to", "final/worst-10/ci95", "--fraction"]) == 0
    out = capsys.readouterr().out
    ci = 1.8 / math.sqrt(8) * t_critical(8) / 100
    assert f"converted  0.8320 +- {ci:.4f} (final/worst-10/ci95/reward=v2, fraction)" in out and "caveat" in out


@pytest.mark.parametrize(("extra", "why"), [
    (["--protocol", "final/mean/std", "--to", "final/iqm/std"], "a mean cannot become an IQM"),
    (["--protocol", "final/mean/std", "--to", "max_over_time/mean/std"], "a final number cannot become a max_over_time"),
    (["--protocol", "final/mean/std", "--to", "final/mean/std/reward=v1"], "reward version v2, the target is v1"),
    (["--protocol", "final/mean/unstated", "--to", "final/mean/sem"], "error bar (+-1.8) does not state its kind"),
    (["--protocol", "unstated/mean/std", "--to", "final/mean/std"], "protocol 'unstated' in the baselines file"),
])
def test_cli_typed_number_is_refused_by_the_same_rules(extra, why, capsys):
    assert convert_main([*TYPED, *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and why in captured.err and "cannot convert typed number MT50 v2" in captured.err
    assert "python -m analysis convert ours --protocol" in captured.err


@pytest.mark.parametrize(("args", "why"), [
    (["--value", "120", "--protocol", "final/mean/none"], "--value: must be a percentage in [0, 100], got '120'"),
    (["--value", "50", "--protocol", "final/mean/std"], "--dispersion: empty, but dispersion_kind is 'std'"),
    (["--value", "50", "--dispersion", "2", "--protocol", "final/mean/none"], "--protocol (its DISPERSION): "),
    (["--value", "50", "--seeds", "2.5", "--protocol", "final/mean/none"], "--seeds: not an integer: '2.5'"),
    (["--value", "50"], "a typed number (--value) needs --protocol"),
    (["--value", "50", "--protocol", "final/mean/none", "--line", "3"], "--line selects a row of the baselines table"),
    (["--value", "50", "--protocol", "final/mean/none/reward=v1"], "--protocol says reward=v1 but --reward-version is v2"),
    (["--method", "MOORE", "--seeds", "3"], "--seeds describes a number typed with --value"),
    ([], "give --method (a row of the baselines table) or --value (a number typed here)"),
])
def test_cli_typed_number_bad_input_exits_2_naming_the_option(args, why, capsys):
    assert convert_main(["published", "--benchmark", "MT50", "--reward-version", "v2", "--to", "final/mean/none",
                         *args]) == 2
    assert why in capsys.readouterr().err


def test_cli_typed_protocol_is_an_argparse_error_when_it_does_not_parse(capsys):
    with pytest.raises(SystemExit) as info:
        convert_main([*TYPED, "--protocol", "final/avg/std", "--to", "final/mean/std"])
    assert info.value.code == 2 and "argument --protocol" in capsys.readouterr().err


def test_shipped_read_off_and_unstated_kind_rows_say_so_when_converted():
    df = load_baselines()
    lora = select(df, method="ARS-LoRA", aggregator="mean").iloc[0]
    r = convert_published(lora, "final/mean/none")
    assert r.value == 83.2 and r.n_seeds == 8
    assert r.steps == ("dropped the error bar +-1.8 of unstated kind (target reports no dispersion)",)
    assert r.caveats == ("the published value was read off a figure (+-0.5 percent points); it is not an exact number",)
    assert "does not state its kind" in _refusal(lora, "final/mean/std")
    worst = select(df, method="ARS", aggregator="worst-20").iloc[0]
    assert "a worst-20 statistic cannot become a mean" in _refusal(worst, "final/mean/none")
