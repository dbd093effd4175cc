#!/usr/bin/env bash
# Table 5, ResNet-50-C: the 7x7 stem conv becomes three 3x3 convs (32, 32, 64 channels).
# Efficient setting: batch 1024 (8 x 128), lr 0.4, warmup 5 epochs, zero gamma, no bias
# decay, FP16; step decay at 30, 60, 90; 120 epochs (as table4_bs1024_fp16.sh, ResNet-A).
# Paper row: Table 5 "ResNet-50-C", resnet50_v1c: top-1 76.87, top-5 93.48.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 1024 --model resnet50_v1c \
  --num-epochs 120 --lr 0.4 --lr-mode step --lr-decay-epoch 30,60,90 \
  --warmup-epochs 5 --last-gamma --no-wd --dtype float16 \
  "$@"
