#!/usr/bin/env bash
# Table 4, ResNet-50, BS=1024 column, row "+ warmup": the rows above plus warmup.
# Batch 1024 (8 GPUs x 128), lr 0.4 (0.1 x 1024/256), step decay at 30, 60, 90; 120 epochs.
# Paper row: Table 4 "+ warmup, BS=1024", resnet50_v1: top-1 75.93, top-5 92.84.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 1024 --model resnet50_v1 \
  --num-epochs 120 --lr 0.4 --lr-mode step --lr-decay-epoch 30,60,90 \
  --warmup-epochs 5 \
  "$@"
