"""Faster R-CNN on Pascal VOC (the paper's Table 8) with a backbone trained here: GluonCV's
detector, targets, transforms and VOC 07 metric, driven as GluonCV's train_faster_rcnn.py does."""
