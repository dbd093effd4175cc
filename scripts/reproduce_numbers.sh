#!/usr/bin/env bash
# Every measured number the README and docs/ quote, regenerated from the code as committed: one
# section per group of numbers, each the command(s) that made them, run into OUT_DIR/<section>/
# with their output in OUT_DIR/<section>/output.txt and the code's commit in OUT_DIR/COMMIT.
#   scripts/reproduce_numbers.sh [--list] [SECTION...]     (default: every section, in order)
# Sections (the page whose numbers each one makes):
#   demo       README.md, docs/reproducing.md "The demo"            (~5 min on 2 cores)
#   ablation   docs/reproducing.md "The ablation in miniature"      (~30 min)
#   finetune   docs/training.md "Fine-tuning"                       (~10 min)
#   probe      docs/data.md "Measured"                              (~5 min)
#   twin       docs/data.md "Twin runs" (demo set)                  (~15 min)
#   detection  docs/transfer.md "On the demo detection set" (needs the demo section's checkpoint)
#   segmentation docs/transfer.md "On the demo segmentation set" (needs the demo section's checkpoint)
#   bench      docs/performance.md "Measurements" (CPU rows)        (~10 min)
#   reference  docs/reproducing.md "GluonCV's logs": tables, figures (~1 min)
# The twin on exactly-output-size sources also needs GluonCV's train_imagenet.py, which is not
# part of this repository: GLUONCV_SCRIPT=PATH adds it to the twin section, and with
# DIGITS_CSV=PATH (scikit-learn's sklearn/datasets/data/digits.csv.gz) the twin on issue 21's digits;
# GLUONCV_DETECTION_SCRIPT=PATH (its train_faster_rcnn.py) adds the detection twin to the
# detection section, GLUONCV_SEGMENTATION_SCRIPT=PATH (its scripts/segmentation/train.py) the
# segmentation twin to the segmentation section.
# Environment: OUT_DIR (default runs/numbers), PYTHON (default .venv/bin/python), DRY_RUN=1 (print
# each command as one shell-quoted line, run nothing). A section whose folder exists is refused,
# so earlier results are never added to.
set -euo pipefail
SCRIPT_NAME=reproduce_numbers
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$(dirname "$0")/.."
SECTIONS=(demo ablation finetune probe twin detection segmentation bench reference)
out=$(abspath "${OUT_DIR:-runs/numbers}")
python=${PYTHON:-.venv/bin/python}
case $python in */*) python=$(abspath "$python") ;; esac
dry_run=${DRY_RUN:-0}

if [ "${1:-}" = "--list" ]; then
  sed -n 's/^#   \([a-z]*\) \{1,\}\(.*\.md.*\)/\1: \2/p' "$0"
  exit 0
fi
requested=("$@")
[ "${#requested[@]}" -gt 0 ] || requested=("${SECTIONS[@]}")
for section in "${requested[@]}"; do
  case " ${SECTIONS[*]} " in
    *" $section "*) ;;
    *) die "unknown section '$section'; the sections are: ${SECTIONS[*]}" ;;
  esac
done
[ "$dry_run" = 1 ] || command -v "$python" >/dev/null || die "$python not found; run 'make venv' first"

# step CMD...: print CMD and run it (DRY_RUN=1: print it only), its output appended to the
# section's output.txt.
step() {
  shell_join "$@"
  [ "$dry_run" = 1 ] && return
  shell_join "$@" >> "$dir/output.txt"
  run_child "$@" >> "$dir/output.txt" 2>&1 || die "failed (exit $?): see $dir/output.txt"
}

# demo: `make demo`'s recipe (gluon-tricks demo), trained into OUT_DIR/demo.
section_demo() {
  step "$python" -m gluon_tricks demo --out "$dir"
}

# ablation: every row of the CPU ablation over seeds 0-2, its report and figures.
section_ablation() {
  step bash scripts/cpu_ablation.sh "$dir/results"
}

section_finetune() {
  step bash scripts/finetune_demo.sh "$dir"
}

section_probe() {
  step "$python" scripts/augmentation_probe.py --draws 4000
}

section_twin() {
  step "$python" scripts/twin_runs.py --work-dir "$dir/demo"
  if [ -n "${GLUONCV_SCRIPT:-}" ]; then
    step "$python" scripts/twin_runs.py --data exact-size --epochs 6 --warmup-epochs 1 \
      --no-last-gamma --workers 2 --gluoncv-script "$GLUONCV_SCRIPT" --work-dir "$dir/exact-size"
    if [ -n "${DIGITS_CSV:-}" ]; then
      step "$python" scripts/twin_runs.py --data sklearn-digits --digits-csv "$DIGITS_CSV" \
        --seeds 6 --epochs 6 --warmup-epochs 1 --no-last-gamma --workers 2 \
        --gluoncv-script "$GLUONCV_SCRIPT" --work-dir "$dir/sklearn-digits"
    fi
  fi
}

# detection: Faster R-CNN on the demo detection set, the demo's backbone against from scratch.
section_detection() {
  local backbone=$out/demo/resnet18_v1d-0010.params
  [ "$dry_run" = 1 ] || [ -f "$backbone" ] || die "$backbone is missing: run the demo section first"
  step "$python" -m gluon_tricks demo-data --task detection "$dir/data"
  local common=(--network resnet18_v1d --dataset-root "$dir/data" --classes demo --short 96
                --max-size 144 --rcnn-num-samples 16 --rpn-test-post-nms 20 --epochs 4 --lr 0.01
                --lr-decay-epoch 3 --val-interval 2 --num-workers 0 --log-interval 25)
  step "$python" -m gluon_tricks detect train "${common[@]}" --backbone-params "$backbone" \
    --save-prefix "$dir/pretrained/"
  step "$python" -m gluon_tricks detect train "${common[@]}" --save-prefix "$dir/scratch/"
  if [ -n "${GLUONCV_DETECTION_SCRIPT:-}" ]; then
    step "$python" scripts/detection_twin.py --gluoncv-script "$GLUONCV_DETECTION_SCRIPT" \
      --backbone-params "$backbone" --seeds 6 --work-dir "$dir/twin"
  fi
}

# segmentation: FCN on the demo segmentation set, the demo's backbone against from scratch.
section_segmentation() {
  local backbone=$out/demo/resnet18_v1d-0010.params
  [ "$dry_run" = 1 ] || [ -f "$backbone" ] || die "$backbone is missing: run the demo section first"
  step env CLASSIFIER_PARAMS="$backbone" PYTHON="$python" bash scripts/segment_demo.sh "$dir"
  if [ -n "${GLUONCV_SEGMENTATION_SCRIPT:-}" ]; then
    step env OMP_NUM_THREADS=1 "$python" scripts/segmentation_twin.py \
      --gluoncv-script "$GLUONCV_SEGMENTATION_SCRIPT" --backbone-params "$backbone" --seeds 6 \
      --work-dir "$dir/twin"
  fi
}

section_bench() {
  step "$python" -m gluon_tricks bench train --model resnet18_v1b --batch-size 32 --input-size 112 \
    --steps 3 --warmup 3 --rounds 6 --compare-gluoncv --json
  step "$python" -m gluon_tricks bench train --model resnet50_v1d --batch-size 16 --input-size 112 \
    --steps 3 --warmup 2 --rounds 5 --compare-gluoncv --json
  step "$python" -m gluon_tricks bench train --model resnet18_v1d --input-size 32 --batch-size 64 \
    --steps 10 --warmup 3 --rounds 2 -j 2 \
    --rec "${GLUON_TRICKS_CACHE:-$HOME/.cache/gluon-tricks}/demo-data/train.rec"
}

# reference: GluonCV's published logs read by this package (the table with the paper beside, the
# four figures and gluoncv_tables.md).
section_reference() {
  step "$python" -m gluon_tricks report logs/gluoncv --paper
  step "$python" -m gluon_tricks plot reference logs/gluoncv -o "$dir"
}

if [ "$dry_run" != 1 ]; then
  mkdir -p "$out"
  for section in "${requested[@]}"; do
    [ ! -e "$out/$section" ] || die "$out/$section exists: set OUT_DIR to a new folder or" \
      "remove it; its results are not added to"
  done
  { git rev-parse HEAD; git status --porcelain --untracked-files=no | sed 's/^/changed: /'; } \
    > "$out/COMMIT"
fi
for section in "${requested[@]}"; do
  dir=$out/$section
  echo "# $section"
  [ "$dry_run" = 1 ] || mkdir -p "$dir"
  "section_$section"
done
