#!/usr/bin/env bash
# Table 2, MobileNet (1.0) baseline.
# Batch 256 (8 GPUs x 32), lr 0.1, FP32, step decay /10 at epochs 30, 60, 90; 120 epochs.
# Paper row: Table 2 "baseline", mobilenet1.0: top-1 69.03.
# The paper's reference implementation: 70.6.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 256 --model mobilenet1.0 \
  --num-epochs 120 --lr 0.1 --lr-mode step --lr-decay-epoch 30,60,90 \
  "$@"
