"""A workflow config that breaks the schema, or is not YAML, is one line naming the file and
the key (or the line and column), from Snakemake and from ``python -m analysis status`` alike
(toppo.specs.schema reads every schema error: the workflow config's and the report section's)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from toppo.specs.grid import GridError, load_config
from toppo.specs.schema import key_path, yaml_error_line

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

# (file text, the one line after "<file>: "): values, a oneOf, a misspelt key, several at once
BAD = {
    "negative_budget": ("budgets: {MT10: -60000}\n",
                        "budgets.MT10: -60000 is less than the minimum of 1"),
    "zero_seeds": ("grid:\n  - {name: main, benchmarks: [MT10], reward_versions: [v1], "
                   "variants: [mtppo], seeds: 0}\n",
                   "grid[0].seeds: 0 is less than the minimum of 1 (a count n (seeds 0..n-1) "
                   "or an explicit list of seeds)"),
    "misspelt_key": ("budgetz: {MT10: 60000}\n",
                     "budgetz: unknown key (known keys: benchmark_overrides, budgets, device, "
                     "grid, numerics, report, resources, retrain, scale, tensorboard, "
                     "trainer_overrides, "
                     "wandb)"),
    "several": ("device: gpu\nreport: {last_m: 2}\ngrid:\n  - {name: main, benchmarks: [MT10], "
                "reward_versions: [v1], variants: [mtppo, mtppo], seeds: [0, -1]}\n",
                "device: 'gpu' is not one of ['auto', 'cpu', 'cuda']; grid[0].seeds[1]: -1 is "
                "less than the minimum of 0 (a count n (seeds 0..n-1) or an explicit list of "
                "seeds); grid[0].variants: ['mtppo', 'mtppo'] has non-unique elements (variant "
                "names (toppo.specs.registry.VARIANTS), the name of a variant group "
                "(toppo.specs.registry.GROUPS), e.g. `variants: cumulative`, or a combiner grid, e.g. "
                "`variants: {combiners: [sum, fairgrad]}`); report.last_m: unknown "
                "key (known keys: ablations, bootstrap_reps, bootstrap_seed, curves_protocol, "
                "last_n, reference_check, reproduction, table3, worst_k)"),
}
NOT_YAML = "budgets:\n  MT10: 60000\n resources: [a\n"  # line 3, column 2: a bad indent
NOT_YAML_LINE = ("{}:3:2: not valid YAML: while parsing a block mapping: expected <block end>, "
                 "but found '<block mapping start>'")


def test_key_paths_and_yaml_lines():
    assert key_path(["budgets", "MT10"]) == "budgets.MT10"
    assert key_path(["grid", 0, "seeds"]) == "grid[0].seeds"
    assert key_path(["table3"], "report") == "report.table3" and key_path([]) == ""
    with pytest.raises(yaml.YAMLError) as exc:
        yaml.safe_load("a: [1, 2\n")
    assert yaml_error_line("f.yaml", exc.value) == ("f.yaml:2:1: not valid YAML: while parsing a "
                                                    "flow sequence: expected ',' or ']', but got "
                                                    "'<stream end>'")


@pytest.mark.parametrize("name", BAD)
def test_load_config_names_the_file_and_every_broken_key_in_one_line(tmp_path, name):
    text, line = BAD[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    with pytest.raises(GridError) as exc:
        load_config([path])
    assert str(exc.value) == f"{path}: {line}"


def test_load_config_names_the_line_and_column_of_a_yaml_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(NOT_YAML)
    with pytest.raises(GridError) as exc:
        load_config([path])
    assert str(exc.value) == NOT_YAML_LINE.format(path)


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=ENV)


@pytest.mark.parametrize("name", ["negative_budget", "misspelt_key", "not_yaml"])
def test_status_says_one_line(tmp_path, name):
    path = tmp_path / f"{name}.yaml"
    path.write_text(BAD[name][0] if name in BAD else NOT_YAML)
    proc = run("-m", "analysis", "status", "--configfile", str(path))
    line = f"{path}: {BAD[name][1]}" if name in BAD else NOT_YAML_LINE.format(path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        1, "", f"python -m analysis status: error: {line}\n")


def snakemake(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile"):
    return run("-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(workdir),
               "--dry-run", "--cores", "1", *args)


# zero_seeds in the slow tier: the quick tier's Snakemake runs see a value below its minimum
# (negative_budget) and a misspelt key; its message is checked in-process above
@pytest.mark.parametrize("name", ["negative_budget", pytest.param("zero_seeds", marks=pytest.mark.slow),
                                  "misspelt_key"])
def test_snakemake_says_one_line(tmp_path, name):
    path = tmp_path / f"{name}.yaml"
    path.write_text(BAD[name][0])
    proc = snakemake(tmp_path, "--configfile", str(path))
    # before it, only Snakemake's own notes: the workflow profile, the config merged
    assert proc.returncode == 1 and proc.stderr.endswith(f"\nInvalid config: {path}: {BAD[name][1]}\n")
    assert len((proc.stdout + proc.stderr).splitlines()) <= 3, proc.stdout + proc.stderr


def test_snakemake_names_the_line_of_a_yaml_error_in_the_workflows_own_config(tmp_path):
    """config/config.yaml is read by the Snakefile, which checks it first (a copy of the
    workflow whose own config is broken; everything else is this checkout's)."""
    tree = tmp_path / "workflow_copy"
    tree.mkdir()
    for name in ("Snakefile", "workflow", "toppo", "analysis", "profiles"):
        (tree / name).symlink_to(REPO / name)
    (tree / "config").mkdir()
    broken = tree / "config" / "config.yaml"
    broken.write_text(NOT_YAML)
    proc = snakemake(tmp_path / "work", snakefile=tree / "Snakefile")
    assert proc.returncode == 1 and proc.stderr.endswith(f"\nInvalid config: {NOT_YAML_LINE.format(broken)}\n")


def test_snakemake_reads_command_line_configfiles_itself(tmp_path):
    """Snakemake 9 loads --configfile files before the Snakefile runs and names neither the
    file nor the line of a YAML error; docs/workflow.md quotes this message and points to
    `python -m analysis status --configfile`, which names both. Should a Snakemake release
    change it, this test says the docs are out of date."""
    path = tmp_path / "bad.yaml"
    path.write_text(NOT_YAML)
    proc = snakemake(tmp_path, "--configfile", str(path))
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "WorkflowError:", "Config file is not valid JSON or YAML. In case of YAML, make sure to "
                          "not mix whitespace and tab indentation."]


def test_a_valid_config_still_gets_the_schema_defaults(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(textwrap.dedent("""\
        trainer_overrides: {num_epochs: 2}
        wandb: {project: p}
        """))
    config = load_config([path])
    assert config["wandb"]["mode"] == "online"  # none of the three is in config/config.yaml
    assert config["tensorboard"] is True and config["benchmark_overrides"] == {}
