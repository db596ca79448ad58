"""SIGTERM at any point of the trainer's start-up ends it with one line on stderr, no
traceback (from the trainer or a worker it was starting), and no process left behind.

(The handler is the trainer module's first statement; a SIGTERM before it, while the
interpreter itself starts, ends the process silently, by the default action.)"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toppo.harness.procs import alive, children

REPO = Path(__file__).resolve().parents[1]
TINY = ["--variant", "toppo", "--benchmark", "MT10", "--reward-version", "v1", "--seed", "0",
        "--device", "cpu", "--total-steps", "10000", "rollout_steps_per_task=500", "num_epochs=1",
        "num_minibatches=2", "hidden_sizes=32,32", "eval_episodes=1", "eval_envs_per_task=1",
        "eval_every_steps=5000", "torch_threads=1", "progress_every_s=0", "eval_mode=overlap"]



def start(tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "toppo.train", "--out-dir", str(tmp_path / "run"), *TINY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def wait_for(proc: subprocess.Popen, what: str) -> bool:
    """Until ``what`` happens in the trainer: 'torch' (torch's library is being loaded: the
    imports), 'child' (its first worker process exists: it is being spawned), or 'line:X'
    (a progress line containing X)."""
    checks = {"torch": lambda: "libtorch" in Path(f"/proc/{proc.pid}/maps").read_text(),
              "child": lambda: bool(children(proc.pid))}
    if what in checks:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if checks[what]():
                return True
            time.sleep(0.005)
        return False
    marker = what.removeprefix("line:")
    for line in proc.stdout:  # the trainer's progress lines, flushed one by one
        if marker in line:
            return True
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds worker processes in /proc")
# after the envs are built (MT10's, in the trainer and its eval worker): the slow tier's; the
# quick tier stops it earlier, its first worker starting included
@pytest.mark.parametrize("when", ["torch", "line:| config", "child",
                                  pytest.param("line:built envs", marks=pytest.mark.slow)])
def test_sigterm_during_start_up_is_one_line(tmp_path, when):
    proc = start(tmp_path)
    try:
        assert wait_for(proc, when), f"the trainer ended before {when}"
        kids = children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)  # every writer of the pipes gone
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    # stderr: the start-up's own warnings (gymnasium's), then the one line; nothing else
    assert "Traceback" not in err and "Error" not in err, err
    assert err.splitlines()[-1] == f"python -m toppo.train: stopped by SIGTERM (pid {proc.pid})", err
    assert err.count("SIGTERM") == 1, err
    deadline = time.monotonic() + 10
    while any(alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(k) for k in kids)
