"""The paper's vocabulary, in one neutral place (imports nothing of the package): the trick names,
which trick applies to which network, the tricks a configuration names, the paper's rows with their
numbers (Tables 2-6) and the row each recipe of scripts/ reproduces.

Training (what a run logs), figures (`report --paper`) and the tests of scripts/ all read it, so a
trick added here is known everywhere; no one keeps a second copy of these tables.
"""
from collections import namedtuple

# The paper's tricks in the order of Tables 4-6 (each row adds one to the rows above it).
TRICK_ORDER = ("warmup", "zero-gamma", "no-bias-decay", "fp16", "cosine", "label-smoothing",
               "distillation", "mixup")
# Table 3's "efficient" setting: the tricks of Table 4, on top of batch 1024 and lr 0.4.
EFFICIENT = ("warmup", "zero-gamma", "no-bias-decay", "fp16")
# Zero gamma zero-initialises the last BN of each residual block: only residual networks have it.
RESIDUAL_ONLY = frozenset({"zero-gamma"})
_RESIDUAL_PREFIXES = ("resnet", "resnext", "se_resnet", "se_resnext")


def is_residual(model):
    """Whether GluonCV's network `model` (e.g. resnet50_v1d, inceptionv3) has residual blocks."""
    return bool(model) and str(model).lower().startswith(_RESIDUAL_PREFIXES)


def applies(trick, model):
    """Whether `trick` can be used on `model` (zero gamma only on residual networks)."""
    return trick not in RESIDUAL_ONLY or is_residual(model)


def applicable(tricks, model):
    """The tricks of `tricks` that `model` can use, in the paper's order."""
    return tuple(t for t in TRICK_ORDER if t in set(tricks) and applies(t, model))


def flag_is_set(value):
    """Whether a flag is on: flags are logged as booleans, numbers or their text ('True', '1')."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "none", "no")
    return bool(value)


def flag_number(value, default=0.0):
    """A flag's value as a float, or `default` when it is missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def tricks_of(config):
    """The paper's tricks named by a configuration dict (GluonCV's train_imagenet.py flags, which
    `gluon-tricks train` shares), in the order of Tables 4-6. A plain dict, because logs of other
    tools lack some flags or log them as text."""
    tricks = []
    if flag_number(config.get("warmup_epochs")) > 0:
        tricks.append("warmup")
    if flag_is_set(config.get("last_gamma", False)):
        tricks.append("zero-gamma")
    if flag_is_set(config.get("no_wd", False)):
        tricks.append("no-bias-decay")
    if str(config.get("dtype", "float32")) == "float16" or flag_is_set(config.get("amp", False)):
        tricks.append("fp16")
    if str(config.get("lr_mode", "step")) == "cosine":
        tricks.append("cosine")
    if flag_is_set(config.get("label_smoothing", False)):
        tricks.append("label-smoothing")
    # GluonCV distils only when a teacher is named and the hard-label weight is below 1.
    if flag_is_set(config.get("teacher")) and flag_number(config.get("hard_weight"), 0.5) < 1.0:
        tricks.append("distillation")
    if flag_is_set(config.get("mixup", False)):
        tricks.append("mixup")
    return tricks


# -- the paper's rows

class PaperRow(namedtuple("PaperRow", "table label model tricks batch top1 top5")):
    """One row of the paper for one network. `tricks` are the ones the row's network can use (the
    paper's "efficient" zero gamma is left out for networks without residual blocks, as GluonCV's
    recipes and `gluon-tricks train` leave it out); `batch` is 256, 1024 or None (any)."""

    def describe(self):
        """The row as the recipes' headers and scripts/README.md name it."""
        top = "top-1 %.2f" % self.top1
        if self.top5 is not None:
            top += ", top-5 %.2f" % self.top5
        return '%s "%s", %s: %s' % (self.table, self.label, self.model, top)


# Transcribed from the paper (He et al., CVPR 2019, arXiv:1812.01187) through ../shared/PAPER.md;
# a transcription may be off in the last digit. Columns: table, row, model (GluonCV's name),
# tricks as the paper states them, batch (None: any), top-1 %, top-5 % (None: not given).
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
TABLE6_MODELS = ("resnet50_v1d", "inceptionv3", "mobilenet1.0")
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
    for _model, (_top1, _top5) in zip(TABLE6_MODELS, _numbers):
        _TABLE.append(("Table 6", _label, _model, EFFICIENT + _extra, None, _top1, _top5))

ROWS = tuple(PaperRow(t, label, model, frozenset(applicable(tricks, model)), batch, top1, top5)
             for t, label, model, tricks, batch, top1, top5 in _TABLE)


def row(table, label, model):
    """The paper's row by its table, label and model (KeyError if there is none)."""
    for candidate in ROWS:
        if (candidate.table, candidate.label, candidate.model) == (table, label, model):
            return candidate
    raise KeyError((table, label, model))


def batch_column(batch):
    """The paper's two batch sizes: 1024 for a batch of 512 or more, else 256; None unknown."""
    if batch is None:
        return None
    return 1024 if batch >= 512 else 256


def match(model, tricks, batch):
    """The paper's row for this run, or None. Tricks the model cannot use do not count; a row
    with a batch size needs a known batch (None is never guessed into a column)."""
    used = frozenset(applicable(tricks, model))
    column = batch_column(batch)
    for candidate in ROWS:
        if candidate.model == model and candidate.tricks == used and \
                (candidate.batch is None or candidate.batch == column):
            return candidate
    return None


# -- the recipes of scripts/: which row each reproduces, with which batch, epochs and decay

class Recipe(namedtuple("Recipe", "script row model batch epochs lr_mode tricks")):
    """scripts/<script>.sh: trains `model` with a total batch `batch` for `epochs` epochs and
    `lr_mode` decay, using `tricks`; `row` is the paper's row it reproduces (None: the teacher)."""


def _recipe(script, table, label, model, batch, epochs=120, lr_mode="step"):
    paper_row = row(table, label, model)
    return Recipe(script, paper_row, model, batch, epochs, lr_mode, applicable(paper_row.tricks,
                                                                               model))


def _recipes():
    recipes = [
        _recipe("table2_resnet50_baseline", "Table 3", "baseline, BS=256, FP32", "resnet50_v1",
                256),
        _recipe("table2_inceptionv3_baseline", "Table 2", "baseline", "inceptionv3", 256),
        _recipe("table2_mobilenet_baseline", "Table 2", "baseline", "mobilenet1.0", 256),
        _recipe("table4_bs1024_linear_scaling", "Table 4", "linear scaling, BS=1024",
                "resnet50_v1", 1024),
        _recipe("table4_bs1024_fp16", "Table 3", "efficient, BS=1024, FP16", "resnet50_v1",
                1024),
        _recipe("table4_bs256_fp16", "Table 4", "+ FP16, BS=256", "resnet50_v1", 256),
    ]
    for step, name in (("warmup", "warmup"), ("zero gamma", "zero_gamma"),
                       ("no bias decay", "no_bias_decay")):
        for batch in (256, 1024):
            recipes.append(_recipe("table4_bs%d_%s" % (batch, name), "Table 4",
                                   "+ %s, BS=%d" % (step, batch), "resnet50_v1", batch))
    for variant in "bcd":
        recipes.append(_recipe("table5_resnet50_v1" + variant, "Table 5",
                               "ResNet-50-" + variant.upper(), "resnet50_v1" + variant, 1024))
    for short, model in (("inceptionv3", "inceptionv3"), ("mobilenet", "mobilenet1.0")):
        recipes.append(_recipe("table6_%s_efficient" % short, "Table 6", "efficient", model,
                               1024))
    for short, model in zip(("resnet50_v1d", "inceptionv3", "mobilenet"), TABLE6_MODELS):
        for name, label, epochs in (("cosine", "+ cosine decay", 120),
                                    ("label_smoothing", "+ label smoothing", 120),
                                    ("distill", "+ distill w/o mixup", 120),
                                    ("mixup", "+ mixup w/o distill", 200),
                                    ("distill_mixup", "+ distill w/ mixup", 200)):
            recipes.append(_recipe("table6_%s_%s" % (short, name), "Table 6", label, model,
                                   1024, epochs, "cosine"))
    # The distillation teacher: no row of its own; GluonCV's published ResNet-152-D recipe
    # (batch 512, lr 0.2, FP32) with the cosine decay and label smoothing the paper names.
    recipes.append(Recipe("table6_teacher_resnet152_v1d", None, "resnet152_v1d", 512, 120,
                          "cosine", ("warmup", "zero-gamma", "no-bias-decay", "cosine",
                                     "label-smoothing")))
    return {recipe.script: recipe for recipe in recipes}


RECIPES = _recipes()
TEACHER_RECIPE = "table6_teacher_resnet152_v1d"


# -- transfer learning (Tables 8 and 9): the same ResNet-50 backbones as detector and segmenter

class TransferRow(namedtuple("TransferRow", "table label backbone top1 metrics recipe")):
    """One row of Table 8 (Faster R-CNN on VOC 2007 test) or Table 9 (FCN on ADE20K): the
    backbone (GluonCV's name) with its ImageNet top-1 %, the task's metrics as (name, %) pairs,
    and the scripts/ recipe that trains that backbone (None: no recipe trains it)."""

    def metric(self, name):
        """The row's value of metric `name` (mAP, pixAcc, mIoU); KeyError if it has none."""
        return dict(self.metrics)[name]


# Transcribed from memory of the paper (arXiv:1812.01187v2, Tables 8 and 9). NOT verified against
# its text: the stored copies of the paper reachable here (deeplearn.org/arxiv/56386,
# docslib.org/doc/13369922, deepai.org) showed no excerpt of Tables 8-9 to searches. The top-1
# column repeats Tables 5-6, except "+ mixup w/o distill": 79.16 here, 79.15 in Table 6 as
# transcribed above (kept as each table gives it, to be checked against the paper).
# Columns: row label, backbone, recipe, top-1 %, then Table 8 mAP, Table 9 pixAcc and mIoU.
_TRANSFER = [
    ("B-standard", "resnet50_v1b", None, 76.14, 77.54, 78.08, 37.05),
    ("D-efficient", "resnet50_v1d", "table5_resnet50_v1d", 77.16, 78.30, 78.88, 38.88),
    ("+ cosine", "resnet50_v1d", "table6_resnet50_v1d_cosine", 77.91, 79.23, 79.25, 39.33),
    ("+ smoothing", "resnet50_v1d", "table6_resnet50_v1d_label_smoothing", 78.31, 80.71, 78.64,
     38.75),
    ("+ distill w/o mixup", "resnet50_v1d", "table6_resnet50_v1d_distill", 78.67, 80.96, 78.97,
     38.90),
    ("+ mixup w/o distill", "resnet50_v1d", "table6_resnet50_v1d_mixup", 79.16, 81.10, 78.47,
     37.99),
    ("+ distill w/ mixup", "resnet50_v1d", "table6_resnet50_v1d_distill_mixup", 79.29, 81.33,
     78.72, 38.40),
]
# Table 9 names its last row "+ mixup w/ distill"; the recipe is the same.
_TABLE9_LABELS = {"+ distill w/ mixup": "+ mixup w/ distill"}

TABLE8_ROWS = tuple(TransferRow("Table 8", label, backbone, top1, (("mAP", m_ap),), recipe)
                    for label, backbone, recipe, top1, m_ap, _, _ in _TRANSFER)
TABLE9_ROWS = tuple(TransferRow("Table 9", _TABLE9_LABELS.get(label, label), backbone, top1,
                                (("pixAcc", pix_acc), ("mIoU", miou)), recipe)
                    for label, backbone, recipe, top1, _, pix_acc, miou in _TRANSFER)
