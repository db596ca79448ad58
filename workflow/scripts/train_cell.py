"""Snakemake script of rule `train`: hand one cell's resolved TrainConfig to the trainer.

The cell's config is resolved by toppo.specs.grid (Grid.train_config: the one definition the DAG's
config_hash param comes from too) with this job's threads (torch_threads, and the cores that
env_workers=auto divides between env and eval workers), the device and the live-curve
settings, written once to `{OUT}/logs/train/<cell>.yaml` beside the job's log, and run as
`python -m toppo.train --config <that file> --variant <variant> --out-dir <run dir>`
(`trainer_command`); with config["numerics"] set, `--numerics <mode>` too (the CPU kernels,
toppo.specs.numerics_mode; unset: the trainer's default); with config["retrain"] true, `--retrain` (a
finished run of this config is set aside and trained again from scratch; an unfinished one is
resumed, so a retried job still resumes).

The trainer's output is appended to the cell's train.log (every attempt, each starting with
`[workflow ...]` lines naming the config file, its execution settings and the command; the
trainer's own lines say whether it resumed or retrained; a retrain copies it into superseded/
with the run, as it was before this attempt: the trainer is told its size then,
toppo.specs.runfiles.JOB_LOG_BYTES_ENV) and written to the job's Snakemake log (this attempt
only), and its progress lines go to the terminal as well; the exit status is the trainer's.

The trainer never outlives its job (docs/design.md, run-directory guarantees; the process
lifetime code is toppo.harness.procs): it runs in its own process group, which this script
stops (SIGTERM, then SIGKILL after a grace period) when it gets SIGINT, SIGTERM or SIGHUP
(Ctrl-C, `kill`, scancel) or exits; on Linux the trainer also gets SIGTERM when this script
dies (PR_SET_PDEATHSIG), and this script stops it when the Snakemake process that started the
job dies (it watches its ancestors up to that process).
"""


import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

GRACE_S = 20.0  # seconds between SIGTERM and SIGKILL of the trainer's process group
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def trainer_command(grid, variant: str, cell_file: Path, run_dir: Path) -> list[str]:
    """The trainer's command line for one cell of ``grid`` (toppo.specs.grid.Grid): its resolved
    config file, its variant (the name its logs record), its run directory, and the workflow
    config's ``numerics`` and ``retrain`` settings."""
    from toppo.specs.numerics_mode import FLAG

    cmd = [sys.executable, "-m", "toppo.train", "--config", str(cell_file),
           "--variant", variant, "--out-dir", str(run_dir)]
    if grid.numerics is not None:
        cmd += [FLAG, grid.numerics]
    if str(grid.config.get("retrain", False)).lower() == "true":
        cmd.append("--retrain")
    return cmd


def main(smk) -> int:
    repo = Path(smk.scriptdir).resolve().parents[1]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from toppo.harness import procs
    from toppo.specs.config import UNHASHED_FIELDS, cli_value
    from toppo.specs.grid import WORKFLOW_KEYS, Cell, Grid
    from toppo.specs.runfiles import JOB_LOG_BYTES_ENV, write_yaml_atomic

    wc = smk.wildcards
    cell = Cell(wc.benchmark, wc.reward, wc.variant, int(wc.seed))
    run_dir = Path(smk.params.run_dir)
    threads = int(smk.threads)
    grid = Grid(smk.config)
    cfg = grid.train_config(cell, threads=threads)
    if cfg.config_hash() != smk.params.config_hash:  # the DAG and this job read one config
        raise RuntimeError(f"{cell}: resolved config {cfg.config_hash()}, the workflow "
                           f"scheduled {smk.params.config_hash}")
    cell_file = Path(smk.log[0]).with_suffix(".yaml")
    write_yaml_atomic(cell_file, cfg.to_dict())

    cmd = trainer_command(grid, cell.variant, cell_file, run_dir)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "train.log", "a") as cell_log, open(smk.log[0], "w") as job_log:
        # train.log's size before this attempt's lines: a retrain sets aside that much of it
        env[JOB_LOG_BYTES_ENV] = str(os.fstat(cell_log.fileno()).st_size)

        def write(line: str) -> None:
            for f in (cell_log, job_log):
                f.write(line)
                f.flush()

        def say(msg: str) -> None:
            line = f"[workflow {stamp()}] {msg}"
            write(line + "\n")
            print(line, file=sys.stderr, flush=True)

        say(f"{smk.rule} {run_dir} on {socket.gethostname()}, config {cfg.config_hash()}")
        execution = {k: v for k, v in cfg.to_dict().items()
                     if k in UNHASHED_FIELDS and k in WORKFLOW_KEYS}
        say(f"{cell_file}: execution " + " ".join(f"{k}={cli_value(v)}"
                                                  for k, v in execution.items()))
        say("$ " + shlex.join(cmd))
        watch = procs.ancestors_to_watch()
        parent = os.getpid()

        def die_with_this_script() -> None:  # the trainer's preexec_fn
            if not procs.die_with_parent(parent):
                os.kill(os.getpid(), signal.SIGTERM)

        # Every line goes to train.log; the trainer's own lines (progress, ETA, errors) are
        # echoed to Snakemake's terminal too, tagged with the cell, so long jobs show progress.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                cwd=os.getcwd(), text=True, bufsize=1, process_group=0,
                                preexec_fn=die_with_this_script)
        group = procs.ProcessGroup(proc, GRACE_S)
        previous = {}
        for sig in FORWARDED:
            previous[sig] = signal.signal(
                sig, lambda num, _frame: group.stop(f"got {signal.Signals(num).name}"))
        threading.Thread(target=group.watch_ancestors, args=(watch,), daemon=True).start()
        try:
            with proc:
                for line in proc.stdout:
                    write(line)
                    if line.startswith("[toppo"):
                        print(f"{cell} {line}", end="", file=sys.stderr, flush=True)
        finally:
            if proc.poll() is None:  # this script is failing: never leave the trainer behind
                group.stop("the job script is exiting")
                proc.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        rc = proc.returncode
        say(f"exit status {rc}" + (f" (trainer stopped: {group.reason})" if group.reason else ""))
    if group.reason and rc == 0:
        return 1  # stopped from outside: the job did not finish
    return rc


if __name__ == "__main__":
    sys.exit(main(snakemake))  # noqa: F821 (the object Snakemake gives a script)
