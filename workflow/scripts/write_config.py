"""Snakemake script of rule `resolved_config`: write the effective (merged) workflow config,
which `python -m analysis tables|figures --config` reads its `report:` section from."""

import sys
from pathlib import Path

import yaml


def main(smk) -> int:
    out = Path(smk.output[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "# Effective workflow config of this scale: config/config.yaml merged with --configfile\n"
        "# and --config (written by the workflow's resolved_config rule).\n"
        + yaml.safe_dump(dict(smk.params.config), sort_keys=False)
    )
    Path(smk.log[0]).write_text(f"wrote {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(snakemake))  # noqa: F821 (the object Snakemake gives a script)
