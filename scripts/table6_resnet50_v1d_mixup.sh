#!/usr/bin/env bash
# Table 6, ResNet-50-D, row "+ mixup w/o distill":
# Cosine + label smoothing + mixup (alpha 0.2) for 200 epochs instead of 120.
# Efficient setting: batch 1024 (8 x 128), lr 0.4, warmup 5 epochs, zero gamma, no bias
# decay, FP16.
# Paper row: Table 6 "+ mixup w/o distill", resnet50_v1d: top-1 79.15, top-5 94.58.
set -euo pipefail
source "$(dirname "$0")/lib/recipe.sh"
recipe 1024 --model resnet50_v1d \
  --num-epochs 200 --lr 0.4 --lr-mode cosine \
  --warmup-epochs 5 --last-gamma --no-wd --dtype float16 \
  --label-smoothing --mixup --mixup-alpha 0.2 \
  "$@"
