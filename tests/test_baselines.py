"""The published-baselines table: the shipped file, validation errors (file, line, column), selection."""

from __future__ import annotations

import csv
import math
import re

import pandas as pd
import pytest

from analysis.baselines import (
    BASELINE_PROTOCOLS,
    COLUMNS,
    DEFAULT_PATH,
    INT_COLUMNS,
    UNSTATED_PROTOCOL,
    BaselineError,
    SelectionError,
    describe_row,
    load_baselines,
    select,
    typed_row,
)
from analysis.protocol_spec import PROTOCOL_NAMES, Protocol, ProtocolSpecError

GOOD = [
    {"method": "MTMHSAC", "benchmark": "MT50", "reward_version": "v1", "budget_steps": "100000000",
     "protocol": "final", "aggregator": "iqm", "value": "45.2", "dispersion": "3.1", "dispersion_kind": "std",
     "n_seeds": "10", "eval_episodes": "50", "param_count": "3000000", "source": "Some paper, Venue 2025",
     "arxiv": "2505.11289", "location": "Table 2", "notes": "", "value_kind": "exact", "tolerance": "", "at_step": "",
     "provenance": "https://example.org/paper.pdf"},
    {"method": "PaCo", "benchmark": "MT10", "reward_version": "v2", "budget_steps": "20000000",
     "protocol": "max_over_time", "aggregator": "mean", "value": "85.4", "dispersion": "", "dispersion_kind": "none",
     "n_seeds": "", "eval_episodes": "", "param_count": "", "source": "Other paper, Venue 2022", "arxiv": "",
     "location": "Table 1", "notes": "spread not transcribed, with a comma", "value_kind": "unverified",
     "tolerance": "", "at_step": "", "provenance": ""},
    {"method": "PaCo", "benchmark": "MT50", "reward_version": "v2", "budget_steps": "100000000",
     "protocol": "final", "aggregator": "mean", "value": "57.3", "dispersion": "1.3", "dispersion_kind": "sem",
     "n_seeds": "5", "eval_episodes": "10", "param_count": "", "source": "Other paper, Venue 2022", "arxiv": "",
     "location": "Table 1", "notes": "", "value_kind": "read_off", "tolerance": "0.5", "at_step": "",
     "provenance": "github.com/o/r@0123456789abcdef0123456789abcdef01234567:fig.png"},
]


def write_csv(path, rows, columns=COLUMNS):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def assert_error(path, line, column, match):
    with pytest.raises(BaselineError) as info:
        load_baselines(path)
    err = info.value
    msg = str(err)
    assert str(path) in msg
    if line is not None:
        assert f"{path}:{line}" in msg and err.line == line
    if column is not None:
        assert f"column '{column}'" in msg and err.column == column
    assert match in msg, msg
    return err


# ---------------------------------------------------------------- the shipped file
def test_shipped_csv_loads_and_every_row_is_cited():
    df = load_baselines()
    assert DEFAULT_PATH.name == "baselines.csv" and DEFAULT_PATH.parent.name == "data"
    assert list(df.columns) == list(COLUMNS)
    assert len(df) >= 10 and df.index.name == "line" and df.index[0] == 2
    assert (df["source"].str.len() > 0).all() and (df["location"].str.len() > 0).all()
    assert df["value"].between(0, 100).all()
    with open(DEFAULT_PATH, newline="") as f:
        assert len(list(csv.DictReader(f))) == len(df)  # no row dropped
    for col in INT_COLUMNS:
        assert all(isinstance(v, int) or math.isnan(v) for v in df[col])


def test_shipped_csv_has_the_toppo_reference_rows_and_the_report_baselines():
    df = load_baselines()
    toppo = select(df, method="TOPPO (paper)")
    got = {(r.benchmark, r.reward_version, r.protocol, r.aggregator, r.value, r.value_kind, r.budget_steps, r.n_seeds)
           for r in toppo.itertuples()}
    assert got == {
        ("MT50", "v2", "final", "mean", 90.88, "exact", 100_000_000, 10),
        ("MT50", "v2", "final", "worst-10", 56.5, "exact", 100_000_000, 10),
        ("MT50", "v2", "curve_peak", "mean", 91.3, "exact", 100_000_000, 10),
        ("MT50", "v2", "final", "worst-5", 24.2, "read_off", 100_000_000, 10),
        ("MT50", "v2", "final", "worst-20", 77.1, "read_off", 100_000_000, 10),
        ("MT50", "v2", "final", "worst-30", 84.8, "read_off", 100_000_000, 10),
        ("MT50", "v2", "final", "worst-40", 88.6, "read_off", 100_000_000, 10),
        ("MT50", "v1", "final", "iqm", 79.3, "unverified", 100_000_000, 10),
        ("MT10", "v2", "final", "mean", 97.2, "unverified", 20_000_000, 10)}
    assert (toppo["arxiv"] == "2605.11473").all()
    assert df.loc[20, "dispersion"] == 1.59 and df.loc[20, "dispersion_kind"] == "unstated"
    peak = select(df, method="TOPPO (paper)", protocol="curve_peak").iloc[0]
    assert peak["at_step"] == 96_500_000 and isinstance(peak["at_step"], int)
    moore = select(df, method="MOORE", benchmark="MT50", reward_version="v2", budget_steps=100_000_000)
    assert len(moore) == 1 and moore["value"].iloc[0] == 72.0 and moore["arxiv"].iloc[0] == "2505.11289"


def test_shipped_ars_family_rows_are_final_means_over_8_seeds_from_the_toppo_figure():
    df = load_baselines()
    ars = df[df["method"].isin(["ARS", "ARS-LN-400", "ARS-LN-1024", "ARS-LoRA"])]
    means = {r.method: (r.value, r.value_kind) for r in ars.itertuples() if r.aggregator == "mean"}
    assert means == {"ARS": (65.9, "exact"), "ARS-LN-400": (78.3, "exact"), "ARS-LN-1024": (88.9, "exact"),
                     "ARS-LoRA": (83.2, "read_off")}
    assert (ars["n_seeds"] == 8).all() and (ars["protocol"] == "final").all() and (ars["reward_version"] == "v2").all()
    assert ars["budget_steps"].map(lambda b: isinstance(b, float) and math.isnan(b)).all()  # not stated
    lora10 = select(df, method="ARS-LoRA", aggregator="worst-10").iloc[0]
    assert lora10["value_kind"] == "derived" and lora10["value"] == 29.3 and lora10["tolerance"] == 0.06
    assert set(ars["aggregator"]) == {"mean", "worst-10", "worst-20", "worst-30", "worst-40"}


def test_shipped_rows_we_checked_cite_a_commit_or_url_and_read_offs_a_tolerance():
    df = load_baselines()
    checked = df[df["value_kind"] != "unverified"]
    assert len(checked) == 41
    for _, row in checked.iterrows():
        assert re.search(r"@[0-9a-f]{40}:", row["provenance"]) or row["provenance"].startswith("http"), row.name
    off = df[df["value_kind"].isin(["read_off", "derived"])]
    assert off["tolerance"].between(0.05, 1.0).all()
    assert df.loc[df["value_kind"].isin(["exact", "unverified"]), "tolerance"].isna().all()
    # the parameter-scaling paper (arXiv 2503.05126) is its own source, never merged with Meta-World+'s rows
    scaling = df[df["arxiv"] == "2503.05126"]
    assert len(scaling) == 8 and (scaling["protocol"] == "unstated").all()
    assert sorted(scaling["method"].unique()) == ["MOORE", "MTMHSAC", "PaCo", "SM"]
    assert select(df, method="MOORE", benchmark="MT50", source="Parameter Scaling")["value"].tolist() == [64.92]


def test_shipped_original_paper_rows_state_no_protocol():
    # lines 14-19: SM, PaCo and MOORE as their own papers report them (quoted by Meta-World+); the
    # original papers' tables were not read, so no protocol is claimed for them
    df = load_baselines()
    own = df.loc[14:19]
    assert [(r.method, r.benchmark, r.reward_version, r.value) for r in own.itertuples()] == [
        ("SM", "MT10", "v1", 71.8), ("SM", "MT50", "v1", 61.0), ("PaCo", "MT10", "v2", 85.4),
        ("PaCo", "MT50", "v2", 57.3), ("MOORE", "MT10", "v2", 88.7), ("MOORE", "MT50", "v2", 72.9)]
    assert (own["protocol"] == "unstated").all() and (own["aggregator"] == "mean").all()
    for notes in own["notes"]:
        assert "PROTOCOL NOT STATED HERE: the original paper's table was not read; never compared with our " \
               "numbers." in notes
        assert "placeholder" not in notes and "curve_peak" not in notes and "UNVERIFIED" not in notes
    # also unstated: the other Figure 1 methods of the TOPPO paper (lines 51-54) and the parameter-
    # scaling paper's figure points (lines 55-62)
    assert list(select(df, protocol="unstated").index) == [*range(14, 20), *range(51, 63)]
    assert (df.drop(index=select(df, protocol="unstated").index)["protocol"] != "unstated").all()


# ---------------------------------------------------------------- validation
def test_good_file_round_trips_exactly(tmp_path):
    df = load_baselines(write_csv(tmp_path / "b.csv", GOOD))
    assert list(df.index) == [2, 3, 4]
    assert df.loc[2, "budget_steps"] == 100_000_000 and isinstance(df.loc[2, "budget_steps"], int)
    assert df.loc[2, "dispersion"] == 3.1 and df.loc[2, "dispersion_kind"] == "std"
    assert math.isnan(df.loc[3, "dispersion"]) and math.isnan(df.loc[3, "n_seeds"]) and df.loc[3, "arxiv"] == ""
    assert df.loc[3, "notes"] == "spread not transcribed, with a comma"


def test_integers_written_as_floats_load_exactly(tmp_path):
    # pandas writes an int column with missing values as 1e8 -> "100000000.0"; that is still an integer
    rows = [dict(GOOD[0], budget_steps="100000000.0", n_seeds="10.0", param_count="1e6")]
    df = load_baselines(write_csv(tmp_path / "b.csv", rows))
    assert df.loc[2, "budget_steps"] == 100_000_000 and df.loc[2, "param_count"] == 1_000_000


def test_a_frame_written_by_pandas_loads(tmp_path):
    frame = pd.DataFrame([{**r, "budget_steps": float(r["budget_steps"])} for r in GOOD], columns=list(COLUMNS))
    frame.to_csv(tmp_path / "b.csv", index=False)
    assert len(load_baselines(tmp_path / "b.csv")) == 3


@pytest.mark.parametrize(("column", "bad", "match"), [
    ("benchmark", "MT20", "unknown value 'MT20'; expected one of MT10, MT50"),
    ("reward_version", "v3", "unknown value 'v3'"),
    ("protocol", "best", "expected one of final, max_over_time, curve_peak, seed_peak, last_n, unstated"),
    ("protocol", "Unstated", "unknown value 'Unstated'"),
    ("aggregator", "avg", "expected one of mean, iqm, median or worst-K"),
    ("aggregator", "worst-0", "unknown value 'worst-0'"),
    ("aggregator", "worst-11", "worst-11: MT10 has only 10 tasks"),
    ("value_kind", "", "unknown value ''; expected one of exact, derived, read_off, unverified"),
    ("at_step", "1000", "only a curve_peak or seed_peak number is read at a step"),
    ("dispersion_kind", "var", "expected one of std, sem, ci95, none, unstated"),
    ("value", "101", "percentage in [0, 100]"),
    ("value", "-0.1", "percentage in [0, 100]"),
    ("value", "0.45x", "not a number"),
    ("value", "nan", "not a finite number"),
    ("value", "", "must not be empty"),
    ("dispersion", "-0.5", "must be >= 0"),
    ("dispersion", "inf", "not a finite number"),
    ("n_seeds", "0", "integer >= 1"),
    ("n_seeds", "2.5", "not an integer"),
    ("budget_steps", "20000000.5", "not an integer"),
    ("budget_steps", "20M", "not an integer"),
    ("eval_episodes", "-3", "integer >= 1"),
    ("param_count", "many", "not an integer"),
    ("method", "", "must not be empty"),
    ("source", " ", "must not be empty"),
    ("location", "", "must not be empty"),
    ("arxiv", "arXiv:2505.11289", "not an arXiv id"),
])
def test_each_bad_cell_names_file_line_and_column(tmp_path, column, bad, match):
    rows = [GOOD[0], dict(GOOD[1], **{column: bad}), GOOD[2]]
    assert_error(write_csv(tmp_path / "b.csv", rows), 3, column, match)


def test_unstated_protocol_loads_but_is_never_one_of_ours(tmp_path):
    assert UNSTATED_PROTOCOL == "unstated" and BASELINE_PROTOCOLS == (*PROTOCOL_NAMES, "unstated")
    assert "unstated" not in PROTOCOL_NAMES  # a baselines-only value, never a protocol we compute
    with pytest.raises(ProtocolSpecError, match="unknown protocol name 'unstated'"):
        Protocol("unstated", "mean", "none")
    with pytest.raises(ProtocolSpecError):
        Protocol.parse("unstated/mean/none")
    rows = [GOOD[0], dict(GOOD[1], protocol="unstated", budget_steps=""), GOOD[2]]
    df = load_baselines(write_csv(tmp_path / "b.csv", rows))
    assert list(df.index) == [2, 3, 4] and df.loc[3, "protocol"] == "unstated"
    assert math.isnan(df.loc[3, "budget_steps"]) and df.loc[3, "value"] == 85.4
    assert list(select(df, protocol="unstated").index) == [3]
    assert describe_row(df.loc[3]).startswith("line 3: PaCo MT10 v2 budget ? unstated/mean = 85.4")
    # an unstated protocol is part of the key like any other: the same row twice is still an error
    rows = [*rows, dict(GOOD[1], protocol="unstated", budget_steps="", value="80")]
    assert_error(write_csv(tmp_path / "c.csv", rows), 5, None, "as line 3")


def test_dispersion_and_kind_must_agree(tmp_path):
    path = write_csv(tmp_path / "a.csv", [dict(GOOD[0], dispersion_kind="none")])
    assert_error(path, 2, "dispersion_kind", "must be std, sem, ci95 or unstated")
    path = write_csv(tmp_path / "b.csv", [dict(GOOD[0], dispersion="")])
    assert_error(path, 2, "dispersion", "dispersion_kind is 'std'")
    df = load_baselines(write_csv(tmp_path / "c.csv", [dict(GOOD[1], dispersion_kind="")]))  # empty = none
    assert df.loc[2, "dispersion_kind"] == ""


def test_missing_and_unknown_columns_are_named_on_line_1(tmp_path):
    cols = [c for c in COLUMNS if c != "dispersion_kind"]
    assert_error(write_csv(tmp_path / "a.csv", GOOD, cols), 1, "dispersion_kind", "missing from the header")
    path = write_csv(tmp_path / "b.csv", GOOD, (*COLUMNS, "dispersion_knd"))
    assert_error(path, 1, "dispersion_knd", "unknown column")


def test_duplicate_key_names_both_lines(tmp_path):
    rows = [GOOD[0], GOOD[1], dict(GOOD[0], value="50", notes="the same number again")]
    err = assert_error(write_csv(tmp_path / "b.csv", rows), 4, None, "as line 2")
    assert "MTMHSAC" in str(err)
    # the same method and protocol from another source (another experiment) is another row
    rows = [GOOD[0], dict(GOOD[0], value="50", source="A different paper")]
    assert list(load_baselines(write_csv(tmp_path / "c.csv", rows))["value"]) == [45.2, 50.0]


def test_value_kind_tolerance_and_provenance(tmp_path):
    df = load_baselines(write_csv(tmp_path / "b.csv", GOOD))
    assert list(df["value_kind"]) == ["exact", "unverified", "read_off"]
    assert math.isnan(df.loc[2, "tolerance"]) and df.loc[4, "tolerance"] == 0.5
    assert describe_row(df.loc[4]).startswith("line 4: PaCo MT50 v2 100,000,000 steps final/mean = 57.3 "
                                              "(read off a figure, +-0.5) (Other paper")
    assert "(unverified)" in describe_row(df.loc[3]) and "(read off" not in describe_row(df.loc[2])
    path = write_csv(tmp_path / "c.csv", [dict(GOOD[0], tolerance="0.1")])
    assert_error(path, 2, "tolerance", "only a derived or read_off value has a tolerance; value_kind is exact")
    path = write_csv(tmp_path / "d.csv", [dict(GOOD[2], tolerance="-1")])
    assert_error(path, 2, "tolerance", "must be >= 0")
    assert_error(write_csv(tmp_path / "f.csv", [dict(GOOD[1], value_kind="read_off")]), 2, "tolerance",
                 "value_kind read_off needs the tolerance of the value, in percent points")
    assert_error(write_csv(tmp_path / "g.csv", [dict(GOOD[1], value_kind="exact")]), 2, "provenance",
                 "value_kind exact needs the provenance")
    path = write_csv(tmp_path / "e.csv", [dict(GOOD[2], value_kind="derived", provenance="")])
    assert_error(path, 2, "provenance", "value_kind derived needs the provenance")


def test_worst_k_aggregator_unstated_dispersion_and_at_step(tmp_path):
    rows = [dict(GOOD[0], aggregator="worst-50", dispersion="7.76", dispersion_kind="unstated"),
            dict(GOOD[0], protocol="curve_peak", aggregator="mean", at_step="96.5e6")]
    df = load_baselines(write_csv(tmp_path / "b.csv", rows))
    assert df.loc[2, "aggregator"] == "worst-50" and df.loc[2, "dispersion_kind"] == "unstated"
    assert df.loc[3, "at_step"] == 96_500_000 and math.isnan(df.loc[2, "at_step"])
    assert list(select(df, aggregator="worst-50").index) == [2]
    assert Protocol.parse("final/worst-10/ci95").aggregator == "worst-10"
    assert str(Protocol("final", "worst-10", "std")) == "final/worst-10/std"
    with pytest.raises(ProtocolSpecError, match="unknown protocol aggregator 'worst-x'"):
        Protocol("final", "worst-x", "std")


def test_typed_row_uses_the_file_rules():
    row = typed_row({"benchmark": "MT50", "reward_version": "v2", "protocol": "final", "aggregator": "mean",
                     "value": "83.2", "dispersion": "1.8", "dispersion_kind": "std", "n_seeds": "8"})
    assert row.name is None and row["value"] == 83.2 and row["n_seeds"] == 8 and row["method"] == "typed number"
    assert row["source"] == "command line" and row["value_kind"] == "exact"
    with pytest.raises(BaselineError, match="command line: column 'value': must be a percentage in"):
        typed_row({"benchmark": "MT50", "reward_version": "v2", "protocol": "final", "aggregator": "mean",
                   "value": "120"})
    with pytest.raises(BaselineError, match="column 'dispersion': empty, but dispersion_kind is 'std'"):
        typed_row({"benchmark": "MT50", "reward_version": "v2", "protocol": "final", "aggregator": "mean",
                   "value": "12", "dispersion_kind": "std"})


def test_wrong_number_of_cells_and_empty_file(tmp_path):
    path = write_csv(tmp_path / "b.csv", GOOD)
    path.write_text(path.read_text() + "MOORE,MT10,v1\n")
    assert_error(path, 5, None, "3 cells, but the header has 20")
    (tmp_path / "e.csv").write_text("")
    assert_error(tmp_path / "e.csv", 1, None, "empty file")
    with pytest.raises(BaselineError, match="not found"):
        load_baselines(tmp_path / "absent.csv")


def test_line_numbers_count_multiline_cells_and_blank_lines(tmp_path):
    path = write_csv(tmp_path / "b.csv", [dict(GOOD[0], notes="first line\nsecond line"), GOOD[1]])
    path.write_text(path.read_text() + "\n" + ",".join(f'"{dict(GOOD[2], value="150")[c]}"' for c in COLUMNS) + "\n")
    # header 1, record 1 on lines 2-3, record 2 on line 4, blank line 5, bad record on line 6
    assert_error(path, 6, "value", "percentage")
    path = write_csv(tmp_path / "c.csv", [dict(GOOD[0], notes="first line\nsecond line"), GOOD[1]])
    df = load_baselines(path)
    assert list(df.index) == [2, 4] and df.loc[2, "notes"] == "first line\nsecond line"


def test_baseline_error_is_a_value_error(tmp_path):
    err = assert_error(write_csv(tmp_path / "b.csv", [dict(GOOD[0], value="200")]), 2, "value", "[0, 100]")
    assert isinstance(err, ValueError) and err.path == str(tmp_path / "b.csv")


# ---------------------------------------------------------------- selection
def test_select_filters_and_names_what_exists(tmp_path):
    df = load_baselines(write_csv(tmp_path / "b.csv", GOOD))
    assert list(select(df, method="paco").index) == [3, 4]  # case-insensitive
    assert list(select(df, method="PaCo", benchmark="MT50").index) == [4]
    assert list(select(df, budget_steps=100_000_000).index) == [2, 4]
    assert list(select(df, source="venue 2022", protocol="final").index) == [4]
    assert list(select(df, line=3).index) == [3]
    assert select(df, benchmark="MT10", reward_version="v1").empty  # no method asked: just empty
    with pytest.raises(SelectionError, match="no baseline row for method 'CARE'; methods present: MTMHSAC, PaCo"):
        select(df, method="CARE")
    with pytest.raises(SelectionError, match=r"(?s)'PaCo' has no row matching benchmark='MT50', "
                                             r"reward_version='v1'.*line 3: PaCo MT10 v2"):
        select(df, method="PaCo", benchmark="MT50", reward_version="v1")
    with pytest.raises(SelectionError, match="no baseline row at CSV line 9"):
        select(df, line=9)


def test_describe_row_names_line_and_source(tmp_path):
    df = load_baselines(write_csv(tmp_path / "b.csv", GOOD))
    text = describe_row(df.loc[2])
    assert text.startswith("line 2: MTMHSAC MT50 v1 100,000,000 steps final/iqm = 45.2")
    assert "Some paper, Venue 2025; Table 2" in text
