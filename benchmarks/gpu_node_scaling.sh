#!/usr/bin/env bash
# Env workers on a GPU node (issue 17): the scaling sweep on the node's cores with the CUDA
# learner at the paper's update size, end to end with and without evaluation at the paper's
# cadence. At most 8 minutes (each part has its own timeout); the goal it measures against:
# an MT50 cell (100M steps plus evaluation) in at most 3 h on a 16-core GPU node, i.e. about
# 20,000 env steps/s or more end to end with evaluation.
#
#   OUT=benchmarks/measurements/<node>-<date> bash benchmarks/gpu_node_scaling.sh
#
# Needs the project's packages importable by $PY (default python3): a venv with
# `pip install -e .`, or wheels unpacked on PYTHONPATH as in
# benchmarks/measurements/h200-2026-11-26/device_run.sh. Writes log.txt under $OUT.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
PY=${PY:-python3}
DEV=${DEV:-cuda}           # DEV=cpu for a dry run of the script on a machine without a GPU
OUT=${OUT:-benchmarks/measurements/gpu-node-$(date -u +%F)}
CORES=$(nproc)
mkdir -p "$OUT"
{
echo "== $(date -u +%FT%TZ) $(uname -n): $CORES cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
uptime
$PY -c "import sys, torch, metaworld, mujoco; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"

# 1. rollout env steps/s against env workers (MT10 and MT50, 400 steps per task per
#    rollout, policy on the GPU): about 3 min
echo "== rollout scaling $(date -u +%T)"
timeout 210 $PY benchmarks/bench_trainer.py --scaling --device "$DEV" --benchmarks MT10 MT50 \
    --raw-steps 300 --rollout-steps-per-task 400 --worker-counts 0 1 2 4 8 12 "$CORES" \
    --e2e-updates 0
echo "exit $?"

# 2. MT50 end to end at the paper's update size (10,000 steps per task: 500,000 env steps
#    per update, 16 x 32 minibatches), 4 updates (2M steps) each: every core stepping and no
#    evaluation, then half the cores evaluating every 1M steps (50 episodes per task), the
#    other half stepping: about 4 min
echo "== MT50 end to end, paper update $(date -u +%T)"
timeout 260 $PY benchmarks/bench_trainer.py --scaling --device "$DEV" --benchmarks MT50 \
    --raw-steps 300 --worker-counts --e2e-workers auto --paper-update --e2e-updates 4 \
    --eval-workers 0 $((CORES / 2)) --max-workers "$CORES"
echo "exit $?"
echo "== end $(date -u +%T)"
uptime
} 2>&1 | grep --line-buffered -v 'gym.logger.warn\|precision lowered' | tee "$OUT/log.txt"
