#!/usr/bin/env bash
# Every full-profile run this book commits, and the GPU engine benchmark, in one go on one GPU.
#
#   scripts/full_runs_gpu.sh OUT_DIR [SECONDS]
#
# Runs, in order of value, each under a deadline so the whole script ends within SECONDS (default
# 3600): the CUDA-graph equivalence test, the engine benchmark, the LT experiment (IMP rounds first,
# then one-shot), the DLT experiment (supermasks first, then criteria rounds). Everything finished is
# kept: the result cache resumes an interrupted experiment, an experiment whose committed result is
# complete is skipped (`lotterylib run --again` reruns it), and `results/` plus
# benchmarks/results.json are packed into OUT_DIR/results.tgz after every stage.
# Needs the MNIST files under $LOTTERYLIB_DATA (default: ./.data) and a python with torch, numpy, tqdm.
set -u
out=${1:?usage: scripts/full_runs_gpu.sh OUT_DIR [SECONDS]}
budget=${2:-3600}
start=$(date +%s)
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export LOTTERYLIB_DATA=${LOTTERYLIB_DATA:-$PWD/.data} LOTTERYLIB_CACHE=${LOTTERYLIB_CACHE:-$PWD/.cache/full}
py=${PYTHON:-python3}
profile=${PROFILE:-full} device=${DEVICE:-cuda}  # PROFILE=quick DEVICE=cpu: a dry run of this script
left() { echo $(( start + budget - $(date +%s) )); }
pack() { tar czf "$out/results.tgz" results benchmarks/results.json 2>/dev/null; echo "[$(( $(date +%s) - start )) s] packed results"; }
minutes() { $py -c "print(max(0.1, ($1) / 60))"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$py -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"

echo "== CUDA-graph steps equal eager steps"
if ! $py -m pytest -q -p no:cacheprovider tests/test_train_cuda.py; then
  echo "graph capture differs from eager steps: the runs below train eagerly"
  export LOTTERYLIB_CUDA_GRAPH=0
fi

if [ "${BENCH:-1}" != 0 ]; then  # BENCH=0: keep the device time for the runs
  echo "== engine benchmark"
  $py -m benchmarks.run engine_gpu
  pack
fi

echo "== LT, $profile profile ($(left) s left)"
$py -m lotterylib run --profile "$profile" --only LT --device "$device" --no-progress \
  --deadline-minutes "$(minutes "$(left) - ${DLT_SECONDS:-85}")"
pack

echo "== DLT, $profile profile ($(left) s left)"
$py -m lotterylib run --profile "$profile" --only DLT --device "$device" --no-progress \
  --deadline-minutes "$(minutes "$(left) - 15")"
pack
echo "done in $(( $(date +%s) - start )) s"
