#!/usr/bin/env bash
# Train one recipe on a GPU inside a time budget, keep a checkpoint that resumes and evaluates on
# a CPU (every file at most 16 MiB), and run the benchmark suite on the same GPU.
#
#   scripts/gpu_train.sh OUTDIR [FASHION_MNIST_DIR]
#   scripts/gpu_train.sh OUTDIR [FASHION_MNIST_DIR] --cpu-test    # the same steps on the CPU, tiny
#
# The recipe: DCGAN on Fashion-MNIST at 32x32x1 (the released dcgan_fashion's architecture and
# batch 128), --device cuda, bf16 autocast (the trainer's default on a GPU with bf16), a moving
# average of G (--ema 0.999, as dcgan_fashion). How many steps fit: no GPU figure of this step was
# ever measured here, so the script measures it: a first leg of CALIB_STEPS steps, then the seconds
# per step from its log.jsonl (steps 20 to CALIB_STEPS, past cuDNN's autotuning) set the second
# leg (--resume, exact: the same weights as one run of that length) so that training ends
# TRAIN_BUDGET_S after it started, at most 14,055 steps (dcgan_fashion's 15 epochs).
#
# OUTDIR gets: run/ (the run, its latest checkpoint only, files split at 16 MiB by ganzoo.pack;
# `python -m ganzoo.pack unpack OUTDIR/run RUN` rebuilds a run that `ganzoo train --resume --out RUN
# --device cpu` continues and `ganzoo eval RUN` evaluates), benchmarks/ (python -m benchmarks
# --device cuda: benchmarks.json, benchmarks.md), train.log, bench.log and timings.txt.
#
# Environment: PYTHON (default: .venv/bin/python, created by the README's set-up when missing),
# TRAIN_BUDGET_S (default 480: 8 of the 9 minutes), CALIB_STEPS (default 200), BENCH_ARGS (extra
# options for python -m benchmarks).
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: scripts/gpu_train.sh OUTDIR [FASHION_MNIST_DIR] [--cpu-test]" >&2
    exit 2
fi
OUTDIR=$1
shift
DATA=../shared/datasets/fashion-mnist
CPU_TEST=0
for arg in "$@"; do
    case $arg in
        --cpu-test) CPU_TEST=1 ;;
        -*) echo "gpu_train.sh: error: unknown option $arg (known: --cpu-test)" >&2; exit 2 ;;
        *) DATA=$arg ;;
    esac
done
cd "$(dirname "$0")/.."
if [ ! -d "$DATA" ]; then
    echo "gpu_train.sh: error: no Fashion-MNIST folder at $DATA; pass the folder with the four IDX .gz files" >&2
    exit 2
fi
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
if [ -e "$OUTDIR/run" ]; then
    echo "gpu_train.sh: error: $OUTDIR/run exists; give an empty OUTDIR" >&2
    exit 2
fi

PYTHON=${PYTHON:-.venv/bin/python}
t_start=$(date +%s)
if ! "$PYTHON" -c "import ganzoo" 2>/dev/null; then
    echo "== set-up (README): python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"
    python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt
    PYTHON=.venv/bin/python
fi
t_setup=$(date +%s)

if [ "$CPU_TEST" = 1 ]; then
    DEVICE=cpu
    TRAIN_BUDGET_S=${TRAIN_BUDGET_S:-600}  # capped by MAX_STEPS: the test shows both legs run
    CALIB_STEPS=${CALIB_STEPS:-4}
    MAX_STEPS=6
    LOG_EVERY=1
    THREADS=(--threads 1)
    RECIPE=(--batch-size 8 --set ngf=8 --set ndf=8)
    BENCH=(--device cpu --quick --arch dcgan --no-sample --budget 10 --threads 1)
else
    DEVICE=cuda
    "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
        echo "gpu_train.sh: error: torch sees no CUDA GPU here; run it on a GPU machine (or --cpu-test)" >&2; exit 2; }
    TRAIN_BUDGET_S=${TRAIN_BUDGET_S:-480}
    CALIB_STEPS=${CALIB_STEPS:-200}
    MAX_STEPS=14055
    LOG_EVERY=10
    THREADS=()
    RECIPE=(--batch-size 128)
    BENCH=(--device cuda)
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ganzoo-gpu-XXXXXX")
RUN=$WORK/run
COMMON=(--out "$RUN" --device "$DEVICE" --log-every "$LOG_EVERY" --sample-every 1000 --checkpoint-every 1000
        --keep-checkpoints 1 "${THREADS[@]}")

echo "== training leg 1: $CALIB_STEPS steps to measure the step time"
t_train=$(date +%s)
HF_HUB_OFFLINE=1 "$PYTHON" -m ganzoo train dcgan --data "fashion-mnist:$DATA" --image-size 32 --channels 1 \
    --ema 0.999 --seed 0 --steps "$CALIB_STEPS" "${RECIPE[@]}" "${COMMON[@]}" 2>&1 | tr '\r' '\n' \
    | grep -v '^dcgan: ' | tee "$OUTDIR/train.log"
STEPS=$("$PYTHON" - "$RUN" "$CALIB_STEPS" "$TRAIN_BUDGET_S" "$t_train" "$MAX_STEPS" <<'EOF'
import json, sys, time
run, calib, budget, t0, cap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rows = [json.loads(l) for l in open(f"{run}/log.jsonl")]
first = next((r for r in rows if r["step"] >= min(20, calib // 2)), rows[0])
last = rows[-1]
per = (last["seconds"] - first["seconds"]) / max(1, last["step"] - first["step"])
left = budget - (time.time() - t0) - 30   # 30 s for start-up, the final checkpoint and grid
steps = max(calib, min(cap, calib + int(left / max(per, 1e-6))))
print(steps)
print(f"measured {per:.4f} s/step over steps {first['step']}-{last['step']}: {steps} steps in the "
      f"{budget:.0f} s budget", file=sys.stderr)
EOF
)
echo "== training leg 2: --resume to $STEPS steps" | tee -a "$OUTDIR/train.log"
HF_HUB_OFFLINE=1 "$PYTHON" -m ganzoo train --resume --steps "$STEPS" "${COMMON[@]}" 2>&1 | tr '\r' '\n' \
    | grep -v '^dcgan: ' | tee -a "$OUTDIR/train.log"
t_trained=$(date +%s)

echo "== packing the run into $OUTDIR/run (files of at most 16 MiB)"
"$PYTHON" -m ganzoo.pack pack "$RUN" "$OUTDIR/run" --max-mb 16
rm -rf "$WORK"

echo "== python -m benchmarks ${BENCH[*]} ${BENCH_ARGS:-}"
# shellcheck disable=SC2086
HF_HUB_OFFLINE=1 "$PYTHON" -m benchmarks "${BENCH[@]}" ${BENCH_ARGS:-} --out "$OUTDIR/benchmarks" \
    > "$OUTDIR/bench.log" 2>&1 || echo "benchmarks failed (exit $?); see $OUTDIR/bench.log"
t_end=$(date +%s)
{
    echo "set-up: $((t_setup - t_start)) s"
    echo "training ($STEPS steps on $DEVICE): $((t_trained - t_train)) s"
    echo "benchmarks: $((t_end - t_trained)) s"
    echo "total: $((t_end - t_start)) s"
} | tee "$OUTDIR/timings.txt"
