"""Snakemake script of rule `train`: run `python -m toppo.train` for one cell.

The trainer's output goes to the cell's train.log (Snakemake starts each attempt with a new
one; the trainer's own lines say whether it resumed), and its progress lines to the terminal
as well; the exit status is the trainer's. Read from the job: params.args (the
result-deciding trainer arguments), params.run_dir, threads (torch_threads and the OpenMP/MKL
thread counts), config["device"], and config["retrain"]: when true, a finished checkpoint of
this cell's config (params.config_hash, params.num_updates) is moved to
checkpoints/previous.pt first, so the cell trains from scratch; an unfinished one is kept, so
a retried job still resumes.
"""


import os
import shlex
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def discard_finished_checkpoint(run_dir: Path, config_hash: str, num_updates: int) -> str:
    ckpt = run_dir / "checkpoints" / "latest.pt"
    if not ckpt.exists():
        return "retrain: no checkpoint, training from scratch"
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    same = state.get("config_hash") == config_hash
    finished = state.get("update_idx", 0) >= num_updates
    if same and finished:
        ckpt.replace(ckpt.with_name("previous.pt"))
        return f"retrain: moved the finished checkpoint to {ckpt.with_name('previous.pt')}"
    return f"retrain: kept {ckpt} (same config: {same}, finished: {finished})"


def main(smk) -> int:
    repo = Path(smk.scriptdir).resolve().parents[1]
    run_dir = Path(smk.params.run_dir)
    cell = "/".join(run_dir.parts[-3:])  # e.g. MT10-v1/toppo/seed0
    threads = int(smk.threads)
    # params.args ends with the key=value overrides; the trainer takes them as one group.
    cmd = [
        sys.executable, "-m", "toppo.train", "--device", smk.config["device"],
        "--out-dir", str(run_dir), *shlex.split(smk.params.args), f"torch_threads={threads}",
    ]  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(smk.log[0], "a") as log:
        def say(msg: str) -> None:
            line = f"[workflow {stamp()}] {msg}"
            print(line, file=log, flush=True)
            print(line, file=sys.stderr, flush=True)

        say(f"{smk.rule} {run_dir} on {socket.gethostname()}, config {smk.params.config_hash}")
        if str(smk.config.get("retrain", False)).lower() == "true":
            say(discard_finished_checkpoint(run_dir, smk.params.config_hash,
                                            int(smk.params.num_updates)))
        say("$ " + shlex.join(cmd))
        # Every line goes to train.log; the trainer's own lines (progress, ETA, errors) are
        # echoed to Snakemake's terminal too, tagged with the cell, so long jobs show progress.
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                              cwd=os.getcwd(), text=True, bufsize=1) as proc:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                if line.startswith("[toppo"):
                    print(f"{cell} {line}", end="", file=sys.stderr, flush=True)
        rc = proc.returncode
        say(f"exit status {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main(snakemake))  # noqa: F821 (the object Snakemake gives a script)
