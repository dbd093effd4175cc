#!/usr/bin/env bash
# Table 5, ResNet-50-B: stride 2 moves from the first 1x1 conv to the 3x3 conv of path A.
# Efficient setting: batch 1024 (8 x 128), lr 0.4, warmup 5 epochs, zero gamma, no bias
# decay, FP16; step decay at 30, 60, 90; 120 epochs (as table4_bs1024_fp16.sh, ResNet-A).
# Paper row: Table 5 "ResNet-50-B", resnet50_v1b: top-1 76.66, top-5 93.28.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 1024 --model resnet50_v1b \
  --num-epochs 120 --lr 0.4 --lr-mode step --lr-decay-epoch 30,60,90 \
  --warmup-epochs 5 --last-gamma --no-wd --dtype float16 \
  "$@"
