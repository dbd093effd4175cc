#!/usr/bin/env bash
# Table 6, MobileNet, row "+ mixup w/o distill":
# Cosine + label smoothing + mixup (alpha 0.2) for 200 epochs instead of 120.
# Efficient setting: batch 1024 (8 x 128), lr 0.4, 5 warmup epochs, no bias decay, FP16.
# No zero gamma: MobileNet has no residual blocks (as in GluonCV's recipe).
# Paper row: Table 6 "+ mixup w/o distill", mobilenet1.0: top-1 73.28, top-5 91.30.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 1024 --model mobilenet1.0 \
  --num-epochs 200 --lr 0.4 --lr-mode cosine \
  --warmup-epochs 5 --no-wd --dtype float16 \
  --label-smoothing --mixup --mixup-alpha 0.2 \
  "$@"
