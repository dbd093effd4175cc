#!/usr/bin/env bash
# Table 8, Faster R-CNN on Pascal VOC, row "D-efficient":
# ResNet-50-D of the efficient setting (Table 5's row, Table 6's "Efficient").
# Detector: GluonCV's faster_rcnn_resnet50_v1b_voc recipe (4 images a batch, lr 0.001, steps at
# epochs 14 and 20, 20 epochs), VOC 2007+2012 trainval, VOC 2007 test
# (scripts/lib/detect_recipe.sh).
# Backbone recipe: scripts/table5_resnet50_v1d.sh (resnet50_v1d, 120 epochs).
# Table 8 row: "D-efficient", resnet50_v1d: top-1 77.16, mAP 78.30.
set -euo pipefail
source "$(dirname "$0")/lib/detect_recipe.sh"
detect_recipe resnet50_v1d table5_resnet50_v1d 120 "$@"
