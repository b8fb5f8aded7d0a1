#!/usr/bin/env bash
# The GPU checks in one command: the gpu-marked tests, then the throughput and
# fit benchmarks on CUDA, most important first, within a time budget.
#
#   bash benchmarks/gpu_checks.sh [SECONDS [LOG_DIR [STEP...]]]
#
# Run from the repository root, with skqcnn and its test extra importable and
# CUDA available. SECONDS (default 600) bounds the whole run: each step gets
# at most its own limit and what is left, and a step with under 20 s left is
# skipped, so a slow step costs the later ones, never the whole run. The
# steps' own limits add up to about 1,000 s, so the default budget cuts the
# last ones short. Each step's output goes to the terminal and to
# LOG_DIR/STEP.log (default gpu_checks/). STEPs, in the order they run
# (default all): device tests throughput kernels cudagraphs fit compile.
# The exit status is 1 when a step failed, timed out or was skipped.
set -u
all_steps="device tests throughput kernels cudagraphs fit compile"
budget=${1:-600}
logs=${2:-gpu_checks}
if [[ ! $budget =~ ^[0-9]+$ ]]; then
    echo "SECONDS must be a whole number of seconds, not '$budget'" >&2
    exit 2
fi
shift $(($# < 2 ? $# : 2))
for name in "$@"; do
    if [[ " $all_steps " != *" $name "* ]]; then
        echo "unknown step '$name': choose from $all_steps" >&2
        exit 2
    fi
done
steps=" ${*:-$all_steps} "
mkdir -p "$logs"
deadline=$((SECONDS + budget))
status=0
export PYTHONUNBUFFERED=1

step() {  # step NAME LIMIT COMMAND...
    local name=$1 limit=$2
    shift 2
    [[ $steps == *" $name "* ]] || return 0
    local left=$((deadline - SECONDS))
    ((left < limit)) && limit=$left
    if ((limit < 20)); then
        echo "== $name: skipped, ${left} s left" | tee -a "$logs/$name.log"
        status=1
        return
    fi
    echo "== $name (at most ${limit} s): $*" | tee -a "$logs/$name.log"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$logs/$name.log"
    local code=${PIPESTATUS[0]}
    ((code != 0)) && status=1
    echo "== $name: exit $code after $((SECONDS - start)) s" | tee -a "$logs/$name.log"
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
step compile 150 python3 benchmarks/bench_gpu_fit.py --devices --compile cuda
exit $status
