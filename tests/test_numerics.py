"""toppo.harness.numerics: under the portable mode a learner update gives the same bits whatever CPU
kernels the user's environment asks for; without it the same update differs (so the test can
fail); the manifest's machine description; the mode reaches every process, or says why not;
which mode a process runs (the --numerics flag, else TOPPO_NUMERICS, else native)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# One real learner update (toppo: LayerNorm, PopArt, FairGrad and PCGrad, diagnostics) on a
# synthetic MT10 rollout, in a fresh process that applies the mode before torch loads as the
# trainer does; prints torch's CPU capability and a hash of the updated weights and stats.
UPDATE = """
from toppo.harness import numerics
numerics.apply()
import hashlib, torch
from toppo.algo.learner import Learner
from toppo.specs.variants import resolve
numerics.configure_torch(1)
torch.manual_seed(0)
cfg = resolve("toppo", {"benchmark": "MT10", "hidden_sizes": (64, 64), "rollout_steps_per_task": 64,
                        "num_epochs": 2, "num_minibatches": 2, "diagnostics_samples": 32})
K, M, D = 10, 64, 49
learner = Learner(cfg, D, 4, torch.device("cpu"))
g = torch.Generator().manual_seed(0)
roll = {"obs": torch.randn(K, M, D, generator=g), "task": torch.arange(K)[:, None].expand(K, M),
        "action": torch.randn(K, M, 4, generator=g), "logp": torch.randn(K, M, generator=g) - 3,
        "adv": torch.randn(K, M, generator=g), "ret": torch.randn(K, M, generator=g) * 10,
        "value": torch.randn(K, M, generator=g)}
stats = learner.update(roll, 0)
h = hashlib.sha256()
for side in learner.sides.values():
    for p in side.parameters():
        h.update(p.detach().numpy().tobytes())
h.update(repr(sorted((k, float(v)) for k, v in stats.items() if not k.endswith("time_s"))).encode())
print(torch.backends.cpu.get_cpu_capability(), h.hexdigest()[:16])
"""
# what a user may have in the environment: torch's own choice, or an ISA forced either way
# (each a fresh process that imports torch: the quick test runs the first two, the slow one
# the others, each beside the first)
USER_SETTINGS = [{}, {"ATEN_CPU_CAPABILITY": "avx512"}, {"ATEN_CPU_CAPABILITY": "default"},
                 {"ATEN_CPU_CAPABILITY": "avx2"}, {"MKL_CBWR": "AVX2"}]
KNOBS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_DYNAMIC",
         "TOPPO_NUMERICS")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KNOBS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {**env, **extra}


# A probe that finishes exits at once: tearing down an interpreter that loaded torch (and scipy)
# takes 0.3-0.5 s, a tenth of a probe; one that raises exits as any process does.
EXIT_AT_ONCE = "\nimport os as _os, sys as _sys; _sys.stdout.flush(); _sys.stderr.flush(); _os._exit(0)"


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code + EXIT_AT_ONCE], env=clean_env(**env), capture_output=True,
                          text=True, timeout=300)  # a torch import on a loaded machine: minutes


def update_fingerprints(mode: str, settings: list[dict[str, str]]) -> list[tuple[str, str]]:
    out = []
    for user in settings:
        proc = run_python(UPDATE, TOPPO_NUMERICS=mode, **user)
        assert proc.returncode == 0, proc.stderr[-3000:]
        capability, digest = proc.stdout.split()
        out.append((capability, digest))
    return out


def assert_portable_bits(settings: list[dict[str, str]]) -> None:
    portable = update_fingerprints("portable", settings)
    assert {c for c, _ in portable} == {"DEFAULT"}
    assert len({d for _, d in portable}) == 1, portable


def test_portable_mode_gives_the_same_bits_whatever_the_environment_asks_for():
    assert_portable_bits(USER_SETTINGS[:2])
    # natively, torch runs what it is told: avx512 on a CPU without it dies of SIGILL
    native = update_fingerprints("native", [{"ATEN_CPU_CAPABILITY": "default"},
                                            {"ATEN_CPU_CAPABILITY": "avx2"}])
    if len({c for c, _ in native}) == 1:
        pytest.skip(f"this CPU offers torch one CPU capability only ({native[0][0]})")
    assert len({d for _, d in native}) > 1, native  # the same update, other kernels, other bits


@pytest.mark.slow  # a fresh process importing torch for each setting
def test_portable_mode_gives_the_same_bits_under_the_other_user_settings():
    assert_portable_bits([USER_SETTINGS[0], *USER_SETTINGS[2:]])


def test_the_mode_is_applied_in_the_environment_children_inherit():
    code = ("from toppo.harness import numerics; print(numerics.apply()); import os, json; "
            "print(json.dumps({k: os.environ.get(k) for k in (*numerics.PORTABLE_ENV, 'TOPPO_NUMERICS')}))")
    from toppo.harness.numerics import PORTABLE_ENV
    proc = run_python(code, TOPPO_NUMERICS="portable", ATEN_CPU_CAPABILITY="avx2")
    mode, env = proc.stdout.splitlines()
    assert mode == "portable" and json.loads(env) == {**PORTABLE_ENV, "TOPPO_NUMERICS": "portable"}
    for asked in ({"TOPPO_NUMERICS": "native"}, {}):  # native, asked for or by default
        proc = run_python(code, ATEN_CPU_CAPABILITY="avx2", **asked)
        mode, env = proc.stdout.splitlines()
        assert mode == "native" and json.loads(env)["ATEN_CPU_CAPABILITY"] == "avx2"
        assert json.loads(env)["TOPPO_NUMERICS"] == "native"  # what its workers inherit


@pytest.mark.parametrize(("flag", "env", "expected"), [
    (None, None, "native"), (None, "", "native"), (None, " Portable ", "portable"),
    (None, "native", "native"), ("portable", None, "portable"), ("portable", "native", "portable"),
    ("native", "portable", "native")])
def test_the_flag_wins_over_the_environment_and_native_is_the_default(monkeypatch, flag, env, expected):
    from toppo.specs import numerics_mode
    monkeypatch.delenv("TOPPO_NUMERICS", raising=False)
    if env is not None:
        monkeypatch.setenv("TOPPO_NUMERICS", env)
    assert numerics_mode.mode(flag) == expected


@pytest.mark.parametrize(("argv", "expected"), [
    ([], None), (["--config", "c.yaml", "--numerics", "portable", "seed=3"], "portable"),
    (["--numerics=native", "--out-dir", "x"], "native"), (["--numerics", "native", "--numerics", "portable"], "portable"),
    (["--numerics"], None), (["numerics=portable"], None)])
def test_the_flag_is_read_before_the_programs_own_parser(argv, expected):
    from toppo.specs import numerics_mode
    assert numerics_mode.requested(argv) == expected


def test_a_flag_read_after_the_mode_was_decided_must_agree(monkeypatch):
    from toppo.harness import numerics
    monkeypatch.setattr(numerics, "_decided", "native")  # as apply() decided in this process
    assert numerics.apply() == numerics.apply("native") == "native"
    with pytest.raises(numerics.NumericsError, match="--numerics portable: this process runs native already"):
        numerics.apply("portable")
    with pytest.raises(numerics.NumericsError, match="--numerics 'fast': expected one of portable, native"):
        numerics.apply("fast")


@pytest.mark.parametrize(("machine", "expected"), [
    ({"numerics": "portable"}, "portable"), ({"numerics": "native"}, "native"),
    ({"numerics": "native (portable asked for, but torch or numpy was imported before ...)"}, "native"),
    (None, "native"),  # a manifest of before the mode existed: native kernels
    ({"cpu": {}}, "native")])
def test_the_recorded_mode_is_read_from_the_manifest(machine, expected):
    from toppo.specs import numerics_mode
    assert numerics_mode.recorded_mode(machine) == expected


def test_an_unknown_recorded_mode_is_an_error_naming_it():
    from toppo.specs import numerics_mode
    with pytest.raises(numerics_mode.NumericsError, match="machine.numerics 'fast': not a mode"):
        numerics_mode.recorded_mode({"numerics": "fast"})


def test_applied_after_torch_the_process_and_its_workers_run_native_and_say_so():
    """Late, the process runs native and starts its workers native; other processes it
    starts (the environment is untouched) choose their mode themselves."""
    code = ("import torch, os; from toppo.harness import numerics; print(numerics.apply()); "
            "print(os.environ.get('TOPPO_NUMERICS')); print(numerics.in_effect())\n"
            "with numerics.for_workers(): print(os.environ['TOPPO_NUMERICS'])\n"
            "print(os.environ.get('TOPPO_NUMERICS'), os.environ.get('ATEN_CPU_CAPABILITY'))")
    proc = run_python(code, TOPPO_NUMERICS="portable")
    assert proc.returncode == 0, proc.stderr
    mode, environ, effect, workers, after = proc.stdout.splitlines()
    assert mode == "native" and effect.startswith("native (portable asked for")
    assert environ == "portable" and workers == "native" and after == "portable None"


def test_check_refuses_portable_mode_not_in_effect():
    code = ("import torch, os; os.environ['TOPPO_NUMERICS'] = 'portable'; "
            "from toppo.harness import numerics; numerics.check()")
    proc = run_python(code)
    assert proc.returncode != 0 and "TOPPO_NUMERICS=portable is not in effect" in proc.stderr


@pytest.mark.parametrize(("args", "env", "named"), [
    ([], {"TOPPO_NUMERICS": "fast"}, "environment variable TOPPO_NUMERICS='fast'"),
    (["--numerics", "fast"], {"TOPPO_NUMERICS": "native"}, "--numerics 'fast'")])
def test_a_bad_mode_is_one_line_naming_the_flag_or_the_variable(args, env, named):
    proc = subprocess.run([sys.executable, "-m", "toppo.train", *args, "--list-variants"],
                          env=clean_env(**env), capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"python -m toppo.train: error: {named}: expected one of portable, native"


def test_describe_records_the_machine():
    code = ("from toppo.harness import numerics; numerics.apply(); import torch, json; "
            "numerics.configure_torch(0); import sys; print(json.dumps({**numerics.describe(), 'warn_only': "
            "torch.is_deterministic_algorithms_warn_only_enabled(), 'inductor': 'torch._inductor' in sys.modules}))")
    proc = run_python(code, TOPPO_NUMERICS="portable")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["numerics"] == "portable" and d["environment"]["MKL_CBWR"] == "COMPATIBLE,STRICT"
    assert d["cpu"]["model"] and (d["cpu"]["flags"] or sys.platform != "linux")
    assert d["python"] == sys.version.split()[0] and len(d["packages_sha256"]) == 16
    assert d["libc"].startswith("glibc") or sys.platform != "linux"
    assert d["environment"]["OPENBLAS_CORETYPE"] == "Prescott"
    assert d["torch"]["cpu_capability"] == "DEFAULT" and d["torch"]["num_threads"] == 1
    assert d["torch"]["deterministic_algorithms"] is True and d["warn_only"] is True
    assert d["inductor"] is False  # the flag set without importing torch's compiler (1 s a process)
    assert any("Build settings" in line for line in d["torch"]["build"])


@pytest.mark.parametrize("requested, mode, expected", [(0, "portable", 1), (3, "portable", 3),
                                                        (0, "native", 0), (2, "native", 2)])
def test_portable_mode_fixes_the_thread_count(monkeypatch, requested, mode, expected):
    from toppo.harness import numerics
    monkeypatch.setattr(numerics, "_decided", mode)  # as apply() decided in this process
    assert numerics.threads(requested) == expected


# toppo.algo.rollout values observations on a side thread while the actor samples: the same bits
# as on the trainer's thread only if the thread runs torch's kernels with the same settings
# (thread count, grad mode): the full-size LayerNorm/PopArt critic, one row count per task
SIDE_THREAD = """
from toppo.harness import numerics
numerics.apply()
from concurrent.futures import ThreadPoolExecutor
import torch
from toppo.algo.learner import Learner
from toppo.algo.rollout import critic_value
from toppo.specs.variants import resolve
numerics.configure_torch(1)
torch.manual_seed(0)
learner = Learner(resolve("toppo", {"benchmark": "MT10"}), 49, 4, torch.device("cpu"))
task = torch.arange(10).repeat(2)
obs = [torch.randn(20, 49) * 3 for _ in range(50)]
with ThreadPoolExecutor(1) as side:
    threaded = [side.submit(critic_value, learner.value, o, task).result() for o in obs]
    threads = side.submit(torch.get_num_threads).result()
with torch.no_grad():
    main = [learner.value(o, task) for o in obs]
same = all(torch.equal(a, b) and not a.requires_grad for a, b in zip(main, threaded))
print(threads, same)
"""


@pytest.mark.parametrize("mode", ["portable", "native"])
def test_the_rollouts_side_thread_values_observations_as_the_trainers_thread_does(mode):
    proc = run_python(SIDE_THREAD, TOPPO_NUMERICS=mode)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["1", "True"]


# A trainer as a user starts it: no mode runs native; --numerics portable wins over the
# environment, in the trainer and its eval worker (which checks it is in effect); the manifest
# records the mode, and torch_threads=0 is 1 in portable mode.
TINY_RUN = ["--variant", "mtppo", "--benchmark", "MT10", "--reward-version", "v1", "--device", "cpu",
            "--total-steps", "5000", "rollout_steps_per_task=500", "max_episode_steps=100",
            "num_epochs=1", "num_minibatches=2",
            "hidden_sizes=16,16", "eval_episodes=1", "eval_envs_per_task=1", "eval_every_steps=5000",
            "eval_mode=overlap", "eval_workers=1", "torch_threads=0", "progress_every_s=0"]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "env", "expected"), [
    ([], {}, "native"), (["--numerics", "portable"], {"TOPPO_NUMERICS": "native"}, "portable")])
def test_a_trainer_runs_the_mode_it_is_given_and_native_without_one(tmp_path, args, env, expected):
    proc = subprocess.run([sys.executable, "-m", "toppo.train", *TINY_RUN, *args, "--out-dir", str(tmp_path)],
                          env=clean_env(**env), capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert f"| numerics {expected}" in proc.stdout
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    machine = manifest["machine"]
    assert manifest["status"] == "complete" and machine["numerics"] == expected
    assert machine["environment"]["TOPPO_NUMERICS"] == expected
    if expected == "portable":
        assert machine["torch"]["cpu_capability"] == "DEFAULT" and manifest["torch_threads"] == 1
        assert machine["environment"]["MKL_CBWR"] == "COMPATIBLE,STRICT"
    else:  # torch's own kernels and thread count, the environment untouched
        assert machine["environment"]["MKL_CBWR"] is None and machine["torch"]["deterministic_algorithms"] is False
