"""Snakemake script of rule `resolved_config`: write the effective (merged) workflow config,
which `python -m analysis tables|figures --config` reads its `report:` section from."""

import sys
from pathlib import Path

import yaml


def repo_on_path(script_dir: str) -> None:
    repo = str(Path(script_dir).resolve().parents[1])
    if repo not in sys.path:
        sys.path.insert(0, repo)


def main(smk) -> int:
    repo_on_path(smk.scriptdir)
    from toppo.specs.runfiles import write_text_atomic

    out = Path(smk.output[0])
    write_text_atomic(
        out,
        "# Effective workflow config of this scale: config/config.yaml merged with --configfile\n"
        "# and --config (written by the workflow's resolved_config rule).\n"
        + yaml.safe_dump(dict(smk.params.config), sort_keys=False)
    )
    Path(smk.log[0]).write_text(f"wrote {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(snakemake))  # noqa: F821 (the object Snakemake gives a script)
