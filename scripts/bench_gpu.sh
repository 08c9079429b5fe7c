#!/usr/bin/env bash
# Side-by-side GPU benchmark on one card: `interlace bench` (burn, CUDA) and the PyTorch +
# transformers reference (scripts/bench_pytorch.py), same shapes, random weights, then the
# ratios the GPU-speed issue asks for.
#
# Usage: scripts/bench_gpu.sh [INTERLACE_BINARY] [PRESET]
#   INTERLACE_BINARY  default target/release/interlace (built with --features cuda)
#   PRESET            default 8B
# Environment: OUT (folder for the JSON and memory traces, default bench-out), CALIB_TOKENS
#   (2048), TRAIN_TOKENS (8192), DROP (5), ITERS (3), PYTHON (python3), SKIP_TORCH=1 to run
#   only interlace.
# Peak memory of both sides is read the same way: nvidia-smi sampled every 100 ms, minus the
# memory in use before the process started.
set -uo pipefail
BIN=${1:-target/release/interlace}
PRESET=${2:-8B}
OUT=${OUT:-bench-out}
CALIB_TOKENS=${CALIB_TOKENS:-2048}
TRAIN_TOKENS=${TRAIN_TOKENS:-8192}
DROP=${DROP:-5}
ITERS=${ITERS:-3}
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"

gpu_used_mib() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | head -1; }

# measure NAME CMD...: runs CMD with stdout to $OUT/NAME.json, samples GPU memory meanwhile.
measure() {
    local name=$1
    shift
    local before
    before=$(gpu_used_mib)
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 > "$OUT/$name.mem" &
    local sampler=$!
    local started=$SECONDS
    "$@" > "$OUT/$name.json" 2> "$OUT/$name.err"
    local rc=$?
    kill "$sampler" 2>/dev/null
    wait "$sampler" 2>/dev/null
    echo "$before" > "$OUT/$name.base"
    echo "$name: exit $rc in $((SECONDS - started)) s" >&2
    [ $rc -eq 0 ] || tail -5 "$OUT/$name.err" >&2
}

common=(--preset "$PRESET" --iters "$ITERS" --warmup 1)
measure interlace_calibration "$BIN" bench "${common[@]}" --tokens "$CALIB_TOKENS" --no-train --backend cuda --dtype bf16
LAYERS=$("$PYTHON" -c "import json;print(json.load(open('$OUT/interlace_calibration.json'))['layers'])" 2>/dev/null || echo 36)
measure interlace_image_calibration "$BIN" bench "${common[@]}" --tokens "$CALIB_TOKENS" --image-side 448 --no-train --backend cuda --dtype bf16
measure interlace_pruned_prefill "$BIN" bench "${common[@]}" --tokens "$CALIB_TOKENS" --no-train --layers $((LAYERS - DROP)) --backend cuda --dtype bf16
measure interlace_train "$BIN" bench "${common[@]}" --tokens "$TRAIN_TOKENS" --drop "$DROP" --only-train --activation-checkpointing --backend cuda --dtype bf16
if [ "${SKIP_TORCH:-0}" != 1 ]; then
    measure torch_calibration "$PYTHON" "$HERE/bench_pytorch.py" "${common[@]}" --tokens "$CALIB_TOKENS" --no-train
    measure torch_image_calibration "$PYTHON" "$HERE/bench_pytorch.py" "${common[@]}" --tokens "$CALIB_TOKENS" --image-side 448 --no-train
    measure torch_train "$PYTHON" "$HERE/bench_pytorch.py" "${common[@]}" --tokens "$TRAIN_TOKENS" --drop "$DROP" --only-train --activation-checkpointing
fi

"$PYTHON" - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]

def load(name):
    try:
        with open(os.path.join(out, name + ".json")) as f:
            report = json.loads(f.read().strip().splitlines()[-1])
        with open(os.path.join(out, name + ".mem")) as f:
            samples = [int(x) for x in f.read().split() if x.strip().isdigit()]
        with open(os.path.join(out, name + ".base")) as f:
            base = int(f.read().strip())
        report["peak_gpu_mib"] = max(samples, default=base) - base
        return report
    except (OSError, ValueError, IndexError):
        return None

names = ["interlace_calibration", "interlace_image_calibration", "interlace_pruned_prefill", "interlace_train",
         "torch_calibration", "torch_image_calibration", "torch_train"]
r = {n: load(n) for n in names}
rows = []

def ratio(label, ours, theirs, key, higher_is_better=True):
    if r.get(ours) and r.get(theirs) and key in r[ours] and key in r[theirs]:
        a, b = r[ours][key], r[theirs][key]
        rows.append((label, a, b, a / b if b else float("nan")))

ratio("forward tokens/s (interlace / torch)", "interlace_calibration", "torch_calibration", "forward_tokens_per_s")
ratio("calibration tokens/s (interlace / torch one pass)", "interlace_calibration", "torch_calibration", "calibration_tokens_per_s")
ratio("image+text calibration tokens/s (interlace / torch)", "interlace_image_calibration", "torch_image_calibration", "calibration_tokens_per_s")
ratio("training tokens/s (interlace / torch)", "interlace_train", "torch_train", "train_tokens_per_s")
ratio("training peak GPU MiB (interlace / torch)", "interlace_train", "torch_train", "peak_gpu_mib")
ratio("pruned prefill speed-up (pruned / full, interlace)", "interlace_pruned_prefill", "interlace_calibration", "forward_tokens_per_s")
print(json.dumps(r, indent=1))
print()
print(f"{'measure':55} {'a':>12} {'b':>12} {'a/b':>8}")
for label, a, b, q in rows:
    print(f"{label:55} {a:12.1f} {b:12.1f} {q:8.3f}")
EOF
