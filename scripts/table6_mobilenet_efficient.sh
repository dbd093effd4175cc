#!/usr/bin/env bash
# Table 6, MobileNet, row "Efficient".
# Efficient setting: batch 1024 (8 x 128), lr 0.4, 5 warmup epochs, no bias decay, FP16;
# step decay at 30, 60, 90; 120 epochs.
# No zero gamma: MobileNet has no residual blocks (as in GluonCV's recipe).
# Paper row: Table 6 "efficient", mobilenet1.0: top-1 71.90, top-5 90.53.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 1024 --model mobilenet1.0 \
  --num-epochs 120 --lr 0.4 --lr-mode step --lr-decay-epoch 30,60,90 \
  --warmup-epochs 5 --no-wd --dtype float16 \
  "$@"
