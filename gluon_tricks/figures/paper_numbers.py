"""The paper's ImageNet top-1/top-5 accuracies (Tables 2-6), for `gluon-tricks report --paper`.

A run matches a row when its model, its set of tricks and (where the row says) its batch size are
the row's. Rows follow the paper: each heuristic is added to the ones above it.
"""
from collections import namedtuple

PaperRow = namedtuple("PaperRow", "table label model tricks batch top1 top5")

EFFICIENT = ("warmup", "zero-gamma", "no-bias-decay", "fp16")
_COSINE_LS = EFFICIENT + ("cosine", "label-smoothing")

# Transcribed from the paper (He et al., CVPR 2019, arXiv:1812.01187) through ../shared/PAPER.md;
# a transcription may be off in the last digit. Columns: table, row, model (GluonCV's name),
# tricks, batch (None: any), top-1 %, top-5 % (None: not given).
_TABLE = [
    ("Table 3", "baseline, BS=256, FP32", "resnet50_v1", (), 256, 75.87, 92.70),
    ("Table 3", "efficient, BS=1024, FP16", "resnet50_v1", EFFICIENT, 1024, 76.21, 92.97),
    ("Table 4", "linear scaling, BS=1024", "resnet50_v1", (), 1024, 75.17, 92.54),
    ("Table 4", "+ warmup, BS=256", "resnet50_v1", EFFICIENT[:1], 256, 76.03, 92.81),
    ("Table 4", "+ warmup, BS=1024", "resnet50_v1", EFFICIENT[:1], 1024, 75.93, 92.84),
    ("Table 4", "+ zero gamma, BS=256", "resnet50_v1", EFFICIENT[:2], 256, 76.19, 93.03),
    ("Table 4", "+ zero gamma, BS=1024", "resnet50_v1", EFFICIENT[:2], 1024, 76.37, 92.96),
    ("Table 4", "+ no bias decay, BS=256", "resnet50_v1", EFFICIENT[:3], 256, 76.16, 92.97),
    ("Table 4", "+ no bias decay, BS=1024", "resnet50_v1", EFFICIENT[:3], 1024, 76.03, 92.86),
    ("Table 4", "+ FP16, BS=256", "resnet50_v1", EFFICIENT, 256, 76.15, 93.09),
    ("Table 5", "ResNet-50-B", "resnet50_v1b", EFFICIENT, None, 76.66, 93.28),
    ("Table 5", "ResNet-50-C", "resnet50_v1c", EFFICIENT, None, 76.87, 93.48),
    ("Table 5", "ResNet-50-D", "resnet50_v1d", EFFICIENT, None, 77.16, 93.52),
    ("Table 2", "baseline", "inceptionv3", (), None, 77.32, None),
    ("Table 2", "baseline", "mobilenet1.0", (), None, 69.03, None),
    ("Table 6", "efficient", "inceptionv3", EFFICIENT, None, 77.50, 93.60),
    ("Table 6", "efficient", "mobilenet1.0", EFFICIENT, None, 71.90, 90.53),
]
_TABLE6 = [  # row label, tricks on top of EFFICIENT, then ResNet-50-D | Inception-V3 | MobileNet
    ("+ cosine decay", ("cosine",), (77.91, 93.81), (78.19, 94.06), (72.83, 91.00)),
    ("+ label smoothing", ("cosine", "label-smoothing"),
     (78.31, 94.09), (78.40, 94.13), (72.93, 91.14)),
    ("+ distill w/o mixup", ("cosine", "label-smoothing", "distillation"),
     (78.67, 94.36), (78.26, 94.01), (71.97, 90.89)),
    ("+ mixup w/o distill", ("cosine", "label-smoothing", "mixup"),
     (79.15, 94.58), (78.77, 94.39), (73.28, 91.30)),
    ("+ distill w/ mixup", ("cosine", "label-smoothing", "distillation", "mixup"),
     (79.29, 94.63), (78.34, 94.16), (72.51, 91.02)),
]
for _label, _extra, *_numbers in _TABLE6:
    for _model, (_top1, _top5) in zip(("resnet50_v1d", "inceptionv3", "mobilenet1.0"), _numbers):
        _TABLE.append(("Table 6", _label, _model, EFFICIENT + _extra, None, _top1, _top5))

ROWS = [PaperRow(t, label, model, frozenset(tricks), batch, top1, top5)
        for t, label, model, tricks, batch, top1, top5 in _TABLE]


def batch_column(batch):
    """The paper's two batch sizes: 1024 for a batch of 512 or more, else 256; None unknown."""
    if batch is None:
        return None
    return 1024 if batch >= 512 else 256


def match(model, tricks, batch):
    """The paper's row for this run, or None. A row with a batch size needs a known batch."""
    column = batch_column(batch)
    for row in ROWS:
        if row.model == model and row.tricks == frozenset(tricks) and \
                (row.batch is None or row.batch == column):
            return row
    return None
