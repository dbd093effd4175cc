#!/usr/bin/env bash
# Semantic segmentation on the demo scenes, on a CPU: FCN (with its auxiliary head) on a dilated
# ResNet-18-D whose weights come from a classifier trained on the demo classification data, next
# to the same FCN trained from scratch, with the same flags and epochs. Both are then evaluated
# from their last saved weights (`segment eval`, the validation of the log).
#   scripts/segment_demo.sh [OUT_DIR]     (default runs/segment_demo)
# The classifier is `gluon-tricks demo`'s (trained into OUT_DIR/classifier, or resumed there)
# unless CLASSIFIER_PARAMS names a resnet18_v1d .params of it. Every run trains in
# OUT_DIR/<run>/; relaunching the script resumes each from its newest checkpoint.
# OUT_DIR/report.md gets the table.
# Environment: EPOCHS (default 10), LR (default 0.01, GluonCV's ADE20K recipe), BATCH (default
# 8), CROP (crop size, default 64; base size 1.5x), WORKERS (default 2), CLASSIFIER_PARAMS,
# PYTHON.
set -euo pipefail
SCRIPT_NAME=segment_demo
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$(dirname "$0")/.."
out=$(abspath "${1:-runs/segment_demo}")
epochs=${EPOCHS:-10}
lr=${LR:-0.01}
batch=${BATCH:-8}
crop=${CROP:-64}
workers=${WORKERS:-2}
python=${PYTHON:-.venv/bin/python}
case $python in */*) python=$(abspath "$python") ;; esac
command -v "$python" >/dev/null || die "$python not found; run 'make venv' first"
for value in "$epochs" "$batch" "$crop"; do
  [[ $value =~ ^[1-9][0-9]*$ ]] || die "EPOCHS, BATCH and CROP must be positive whole" \
    "numbers, not '$value'"
done
[[ $workers =~ ^[0-9]+$ ]] || die "WORKERS must be a whole number, not '$workers'"
[[ $lr =~ ^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ ]] || die "LR must be a number, not '$lr'"
mkdir -p "$out"

if [ -n "${CLASSIFIER_PARAMS:-}" ]; then
  classifier=$(abspath "$CLASSIFIER_PARAMS")
  [ -f "$classifier" ] || die "CLASSIFIER_PARAMS=$CLASSIFIER_PARAMS: no such file"
else
  echo "== classifier (gluon-tricks demo)"
  run_child "$python" -m gluon_tricks demo --out "$out/classifier" > /dev/null
  checkpoints=("$out"/classifier/resnet18_v1d-*.params)
  classifier=${checkpoints[-1]}  # <model>-<4-digit epoch>.params: the glob sorts them by epoch
fi
run_child "$python" -m gluon_tricks demo-data --task segmentation "$out/data"

common=(--backbone resnet18_v1d --dataset-root "$out/data" --num-class 10 --aux
        --base-size $((crop * 3 / 2)) --crop-size "$crop" --test-batch-size "$batch"
        --workers "$workers")
train() {  # NAME FLAGS...: train (or resume) a run in OUT_DIR/NAME/
  local name=$1
  shift
  echo "== $name"
  run_child "$python" -m gluon_tricks segment train "${common[@]}" --batch-size "$batch" \
    --lr "$lr" --epochs "$epochs" --log-interval 100 --save-dir "$out/$name" "$@" > /dev/null
}
evaluate() {  # NAME: segment eval of the run's last GluonCV-named weights
  local name=$1 weights
  weights=$(find "$out/$name" -name "epoch_$(printf %04d $((epochs - 1)))_mIoU_*.params" | head -1)
  [ -n "$weights" ] || die "no weights of epoch $((epochs - 1)) in $out/$name"
  echo "== segment eval $name: $weights"
  run_child "$python" -m gluon_tricks segment eval "${common[@]}" --params "$weights"
}
train pretrained --backbone-params "$classifier"
train scratch
evaluate pretrained
evaluate scratch

run_child "$python" -m gluon_tricks report "$out"/{pretrained,scratch}/train.log > "$out/report.md"
cat "$out/report.md"
