#!/usr/bin/env bash
# The whole GPU recipe in one command, for a machine that has torch and CUDA but maybe no librosa, soundfile or
# soxr and no package index: about 10 minutes on one GPU.
#
#   bash experiments/gpu_run.sh --prepare-wheels   # here, with PyPI: the audio packages as wheels, for Python 3.12
#   bash experiments/gpu_run.sh                    # there: preprocess, train, evaluate, benchmark -> gpu_run/
#   bash experiments/gpu_run.sh --dry-run          # on the CPU: a tiny model, a 1-minute budget, the quick benchmark
#
# Steps: the missing audio packages are installed from experiments/wheels/ into a private folder (nothing of the
# machine's own Python is replaced); the shared clips (or $POP2JAZZ_CLIPS) are preprocessed with 3 of 10 songs per
# genre held out, as for the bundled model; train.py trains the paper-size model (64 wide, 9 blocks) in bf16 with
# channels-last and torch.compile for $MINUTES minutes; evaluate.py judges it on the held-out songs and
# benchmark.py --device cuda times it. Everything goes to one folder ($OUTPUT, default gpu_run/):
# generators.pt, latest.pt, report/ (report.md, figures.json), benchmark.json and the logs.
#
# Environment: PYTHON (default python3), MINUTES (training budget, default 5; 1 with --dry-run), OUTPUT,
# POP2JAZZ_CLIPS (default ../shared/audio/gtzan_mini), WHEEL_PYTHON (Python version of the wheels, default 3.12),
# BENCHMARK (1 runs the benchmark step, the default; 0 leaves it out, as the tests do: they run benchmark.py apart).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WHEELS="$ROOT/experiments/wheels"
# librosa (0.11, the version the tests run here), soundfile and soxr, with what they need that the GPU image lacks
# (the device tool's KINDS.md lists numpy, scipy, scikit-learn, numba, joblib, msgpack, lazy-loader, matplotlib,
# tqdm and packaging there already)
PACKAGES=(librosa==0.11.0 soundfile==0.14.0 soxr==1.1.0 audioread==3.1.0 pooch==1.9.0 decorator==5.3.1
          platformdirs==4.14.8 cffi==2.1.1 pycparser==3.12)

mode=run
for argument in "$@"; do
    case "$argument" in
        --prepare-wheels) mode=prepare ;;
        --dry-run) mode=dry ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_run.sh: unknown option $argument (use --prepare-wheels, --dry-run or none)" >&2; exit 2 ;;
    esac
done

PYTHON=${PYTHON:-python3}
BENCHMARK_STEP=${BENCHMARK:-1}
case "$BENCHMARK_STEP" in
    0|1) ;;
    *) echo "gpu_run.sh: BENCHMARK=$BENCHMARK_STEP: use 1 (run the benchmark step) or 0 (leave it out)" >&2; exit 2 ;;
esac
if [ "$mode" = prepare ]; then
    mkdir -p "$WHEELS"
    for package in "${PACKAGES[@]}"; do
        "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version "${WHEEL_PYTHON:-3.12}" \
            --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 -d "$WHEELS" "$package"
    done
    ls -l "$WHEELS"
    exit 0
fi

OUTPUT=${OUTPUT:-gpu_run}
CLIPS=${POP2JAZZ_CLIPS:-$ROOT/../shared/audio/gtzan_mini}
mkdir -p "$OUTPUT"
OUTPUT=$(cd "$OUTPUT" && pwd)
if [ -e "$OUTPUT/latest.pt" ]; then
    echo "gpu_run.sh: $OUTPUT already holds a run; pass another OUTPUT=folder or move it away" >&2
    exit 1
fi
if ! "$PYTHON" -c "import librosa, soundfile, soxr" 2>/dev/null; then
    [ -d "$WHEELS" ] || { echo "gpu_run.sh: librosa, soundfile or soxr is missing and $WHEELS is not here: run" \
        "bash experiments/gpu_run.sh --prepare-wheels where there is a package index" >&2; exit 1; }
    "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --target "$OUTPUT/site" \
        "$WHEELS"/*.whl
    export PYTHONPATH="$OUTPUT/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1

if [ "$mode" = dry ]; then
    MINUTES=${MINUTES:-1}
    # the CPU's default precision: bf16 where it does bf16 natively (AVX512-BF16 or AMX), else float32
    TRAIN=(--device cpu --width 4 --n-blocks 1 --pool-size 2 --steps-per-epoch 2 --griffin-lim-iters 1)
    BENCHMARK_ARGS=(--quick --device cpu)
else
    MINUTES=${MINUTES:-5}
    TRAIN=(--device cuda --bf16 --compile --channels-last --griffin-lim-iters 8)
    BENCHMARK_ARGS=(--device cuda --bf16)  # no --compile: each of its training children would compile again
fi
start=$(date +%s)
echo "== preprocessing $CLIPS (at $(( $(date +%s) - start )) s)"
"$PYTHON" audio_preprocessing.py --pop "$CLIPS/pop" --jazz "$CLIPS/jazz" --output "$OUTPUT/data" \
    --val-fraction 0.3 --seed 0 2>&1 | tee "$OUTPUT/preprocessing.log"
echo "== training for $MINUTES minutes (at $(( $(date +%s) - start )) s)"
"$PYTHON" train.py --data "$OUTPUT/data" --checkpoint-dir "$OUTPUT" --samples-dir "$OUTPUT/samples" \
    --epochs 200 --max-minutes "$MINUTES" "${TRAIN[@]}" 2>&1 | tee "$OUTPUT/train.log"
echo "== evaluating (at $(( $(date +%s) - start )) s)"
"$PYTHON" evaluate.py --checkpoint "$OUTPUT/latest.pt" --data "$OUTPUT/data" -o "$OUTPUT/report" 2>&1 \
    | tee "$OUTPUT/evaluate.log"
if [ "${BENCHMARK_STEP}" = 1 ]; then
    echo "== benchmarking (at $(( $(date +%s) - start )) s)"
    "$PYTHON" benchmark.py "${BENCHMARK_ARGS[@]}" --clips "$CLIPS" --json "$OUTPUT/benchmark.json" 2>&1 \
        | tee "$OUTPUT/benchmark.log"
fi
echo "done in $(( $(date +%s) - start )) s: $OUTPUT/{generators.pt,latest.pt,report/report.md,benchmark.json}"
