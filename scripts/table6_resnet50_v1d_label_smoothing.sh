#!/usr/bin/env bash
# Table 6, ResNet-50-D, row "+ label smoothing":
# The row above plus label smoothing (eps 0.1).
# Efficient setting: batch 1024 (8 x 128), lr 0.4, warmup 5 epochs, zero gamma, no bias
# decay, FP16.
# Paper row: Table 6 "+ label smoothing", resnet50_v1d: top-1 78.31, top-5 94.09.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 1024 --model resnet50_v1d \
  --num-epochs 120 --lr 0.4 --lr-mode cosine \
  --warmup-epochs 5 --last-gamma --no-wd --dtype float16 \
  --label-smoothing \
  "$@"
