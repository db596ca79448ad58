"""toppo.harness.heap: with glibc told to keep freed memory, a step that allocates, touches and
frees the same 64 MiB again faults no pages in; by default (above glibc's largest adaptive mmap
threshold, 32 MiB) it faults all of them in every time."""

import json
import subprocess
import sys

import pytest

STEPS = """
import json, resource, sys
from toppo.harness.heap import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
faults = []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buf = bytearray(64 << 20)  # zeroed: every page touched
    del buf
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": kept, "faults": faults}))
"""


def faults(mode: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_freed_memory_is_kept_for_the_next_step():
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc only")
    pages = (64 << 20) // 4096
    default, kept = faults("default"), faults("keep")
    assert all(f > pages // 2 for f in default["faults"]), default  # returned and faulted in again
    assert kept["kept"] is True
    assert kept["faults"][0] > pages // 2 and all(f < pages // 20 for f in kept["faults"][1:]), kept
