#!/usr/bin/env bash
# Table 6, Inception-V3, row "+ distill w/ mixup":
# Cosine + label smoothing + mixup (alpha 0.2, 200 epochs) + distillation (T=20).
# Efficient setting: batch 1024 (8 x 128), lr 0.4, 5 warmup epochs, no bias decay, FP16.
# No zero gamma: Inception-V3 has no residual blocks (as in GluonCV's recipe).
# The teacher: scripts/table6_teacher_resnet152_v1d.sh (TEACHER_PARAMS, see scripts/README.md).
# Paper row: Table 6 "+ distill w/ mixup", inceptionv3: top-1 78.34, top-5 94.16.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 1024 --model inceptionv3 --input-size 299 \
  --num-epochs 200 --lr 0.4 --lr-mode cosine \
  --warmup-epochs 5 --no-wd --dtype float16 \
  --label-smoothing --mixup --mixup-alpha 0.2 \
  --teacher resnet152_v1d --teacher-params "$TEACHER_PARAMS" --temperature 20 --hard-weight 0.5 \
  "$@"
