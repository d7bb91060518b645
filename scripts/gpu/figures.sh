#!/usr/bin/env bash
# The GPU figures of BENCHMARKS.md ("VLM servers on a GPU"), in one prepared run that writes every
# result as JSON under $OUT (default gpu-figures/):
#   gpu.txt         the accelerator (nvidia-smi -L) and the date
#   medgemma.json   bench perf vlm: questions/s at batch 1, 4, 16 with and without per-volume reuse,
#   lingshu.json    time split, model busy fraction, GPU utilisation, peak GPU memory
#   ingest.json     bench perf ingest --backend torch
# Random full-size weights built from the published configs (nothing is downloaded), a
# CT-SpatialVQA-shaped input: CT-RATE-sized phantom volumes, 6 questions per volume (5.7 on
# average in CT-SpatialVQA), 85 slices for MedGemma, Lingshu's own slice count.
#
#   scripts/gpu/figures.sh                    # on the GPU host: SIZE=full
#   SIZE=tiny scripts/gpu/figures.sh          # the CPU rehearsal (tests/model_servers/test_gpu_figures_script.py)
#   ONLY=medgemma scripts/gpu/figures.sh      # one part (medgemma, lingshu or ingest), to fit a time limit
set -euo pipefail
out="${OUT:-gpu-figures}"
size="${SIZE:-full}"
bench="${BENCH:-bench}"
only="${ONLY:-medgemma lingshu ingest}"
mkdir -p "$out"
log() { printf '[gpu-figures %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

case "$size" in
  full) batches=1,4,16 volumes=2 tokens=16 phantom=ct-rate
        medgemma_args=(--num-slices 85) lingshu_args=() ingest_args=() ;;
  tiny) batches=1,2 volumes=1 tokens=2 phantom=small
        medgemma_args=(--num-slices 3 --slice-size 32x32) lingshu_args=(--num-slices 3 --slice-size 32x32)
        ingest_args=(--shape 24,48,48) ;;
  *) echo "SIZE must be full or tiny, not $size" >&2; exit 2 ;;
esac

{ date -u +%Y-%m-%dT%H:%M:%SZ; nvidia-smi -L 2>/dev/null || echo "no NVIDIA GPU visible"; } > "$out/gpu.txt"
for part in $only; do
  start=$SECONDS
  case "$part" in
    medgemma)
      "$bench" perf vlm --model medgemma --size "$size" --batch-sizes "$batches" --volumes "$volumes" --questions 6 \
        --max-new-tokens "$tokens" --phantom-size "$phantom" "${medgemma_args[@]}" --out "$out/medgemma.json" ;;
    lingshu)
      "$bench" perf vlm --model lingshu --size "$size" --batch-sizes "$batches" --volumes "$volumes" --questions 6 \
        --max-new-tokens "$tokens" --phantom-size "$phantom" ${lingshu_args[@]+"${lingshu_args[@]}"} --out "$out/lingshu.json" ;;
    ingest)
      "$bench" perf ingest --backend torch --json ${ingest_args[@]+"${ingest_args[@]}"} > "$out/ingest.json" ;;
    *) echo "unknown part $part (medgemma, lingshu, ingest)" >&2; exit 2 ;;
  esac
  log "$part done in $((SECONDS - start))s"
done
log "results in $out/"
