#!/usr/bin/env bash
# Fine-tuning on the embedded demo data, on a CPU: a ResNet-18-D trained on 5 of the 10 demo
# classes (checker, cross, disk, dots, frame) is fine-tuned onto the other 5 (ring, square, star,
# stripes, triangle), next to the same network trained from scratch on those 5 for the same
# number of epochs. 32x32 px, batch 32, cosine decay, zero gamma, no bias decay throughout; runs
# from random weights warm up for an epoch.
#   scripts/finetune_demo.sh [OUT_DIR]     (default runs/finetune_demo)
# Rows: scratch (lr 0.1), fine-tuned (lr 0.01, a new classifier at x10), and fine-tuned with the
# stem and stages 1-2 frozen. Every run trains in OUT_DIR/<run>/; relaunching the script resumes
# each from its newest checkpoint. OUT_DIR/report.md gets the table.
# Environment: PRETRAIN_EPOCHS (default 12), EPOCHS (default 6), PER_CLASS (training images per
# class, default all 200; validation keeps a quarter of that, at most 50), BATCH (default 32),
# PYTHON.
set -euo pipefail
SCRIPT_NAME=finetune_demo
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$(dirname "$0")/.."
out=$(abspath "${1:-runs/finetune_demo}")
pretrain_epochs=${PRETRAIN_EPOCHS:-12}
epochs=${EPOCHS:-6}
per_class=${PER_CLASS:-200}
batch=${BATCH:-32}
python=${PYTHON:-.venv/bin/python}
case $python in */*) python=$(abspath "$python") ;; esac
command -v "$python" >/dev/null || die "$python not found; run 'make venv' first"
for value in "$pretrain_epochs" "$epochs" "$per_class" "$batch"; do
  [[ $value =~ ^[1-9][0-9]*$ ]] || die "PRETRAIN_EPOCHS, EPOCHS, PER_CLASS and BATCH must be" \
    "positive whole numbers, not '$value'"
done
mkdir -p "$out"

# The two halves of the demo set as image folders of links to its files.
demo=$(run_child "$python" -c \
  'from gluon_tricks.data.demo_data import default_demo_data as d; print(d()["train_dir"])')
demo=$(dirname "$demo")
half() {  # NAME CLASS...: OUT_DIR/data/NAME/{train,val}/CLASS/ linking PER_CLASS (val: 1/4) files,
  local name=$1 split class count file  # and the class names in OUT_DIR/data/NAME/classes.txt
  shift
  mkdir -p "$out/data/$name"
  printf '%s\n' "$@" > "$out/data/$name/classes.txt"
  for split in train val; do
    count=$per_class
    [ "$split" = train ] || count=$(( (per_class + 3) / 4 ))
    for class in "$@"; do
      rm -rf "$out/data/$name/$split/$class"
      mkdir -p "$out/data/$name/$split/$class"
      find "$demo/$split/$class" -name "*.jpg" | sort | sed -n "1,${count}p" | while read -r file; do
        ln -s "$file" "$out/data/$name/$split/$class/"
      done
    done
  done
}
half first checker cross disk dots frame
half second ring square star stripes triangle

common=(--model resnet18_v1d --input-size 32 --batch-size "$batch" -j 2 --log-interval 5 --seed 0
        --lr-mode cosine --last-gamma --no-wd --save-frequency 2)
on() {  # HALF: the data flags of that half
  echo --train-dir "$out/data/$1/train" --val-dir "$out/data/$1/val"
}
train() {  # NAME HALF EPOCHS FLAGS...: train (or resume) a run in OUT_DIR/NAME/
  local name=$1 data=$2 run_epochs=$3
  shift 3
  echo "== $name"
  # shellcheck disable=SC2046  # on() prints whole words without spaces in them
  run_child "$python" -m gluon_tricks train "${common[@]}" $(on "$data") \
    --num-epochs "$run_epochs" "$@" --save-dir "$out/$name" \
    --logging-file "$out/$name/$name.log" > /dev/null
}

warmup() {  # EPOCHS: one warmup epoch when the run has more than one
  if [ "$1" -gt 1 ]; then echo 1; else echo 0; fi
}
train pretrain_first_half first "$pretrain_epochs" --lr 0.1 \
  --warmup-epochs "$(warmup "$pretrain_epochs")"
checkpoints=("$out"/pretrain_first_half/resnet18_v1d-*.params)
pretrained=${checkpoints[-1]}  # <model>-<4-digit epoch>.params: the glob sorts them by epoch
train scratch second "$epochs" --lr 0.1 --warmup-epochs "$(warmup "$epochs")"
# Other classes, as many: the first half's classifier is re-initialised, not reused.
tune=(--lr 0.01 --lr-mult-classifier 10 --pretrained-params "$pretrained" --reset-classifier)
train finetune second "$epochs" "${tune[@]}"
train finetune_frozen second "$epochs" "${tune[@]}" --freeze-stages 2

run_child "$python" -m gluon_tricks report \
  "$out"/{scratch,finetune,finetune_frozen,pretrain_first_half}/*.log \
  > "$out/report.md"
cat "$out/report.md"
