"""Seconds per 100,000-step MT10 update: our ``ref_mt10`` as a user starts it, beside
Meta-World+'s reference JAX MT-PPO, each pinned to one core, both at once (issue 30).

Ours: ``python -m toppo.train --variant ref_mt10 --benchmark MT10 --reward-version v2
--seed 7 --total-steps 2000000 --numerics MODE torch_threads=1`` under ``taskset -c CPU``,
stopped once ``train_metrics.csv`` holds ``--updates`` rows; per update it prints the
trainer's ``update_time_s`` (rollout + PPO update; the checkpoint after it is not counted,
under 0.1 s here) with its rollout and learner parts. No evaluation falls in the timed
updates: the first is due after update 10 (1M steps), on both sides.

The reference (optional): a shell command in ``--ref-cmd`` or ``REF_CMD``, run under
``taskset -c REF_CPU`` at the same time as ours, stopped after the same number of updates.
Nothing of the reference is in this repository; the command is yours (see
benchmarks/measurements/ref-speed-2026-12-07/README.md for the one we ran). Its stdout must
be the reference's ``OnPolicyAlgorithm.train`` output, unbuffered (``PYTHONUNBUFFERED=1``):
its first ``SPS:`` line marks step 0 and its ``global_step=N,`` lines (every 5,000 env steps)
mark the ends of updates, N a multiple of ``--ref-steps-per-update``. Per update it prints the
seconds between marks on this script's clock, and its PPO update estimated from the 5,000-step
lines (``reference_learn_s``). For both sides it also prints the CPU seconds
each update used (user + system, summed over the side's processes, from /proc): on a
machine shared with other jobs, wall time counts the waits for the core, CPU time does not.
The first update of each side includes warm-up (JAX compiles its functions there), so the
means are over updates 2..N.

    REF_CMD='...' python benchmarks/ref_speed.py [--updates 3] [--numerics native|portable]
        [--cpu 0] [--ref-cpu 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from toppo.harness.procs import PROC, ProcessGroup, stat_fields

OURS_ARGS = ["--variant", "ref_mt10", "--benchmark", "MT10", "--reward-version", "v2",
             "--seed", "7", "--total-steps", "2000000"]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
MARK = re.compile(r"global_step=(\d+),")
SPS = re.compile(r"SPS: (\d+)")
TICK = os.sysconf("SC_CLK_TCK")


def session_cpu_s(sid: int) -> float:
    """CPU seconds (user + system) of the processes in session ``sid``, reaped children included."""
    total = 0
    for stat in PROC.glob("[0-9]*/stat"):
        fields = stat_fields(stat)  # from the state on: session id [3], CPU times [11:15]
        if fields is not None and int(fields[3]) == sid:
            total += sum(int(f) for f in fields[11:15])
    return total / TICK


def stop(proc: subprocess.Popen) -> None:
    """End ``proc`` and the processes it started (its own session and process group): SIGTERM,
    SIGKILL 30 s later."""
    ProcessGroup(proc, grace_s=30).stop("measured")
    proc.wait()


def read_reference(proc: subprocess.Popen, log: Path, steps_per_update: int, updates: int,
                   out: dict[str, list]) -> None:
    """Follow the reference's output: ``out['marks']`` gets (update, wall clock, CPU seconds)
    at the ends of updates, ``out['steps']`` (env steps, wall clock) at every step line."""
    marks, steps = out["marks"], out["steps"]
    with open(log, "w") as f:
        for line in proc.stdout:
            now = time.monotonic()
            f.write(line)
            f.flush()
            if not marks and SPS.search(line):
                marks.append((0, now, session_cpu_s(proc.pid)))
            elif m := MARK.search(line):
                steps.append((int(m[1]), now))
                if int(m[1]) % steps_per_update:
                    continue
                marks.append((int(m[1]) // steps_per_update, now, session_cpu_s(proc.pid)))
                if marks[-1][0] >= updates:
                    stop(proc)
                    return


def reference_learn_s(steps: list[tuple[int, float]], steps_per_update: int) -> dict[int, float]:
    """Per update, the seconds of the reference's PPO update, estimated from its step lines: the
    interval that ends the update holds the update, the others rollout only, so the update is
    that interval less the median of the others."""
    learn = {}
    for (s0, t0), (s1, t1) in zip(steps, steps[1:]):
        if s1 % steps_per_update == 0:
            k = s1 // steps_per_update
            rollout = [b[1] - a[1] for a, b in zip(steps, steps[1:])
                       if (k - 1) * steps_per_update < a[0] and b[0] < k * steps_per_update]
            if rollout:
                learn[k] = t1 - t0 - statistics.median(rollout)
    return learn


def ours_rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def per_update(marks: list[tuple[int, float, float]]) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each update from consecutive marks."""
    return [(b[1] - a[1], b[2] - a[2]) for a, b in zip(marks, marks[1:])]


def run(args: argparse.Namespace) -> int:
    out = Path(args.out or tempfile.mkdtemp(prefix="ref_speed_"))
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **ONE_THREAD, "PYTHONUNBUFFERED": "1"}
    print(f"== {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {os.uname().nodename}, "
          f"{os.cpu_count()} CPUs, uptime: {uptime()}")
    print(f"run directories and logs under {out}")

    ref, ref_out, reader = None, {"marks": [], "steps": []}, None
    if args.ref_cmd:
        ref = subprocess.Popen(["taskset", "-c", str(args.ref_cpu), "bash", "-c", args.ref_cmd],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, start_new_session=True)
        reader = threading.Thread(target=read_reference, daemon=True, args=(
            ref, out / "reference.log", args.ref_steps_per_update, args.updates, ref_out))
        reader.start()
        print(f"reference on CPU {args.ref_cpu}: {args.ref_cmd}")

    ours_dir = out / f"ours-{args.numerics}"
    cmd = ["taskset", "-c", str(args.cpu), sys.executable, "-m", "toppo.train", *OURS_ARGS,
           "--numerics", args.numerics, "--out-dir", str(ours_dir), "torch_threads=1"]
    print(f"ours on CPU {args.cpu}: {shlex.join(cmd)}", flush=True)
    ours_marks: list[tuple[int, float, float]] = []  # (updates done, wall clock, CPU seconds)
    with open(out / f"ours-{args.numerics}.log", "w") as log:
        ours = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        deadline = time.monotonic() + args.timeout
        try:
            while time.monotonic() < deadline:
                done = len(ours_rows(ours_dir / "train_metrics.csv"))
                if done > (ours_marks[-1][0] if ours_marks else 0) and ours.poll() is None:
                    ours_marks.append((done, time.monotonic(), session_cpu_s(ours.pid)))
                if done >= args.updates or ours.poll() is not None:
                    stop(ours)
                    if reader is None or not reader.is_alive():
                        break
                time.sleep(0.5)
        finally:
            stop(ours)
            if ref is not None:
                stop(ref)
    if reader is not None:
        reader.join(timeout=10)

    rows = ours_rows(ours_dir / "train_metrics.csv")
    ours_cpu = [cpu for _, cpu in per_update([(0, 0.0, 0.0)] + ours_marks)]
    print(f"== {time.strftime('%H:%M:%SZ', time.gmtime())} uptime: {uptime()}")
    print(f"ours ({args.numerics}), seconds per update: the trainer's update_time_s (rollout + "
          f"PPO update), its rollout_time_s and learn_time_s, and CPU seconds (update 1's "
          f"include start-up)")
    for r, cpu in zip(rows, ours_cpu):
        print(f"  update {r['update']}: {float(r['update_time_s']):7.1f}  (rollout "
              f"{float(r['rollout_time_s']):6.1f}, learn {float(r['learn_time_s']):6.1f})  "
              f"CPU {cpu:7.1f}")
    ref_s = per_update(ref_out["marks"])
    if args.ref_cmd:
        learn = reference_learn_s(ref_out["steps"], args.ref_steps_per_update)
        print("reference, seconds per update: wall clock (its PPO update estimated from its step "
              "lines), CPU seconds (update 1 from its first step)")
        for k, (wall, cpu) in enumerate(ref_s, 1):
            print(f"  update {k}: {wall:7.1f}  (learn ~{learn.get(k, float('nan')):6.1f})  "
                  f"CPU {cpu:7.1f}")
    if len(rows) < 2 or (args.ref_cmd and len(ref_s) < 2):
        print(f"error: fewer than 2 updates measured in {args.timeout:.0f} s "
              f"(ours {len(rows)}, reference {len(ref_s)}); logs under {out}", file=sys.stderr)
        return 1
    ours_wall = statistics.mean(float(r["update_time_s"]) for r in rows[1:])
    ours_cpu_mean = statistics.mean(ours_cpu[1:len(rows)])
    print(f"ours ({args.numerics}) mean of updates 2..{len(rows)}: {ours_wall:.1f} s, "
          f"CPU {ours_cpu_mean:.1f} s")
    if args.ref_cmd:
        ref_wall = statistics.mean(wall for wall, _ in ref_s[1:])
        ref_cpu = statistics.mean(cpu for _, cpu in ref_s[1:])
        print(f"reference mean of updates 2..{len(ref_s)}: {ref_wall:.1f} s, CPU {ref_cpu:.1f} s")
        print(f"ours ({args.numerics}) is {ref_wall / ours_wall:.2f}x the reference's per-core "
              f"speed by wall time, {ref_cpu / ours_cpu_mean:.2f}x by CPU time")
    return 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--updates", type=int, default=3, help="updates to time on each side (first: warm-up)")
    p.add_argument("--numerics", choices=("native", "portable"), default="native",
                   help="our trainer's CPU kernels (python -m toppo.train --numerics)")
    p.add_argument("--cpu", type=int, default=0, help="the core ours is pinned to")
    p.add_argument("--ref-cpu", type=int, default=1, help="the core the reference is pinned to")
    p.add_argument("--ref-cmd", default=os.environ.get("REF_CMD", ""),
                   help="shell command that runs the reference (default: REF_CMD; none: ours only)")
    p.add_argument("--ref-steps-per-update", type=int, default=100_000,
                   help="env steps per reference update (MT10: 10 tasks x 10,000)")
    p.add_argument("--timeout", type=float, default=900, help="seconds before both are stopped")
    p.add_argument("--out", help="directory for the run directories and logs (default: a temp dir)")
    args = p.parse_args()
    if args.updates < 2:
        p.error("--updates must be at least 2 (the first is warm-up)")
    if args.ref_cmd and args.cpu == args.ref_cpu:
        p.error("--cpu and --ref-cpu must differ: each side gets a core of its own")
    sys.exit(run(args))


if __name__ == "__main__":
    main()
