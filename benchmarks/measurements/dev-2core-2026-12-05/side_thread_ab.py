"""A/B: the rollout's critic on a side thread vs inline (synchronous executor), interleaved."""
from toppo import numerics
numerics.apply()
import statistics, sys, tempfile, time, contextlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
import toppo.rollout as rollout
from toppo.train import Trainer
from toppo.variants import resolve

class Inline:
    def __init__(self, *a, **k): pass
    def __enter__(self): return self
    def __exit__(self, *a): pass
    def submit(self, fn, *args):
        f = Future(); f.set_result(fn(*args)); return f

if __name__ == "__main__":
    bench, steps, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    counts = [0, 2]
    with contextlib.ExitStack() as st:
        tr = {}
        for w in counts:
            cfg = resolve("toppo", {"benchmark": bench, "device": "cpu", "torch_threads": 1,
                "rollout_steps_per_task": steps, "eval_every_steps": 10**12, "env_workers": w,
                "eval_mode": "inline", "eval_envs_per_task": 1, "eval_episodes": 1})
            t = Trainer(cfg, Path(st.enter_context(tempfile.TemporaryDirectory()))); st.callback(t.close)
            t.collect_rollout(); tr[w] = t
        rates = {(m, w): [] for m in ("inline", "thread") for w in counts}
        for _ in range(reps):
            for m, ex in (("inline", Inline), ("thread", ThreadPoolExecutor)):
                rollout.ThreadPoolExecutor = ex
                for w, t in tr.items():
                    t0 = time.perf_counter(); t.collect_rollout()
                    rates[(m, w)].append(t.cfg.steps_per_update / (time.perf_counter() - t0))
    base = rates[("inline", 0)]
    for k, v in rates.items():
        print(k, f"median {statistics.median(v):.0f} range {min(v):.0f}-{max(v):.0f} "
              f"x inline-in-process {statistics.median(a/b for a, b in zip(v, base)):.3f}", flush=True)
    print(open("/proc/loadavg").read())
