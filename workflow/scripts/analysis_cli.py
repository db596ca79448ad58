"""Snakemake script of rules `tables` and `figures`: run `python -m analysis COMMAND`.

    python -m analysis {params.command} --runs {params.runs} --config {input.config}
        --baselines {input.baselines} --out-dir <folder of the outputs> --scale {params.scale}

with this checkout on PYTHONPATH and the job's Python (the conda env's under --use-conda);
output to the rule's log, exit status the program's.
"""


import os
import shlex
import subprocess
import sys
from pathlib import Path


def main(smk) -> int:
    repo = Path(smk.scriptdir).resolve().parents[1]
    cmd = [
        sys.executable, "-m", "analysis", smk.params.command,
        "--runs", *smk.params.runs,
        "--config", smk.input.config,
        "--baselines", smk.input.baselines,
        "--out-dir", str(Path(smk.output[0]).parent),
        "--scale", smk.params.scale,
    ]  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), env.get("PYTHONPATH")) if p)
    with open(smk.log[0], "w") as log:
        print("$ " + shlex.join(cmd), file=log, flush=True)
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    return rc


if __name__ == "__main__":
    sys.exit(main(snakemake))  # noqa: F821 (the object Snakemake gives a script)
