"""`gluon-tricks plot lr|curves|gap-theory|gap`: the paper's Figures 3(a), 3(b), 4(a) and 4(b)
drawn from the trainer's own schedule, training logs and saved logits."""
import importlib
import os
import sys

import numpy as np

from gluon_tricks.data.flags import add_data_arguments, data_sources, input_size
from gluon_tricks.errors import UserError
from gluon_tricks.evaluation import logits_file
from gluon_tricks.figures import gap as gap_math
from gluon_tricks.figures import log_checks, logparse, plots, reference, tricks

_OTHER_IMAGE_TYPES = ("jpg", "jpeg", "gif", "bmp", "tif", "tiff", "eps", "ps", "webp")
IMAGENET_TRAIN_IMAGES = 1281167


def warn(message):
    print("gluon-tricks: warning: %s" % message, file=sys.stderr)


def _output_arguments(parser, default_stem):
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="where to write the figure, or a folder for it (default %s.png, "
                             "or .svg/.pdf with --format)" % default_stem)
    parser.add_argument("--format", choices=plots.FORMATS,
                        help="png (default), svg or pdf; taken from -o's extension when omitted")
    parser.set_defaults(default_stem=default_stem)


def output_path(output, fmt, default_stem):
    """(path, format) from `-o` and `--format`: the extension decides when --format is absent;
    an extension that names another image type, or contradicts --format, is an error; a folder
    gets the figure's default name inside it."""
    if not output or output.endswith(os.sep) or os.path.isdir(output):
        fmt = fmt or "png"
        return os.path.join(output or "", "%s.%s" % (default_stem, fmt)), fmt
    extension = os.path.splitext(output)[1].lower().lstrip(".")
    if extension in plots.FORMATS:
        if fmt and fmt != extension:
            raise UserError("-o %s ends in .%s but --format is %s" % (output, extension, fmt))
        return output, extension
    if extension in _OTHER_IMAGE_TYPES:
        raise UserError("-o %s: cannot write .%s; use .png, .svg or .pdf" % (output, extension))
    fmt = fmt or "png"
    return "%s.%s" % (output, fmt), fmt


def add_arguments(parser):
    """The four figures, each a sub-subcommand."""
    sub = parser.add_subparsers(dest="figure", metavar="FIGURE")
    sub.required = True

    lr = sub.add_parser("lr", help="Figure 3(a): learning rate against epoch, step vs cosine")
    lr.add_argument("--log", nargs="+", metavar="FILE",
                    help="plot the lr= values recorded in these training logs instead")
    lr.add_argument("--lr", type=float, default=0.4, help="peak learning rate (default 0.4: "
                    "0.1 x 1024 / 256, the paper's batch of 1024)")
    lr.add_argument("--num-epochs", type=int, default=120, help="epochs (default 120)")
    lr.add_argument("--warmup-epochs", type=int, default=5, help="warmup epochs (default 5)")
    lr.add_argument("--iters-per-epoch", type=int, default=IMAGENET_TRAIN_IMAGES // 1024,
                    help="batches per epoch (default %d: ImageNet at batch 1024)"
                         % (IMAGENET_TRAIN_IMAGES // 1024))
    lr.add_argument("--lr-decay", type=float, default=0.1, help="step decay factor (0.1)")
    lr.add_argument("--lr-decay-epoch", default="30,60,90",
                    help="epochs of step decay (default 30,60,90)")
    _output_arguments(lr, "fig3a_learning_rate")

    curves = sub.add_parser("curves", help="Figure 3(b): validation top-1 accuracy per epoch")
    curves.add_argument("logs", nargs="*", metavar="LOG", help="training logs or folders of them")
    curves.add_argument("--label", action="append", help="legend label, one per log, in order "
                        "(default: model and tricks from the log's Namespace)")
    _output_arguments(curves, "fig3b_validation_accuracy")

    theory = sub.add_parser("gap-theory", help="Figure 4(a): optimal logit gap against eps")
    theory.add_argument("--classes", type=int, nargs="+", default=[1000], metavar="K",
                        help="number of classes (default 1000; several draw several curves)")
    theory.add_argument("--eps", type=float, default=0.1, help="eps to mark (default 0.1)")
    _output_arguments(theory, "fig4a_gap_theory")

    gap = sub.add_parser("gap", help="Figure 4(b): distribution of the logit gap per model")
    gap.add_argument("logits", nargs="*", metavar="LOGITS",
                     help=".npz files written by `gluon-tricks eval --save-logits`")
    direct = gap.add_argument_group("or compute the logits here (a model + params + data)")
    direct.add_argument("--model", action="append", default=[], help="network name (repeatable)")
    direct.add_argument("--params", action="append", default=[],
                        help=".params file, one per --model")
    add_data_arguments(gap, train=False)
    gap.add_argument("--eps", type=float, default=None,
                     help="label smoothing eps whose optimal gap is marked (default: the eps the "
                          "models were trained with, saved with their logits; else 0.1)")
    gap.add_argument("--label", action="append", help="legend label, one per model, in order")
    _output_arguments(gap, "fig4b_gap")

    gluoncv = sub.add_parser("reference", help="GluonCV's published ImageNet logs: Table 5 "
                             "across depths, ResNet-50-A/B/C/D curves, mixup vs not, their lr "
                             "against the trainer's schedule (PNGs and tables in a folder)")
    reference.add_arguments(gluoncv)


def run(args):
    if args.figure == "reference":
        return reference.run(args)
    path, fmt = output_path(args.output, args.format, args.default_stem)
    figure = {"lr": _learning_rate, "curves": _curves, "gap-theory": _gap_theory,
              "gap": _gap}[args.figure](args)
    try:
        plots.save(figure, path, fmt)
    except OSError as error:
        raise UserError("cannot write %s: %s" % (path, error.strerror or error)) from None
    print("wrote %s" % path)
    return 0


def _labels(given, defaults, what):
    """Legend labels: the user's (one per item) or the defaults, made unique."""
    if given:
        if len(given) != len(defaults):
            raise UserError("%d --label for %d %s" % (len(given), len(defaults), what))
        return list(given)
    labels = []
    for label in defaults:
        labels.append(label if label not in labels else "%s (%d)" % (label, len(labels) + 1))
    return labels


def flagged_labels(logs, labels):
    """Each log's warnings (log_checks) on stderr, and its legend label marked: a figure shows a
    defective log, it does not hide it."""
    marked = []
    for log, label, warnings in zip(logs, labels, log_checks.warnings_of(logs)):
        # a log without the figure's data is reported by the figure itself
        warnings = [w for w in warnings if w != "no validation lines"]
        for message in warnings:
            warn("%s: %s" % (log.path, message))
        marked.append("%s [%d warning%s]" % (label, len(warnings), "s" * (len(warnings) > 1))
                      if warnings else label)
    return marked


def _report_missing(missing, anything_left, summary):
    """Logs without the figure's data: warnings when others have it; else one error line."""
    if anything_left:
        for message in missing:
            warn(message)
    elif len(missing) == 1:
        raise UserError(missing[0])
    else:
        for message in missing:
            warn(message)
        raise UserError(summary)


def _learning_rate(args):
    """Figure 3(a) from the trainer's scheduler, or from the lr= values of logs."""
    if args.log:
        return _learning_rate_from_logs(args.log)
    if args.num_epochs < 1 or args.iters_per_epoch < 1 or args.lr <= 0:
        raise UserError("--num-epochs, --iters-per-epoch and --lr must be positive")
    from gluon_tricks.training.schedule import lr_per_epoch, make_lr_schedule
    series = []
    decay_at = ", ".join(e.strip() for e in args.lr_decay_epoch.split(",") if e.strip())
    for mode, name in (("step", "step decay (×%g at epochs %s)" % (args.lr_decay, decay_at)),
                       ("cosine", "cosine decay")):
        try:
            schedule = make_lr_schedule(args.lr, mode, args.num_epochs, args.iters_per_epoch,
                                        warmup_epochs=args.warmup_epochs, lr_decay=args.lr_decay,
                                        lr_decay_epoch=args.lr_decay_epoch)
        except (ValueError, TypeError, AssertionError) as error:
            raise UserError("cannot build the %s schedule: %s" % (mode, error)) from None
        epochs, lrs = zip(*lr_per_epoch(schedule, args.num_epochs, args.iters_per_epoch))
        series.append((name, epochs, lrs))
    return plots.lr_figure(series, "Figure 3(a): learning rate, %d warmup epochs, peak %g"
                           % (args.warmup_epochs, args.lr))


def _learning_rate_from_logs(paths):
    """The lr= of every batch line, at epoch + fraction of the epoch done; the epoch's length
    is the logged `iters_per_epoch` (gluon-tricks train), else the largest batch position."""
    series, labels, missing = [], [], []
    logs = logparse.load_logs(paths, warn)
    marks = dict(zip([log.path for log in logs],
                     flagged_labels(logs, [tricks.describe(log.config, log.path) for log in logs])))
    for log in logs:
        points = [b for b in log.batches if b.lr is not None]
        if not points:
            missing.append("%s: no lr= values" % log.path)
            continue
        per_epoch = log.config.get("iters_per_epoch")
        if not isinstance(per_epoch, int) or per_epoch <= 0:
            per_epoch = max(b.done for b in log.batches) or 1
        series.append(([b.epoch + b.done / per_epoch for b in points], [b.lr for b in points]))
        labels.append(marks[log.path])
    _report_missing(missing, bool(series), "no lr= values in any of the logs")
    labels = _labels(None, labels, "logs")
    return plots.lr_figure([(label, x, y) for label, (x, y) in zip(labels, series)],
                           "Figure 3(a): learning rate recorded in training logs")


def _curves(args):
    """Figure 3(b): validation top-1 per epoch, one line per log."""
    logs = logparse.load_logs(args.logs, warn)
    labels = _labels(args.label, [tricks.describe(log.config, log.path) for log in logs], "logs")
    labels = flagged_labels(logs, labels)
    series, missing = [], []
    for label, log in zip(labels, logs):
        records = log.validated()
        if not records:
            missing.append("%s: no validation lines" % log.path)
            continue
        series.append((label, [r.epoch + 1 for r in records], [100 * r.top1 for r in records]))
    _report_missing(missing, bool(series), "no validation accuracy in any of the logs")
    return plots.curves_figure(series)


def _gap_theory(args):
    """Figure 4(a): log((K-1)(1-eps)/eps) against eps, for each K."""
    if any(k < 2 for k in args.classes):
        raise UserError("--classes must be at least 2")
    if not 0 < args.eps < 1:
        raise UserError("--eps must be in (0, 1)")
    eps = np.linspace(0.002, 0.998, 499)
    curves = [(k, eps, gap_math.theoretical_gap(k, eps)) for k in args.classes]
    classes = 1000 if 1000 in args.classes else args.classes[0]
    value = float(gap_math.theoretical_gap(classes, args.eps))
    print("optimal gap for K = %d, eps = %g: %.2f" % (classes, args.eps, value))
    return plots.gap_theory_figure(curves, (classes, args.eps, value))


def _gap(args):
    """Figure 4(b): histogram of the empirical gap for each logits file or model."""
    if args.eps is not None and not 0 < args.eps < 1:
        raise UserError("--eps must be in (0, 1)")
    items = [logits_file.load_logits(path) for path in args.logits] + _computed_logits(args)
    if not items:
        raise UserError("no logits given: LOGITS files (from `gluon-tricks eval --save-logits`)"
                        " or --model NAME --params FILE with validation data")
    labels = _labels(args.label, [item.name for item in items], "models")
    drawn, classes = [], []
    for label, item in zip(labels, items):
        gaps = gap_math.empirical_gap(item.logits)
        summary = "median gap %.2f" % float(np.median(gaps))
        if item.labels is not None:
            summary += ", top-1 %.1f%%" % (100 * gap_math.top1_accuracy(item.logits, item.labels))
        print("%s: %d images, %d classes, %s" % (label, len(gaps), item.logits.shape[1], summary))
        drawn.append(("%s: %s" % (label, summary), gaps))
        if item.logits.shape[1] not in classes:
            classes.append(item.logits.shape[1])
    eps = _marked_eps(args.eps, items)
    marks = [(k, float(gap_math.theoretical_gap(k, eps))) for k in classes]
    return plots.gap_figure(drawn, marks, eps)


def _marked_eps(given, items):
    """The eps whose optimum is marked: --eps, else the one eps > 0 the models were trained with
    (saved with their logits), else the paper's 0.1."""
    if given is not None:
        return given
    trained = sorted({item.eps for item in items if item.eps})
    if len(trained) > 1:
        raise UserError("the models were trained with different label smoothing eps (%s): "
                        "choose the one to mark with --eps" % ", ".join("%g" % e for e in trained))
    return trained[0] if trained else 0.1


def _computed_logits(args):
    """Logits of each --model/--params pair on the validation data (needs MXNet)."""
    if not args.model and not args.params:
        return []
    if len(args.model) != len(args.params):
        raise UserError("%d --model for %d --params: give one --params per --model"
                        % (len(args.model), len(args.params)))
    for params in args.params:
        if not os.path.isfile(params):
            raise UserError("%s: no such params file" % params)
    _, source = data_sources(args, train=False)
    try:
        validation = importlib.import_module("gluon_tricks.evaluation.validation")
    except ImportError as error:
        raise UserError("computing logits needs MXNet (%s); use `gluon-tricks eval "
                        "--save-logits` files instead" % error) from None
    from gluon_tricks.inference import saved_run_config
    items = []
    for model, params in zip(args.model, args.params):
        logits, labels = validation.compute_logits(model, params, source,
                                                   input_size(args.input_size, model),
                                                   args.crop_ratio, args.batch_size,
                                                   args.num_workers)
        trained = saved_run_config(params) or {}
        items.append(logits_file.check_logits(model, logits, labels,
                                              where="%s (%s)" % (model, params), model=model,
                                              eps=trained.get("eps")))
    return items
