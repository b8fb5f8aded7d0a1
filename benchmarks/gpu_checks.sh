#!/usr/bin/env bash
# The GPU checks in one command: the gpu-marked tests, then the throughput and
# fit benchmarks on CUDA, most important first, within a time budget.
#
#   bash benchmarks/gpu_checks.sh [SECONDS] [LOG_DIR] [STEP...]
#
# Run from the repository root, with skqcnn and its test extra importable and
# CUDA available. SECONDS (default 600) bounds the whole run: each step gets
# at most its own limit and what is left, and a step with too little left is
# skipped, so a slow step costs the later ones, never the whole run. Each
# step's output goes to the terminal and to LOG_DIR/STEP.log (default
# gpu_checks/). STEPs (default all, in this order): device, tests,
# throughput, kernels, cudagraphs, fit, compile. On an H200 the whole run
# took about 8 minutes; torch.compile's first compilation of a network takes
# most of a minute.
set -u
budget=${1:-600}
logs=${2:-gpu_checks}
shift $(($# < 2 ? $# : 2))
steps=" ${*:-device tests throughput kernels cudagraphs fit compile} "
mkdir -p "$logs"
deadline=$((SECONDS + budget))
export PYTHONUNBUFFERED=1

step() {  # step NAME LIMIT COMMAND...
    local name=$1 limit=$2
    shift 2
    [[ $steps == *" $name "* ]] || return 0
    local left=$((deadline - SECONDS))
    ((left < limit)) && limit=$left
    if ((limit < 20)); then
        echo "== $name: skipped, ${left} s left" | tee -a "$logs/$name.log"
        return
    fi
    echo "== $name (at most ${limit} s): $*" | tee -a "$logs/$name.log"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$logs/$name.log"
    echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$logs/$name.log"
}

step device 20 bash -c 'nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv; python3 -c "import torch, sklearn, skorch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"sklearn\", sklearn.__version__, \"skorch\", skorch.__version__)"'
step tests 120 python3 -m pytest -q -p no:cacheprovider -m gpu -o addopts="" -rfE \
    tests/estimators/test_gpu.py tests/estimators/test_qcnn.py tests/estimators/test_persistence.py
for family in qcnn convac rac; do
    step throughput 70 python3 benchmarks/bench_gpu_throughput.py --families $family \
        --min-seconds 0.3
done
for family in qcnn convac rac; do
    step kernels 40 python3 benchmarks/bench_gpu_throughput.py --families $family \
        --batch-sizes 4096 --top-kernels 12
done
# One batch size: each new shape compiles again.
for family in qcnn convac rac; do
    step cudagraphs 100 python3 benchmarks/bench_gpu_throughput.py --families $family \
        --mode cudagraphs --batch-sizes 256 --min-seconds 0.3
done
step fit 100 python3 benchmarks/bench_gpu_fit.py --devices cpu cuda
step compile 150 python3 benchmarks/bench_gpu_fit.py --devices cuda --compile cuda
