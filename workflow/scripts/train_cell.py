"""Snakemake script of rule `train`: run `python -m toppo.train` for one cell.

The trainer's output is appended to the cell's train.log (every attempt, each starting with
a `[workflow ...]` line; the trainer's own lines say whether it resumed or retrained; a
retrain copies it into superseded/ with the run) and written to the job's Snakemake log
(this attempt only), and its progress lines go to the terminal as well; the exit status is
the trainer's. Read from the job: params.args (the result-deciding trainer arguments),
params.run_dir, threads (torch_threads, the OpenMP/MKL thread counts, and the cores that
env_workers=auto divides between env and eval workers), config["device"], the live curves'
config["tensorboard"] and config["wandb"] (toppo.grid.live_args), and config["retrain"]:
when true, the trainer gets
--retrain (a finished run of this config is set aside and trained again from scratch; an
unfinished one is resumed, so a retried job still resumes).

The trainer never outlives its job (docs/design.md, run-directory guarantees): it runs in its
own process group, which this script kills (SIGTERM, then SIGKILL after a grace period) when
it gets SIGINT, SIGTERM or SIGHUP (Ctrl-C, `kill`, scancel) or exits; on Linux the trainer
also gets SIGTERM when this script dies (PR_SET_PDEATHSIG), and this script stops it when the
Snakemake process that started the job dies (it watches its ancestors up to that process).
"""


import ctypes
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

PR_SET_PDEATHSIG = 1  # linux/prctl.h
GRACE_S = 20.0  # seconds between SIGTERM and SIGKILL of the trainer's process group
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def die_with_parent(parent_pid: int):
    """preexec_fn of the trainer: SIGTERM when this script dies (Linux), or now if it has."""
    def setup() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):  # not Linux: the signal handlers and watchdog remain
            pass
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return setup


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a process from /proc, or None when it is gone (or a
    zombie: dead, not yet reaped)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # state, ppid, ...; starttime is fields[19]
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), fields[19]


def _is_snakemake(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    names = [Path(a).name for a in argv[:3]]
    return "snakemake" in names[:2] or argv[1:3] == ["-m", "snakemake"]


def ancestors_to_watch(max_depth: int = 8) -> list[tuple[int, str]]:
    """(pid, start time) of this script's ancestors up to the nearest Snakemake process
    (the job's shell, then Snakemake itself); just the parent when none is found."""
    chain, pid = [], os.getppid()
    for _ in range(max_depth):
        stat = _proc_stat(pid)
        if stat is None or pid <= 1:
            break
        chain.append((pid, stat[1]))
        if _is_snakemake(pid):
            return chain
        pid = stat[0]
    return chain[:1]


def gone(watch: list[tuple[int, str]]) -> bool:
    """Whether a watched ancestor has exited (or its pid was reused)."""
    for pid, started in watch:
        stat = _proc_stat(pid)
        if stat is None or stat[1] != started:
            return True
    return False


class TrainerGroup:
    """The trainer's process group: stopped once, SIGTERM first, SIGKILL after GRACE_S."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.stopping = threading.Event()
        self.reason = None

    def stop(self, reason: str) -> None:
        """Safe in a signal handler: no output here (the reason is logged at the end)."""
        if self.stopping.is_set():
            return
        self.reason = reason
        self.stopping.set()
        self._signal(signal.SIGTERM)
        threading.Thread(target=self._kill_later, daemon=True).start()

    def _kill_later(self) -> None:
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self._signal(signal.SIGKILL)  # its children too, whether the trainer is gone or not

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def watch_ancestors(self, watch: list[tuple[int, str]]) -> None:
        while not self.stopping.is_set() and self.proc.poll() is None:
            if gone(watch):
                self.stop(f"the Snakemake process ({watch[-1][0]}) is gone")
                return
            time.sleep(1.0)


def main(smk) -> int:
    repo = Path(smk.scriptdir).resolve().parents[1]
    run_dir = Path(smk.params.run_dir)
    cell = "/".join(run_dir.parts[-3:])  # e.g. MT10-v1/toppo/seed0
    threads = int(smk.threads)
    # params.args ends with the key=value overrides; the trainer takes them as one group.
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from toppo.grid import live_args

    cmd = [
        sys.executable, "-m", "toppo.train", "--device", smk.config["device"],
        "--out-dir", str(run_dir), *shlex.split(smk.params.args), f"torch_threads={threads}",
        f"cores={threads}",  # env_workers=auto: this job's cores less its evaluation workers
        *live_args(smk.config),
    ]  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "train.log", "a") as cell_log, open(smk.log[0], "w") as job_log:
        def write(line: str) -> None:
            for f in (cell_log, job_log):
                f.write(line)
                f.flush()

        def say(msg: str) -> None:
            line = f"[workflow {stamp()}] {msg}"
            write(line + "\n")
            print(line, file=sys.stderr, flush=True)

        say(f"{smk.rule} {run_dir} on {socket.gethostname()}, config {smk.params.config_hash}")
        if str(smk.config.get("retrain", False)).lower() == "true":
            cmd.insert(3, "--retrain")
        say("$ " + shlex.join(cmd))
        watch = ancestors_to_watch()
        # Every line goes to train.log; the trainer's own lines (progress, ETA, errors) are
        # echoed to Snakemake's terminal too, tagged with the cell, so long jobs show progress.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                cwd=os.getcwd(), text=True, bufsize=1, process_group=0,
                                preexec_fn=die_with_parent(os.getpid()))
        group = TrainerGroup(proc)
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
