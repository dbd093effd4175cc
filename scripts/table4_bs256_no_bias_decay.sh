#!/usr/bin/env bash
# Table 4, ResNet-50, BS=256 column, row "+ no bias decay": the rows above plus no bias decay.
# Batch 256 (8 GPUs x 32), lr 0.1 (0.1 x 256/256), step decay at 30, 60, 90; 120 epochs.
# Paper row: Table 4 "+ no bias decay, BS=256", resnet50_v1: top-1 76.16, top-5 92.97.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 256 --model resnet50_v1 \
  --num-epochs 120 --lr 0.1 --lr-mode step --lr-decay-epoch 30,60,90 \
  --warmup-epochs 5 --last-gamma --no-wd \
  "$@"
