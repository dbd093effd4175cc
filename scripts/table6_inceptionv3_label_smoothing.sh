#!/usr/bin/env bash
# Table 6, Inception-V3, row "+ label smoothing":
# The row above plus label smoothing (eps 0.1).
# Efficient setting: batch 1024 (8 x 128), lr 0.4, 5 warmup epochs, no bias decay, FP16.
# No zero gamma: Inception-V3 has no residual blocks (as in GluonCV's recipe).
# Paper row: Table 6 "+ label smoothing", inceptionv3: top-1 78.40, top-5 94.13.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 1024 --model inceptionv3 --input-size 299 \
  --num-epochs 120 --lr 0.4 --lr-mode cosine \
  --warmup-epochs 5 --no-wd --dtype float16 \
  --label-smoothing \
  "$@"
