#!/usr/bin/env bash
# Table 9, FCN on ADE20K, row "D-efficient": backbone resnet50_v1d.
# Backbone recipe: table5_resnet50_v1d (resnet50_v1d, 120 epochs).
# GluonCV's ADE20K command (logs/gluoncv/segmentation/fcn_resnet50_ade.sh): --aux --lr 0.01
# --epochs 120, batch 16 (4 GPUs with synchronised BatchNorm: one device with 16 images
# normalises over the same 16), crop 480, base size 520, poly decay (power 0.9).
# Table 9 row: "D-efficient", resnet50_v1d: pixAcc 78.88, mIoU 38.88.
set -euo pipefail
source "$(dirname "$0")/lib/segment_recipe.sh"
segment_recipe table5_resnet50_v1d resnet50_v1d 120 \
  --aux --lr 0.01 --epochs 120 --batch-size 16 --crop-size 480 --base-size 520 \
  "$@"
