#!/usr/bin/env bash
# Table 2, ResNet-50 baseline; the same run is Table 3 "Baseline" (BS=256, FP32) and the
# Table 4 row "Linear scaling" at BS=256 (lr 0.1 = 0.1 x 256/256).
# Batch 256 (8 GPUs x 32), lr 0.1, FP32, step decay /10 at epochs 30, 60, 90; 120 epochs.
# Paper row: Table 3 "baseline, BS=256, FP32", resnet50_v1: top-1 75.87, top-5 92.70.
# The paper's reference implementation: 75.3.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 256 --model resnet50_v1 \
  --num-epochs 120 --lr 0.1 --lr-mode step --lr-decay-epoch 30,60,90 \
  "$@"
