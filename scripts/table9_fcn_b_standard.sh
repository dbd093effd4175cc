#!/usr/bin/env bash
# Table 9, FCN on ADE20K, row "B-standard": backbone resnet50_v1b.
# Backbone recipe: none of this kit (BACKBONE_PARAMS).
# GluonCV's ADE20K command (logs/gluoncv/segmentation/fcn_resnet50_ade.sh): --aux --lr 0.01
# --epochs 120, batch 16 (4 GPUs with synchronised BatchNorm: one device with 16 images
# normalises over the same 16), crop 480, base size 520, poly decay (power 0.9).
# Table 9 row: "B-standard", resnet50_v1b: pixAcc 78.08, mIoU 37.05.
set -euo pipefail
source "$(dirname "$0")/lib/segment_recipe.sh"
segment_recipe - resnet50_v1b 0 \
  --aux --lr 0.01 --epochs 120 --batch-size 16 --crop-size 480 --base-size 520 \
  "$@"
