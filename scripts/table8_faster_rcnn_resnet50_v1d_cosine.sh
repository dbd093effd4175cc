#!/usr/bin/env bash
# Table 8, Faster R-CNN on Pascal VOC, row "+ cosine":
# ResNet-50-D, efficient setting with cosine decay.
# Detector: GluonCV's faster_rcnn_resnet50_v1b_voc recipe (4 images a batch, lr 0.001, steps at
# epochs 14 and 20, 20 epochs), VOC 2007+2012 trainval, VOC 2007 test
# (scripts/lib/detect_recipe.sh).
# Backbone recipe: scripts/table6_resnet50_v1d_cosine.sh (resnet50_v1d, 120 epochs).
# Table 8 row: "+ cosine", resnet50_v1d: top-1 77.91, mAP 79.23.
set -euo pipefail
source "$(dirname "$0")/lib/detect_recipe.sh"
detect_recipe resnet50_v1d table6_resnet50_v1d_cosine 120 "$@"
