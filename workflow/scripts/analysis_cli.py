"""Snakemake script of rules `tables`, `reproduction`, `figures` and `partial_report`: run
`python -m analysis COMMAND`.

    python -m analysis {params.command} --runs {params.runs} --config {input.config}
        --baselines {input.baselines} --out-dir <folder of the outputs> --scale {params.scale}

with this checkout on PYTHONPATH and the job's Python (the conda env's under --use-conda);
output to the rule's log, exit status the program's. Rule partial_report: each of
params.commands into its folder, with --partial.
"""


import os
import shlex
import subprocess
import sys
from pathlib import Path


def main(smk) -> int:
    repo = Path(smk.scriptdir).resolve().parents[1]
    # one command writing the outputs' folder, or (rule partial_report) several, each with its folder
    commands = smk.params.get("commands") or {smk.params.command: str(Path(smk.output[0]).parent)}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), env.get("PYTHONPATH")) if p)
    with open(smk.log[0], "w") as log:
        for command, out_dir in commands.items():
            cmd = [
                sys.executable, "-m", "analysis", command,
                "--runs", *smk.params.runs,
                "--config", smk.input.config,
                "--baselines", smk.input.baselines,
                "--out-dir", out_dir,
                "--scale", smk.params.scale,
                *(["--partial"] if smk.params.get("partial") else []),
            ]  # fmt: skip
            print("$ " + shlex.join(cmd), file=log, flush=True)
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
            if rc:
                return rc
    return 0


if __name__ == "__main__":
    sys.exit(main(snakemake))  # noqa: F821 (the object Snakemake gives a script)
