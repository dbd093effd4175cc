#!/usr/bin/env bash
# Table 6, the distillation teacher: ResNet-152-D trained with cosine decay and label smoothing
# (section 5). The paper gives no other hyper-parameters; these are GluonCV's published recipe
# for it: batch 512 (8 GPUs x 64), lr 0.2, 5 warmup epochs, zero gamma, no bias decay, FP32,
# 120 epochs. FP32 keeps its .params loadable by every student (they cast it to their dtype).
# Its last checkpoint is the distillation recipes' default TEACHER_PARAMS.
# Paper row: none (the teacher of the distillation rows reports no accuracy).
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 512 --model resnet152_v1d \
  --num-epochs 120 --lr 0.2 --lr-mode cosine \
  --warmup-epochs 5 --last-gamma --no-wd --label-smoothing \
  "$@"
