#!/usr/bin/env bash
# Table 4, ResNet-50, BS=1024 column, row "+ FP16": the rows above plus FP16.
# Batch 1024 (8 GPUs x 128), lr 0.4 (0.1 x 1024/256), step decay at 30, 60, 90; 120 epochs.
# This run is also Table 3 "Efficient" and Table 5 ResNet-50 (ResNet-A).
# Paper row: Table 3 "efficient, BS=1024, FP16", resnet50_v1: top-1 76.21, top-5 92.97.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 1024 --model resnet50_v1 \
  --num-epochs 120 --lr 0.4 --lr-mode step --lr-decay-epoch 30,60,90 \
  --warmup-epochs 5 --last-gamma --no-wd --dtype float16 \
  "$@"
