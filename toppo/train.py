"""TOPPO / multi-task PPO trainer on Meta-World+ MT10 and MT50: the command line, and the run
directory set up around the training loop (``toppo.trainer.Trainer``).

    python -m toppo.train --variant toppo --benchmark MT10 --reward-version v2 --seed 0 \
        --out-dir results/runs/paper/MT10-v2/toppo/seed0 [key=value ...]
    python -m toppo.train --config cell.yaml --variant toppo --out-dir DIR [key=value ...]

The workflow runs the second form: each cell's resolved config, written once as a file
(workflow/scripts/train_cell.py); a run directory's own config.yaml is such a file too.
``--numerics portable|native`` picks the CPU kernels (toppo.specs.numerics_mode: the flag, else
``TOPPO_NUMERICS``, else native); the workflow passes its config's ``numerics`` key.
``--help`` lists every config field with its default and its help.

``train_in`` sets the run directory up and keeps its guarantees (docs/design.md): it trains
under the directory's lock, leaves a complete run alone (``--retrain`` sets it aside), sets
aside a run of another config, and resumes from the last checkpoint that loads
(toppo/harness/rundir.py).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from toppo.harness import numerics, procs
from toppo.specs import numerics_mode

if __name__ == "__main__":  # before the slow imports: SIGTERM at any point ends with one line
    procs.exit_quietly_on_sigterm("python -m toppo.train")
try:  # before torch loads (toppo.harness.numerics); run as a program, its --numerics flag decides
    numerics.apply(numerics_mode.requested(sys.argv[1:]) if __name__ == "__main__" else None)
except numerics_mode.NumericsError as exc:  # a bad --numerics or TOPPO_NUMERICS value
    print(f"python -m toppo.train: error: {exc}", file=sys.stderr)
    sys.exit(2)

import torch
import yaml

from toppo.algo.learner import TrainingDiverged
from toppo.harness.envworkers import EnvWorkerError
from toppo.harness.io import RunLock, RunLocked, remove_stale_temp_files
from toppo.harness.rundir import (
    completion,
    config_changed,
    finished,
    load_resume_state,
    set_aside_checkpoint,
    set_aside_run,
)
from toppo.specs.config import (
    DEVICES,
    ConfigError,
    TrainConfig,
    cli_value,
    config_from_dict,
    field_help,
    make_config,
    parse_value,
)
from toppo.specs.registry import BENCHMARKS, REWARD_VERSIONS, VARIANTS
from toppo.specs.runfiles import write_yaml_atomic
from toppo.specs.variants import resolve
from toppo.trainer import Trainer, log, resolve_device


# ---------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toppo.train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train TOPPO or one of its ablations on Meta-World+ MT10/MT50.\n"
                    "Rerunning the same command resumes from the run directory's checkpoint.",
        epilog=config_fields_help())
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="a resolved config (every field, as a run's config.yaml; the workflow "
                        "writes one per cell) instead of a variant's; flags and key=value "
                        "override it, --variant only names the run (default: custom)")
    p.add_argument("--variant", help="named variant (see --list-variants; default: toppo)")
    p.add_argument("--benchmark", choices=list(BENCHMARKS), help="benchmark (variant default: MT10)")
    p.add_argument("--reward-version", choices=REWARD_VERSIONS, help="metaworld reward function version")
    p.add_argument("--seed", type=int, help="seed for torch, numpy, envs and the benchmark's goals")
    p.add_argument("--total-steps", type=float, help="training env steps summed over tasks")
    p.add_argument("--device", choices=DEVICES, help="auto picks cuda when available")
    p.add_argument(numerics_mode.FLAG, choices=numerics_mode.MODES,
                   help="CPU kernels: portable gives the same bits on x86-64 CPUs with AVX2 and "
                        "FMA, at a cost per update; native lets torch pick them for this CPU "
                        f"(default: {numerics_mode.MODE_VAR}, else {numerics_mode.DEFAULT_MODE}; "
                        "docs/reproducibility.md). Not part of the config hash")
    p.add_argument("--out-dir", type=Path, help="run directory (created; resumed if it has a checkpoint)")
    p.add_argument("--list-variants", action="store_true", help="print the variants and exit")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--retrain", action="store_true",
                   help="a finished run of this config is set aside (superseded/) and trained "
                        "again from scratch; an unfinished one is resumed")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config field overrides")
    return p


def config_fields_help() -> str:
    """The epilog of ``--help``: every TrainConfig field as ``key=default`` with its help
    (toppo.specs.config.field_help), wrapped to the terminal as argparse wraps the options."""
    width = shutil.get_terminal_size().columns - 2
    entries = [(f"{key}={cli_value(value)}", field_help().get(key, ""))
               for key, value in TrainConfig().to_dict().items()]
    col = min(max(len(entry) for entry, _ in entries), 30) + 4
    lines = [
        *textwrap.wrap("config fields, set as key=value (e.g. rollout_steps_per_task=1000 "
                       "hidden_sizes=64,64 critic_combiner=cagrad cagrad_c=0.5) over the "
                       "variant's or the --config file's values; here with their defaults:",
                       width),
    ]
    for entry, text in entries:
        first = f"  {entry}".ljust(col)
        if len(first) > col:  # a long default: its help starts on the next line
            lines.append(first)
            first = " " * col
        lines += textwrap.wrap(text, width, initial_indent=first, subsequent_indent=" " * col,
                               break_long_words=False, break_on_hyphens=False)
    lines += ["", *textwrap.wrap(f"variants (--variant): {', '.join(VARIANTS)}", width,
                                 subsequent_indent="  ")]
    return "\n".join(lines)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's config: the ``--config`` file's or the variant's (``--variant``), with the
    flags and ``key=value`` overrides on top."""
    overrides: dict[str, Any] = {}
    for item in args.overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        if key in overrides:
            raise ConfigError(f"config key '{key}' is given twice")
        overrides[key] = parse_value(key, raw)
    flags = {"benchmark": args.benchmark, "reward_version": args.reward_version, "seed": args.seed,
             "total_steps": args.total_steps, "device": args.device}
    for key, value in flags.items():
        if value is None:
            continue
        if key in overrides:
            raise ConfigError(f"config key '{key}' is given both as a flag and as {key}=...")
        if key == "total_steps":
            if not math.isfinite(value) or value != int(value):
                raise ConfigError(f"config key 'total_steps': not a whole number ({value})")
            value = int(value)
        overrides[key] = value
    if args.config is not None:
        base = config_from_file(args.config)
        return make_config(base.to_dict(), **overrides) if overrides else base
    return resolve(variant_name(args), overrides)


def variant_name(args: argparse.Namespace) -> str:
    """The name the run's logs record: ``--variant``; without it the variant trained
    (toppo), or ``custom`` for a ``--config`` file."""
    return args.variant or ("custom" if args.config is not None else "toppo")


def config_from_file(path: Path) -> TrainConfig:
    """A resolved config file (every field; ConfigError naming the file otherwise)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc})") from None
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"--config {path}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:  # run as a program, applied with this flag already; in a process, it must agree
        numerics.apply(args.numerics)
    except numerics_mode.NumericsError as exc:
        parser.error(str(exc))
    if args.list_variants:
        for name, ov in VARIANTS.items():
            print(f"{name:28s} {ov}")
        return 0
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        parser.error(str(exc))
    if args.print_config:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    if args.out_dir is None:
        parser.error("--out-dir is required")
    try:
        return train_in(args.out_dir, cfg, variant_name(args), retrain=args.retrain)
    # one clean line each: another trainer holds the directory; a read-only folder or a
    # full disk (the message names the path); a config error found only on this machine,
    # e.g. device=cuda without a GPU
    # an env worker that died or failed: one line naming it and its tasks (the run resumes
    # from its checkpoint when started again)
    except (RunLocked, OSError, ConfigError, EnvWorkerError) as exc:
        print(f"python -m toppo.train: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_LOCKED if isinstance(exc, RunLocked) else 2 if isinstance(exc, ConfigError) else 1


EXIT_LOCKED = 75  # EX_TEMPFAIL: another trainer holds the run directory


def train_in(out: Path, cfg: TrainConfig, variant: str, retrain: bool = False) -> int:
    """Train ``cfg`` in run directory ``out`` under its lock (docs/design.md, guarantees)."""
    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out):
        for tmp in remove_stale_temp_files(out):
            log(f"removed {tmp}, left by a write that was interrupted")
        device = resolve_device(cfg.device)
        done = completion(out, cfg, map_location=device)
        if retrain and finished(out, cfg, map_location=device):
            where = set_aside_run(out, cfg.config_hash(), "retrain")
            log(f"retrain: moved the finished run (config, manifest, logs, checkpoints) to {where}")
        elif done.complete:
            log(f"{out} is complete for this config ({done.reason}); nothing to do")
            return 0
        elif (out / "manifest.json").exists():
            log(f"{out} is not complete: {done.reason}")
        old = config_changed(out, cfg)
        if old is not None:
            where = set_aside_run(out, old)
            log(f"{out} held a run of config {old}, not {cfg.config_hash()}; "
                f"set aside (logs and checkpoints) in {where}")
        state = load_resume_state(out, cfg, log, map_location=device)
        write_yaml_atomic(out / "config.yaml", cfg.to_dict())
        log(f"variant {variant} | {cfg.benchmark} {cfg.reward_version} | seed {cfg.seed} | "
            f"{cfg.total_steps:,} steps in {cfg.num_updates} updates | config {cfg.config_hash()} | "
            f"numerics {numerics.current()}")
        trainer, state = build_and_resume(out, cfg, variant, state, device)
        try:
            trainer.run()
        except TrainingDiverged as exc:
            log(f"error: {exc}")
            return 3
        finally:
            trainer.close()
    return 0


def build_and_resume(out: Path, cfg: TrainConfig, variant: str, state: dict[str, Any] | None,
                     device: torch.device) -> tuple[Trainer, dict[str, Any] | None]:
    """A Trainer with ``state`` loaded. A checkpoint that reads but does not fit the networks
    (e.g. written by other code for the same config) is named and set aside, and the next
    candidate (previous.pt, else from scratch) is used, in a freshly built Trainer."""
    while True:
        t0 = time.perf_counter()
        trainer = Trainer(cfg, out, variant)
        counts = trainer.learner.param_counts()
        log(f"built envs in {time.perf_counter() - t0:.1f} s on device {trainer.device}; "
            f"parameters: actor {counts['actor']:,}, critic {counts['critic']:,}, "
            f"total {counts['total']:,}")
        if state is None:
            return trainer, None
        try:
            trainer.load_state_dict(state)
        except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
            trainer.close()
            moved = set_aside_checkpoint(Path(state["loaded_from"]))
            detail = (str(exc).splitlines() or [""])[0][:300]
            log(f"error: {state['loaded_from']}: does not fit this trainer "
                f"({type(exc).__name__}: {detail}); set aside as {moved}")
            state = load_resume_state(out, cfg, log, map_location=device)
            continue
        log(f"resumed from {state['loaded_from']} at update {trainer.update_idx}/"
            f"{cfg.num_updates}")
        return trainer, state


if __name__ == "__main__":
    sys.exit(main())
