#!/bin/bash
# quiet measurements: fresh clone of main, .ci/run, quick tier x2, analysis bench + floor
exec > /tmp/quiet3/log.txt 2>&1
echo "HEAD $(git -C /work/main rev-parse HEAD)"; date -u; uptime
rm -rf /tmp/q3 && git clone -q /work/main /tmp/q3 && cd /tmp/q3
t0=$(date +%s); python3.11 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' > /dev/null 2>&1; echo "install $(( $(date +%s) - t0 )) s"
uptime; date -u
/usr/bin/time -f "suite wall %e s user %U s sys %S s" .ci/run > /tmp/quiet3/ci.txt 2>&1; echo "suite rc $?"
tail -3 /tmp/quiet3/ci.txt; uptime; date -u
for i in 1 2; do
/usr/bin/time -f "quick$i wall %e s user %U s sys %S s" .venv/bin/pytest -m "not slow" --durations=25 > /tmp/quiet3/quick$i.txt 2>&1; echo "quick$i rc $?"
tail -2 /tmp/quiet3/quick$i.txt; uptime; date -u
done
rm -rf /tmp/q3ana && taskset -c 0 .venv/bin/python benchmarks/bench_analysis.py --keep /tmp/q3ana > /tmp/quiet3/ana0.txt 2>&1
for i in 1 2 3; do
  taskset -c 0 .venv/bin/python benchmarks/bench_analysis.py --runs /tmp/q3ana > /tmp/quiet3/ana$i.txt 2>&1
  for m in as_is no_layout no_save; do
    taskset -c 0 .venv/bin/python benchmarks/measurements/analysis-floor-2026-12-07/floor.py /tmp/q3ana/runs $m > /tmp/quiet3/floor_${m}_$i.txt 2>&1
  done
done
grep -h "total" /tmp/quiet3/ana*.txt; for m in as_is no_layout no_save; do grep -h total /tmp/quiet3/floor_${m}_*.txt | sed "s/^/$m /"; done
uptime; date -u; echo DONE
