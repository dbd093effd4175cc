#!/usr/bin/env bash
# Table 6, ResNet-50-D, row "+ distill w/o mixup":
# Cosine + label smoothing + distillation from ResNet-152-D (T=20, hard weight 0.5).
# Efficient setting: batch 1024 (8 x 128), lr 0.4, warmup 5 epochs, zero gamma, no bias
# decay, FP16.
# The teacher: scripts/table6_teacher_resnet152_v1d.sh (TEACHER_PARAMS, see scripts/README.md).
# Paper row: Table 6 "+ distill w/o mixup", resnet50_v1d: top-1 78.67, top-5 94.36.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 1024 --model resnet50_v1d \
  --num-epochs 120 --lr 0.4 --lr-mode cosine \
  --warmup-epochs 5 --last-gamma --no-wd --dtype float16 \
  --label-smoothing \
  --teacher resnet152_v1d --teacher-params "$TEACHER_PARAMS" --temperature 20 --hard-weight 0.5 \
  "$@"
