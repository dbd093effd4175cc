"""`gluon-tricks plot lr|curves|gap-theory|gap`: the paper's Figures 3(a), 3(b), 4(a) and 4(b)
drawn from the trainer's own schedule, training logs and saved logits."""
import importlib
import os

import numpy as np

from gluon_tricks.data.flags import add_data_arguments, data_sources
from gluon_tricks.errors import UserError
from gluon_tricks.evaluation import logits_file
from gluon_tricks.figures import gap as gap_math
from gluon_tricks.figures import (log_checks, logparse, plots, reference, report,
                                   transfer_logs, tricks)
from gluon_tricks.figures.reference import IMAGENET_TRAIN_IMAGES
from gluon_tricks.figures.report import warn
from gluon_tricks.paper import flag_number

_OTHER_IMAGE_TYPES = ("jpg", "jpeg", "gif", "bmp", "tif", "tiff", "eps", "ps", "webp")


def _output_arguments(parser, default_stem):
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="where to write the figure, or a folder for it (default %s.png, "
                             "or .svg/.pdf with --format)" % default_stem)
    parser.add_argument("--format", choices=plots.FORMATS,
                        help="png (default), svg or pdf; taken from -o's extension when omitted")
    parser.set_defaults(default_stem=default_stem)


def output_path(output, fmt, default_stem):
    """(path, format) from `-o` and `--format` (else the extension); a folder gets the default
    name."""
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
    curves.add_argument("--group-seeds", action="store_true",
                        help="one line per configuration (model, tricks, epochs, as `report "
                             "--group-seeds` groups them): the mean over its seeds, with a band "
                             "from their minimum to their maximum")
    curves.add_argument("--label", action="append", help="legend label, one per line, in order "
                        "(default: model and tricks from the log's Namespace)")
    _output_arguments(curves, "fig3b_validation_accuracy")

    theory = sub.add_parser("gap-theory", help="Figure 4(a): optimal logit gap against eps")
    theory.add_argument("logits", nargs="*", metavar="LOGITS",
                        help="logits files of Figure 4(b): their number of classes and eps")
    theory.add_argument("--classes", type=int, nargs="+", default=[], metavar="K",
                        help="number of classes (default: the LOGITS', else the paper's 1000; "
                             "several draw several curves)")
    theory.add_argument("--eps", type=float, default=None,
                        help="eps to mark (default: the LOGITS' label smoothing eps, else 0.1)")
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
    print("wrote %s" % plots.save(figure, path, fmt))
    return 0


def _labels(given, defaults, what, sources):
    """The user's labels, or the defaults told apart by their file (`sources`) where equal."""
    if given:
        if len(given) != len(defaults):
            raise UserError("%d --label for %d %s" % (len(given), len(defaults), what))
        return list(given)
    return ["%s (%s)" % (label, os.path.basename(source)) if defaults.count(label) > 1 else label
            for label, source in zip(defaults, sources)]


def legend_labels(logs, groups, given=None):
    """A label per group of log indices: `given`, else model and tricks (and seeds), marked with
    its logs' warning count (the warnings go to stderr: a figure shows a defective log)."""
    counts = []
    for log, warnings in zip(logs, log_checks.warnings_of(logs)):
        warnings = [w for w in warnings if w != "no validation lines"]
        for message in warnings:
            warn("%s: %s" % (log.path, message))
        counts.append(len(warnings))
    defaults = []
    for group in groups:
        seeds = ", ".join(str(logs[i].config.get("seed", "?")) for i in group)
        defaults.append(tricks.describe(logs[group[0]].config, logs[group[0]].path)
                        + (" (seeds %s)" % seeds if len(group) > 1 else ""))
    labels = _labels(given, defaults, "lines", [logs[g[0]].path for g in groups])
    flagged = [sum(counts[i] for i in group) for group in groups]
    return ["%s [%d warning%s]" % (label, n, "s" * (n > 1)) if n else label
            for label, n in zip(labels, flagged)]


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
    """The lr= of every batch line, at epoch + fraction done (of the logged `iters_per_epoch`,
    else of the largest batch position)."""
    logs = logparse.load_logs(paths, warn)
    series, missing = [], []
    for label, log in zip(legend_labels(logs, [[i] for i in range(len(logs))]), logs):
        points = [b for b in log.batches if b.lr is not None]
        if not points:
            missing.append("%s: no lr= values" % log.path)
            continue
        per_epoch = log.config.get("iters_per_epoch")
        if not isinstance(per_epoch, int) or per_epoch <= 0:
            per_epoch = max(b.done for b in log.batches) or 1
        series.append((label, *_logged_lr_line(log.config, points, per_epoch)))
    _report_missing(missing, bool(series), "no lr= values in any of the logs")
    return plots.lr_figure(series, "Figure 3(a): learning rate recorded in training logs")


def _logged_lr_line(config, points, per_epoch):
    """(epochs, lrs) through a log's lr= points; step decay after warmup is drawn as a step at
    the epoch's start, everything else as straight lines between points."""
    stepwise = config.get("lr_mode", "step") == "step"
    warmup = flag_number(config.get("warmup_epochs"), 0)
    xs, ys = [], []
    for before, point in zip([None] + points, points):
        x = point.epoch + point.done / per_epoch
        if (stepwise and before is not None and point.lr != before.lr
                and point.epoch == before.epoch + 1 and before.epoch >= warmup):
            if xs[-1] < point.epoch:
                xs.append(point.epoch)
                ys.append(before.lr)
            if x > point.epoch:
                xs.append(point.epoch)
                ys.append(point.lr)
        xs.append(x)
        ys.append(point.lr)
    return xs, ys


def _curves(args):
    """Figure 3(b): validation top-1 per epoch per log, or per configuration (mean, min-max band);
    detection or segmentation logs: mAP or mIoU instead."""
    if not args.logs:
        raise UserError("no log file given")
    paths, transfer = transfer_logs.split_paths(args.logs, logparse.expand_log_paths)
    if transfer and not paths:
        return transfer_logs.curves_figure(transfer, args.label, plots.curves_figure)
    if transfer:
        warn(transfer_logs.left_out(transfer))
    logs = logparse.load_logs(paths, warn)
    groups = report.configuration_groups(logs) if args.group_seeds else \
        [[i] for i in range(len(logs))]
    series, missing = [], []
    for label, group in zip(legend_labels(logs, groups, args.label), groups):
        epochs, top1 = _validated_in_every_seed([logs[i] for i in group])
        if not epochs:
            missing.append("%s: no validation lines" % logs[group[0]].path if len(group) == 1
                           else "%s: no epoch validated in every seed"
                           % ", ".join(logs[i].path for i in group))
            continue
        band = (top1.min(axis=0), top1.max(axis=0)) if len(group) > 1 else None
        series.append((label, epochs, top1.mean(axis=0), band))
    _report_missing(missing, bool(series), "no validation accuracy in any of the logs")
    title = "Figure 3(b): validation top-1 accuracy"
    if any(band for *_, band in series):
        title += "\nlines: mean over seeds; shaded bands: min to max over seeds"
    return plots.curves_figure(series, title)


def _validated_in_every_seed(logs):
    """The epochs (1-based) validated in every log, and top-1 in % (logs x epochs)."""
    validated = [{r.epoch + 1: 100 * r.top1 for r in log.validated()} for log in logs]
    common = sorted(set.intersection(*(set(v) for v in validated)))
    for log, values in zip(logs, validated):
        left_out = sorted(set(values) - set(common))
        if left_out and common:
            warn("%s: epoch(s) %s not drawn: not validated in every seed"
                 % (log.path, ", ".join(map(str, left_out))))
    return common, np.array([[v[e] for e in common] for v in validated])


def _gap_theory(args):
    """Figure 4(a): log((K-1)(1-eps)/eps) against eps for the logits' K and --classes, else 1000."""
    if any(k < 2 for k in args.classes):
        raise UserError("--classes must be at least 2")
    _check_eps(args.eps)
    items = [logits_file.load_logits(path) for path in args.logits]
    classes = []
    for k in [item.logits.shape[1] for item in items] + args.classes:
        if k not in classes:
            classes.append(k)
    classes = classes or [1000]
    marked = classes[0] if items or 1000 not in classes else 1000
    eps = _marked_eps(args.eps, items)
    axis = np.linspace(0.002, 0.998, 499)
    curves = [(k, axis, gap_math.theoretical_gap(k, axis)) for k in classes]
    value = float(gap_math.theoretical_gap(marked, eps))
    print("optimal gap for K = %d, eps = %g: %.2f" % (marked, eps, value))
    return plots.gap_theory_figure(curves, (marked, eps, value))


def _check_eps(eps):
    if eps is not None and not 0 < eps < 1:
        raise UserError("--eps must be in (0, 1)")


def _gap(args):
    """Figure 4(b): histogram of the empirical gap for each logits file or model."""
    _check_eps(args.eps)
    items = [logits_file.load_logits(path) for path in args.logits] + _computed_logits(args)
    if not items:
        raise UserError("no logits given: LOGITS files (from `gluon-tricks eval --save-logits`)"
                        " or --model NAME --params FILE with validation data")
    labels = _labels(args.label, [_gap_label(item) for item in items], "models",
                     list(args.logits) + list(args.params))
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


def _gap_label(item):
    """The model and the label smoothing it was trained with."""
    if item.eps is None:
        return item.name
    return "%s, %s" % (item.model or item.name, "label smoothing eps=%g" % item.eps
                       if item.eps > 0 else "eps=0 (one-hot)")


def _marked_eps(given, items):
    """--eps, else the one eps > 0 the models were trained with, else the paper's 0.1."""
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
    from gluon_tricks.inference import say, trained_weights
    items = []
    for model, params in zip(args.model, args.params):
        trained = trained_weights(params, model, args.input_size)  # the size trained at
        say(trained.notes)
        logits, labels = validation.compute_logits(model, params, source, trained.input_size,
                                                   args.crop_ratio, args.batch_size,
                                                   args.num_workers)
        items.append(logits_file.check_logits(model, logits, labels,
                                              where="%s (%s)" % (model, params), model=model,
                                              eps=trained.config.get("eps")))
    return items
