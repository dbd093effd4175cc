"""FCN on ADE20K (the paper's Table 9) with a backbone trained here: GluonCV's FCN and auxiliary
head, data set, loss, polynomial schedule and pixAcc/mIoU metric, driven as GluonCV's
scripts/segmentation/train.py does."""
