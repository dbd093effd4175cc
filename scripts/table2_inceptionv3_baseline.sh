#!/usr/bin/env bash
# Table 2, Inception-V3 baseline (input 299x299).
# Batch 256 (8 GPUs x 32), lr 0.1, FP32, step decay /10 at epochs 30, 60, 90; 120 epochs.
# Paper row: Table 2 "baseline", inceptionv3: top-1 77.32.
# The paper's reference implementation: 78.8.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 256 --model inceptionv3 --input-size 299 \
  --num-epochs 120 --lr 0.1 --lr-mode step --lr-decay-epoch 30,60,90 \
  "$@"
