#!/usr/bin/env bash
# Table 8, Faster R-CNN on Pascal VOC, row "B-standard":
# The backbone of GluonCV's standard ResNet-50-B (resnet50_v1b, top-1 76.14): no
# recipe of this kit trains it; give its weights as BACKBONE_PARAMS.
# Detector: GluonCV's faster_rcnn_resnet50_v1b_voc recipe (4 images a batch, lr 0.001, steps at
# epochs 14 and 20, 20 epochs), VOC 2007+2012 trainval, VOC 2007 test
# (scripts/lib/detect_recipe.sh).
# Backbone recipe: none of this kit (BACKBONE_PARAMS).
# Table 8 row: "B-standard", resnet50_v1b: top-1 76.14, mAP 77.54.
set -euo pipefail
source "$(dirname "$0")/lib/detect_recipe.sh"
detect_recipe resnet50_v1b - 0 "$@"
