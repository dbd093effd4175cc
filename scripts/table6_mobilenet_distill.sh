#!/usr/bin/env bash
# Table 6, MobileNet, row "+ distill w/o mixup":
# Cosine + label smoothing + distillation from ResNet-152-D (T=20, hard weight 0.5).
# Efficient setting: batch 1024 (8 x 128), lr 0.4, 5 warmup epochs, no bias decay, FP16.
# No zero gamma: MobileNet has no residual blocks (as in GluonCV's recipe).
# The teacher: scripts/table6_teacher_resnet152_v1d.sh (TEACHER_PARAMS, see scripts/README.md).
# Paper row: Table 6 "+ distill w/o mixup", mobilenet1.0: top-1 71.97, top-5 90.89.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 1024 --model mobilenet1.0 \
  --num-epochs 120 --lr 0.4 --lr-mode cosine \
  --warmup-epochs 5 --no-wd --dtype float16 \
  --label-smoothing \
  --teacher resnet152_v1d --teacher-params "$TEACHER_PARAMS" --temperature 20 --hard-weight 0.5 \
  "$@"
