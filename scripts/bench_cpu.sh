#!/usr/bin/env bash
# Side-by-side CPU benchmark on one machine: `interlace bench` (burn, CPU backend) and the
# PyTorch + transformers reference (scripts/bench_pytorch.py, --device cpu), same shapes, random
# weights, f32, then the ratios the CPU-speed issue asks for. The CPU twin of bench_gpu.sh.
#
# Usage: scripts/bench_cpu.sh [INTERLACE_BINARY] [PRESET]
#   INTERLACE_BINARY  default target/release/interlace (cargo build --release -p interlace-cli)
#   PRESET            default 2B
# Environment:
#   OUT (folder for the JSON and /usr/bin/time logs, default bench-cpu-out), BACKEND (cpu: the
#   default CPU backend, burn-flex; or ndarray), LAYERS (6: the preset cut to this many text
#   layers), TOKENS (256), LONG=1 also at LONG_TOKENS (2048), IMAGE=1 also image+text with one
#   IMAGE_SIDE (448) pixel image (196 image tokens), TRAIN=0 to skip the training step (DROP 1,
#   TRAINABLE 2 of the 6 layers; with LONG=1 / IMAGE=1 it is measured at that length / with
#   that image too), WARMUP (1), ITERS (2), PYTHON (python3), SKIP_TORCH=1 to run
#   only interlace.
# Both sides use every core (rayon / torch intra-op threads). Peak memory of both sides is read
# the same way: the maximum resident set size from /usr/bin/time -v, one process per
# measurement (calibration and training apart, so each peak is its own).
set -uo pipefail
BIN=${1:-target/release/interlace}
PRESET=${2:-2B}
OUT=${OUT:-bench-cpu-out}
BACKEND=${BACKEND:-cpu}
LAYERS=${LAYERS:-6}
TOKENS=${TOKENS:-256}
LONG_TOKENS=${LONG_TOKENS:-2048}
IMAGE_SIDE=${IMAGE_SIDE:-448}
DROP=${DROP:-1}
TRAINABLE=${TRAINABLE:-2}
WARMUP=${WARMUP:-1}
ITERS=${ITERS:-2}
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.time

# measure NAME CMD...: runs CMD with stdout to $OUT/NAME.json and its peak RSS to $OUT/NAME.time.
measure() {
    local name=$1
    shift
    local started=$SECONDS
    /usr/bin/time -v -o "$OUT/$name.time" "$@" > "$OUT/$name.json" 2> "$OUT/$name.err"
    local rc=$?
    echo "$name: exit $rc in $((SECONDS - started)) s" >&2
    [ $rc -eq 0 ] || tail -5 "$OUT/$name.err" >&2
}

common=(--preset "$PRESET" --layers "$LAYERS" --warmup "$WARMUP" --iters "$ITERS")
ours=(bench --backend "$BACKEND" --dtype f32)
theirs=(--device cpu --dtype float32)
torch_side() { [ "${SKIP_TORCH:-0}" != 1 ] && measure "$@"; }
# train_both NAME ARGS...: the training step of both sides at ARGS, as NAME (skipped with TRAIN=0).
train_both() {
    [ "${TRAIN:-1}" != 0 ] || return 0
    local name=$1
    shift
    local train=("$@" --drop "$DROP" --trainable "$TRAINABLE" --only-train)
    measure "interlace_$name" "$BIN" "${ours[@]}" "${common[@]}" "${train[@]}"
    torch_side "torch_$name" "$PYTHON" "$HERE/bench_pytorch.py" "${theirs[@]}" "${common[@]}" "${train[@]}"
}

measure interlace_calibration "$BIN" "${ours[@]}" "${common[@]}" --tokens "$TOKENS" --no-train
torch_side torch_calibration "$PYTHON" "$HERE/bench_pytorch.py" "${theirs[@]}" "${common[@]}" --tokens "$TOKENS" --no-train
train_both train --tokens "$TOKENS"
if [ "${IMAGE:-0}" = 1 ]; then
    measure interlace_image_calibration "$BIN" "${ours[@]}" "${common[@]}" --tokens "$TOKENS" --image-side "$IMAGE_SIDE" --no-train
    torch_side torch_image_calibration "$PYTHON" "$HERE/bench_pytorch.py" "${theirs[@]}" "${common[@]}" --tokens "$TOKENS" --image-side "$IMAGE_SIDE" --no-train
    train_both image_train --tokens "$TOKENS" --image-side "$IMAGE_SIDE"
fi
if [ "${LONG:-0}" = 1 ]; then
    measure interlace_long_calibration "$BIN" "${ours[@]}" "${common[@]}" --tokens "$LONG_TOKENS" --no-train
    torch_side torch_long_calibration "$PYTHON" "$HERE/bench_pytorch.py" "${theirs[@]}" "${common[@]}" --tokens "$LONG_TOKENS" --no-train
    train_both long_train --tokens "$LONG_TOKENS"
fi

"$PYTHON" - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]

def load(name):
    try:
        with open(os.path.join(out, name + ".json")) as f:
            report = json.loads(f.read().strip().splitlines()[-1])
        with open(os.path.join(out, name + ".time")) as f:
            for line in f:
                if "Maximum resident set size" in line:
                    report["peak_rss_mib"] = int(line.split(":")[-1]) / 1024
        return report
    except (OSError, ValueError, IndexError):
        return None

kinds = ["calibration", "train", "image_calibration", "image_train", "long_calibration", "long_train"]
r = {f"{side}_{kind}": load(f"{side}_{kind}") for side in ("interlace", "torch") for kind in kinds}
rows = []

def ratio(label, kind, key):
    ours, theirs = r.get(f"interlace_{kind}"), r.get(f"torch_{kind}")
    if ours and theirs and key in ours and key in theirs:
        a, b = ours[key], theirs[key]
        rows.append((label, a, b, a / b if b else float("nan")))

ratio("forward tokens/s", "calibration", "forward_tokens_per_s")
ratio("calibration tokens/s (one pass)", "calibration", "calibration_tokens_per_s")
ratio("calibration peak RSS MiB", "calibration", "peak_rss_mib")
ratio("training step tokens/s", "train", "train_tokens_per_s")
ratio("training peak RSS MiB", "train", "peak_rss_mib")
ratio("image+text forward tokens/s", "image_calibration", "forward_tokens_per_s")
ratio("image+text calibration tokens/s", "image_calibration", "calibration_tokens_per_s")
ratio("image+text calibration peak RSS MiB", "image_calibration", "peak_rss_mib")
ratio("image+text training step tokens/s", "image_train", "train_tokens_per_s")
ratio("image+text training peak RSS MiB", "image_train", "peak_rss_mib")
ratio("long forward tokens/s", "long_calibration", "forward_tokens_per_s")
ratio("long calibration tokens/s", "long_calibration", "calibration_tokens_per_s")
ratio("long calibration peak RSS MiB", "long_calibration", "peak_rss_mib")
ratio("long training step tokens/s", "long_train", "train_tokens_per_s")
ratio("long training peak RSS MiB", "long_train", "peak_rss_mib")
print(json.dumps({k: v for k, v in r.items() if v}, indent=1))
print()
print(f"{'measure (a: interlace, b: torch)':40} {'a':>10} {'b':>10} {'a/b':>7}")
for label, a, b, q in rows:
    print(f"{label:40} {a:10.1f} {b:10.1f} {q:7.3f}")
EOF
