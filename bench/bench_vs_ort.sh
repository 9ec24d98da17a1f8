#!/usr/bin/env bash
# Ours vs ONNX Runtime in one run: `yoloqat benchmark` times our models and the ONNX files (ONNX Runtime
# through tools/ort/bench.mjs) on the same machine in the same invocation, then this prints one ratio
# line per (model, batch, threads): our inference p50 / ONNX Runtime's inference p50 (< 1: ours faster).
#
# Usage: bench/bench_vs_ort.sh [-y YOLOQAT] [-o OUTDIR] OURS[,OURS...] ONNX[,ONNX...] [key=value ...]
#   OURS:  model files yoloqat runs (checkpoint, PTQ/QAT, .int8, or an .onnx read into our model);
#          with as many ONNX files as OURS they pair by position, else each is compared with the first.
#   key=value: passed to `yoloqat benchmark` (imgsz=640 batch=1 threads=1,2 runs=50 warmup=5 ...).
# Without OURS and ONNX: an untrained yolov8n is exported at 640 and the same weights run both ways
# (ours reads the .onnx back, BN folded into the convs).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
yoloqat="$here/build/release/yoloqat"
out="${TMPDIR:-/tmp}/yoloqat_bench_vs_ort"
while getopts "y:o:h" opt; do
  case $opt in
    y) yoloqat="$OPTARG" ;;
    o) out="$OPTARG" ;;
    *) sed -n '2,13p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ -x "$yoloqat" ] || { echo "no yoloqat executable at $yoloqat (build it, or give -y PATH)" >&2; exit 2; }
command -v jq >/dev/null || { echo "jq is needed to read benchmark.json" >&2; exit 2; }
mkdir -p "$out"

if [ $# -ge 2 ] && [[ "$1" != *=* ]] && [[ "$2" != *=* ]]; then
  ours="$1"; onnx="$2"; shift 2
else
  "$yoloqat" export model=yolov8n imgsz=640 project="$out" name=yolov8n_random exist_ok=true log=warn
  onnx="$out/models/exported/onnx/yolov8n_random.onnx"
  [ -f "$onnx" ] || onnx="$(ls -t "$out"/models/exported/onnx/*.onnx | head -1)"
  ours="$onnx"
fi

export YOLOQAT_SOURCE_DIR="${YOLOQAT_SOURCE_DIR:-$here}"
"$yoloqat" benchmark weights="$ours" onnx="$onnx" project="$out" name=vs_ort exist_ok=true "$@"
json="$out/reports/vs_ort/benchmark.json"
echo
jq -r '"machine: \(.machine.cpu), \(.machine.cores) cores, LibTorch \(.machine.libtorch); onnx: \(.onnx)"' "$json"
if ! jq -e '[.rows[] | select(.ort_ratio != null)] | length > 0' "$json" >/dev/null; then
  echo "no ours / ONNX Runtime ratio: ONNX Runtime did not run (see the onnx line above)" >&2
  exit 1
fi
jq -r '.rows as $r | $r[] | select(.ort_ratio != null) as $o
  | ($r[] | select(.runtime == "onnxruntime" and .model == $o.ort_model and .batch == $o.batch
                   and .threads == $o.threads)) as $x
  | "ours/ORT \($o.model) (\($o.kind)) vs \($x.model): imgsz \($o.imgsz) batch \($o.batch) threads \($o.threads): inference p50 \($o.inf_p50_ms * 100 | round / 100) ms vs \($x.inf_p50_ms * 100 | round / 100) ms, ratio \($o.ort_ratio * 1000 | round / 1000) (< 1: ours faster); ours end-to-end p50 \($o.p50_ms * 100 | round / 100) ms"' "$json"
