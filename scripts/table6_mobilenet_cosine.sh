#!/usr/bin/env bash
# Table 6, MobileNet, row "+ cosine decay":
# The efficient setting with cosine decay instead of step decay.
# Efficient setting: batch 1024 (8 x 128), lr 0.4, 5 warmup epochs, no bias decay, FP16.
# No zero gamma: MobileNet has no residual blocks (as in GluonCV's recipe).
# Paper row: Table 6 "+ cosine decay", mobilenet1.0: top-1 72.83, top-5 91.00.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 1024 --model mobilenet1.0 \
  --num-epochs 120 --lr 0.4 --lr-mode cosine \
  --warmup-epochs 5 --no-wd --dtype float16 \
  "$@"
