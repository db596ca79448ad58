#!/bin/bash
# Device-side run (untracked helper). Expects PYTHONPATH=/tmp/site:$PWD and $OUT.
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
PY=${PY:-python3}
DEV=${DEV:-cuda}                      # dry run here: DEV=cpu
CF=${CF:-toppo:cuda:0,toppo:cpu:1,mtppo:cuda:0,mtppo:cpu:1,toppo:cpu:8,mtppo:cpu:8}
E2E=${E2E:-"rollout_steps_per_task=500 num_epochs=4 num_minibatches=8 total_steps=10000 eval_every_steps=10000"}
S10=${S10:-"rollout_steps_per_task=1000 num_epochs=4 num_minibatches=4"}
S50=${S50:-"rollout_steps_per_task=200 num_epochs=4 num_minibatches=4 diagnostics_samples=200"}
BENCH=${BENCH:-""}                    # extra bench_trainer.py args (dry run: small)
{
echo "== info $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"
echo "nproc $(nproc)"; grep -m1 'model name' /proc/cpuinfo
$PY -c "import sys,torch,importlib.metadata as m; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.is_available() and torch.cuda.get_device_name(0), 'threads', torch.get_num_threads()); v=lambda n: (lambda: m.version(n))() if n in [d.metadata['Name'].lower() for d in m.distributions()] else 'missing'; print({n: v(n) for n in ('numpy','metaworld','mujoco','gymnasium','pandas','pyyaml','scipy','farama-notifications','glfw','pyopengl','etils','absl-py','imageio','cloudpickle')})"
$PY -c "import metaworld, mujoco, gymnasium; print('imports ok')"

echo "== e2e CUDA trainer run $(date -u +%T)"
E=/tmp/e2e_mt10
t=$SECONDS
timeout 150 $PY -m toppo.train --variant toppo --benchmark MT10 --device $DEV --out-dir $E \
  $E2E eval_episodes=1 eval_envs_per_task=1
echo "e2e exit $? wall $((SECONDS-t)) s"; ls $E
echo "-- manifest.json"; cat $E/manifest.json; echo
echo "-- eval.csv head"; head -5 $E/eval.csv
echo "-- train_metrics.csv (first columns)"; cut -d, -f1-8 $E/train_metrics.csv
for f in manifest.json eval.csv train_metrics.csv config.yaml; do cp $E/$f $OUT/e2e_$f 2>/dev/null; done

echo "== sweep MT10 $(date -u +%T)"
timeout 170 $PY benchmarks/device_sweep.py --benchmark MT10 --updates 2 --jsonl $OUT/sweep_MT10.jsonl \
  --configs $CF $S10
echo "sweep MT10 exit $?"

echo "== sweep MT50 $(date -u +%T)"
timeout 220 $PY benchmarks/device_sweep.py --benchmark MT50 --updates 2 --jsonl $OUT/sweep_MT50.jsonl \
  --configs $CF $S50
echo "sweep MT50 exit $?"

echo "== bench_trainer.py --device cuda $(date -u +%T)"
timeout 100 $PY benchmarks/bench_trainer.py --device $DEV $BENCH
echo "bench cuda exit $?"
echo "== bench_trainer.py --device cpu $(date -u +%T)"
timeout 120 $PY benchmarks/bench_trainer.py --device cpu $BENCH
echo "bench cpu exit $?"
echo "== end $(date -u +%T)"
} 2>&1 | grep --line-buffered -v 'gym.logger.warn' | tee $OUT/log.txt
