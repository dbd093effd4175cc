#!/usr/bin/env bash
# Table 8, Faster R-CNN on Pascal VOC, row "+ distill w/ mixup":
# ResNet-50-D, cosine + label smoothing + mixup + distillation, 200 epochs.
# Detector: GluonCV's faster_rcnn_resnet50_v1b_voc recipe (4 images a batch, lr 0.001, steps at
# epochs 14 and 20, 20 epochs), VOC 2007+2012 trainval, VOC 2007 test
# (scripts/lib/detect_recipe.sh).
# Backbone recipe: scripts/table6_resnet50_v1d_distill_mixup.sh (resnet50_v1d, 200 epochs).
# Table 8 row: "+ distill w/ mixup", resnet50_v1d: top-1 79.29, mAP 81.33.
set -euo pipefail
source "$(dirname "$0")/lib/detect_recipe.sh"
detect_recipe resnet50_v1d table6_resnet50_v1d_distill_mixup 200 "$@"
