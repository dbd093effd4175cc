"""`gluon-tricks plot reference`: GluonCV's published ImageNet logs (logs/gluoncv/) as Table 5
across depths, ResNet-50-A/B/C/D curves, mixup vs not, and their lr against the trainer's schedule.
The data functions read parsed logs only (no MXNet, no matplotlib)."""
import math
import os
import re

from gluon_tricks import paper
from gluon_tricks.errors import UserError
from gluon_tricks.figures import log_checks, logparse, plots, tricks
from gluon_tricks.figures.report import warn

VARIANTS = (("v1", "A"), ("v1b", "B"), ("v1c", "C"), ("v1d", "D"))
DEPTHS = (18, 34, 50, 101, 152)
IMAGENET_TRAIN_IMAGES = 1281167
_RESNET = re.compile(r"^resnet(\d+)_(v1[bcd]?)$")
TABLES_FILE = "gluoncv_tables.md"
FIGURES = {"depths": "table5_across_depths", "curves": "fig3b_resnet50_variants",
           "mixup": "mixup_vs_not", "lr": "fig3a_lr_gluoncv_vs_trainer"}


class Run:
    """One distinct log: its model, whether it used mixup, and whether its validation is sound."""

    def __init__(self, log, warnings):
        self.log, self.warnings = log, warnings
        self.model = tricks.model_of(log.config, log.path)
        self.mixup = "mixup" in paper.tricks_of(log.config)
        self.broken = any(w.startswith("implausible validation") for w in warnings)
        self.copied = any(w.startswith(("byte-identical", "the same records")) for w in warnings)
        records = log.validated()
        self.final = 100 * records[-1].top1 if records else None
        self.epochs = max(log.epochs) + 1 if log.epochs else 0
        self.name = os.path.basename(log.path)


def load_runs(paths):
    """Every log under `paths`, with its warnings (duplicates are kept, and say so)."""
    logs = logparse.load_logs(paths, warn)
    return [Run(log, found) for log, found in zip(logs, log_checks.warnings_of(logs))]


def resnet_of(model):
    """(depth, variant such as 'v1d') of a ResNet name, or None."""
    match = _RESNET.match(model or "")
    return (int(match.group(1)), match.group(2)) if match else None


# -- Table 5 across depths

def depth_grid(runs):
    """{(depth, variant): Run} of the runs without mixup (the 120-epoch recipes)."""
    grid = {}
    for run in runs:
        key = resnet_of(run.model)
        if key and not run.mixup:
            grid[key] = run
    return grid


def depth_table(runs):
    """Markdown: final top-1 of ResNet-A/B/C/D per depth and its recipe, with Table 5 at 50."""
    grid = depth_grid(runs)
    lines = ["| depth | " + " | ".join("ResNet-%s (`_%s`)" % (letter, variant)
                                       for variant, letter in VARIANTS)
             + " | recipe of GluonCV's runs |",
             "|---:|" + "---:|" * len(VARIANTS) + "---|"]
    for depth in DEPTHS:
        cells = []
        for variant, _ in VARIANTS:
            run = grid.get((depth, variant))
            if run is None:
                cells.append("-")
            elif run.broken:
                cells.append("(broken validation)")
            else:
                cells.append("%.2f" % run.final)
        lines.append("| %d | %s | %s |" % (depth, " | ".join(cells), _recipes(grid, depth)))
        if depth == 50:
            lines.append("| 50, paper | %s | Table 5: step decay, no label smoothing, efficient "
                         "setting |" % " | ".join("%.2f" % row.top1 for row in table5_rows()))
    return "\n".join(lines)


def table5_rows():
    """The paper's Table 5 rows, A to D (ResNet-50-A is Table 3's efficient row)."""
    rows = [paper.row("Table 3", "efficient, BS=1024, FP16", "resnet50_v1")]
    return rows + [paper.row("Table 5", "ResNet-50-" + letter, "resnet50_" + variant)
                   for variant, letter in VARIANTS[1:]]


def _recipes(grid, depth):
    """'A, B: recipe; C, D: other recipe' for the runs of one depth, or '-'."""
    letters = {}
    for variant, letter in VARIANTS:
        if (depth, variant) in grid:
            letters.setdefault(_recipe(grid[(depth, variant)].log.config), []).append(letter)
    return "; ".join("%s: %s" % (", ".join(v), recipe) for recipe, v in letters.items()) or "-"


def _recipe(config):
    """A short recipe label: batch, precision, tricks beyond warmup + cosine."""
    batch = tricks.batch_of(config)
    used = [t for t in paper.tricks_of(config) if t not in ("warmup", "cosine", "fp16")]
    precision = "FP16" if "fp16" in paper.tricks_of(config) else "FP32"
    return "BS %s %s, %s epochs, cosine%s" % (batch, precision, config.get("num_epochs"),
                                              "".join(" + " + t for t in used))


def depth_series(runs, macs):
    """[(label, [(multiply-adds G, top-1 %, depth)])] per variant, sound runs only."""
    grid = depth_grid(runs)
    series = []
    for variant, letter in VARIANTS:
        points = [(macs["resnet%d_%s" % (depth, variant)] / 1e9, grid[(depth, variant)].final,
                   depth) for depth in DEPTHS
                  if (depth, variant) in grid and not grid[(depth, variant)].broken]
        if points:
            series.append(("ResNet-%s (GluonCV)" % letter, points))
    return series


# -- mixup and the longer schedule

MIXUP_MODELS = ("resnet50_v1d", "resnet101_v1d", "resnet152_v1d", "inceptionv3", "mobilenet1.0")


def mixup_pairs(runs):
    """[(model, run without mixup or None, run with mixup or None, note)]; a byte copy of a log
    is not a second run."""
    pairs = []
    for model in MIXUP_MODELS:
        mine = sorted((run for run in runs if run.model == model), key=lambda run: run.name)
        distinct, digests = [], set()
        for run in mine:
            if run.log.digest not in digests:
                distinct.append(run)
                digests.add(run.log.digest)
        plain = next((run for run in distinct if not run.mixup), None)
        mixed = next((run for run in distinct if run.mixup), None)
        notes = []
        if any(run.copied for run in mine):
            notes.append("the log published as the run without mixup is a copy of the mixup "
                         "run: no real pair")
        if plain is not None and plain.broken:
            notes.append("the run without mixup has a broken validation")
        pairs.append((model, plain, mixed, "; ".join(notes)))
    return pairs


def mixup_table(runs):
    lines = ["| model | without mixup (120 epochs) | with mixup (200 epochs) | Δ | note |",
             "|---|---:|---:|---:|---|"]
    for model, plain, mixed, note in mixup_pairs(runs):
        def final(run):
            return None if run is None or run.broken else run.final
        a, b = final(plain), final(mixed)
        lines.append("| %s | %s | %s | %s | %s |" % (
            model, "-" if a is None else "%.2f" % a, "-" if b is None else "%.2f" % b,
            "-" if a is None or b is None else "%+.2f" % (b - a), note or ""))
    return "\n".join(lines)


# -- the learning rate GluonCV used against the trainer's schedule

def iters_per_epoch(config, log_format=None):
    """Batches per epoch of a GluonCV ImageNet run: the training images // the batch."""
    batch = tricks.batch_of(config, log_format)
    if not batch:
        raise UserError("the batch size of the run is unknown: its iterations per epoch too")
    return IMAGENET_TRAIN_IMAGES // batch


def trainer_schedule(config, log_format=None):
    """The trainer's own schedule (gluon_tricks.training.schedule) for a logged run's flags."""
    from gluon_tricks.training.schedule import make_lr_schedule
    return make_lr_schedule(float(config["lr"]), config.get("lr_mode", "step"),
                            int(config["num_epochs"]), iters_per_epoch(config, log_format),
                            int(config.get("warmup_epochs", 0)),
                            float(config.get("warmup_lr", 0.0)),
                            float(config.get("lr_decay", 0.1)),
                            config.get("lr_decay_epoch", "30,60,90"),
                            int(config.get("lr_decay_period", 0)))


def lr_agreement(log):
    """[(batch index from 0, epoch position, logged lr, trainer's lr)] per lr= of the log; batch
    t is trained at schedule(t + 1), MXNet's num_update."""
    schedule = trainer_schedule(log.config, log.format)
    iters = iters_per_epoch(log.config, log.format)
    points = []
    for batch in log.batches:
        if batch.lr is None:
            continue
        index = batch.epoch * iters + batch.done - 1
        points.append((index, index / iters, batch.lr, schedule(index + 1)))
    return points


def lr_tolerance(config, log_format=None):
    """How far the trainer's lr may be from GluonCV 2018's (which counts batches from 0 and
    divides by m): two warmup increments, then a cosine's change over pi batches, plus the log's
    %f rounding."""
    iters = iters_per_epoch(config, log_format)
    lr = float(config["lr"])
    warmup = int(config.get("warmup_epochs", 0)) * iters
    after = int(config["num_epochs"]) * iters - warmup
    return (2 * lr / warmup + 1e-6 if warmup else 1e-6), math.pi * lr / after + 1e-6


# -- the command

def add_arguments(parser):
    parser.add_argument("logs", nargs="+", metavar="LOG",
                        help="GluonCV's logs or their folder (logs/gluoncv)")
    parser.add_argument("-o", "--output", default=".", metavar="FOLDER",
                        help="folder for the PNG figures and %s (default: here)" % TABLES_FILE)
    parser.add_argument("--lr-log", default="resnet50_v1d.log", metavar="NAME",
                        help="the log whose lr= values are drawn over the trainer's schedule "
                             "(default resnet50_v1d.log); every log is checked")


def run(args):
    runs = load_runs(args.logs)
    for current in runs:
        for warning in current.warnings:
            warn("%s: %s" % (current.log.path, warning))
    # what the figures need, checked before anything is drawn or written
    lr_run, curves = _lr_run(runs, args.lr_log), _resnet50_curves(runs)
    try:
        os.makedirs(args.output, exist_ok=True)
    except OSError as error:
        raise UserError("cannot create %s: %s" % (args.output, error.strerror or error)) from None
    written = []
    from gluon_tricks.models.table import model_rows
    macs = {row["model"]: row["macs"] for row in model_rows()}
    written.append(_save(plots.depth_figure(depth_series(runs, macs), _paper_points(macs)),
                         args.output, "depths"))
    written.append(_save(plots.curves_figure(curves, title="ResNet-50-A/B/C/D "
                                             "trained by GluonCV: validation top-1 (Figure 3(b) "
                                             "shape)"), args.output, "curves"))
    written.append(_save(plots.panels_figure(_mixup_panels(runs)), args.output, "mixup"))
    written.append(_save(_lr_figure(lr_run.log), args.output, "lr"))
    tables = os.path.join(args.output, TABLES_FILE)
    try:
        with open(tables, "w") as f:
            f.write(tables_markdown(runs))
    except OSError as error:
        raise UserError("cannot write %s: %s" % (tables, error.strerror or error)) from None
    written.append(tables)
    for path in written:
        print("wrote %s" % path)
    return 0


def tables_markdown(runs):
    disagreements = []
    for current in runs:
        if current.log.batches and tricks.batch_of(current.log.config, current.log.format):
            worst = _lr_worst(current.log)
            disagreements.append("| %s | %.2e | %.2e | %s |" % (
                current.name, worst[0], worst[1], "yes" if worst[2] else "**no**"))
    return "\n\n".join([
        "Final validation top-1 (%) of GluonCV's runs without mixup, by depth and variant:\n\n"
        + depth_table(runs),
        "Mixup and the longer schedule (final top-1 %):\n\n" + mixup_table(runs),
        "The lr= values of each log against the trainer's schedule for the same flags "
        "(largest difference in warmup, then after it; within tolerance?):\n\n"
        "| log | warmup | after warmup | agree |\n|---|---:|---:|---|\n"
        + "\n".join(disagreements)]) + "\n"


def _lr_worst(log):
    points = lr_agreement(log)
    warmup_end = int(log.config.get("warmup_epochs", 0)) * iters_per_epoch(log.config, log.format)
    inside = [abs(a - b) for index, _, a, b in points if index < warmup_end] or [0.0]
    outside = [abs(a - b) for index, _, a, b in points if index >= warmup_end] or [0.0]
    tolerance = lr_tolerance(log.config, log.format)
    return max(inside), max(outside), max(inside) <= tolerance[0] and \
        max(outside) <= tolerance[1]


def _paper_points(macs):
    return [("ResNet-%s-50 (paper, Table 5)" % letter, macs["resnet50_" + variant] / 1e9, row.top1)
            for (variant, letter), row in zip(VARIANTS, table5_rows())]


def _resnet50_curves(runs):
    grid = depth_grid(runs)
    series = []
    for variant, letter in VARIANTS:
        run = grid.get((50, variant))
        if run is not None:
            records = run.log.validated()
            series.append(("ResNet-50-%s (%s): final %.2f" % (letter, run.name, run.final),
                           [r.epoch + 1 for r in records], [100 * r.top1 for r in records]))
    if not series:
        raise UserError("no ResNet-50 log without mixup among the logs")
    return series


def _mixup_panels(runs):
    panels = []
    for model, plain, mixed, note in mixup_pairs(runs):
        series = []
        for run, what in ((plain, "without mixup"), (mixed, "with mixup")):
            if run is None:
                continue
            records = run.log.validated()
            label = "%s, %d epochs: %s" % (what, run.epochs, "broken validation, not drawn"
                                           if run.broken else "final %.2f" % run.final)
            series.append((label, [] if run.broken else [r.epoch + 1 for r in records],
                           [] if run.broken else [100 * r.top1 for r in records]))
        if series:
            panels.append((model, note, series))
    return panels


def _lr_run(runs, name):
    """The run named by --lr-log: one with lr= values and a known batch."""
    for run in runs:
        if run.name == name and any(b.lr is not None for b in run.log.batches):
            iters_per_epoch(run.log.config, run.log.format)  # a known batch, or a UserError
            return run
    raise UserError("--lr-log %s: no such log with lr= values among the logs" % name)


def _lr_figure(log):
    from gluon_tricks.training.schedule import lr_per_epoch
    points = lr_agreement(log)
    schedule = trainer_schedule(log.config, log.format)
    line = lr_per_epoch(schedule, int(log.config["num_epochs"]),
                        iters_per_epoch(log.config, log.format))
    return plots.lr_agreement_figure(
        ([p[1] for p in points], [p[2] for p in points]), tuple(zip(*line)),
        [p[2] - p[3] for p in points],
        "%s: lr= of GluonCV's log over the trainer's schedule (lr %g, %s, %d warmup epochs, "
        "batch %d)" % (os.path.basename(log.path), float(log.config["lr"]),
                       log.config.get("lr_mode"), int(log.config.get("warmup_epochs", 0)),
                       tricks.batch_of(log.config, log.format)))


def _save(figure, folder, key):
    return plots.save(figure, os.path.join(folder, FIGURES[key] + ".png"), "png")
