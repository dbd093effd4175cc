#!/usr/bin/env bash
# Table 5, ResNet-50-D: B + C + path B becomes 2x2 average pool (stride 2), then a 1x1 conv.
# Efficient setting: batch 1024 (8 x 128), lr 0.4, warmup 5 epochs, zero gamma, no bias
# decay, FP16; step decay at 30, 60, 90; 120 epochs (as table4_bs1024_fp16.sh, ResNet-A).
# This run is also the Table 6 row "Efficient" of ResNet-50-D.
# Paper row: Table 5 "ResNet-50-D", resnet50_v1d: top-1 77.16, top-5 93.52.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 1024 --model resnet50_v1d \
  --num-epochs 120 --lr 0.4 --lr-mode step --lr-decay-epoch 30,60,90 \
  --warmup-epochs 5 --last-gamma --no-wd --dtype float16 \
  "$@"
