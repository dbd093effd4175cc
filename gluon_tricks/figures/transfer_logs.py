"""GluonCV's detection and segmentation training logs (the paper's Tables 8 and 9): the per-epoch
mAP / pixAcc / mIoU read exactly from their lines, the command published beside each log, the
`report` table with the paper's row beside, and the `plot curves` series.

Formats, by the GluonCV script that wrote them (any prefix before a message is allowed):
- detection, scripts/detection/faster_rcnn/train_faster_rcnn.py (and the SSD/YOLO scripts, VOC):
  `Namespace(...)`, `Start training from [Epoch 0]`, `[Epoch 0][Batch 99], Speed: 11.7
  samples/sec, RPN_Conf=0.655,...`, `[Epoch 0] Training cost: 1312.1, RPN_Conf=0.139,...`, then
  `[Epoch 0] Validation: ` followed by one `class=AP` line per class and `mAP=0.4029` (VOC 07
  metric; values are Python's repr of a float);
- segmentation, scripts/segmentation/train.py of 2018 (tqdm progress bars written to the log):
  `Starting Epoch: 0`, `Epoch 0, training loss 0.310: 100%|...| 709/709 [...]`,
  `Epoch 0, validation pixAcc: 0.841, mIoU: 0.488: 100%|...| 179/179 [...]` (a bar may be written
  several times, also on one line separated by carriage returns: the last one of an epoch counts),
  and after `Evaluating model: PATH` one more validation line for the final evaluation (not an
  epoch); its later versions log `Epoch 0 validation pixAcc: 0.885, mIoU: 0.276` and a Namespace.
A new `Namespace(`, `Start training from` or `Starting Epoch:` line starts a new run (a resume or
the next command of a two-stage recipe); each run keeps its own epochs.
"""
import hashlib
import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from gluon_tricks.errors import UserError
from gluon_tricks.figures.namespace import parse_namespace
from gluon_tricks.paper import TABLE8_ROWS, TABLE9_ROWS

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf"
_DET_VALIDATION = re.compile(r"\[Epoch (\d+)\] Validation:")
_DET_MAP = re.compile(r"^(?:.*\s)?mAP=(" + _NUM + r")\s*$")
_DET_CLASS_AP = re.compile(r"^(?:.*\s)?([A-Za-z][\w\-]*)=(" + _NUM + r")\s*$")
_DET_TRAINING = re.compile(r"\[Epoch (\d+)\] Training cost: (" + _NUM + r"),(.*)")
_DET_START = re.compile(r"Start training from \[Epoch (\d+)\]")
_KEY_VALUE = re.compile(r"([A-Za-z_][\w\-]*)=(" + _NUM + r")")
_SEG_VALIDATION = re.compile(r"Epoch (\d+),? validation pixAcc: (" + _NUM + r"), mIoU: (" + _NUM
                             + r")")
_SEG_TRAINING = re.compile(r"Epoch (\d+),?(?: iteration \d+/\d+:?)? training loss (" + _NUM + ")")
_SEG_START = re.compile(r"Starting Epoch: (\d+)")
_SEG_EVALUATE = re.compile(r"Evaluating model:")
_DETECTION_SIGN = re.compile(r"\[Epoch \d+\] Validation:|^mAP=", re.MULTILINE)
_SEGMENTATION_SIGN = re.compile(r"validation pixAcc: [\d.]+, mIoU: [\d.]+")
# GluonCV's segmentation train.py default backbone when --backbone is not given.
_SEGMENTATION_DEFAULTS = {"backbone": "resnet50", "model": "fcn"}
DATASET_OF_TABLE = {"Table 8": ("voc",), "Table 9": ("ade20k",)}


@dataclass
class TransferEpoch:
    """One validated epoch: metrics as logged (fractions; mAP and each class's AP, or pixAcc and
    mIoU), the epoch's training losses, and the 0-based line of the metric (mAP= or the last
    validation bar) in the log's lines (split at newlines and carriage returns)."""
    epoch: int
    metrics: Dict[str, float] = field(default_factory=dict)
    losses: Dict[str, float] = field(default_factory=dict)
    time_cost: Optional[float] = None
    line: int = -1


@dataclass
class TransferRun:
    """One training run of a log: its configuration (Namespace, else the flags of its published
    command), epochs in order and the final evaluation after training, if logged."""
    config: Dict[str, object] = field(default_factory=dict)
    epochs: Dict[int, TransferEpoch] = field(default_factory=dict)
    evaluation: Optional[TransferEpoch] = None
    command: Optional[str] = None

    def validated(self):
        return [record for _, record in sorted(self.epochs.items()) if record.metrics]


@dataclass
class TransferLog:
    path: str
    task: str                     # "detection" or "segmentation"
    runs: List[TransferRun] = field(default_factory=list)
    digest: str = ""
    truncated: bool = False

    @property
    def metric(self):
        """The headline metric: mAP (detection) or mIoU (segmentation)."""
        return "mAP" if self.task == "detection" else "mIoU"

    @property
    def config(self):
        """The configuration of the last run (the one whose numbers are final)."""
        return self.runs[-1].config if self.runs else {}


def split_lines(text):
    """Lines split at newlines and carriage returns (tqdm redraws a bar after a CR); a last line
    without either was cut off and is dropped. Returns (lines, truncated)."""
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        return lines[:-1], False
    return lines[:-1], bool(text)


def sniff(text):
    """'detection' or 'segmentation' for a text in one of those formats, else None."""
    if _DETECTION_SIGN.search(text):
        return "detection"
    if _SEGMENTATION_SIGN.search(text):
        return "segmentation"
    return None


def sniff_file(path):
    """'detection', 'segmentation' or None (not one of those, or unreadable) for a file."""
    try:
        with open(path, "rb") as f:
            return sniff(f.read().decode("utf-8", errors="replace"))
    except OSError:
        return None


def is_transfer_log(path):
    """Whether the file is a detection or segmentation log (unreadable files are not)."""
    return sniff_file(path) is not None


def parse_detection(lines):
    """Runs of a detection log's lines."""
    runs, current, pending = [], None, None

    def run():
        nonlocal current
        if current is None:
            current = TransferRun()
            runs.append(current)
        return current

    for number, line in enumerate(lines):
        if "Namespace(" in line:
            current = TransferRun(config=parse_namespace(line) or {})
            runs.append(current)
            pending = None
            continue
        start = _DET_START.search(line)
        if start:
            if current is None or current.epochs:
                current = TransferRun(config=dict(current.config) if current else {})
                runs.append(current)
            pending = None
            continue
        training = _DET_TRAINING.search(line)
        if training:
            epoch = int(training.group(1))
            record = run().epochs.setdefault(epoch, TransferEpoch(epoch))
            record.time_cost = float(training.group(2))
            record.losses = {k: float(v) for k, v in _KEY_VALUE.findall(training.group(3))}
            continue
        header = _DET_VALIDATION.search(line)
        if header:
            pending = (int(header.group(1)), {})
            continue
        if pending is None:
            continue
        m_ap = _DET_MAP.match(line)
        if m_ap:
            epoch, classes = pending
            record = run().epochs.setdefault(epoch, TransferEpoch(epoch))
            record.metrics = dict(classes, mAP=float(m_ap.group(1)))
            record.line = number
            pending = None
            continue
        class_ap = _DET_CLASS_AP.match(line)
        if class_ap:
            pending[1][class_ap.group(1)] = float(class_ap.group(2))
        elif line.strip():
            pending = None  # a validation block cut short: no mAP for that epoch
    return runs


def parse_segmentation(lines):
    """Runs of a segmentation log's lines."""
    runs, current, evaluating = [], None, False

    def new_run(config=None):
        nonlocal current
        current = TransferRun(config=config or {})
        runs.append(current)
        return current

    for number, line in enumerate(lines):
        if "Namespace(" in line:
            new_run(parse_namespace(line) or {})
            evaluating = False
            continue
        if _SEG_START.search(line):
            if current is None or current.epochs or current.evaluation:
                new_run(dict(current.config) if current else {})
            evaluating = False
            continue
        if _SEG_EVALUATE.search(line):
            evaluating = True
            if current is None:
                new_run()
            continue
        training = _SEG_TRAINING.search(line)
        if training:
            epoch = int(training.group(1))
            record = (current or new_run()).epochs.setdefault(epoch, TransferEpoch(epoch))
            record.losses["training loss"] = float(training.group(2))
            continue
        validation = _SEG_VALIDATION.search(line)
        if validation:
            epoch = int(validation.group(1))
            metrics = {"pixAcc": float(validation.group(2)), "mIoU": float(validation.group(3))}
            if evaluating:
                current.evaluation = TransferEpoch(epoch, metrics, line=number)
                continue
            record = (current or new_run()).epochs.setdefault(epoch, TransferEpoch(epoch))
            record.metrics, record.line = metrics, number  # the last bar of the epoch counts
    return runs


def command_file(path):
    """The command GluonCV published beside a log: NAME.sh for NAME.log or NAME_train.log."""
    stem = path[:-len(".log")] if path.endswith(".log") else os.path.splitext(path)[0]
    for candidate in (stem + ".sh", re.sub(r"_train$", "", stem) + ".sh"):
        if os.path.isfile(candidate):
            return candidate
    return None


def commands_of(script_text):
    """The training commands of a published .sh: its lines that run a python script."""
    return [line.strip() for line in script_text.splitlines()
            if line.strip() and not line.lstrip().startswith("#") and "python" in line]


def flags_of(command):
    """The `--flag value` pairs of a command as a dict (flag names with '_'); bare flags True."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    flags, index = {}, 0
    while index < len(words):
        word = words[index]
        if word.startswith("--"):
            key = word[2:].replace("-", "_")
            if index + 1 < len(words) and not words[index + 1].startswith("--"):
                flags[key] = words[index + 1]
                index += 2
                continue
            flags[key] = True
        index += 1
    return flags


def parse_transfer_log(path):
    """A TransferLog, or a UserError naming the file when it is unreadable or in neither format."""
    if not os.path.isfile(path):
        raise UserError("%s: no such file" % path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise UserError("%s: cannot read: %s" % (path, error.strerror or error)) from None
    text = data.replace(b"\x00", b"").decode("utf-8", errors="replace")
    task = sniff(text)
    if task is None:
        raise UserError("%s: not a detection or segmentation log (no `mAP=` or `validation "
                        "pixAcc: ..., mIoU: ...` line of GluonCV's formats)" % path)
    lines, truncated = split_lines(text)
    runs = (parse_detection if task == "detection" else parse_segmentation)(lines)
    runs = [run for run in runs if run.epochs or run.evaluation]
    log = TransferLog(path, task, runs, hashlib.sha256(data).hexdigest(), truncated)
    _attach_commands(log)
    return log


def _attach_commands(log):
    """Each run's published command (the k-th command of the .sh for the k-th run when the
    counts agree, the only one otherwise); its flags fill in a run without a Namespace."""
    script = command_file(log.path)
    if script is None:
        return
    with open(script, encoding="utf-8", errors="replace") as f:
        commands = commands_of(f.read())
    for index, run in enumerate(log.runs):
        if len(commands) == len(log.runs):
            run.command = commands[index]
        elif len(commands) == 1:
            run.command = commands[0]
        if run.command and not run.config:
            run.config = flags_of(run.command)
            if log.task == "segmentation":
                for key, value in _SEGMENTATION_DEFAULTS.items():
                    run.config.setdefault(key, value)


# -- report

def backbone_of(log):
    """The backbone's name as the log's configuration gives it (network= or backbone=)."""
    config = log.config
    return config.get("network") or config.get("backbone")


def paper_entry(log):
    """{table, row, metrics..., match} for the Table 8/9 row with this log's backbone and
    dataset, or {table, row: None, why} when none fits."""
    table, rows = ("Table 8", TABLE8_ROWS) if log.task == "detection" else ("Table 9", TABLE9_ROWS)
    dataset = log.config.get("dataset")
    backbone = backbone_of(log)
    if dataset not in DATASET_OF_TABLE[table]:
        return {"table": table, "row": None,
                "why": "dataset %s; %s is %s" % (dataset, table, "Pascal VOC 2007 test"
                                                 if table == "Table 8" else "ADE20K")}
    recipe = log.config.get("backbone_recipe")
    if recipe:  # `detect train --backbone-recipe`: the row whose backbone that recipe trains
        found = [row for row in rows if row.recipe == recipe]
        if not found:
            return {"table": table, "row": None,
                    "why": "backbone recipe %s trains the backbone of no row of %s (%s)" % (
                        recipe, table, ", ".join(row.recipe for row in rows if row.recipe))}
        row = found[0]
        return {"table": table, "row": row.label, "top1": row.top1,
                "metrics": dict(row.metrics),
                "match": "backbone recipe %s (scripts/%s.sh)" % (recipe, recipe)}
    found = [row for row in rows if row.backbone == backbone]
    if not found:
        return {"table": table, "row": None,
                "why": "backbone %s is not one of %s (%s)" % (
                    backbone, table, ", ".join(sorted({row.backbone for row in rows})))}
    if len(found) > 1:  # the rows differ by the backbone's ImageNet recipe, not in the log
        return {"table": table, "row": None,
                "why": "%d rows of %s have backbone %s: %s" % (
                    len(found), table, backbone, ", ".join(row.label for row in found))}
    row = found[0]
    return {"table": table, "row": row.label, "top1": row.top1, "metrics": dict(row.metrics),
            "match": "backbone %s (the row's ImageNet recipe is not in the log)" % backbone}


def _percent(value):
    return None if value is None else round(100.0 * value, 2)


def summarise(log, paper=False):
    """One report row: final and best headline metric (%) and where, per run, with the paper's
    row beside when asked (difference = final - paper, percentage points)."""
    runs = [run for run in log.runs if run.validated()]
    last = runs[-1].validated() if runs else []
    metric = log.metric
    best = max(last, key=lambda r: r.metrics[metric]) if last else None
    final = last[-1] if last else None
    row = {
        "log": log.path, "task": log.task, "backbone": backbone_of(log),
        "dataset": log.config.get("dataset"), "runs": len(log.runs),
        "epochs": len(last), "metric": metric,
        "final": {k: _percent(v) for k, v in final.metrics.items()
                  if k in ("mAP", "pixAcc", "mIoU")} if final else None,
        "final_epoch": final.epoch if final else None,
        "best": _percent(best.metrics[metric]) if best else None,
        "best_epoch": best.epoch if best else None,
        "evaluation": ({k: _percent(v) for k, v in log.runs[-1].evaluation.metrics.items()}
                       if log.runs and log.runs[-1].evaluation else None),
        "command": log.runs[-1].command if log.runs else None,
        "warnings": _warnings(log, last),
    }
    if paper:
        entry = paper_entry(log)
        if entry["row"] is not None and row["final"]:
            entry["diff"] = {name: round(row["final"][name] - value, 2)
                             for name, value in entry["metrics"].items() if name in row["final"]}
        row["paper"] = entry
    return row


def _warnings(log, last):
    """What a reader of the numbers must know: a cut-off log, no validation, an unfinished run."""
    found = ["last line cut off"] if log.truncated else []
    if not last:
        return found + ["no validated epoch"]
    planned = log.config.get("epochs")
    if isinstance(planned, str) and planned.isdigit():
        planned = int(planned)
    if isinstance(planned, int) and not isinstance(planned, bool) and last[-1].epoch + 1 < planned:
        found.append("last validated epoch %d of %d configured" % (last[-1].epoch + 1, planned))
    return found


def _cell(value, signed=False):
    if value is None:
        return "-"
    if isinstance(value, float):
        return ("%+.2f" if signed else "%.2f") % value
    return str(value).replace("|", "\\|")


def markdown(rows, paper=False):
    """The transfer table: one row per log, its final metrics and the paper's row beside."""
    header = ["log", "task", "backbone", "dataset", "runs", "epochs (last run)", "final",
              "best %s (epoch)" % "/".join(sorted({row["metric"] for row in rows}))]
    if paper:
        header += ["paper row", "paper", "Δ (final - paper)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for row in rows:
        final = ", ".join("%s %.2f" % item for item in (row["final"] or {}).items()) or "-"
        best = "-" if row["best"] is None else "%.2f (%d)" % (row["best"], row["best_epoch"])
        cells = [_cell(row["log"]), row["task"], _cell(row["backbone"]), _cell(row["dataset"]),
                 _cell(row["runs"]), _cell(row["epochs"]), final, best]
        if paper:
            entry = row["paper"]
            if entry["row"] is None:
                cells += ["%s: none (%s)" % (entry["table"], entry["why"]), "-", "-"]
            else:
                cells += ["%s: %s" % (entry["table"], entry["row"]),
                          ", ".join("%s %.2f" % item for item in entry["metrics"].items()),
                          ", ".join("%s %+.2f" % item for item in entry.get("diff", {}).items())
                          or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Metrics in %: mAP on the log's validation set (VOC 2007 test for GluonCV's VOC "
              "runs), pixAcc and mIoU on its segmentation validation set; final = the last "
              "validated epoch of the last run, best = the highest of that run."]
    if paper:
        lines.append("A log is placed beside the row of Table 8 (Faster R-CNN, VOC) or Table 9 "
                     "(FCN, ADE20K) with its dataset and the recipe of its backbone when the "
                     "log names it (`detect train --backbone-recipe`), else by its backbone "
                     "architecture alone.")
    warned = [row for row in rows if row["warnings"]]
    if warned:
        lines += ["", "Warnings:"]
        lines += ["- %s: %s." % (row["log"], "; ".join(row["warnings"])) for row in warned]
    return "\n".join(lines)


# -- the hooks of `report` and `plot curves`

def split_paths(paths, expand):
    """(classification log files, detection/segmentation log files) of the given paths;
    `expand` turns folders into their log files (logparse.expand_log_paths)."""
    classification, transfer = [], []
    for path in expand(paths):
        (transfer if is_transfer_log(path) else classification).append(path)
    return classification, transfer


def left_out(transfer):
    """The warning for detection/segmentation logs given among classification ones."""
    return ("%d detection/segmentation log%s left out (%s): give %s alone to read %s" % (
        len(transfer), "s" * (len(transfer) > 1), ", ".join(transfer),
        "it" if len(transfer) == 1 else "them", "it" if len(transfer) == 1 else "them"))


def report_rows(paths, paper=False):
    """summarise() of each transfer log in `paths` (files)."""
    return [summarise(parse_transfer_log(path), paper=paper) for path in paths]


# -- plot curves

def curve_series(log, label=None):
    """[(label, epochs trained, metric %)] of each run; the default label describes the run
    (a log of several runs names each), a given one is numbered "run k of n"."""
    series = []
    runs = [run for run in log.runs if run.validated()]
    for index, run in enumerate(runs):
        records = run.validated()
        name = label or describe(log, run.config)
        if len(runs) > 1:
            name = "%s, run %d of %d" % (name, index + 1, len(runs))
        series.append((name, [r.epoch + 1 for r in records],
                       [100 * r.metrics[log.metric] for r in records]))
    return series


def describe(log, config=None):
    """A legend label: model, backbone and dataset (of `config`, default the last run's)."""
    config = log.config if config is None else config
    model = "Faster R-CNN" if log.task == "detection" else str(config.get("model", "fcn")).upper()
    return "%s %s on %s" % (model, config.get("network") or config.get("backbone") or "?",
                            config.get("dataset") or "?")


def curves_figure(paths, labels, draw):
    """The mAP (detection) or mIoU (segmentation) per epoch of each log, drawn with
    `draw(series, title)` (plots.curves_figure), its y axis named after the metric."""
    logs = [parse_transfer_log(path) for path in paths]
    tasks = sorted({log.task for log in logs})
    if len(tasks) > 1:
        raise UserError("plot curves draws detection (mAP) or segmentation (mIoU) logs, not both"
                        " in one figure")
    if labels and len(labels) != len(logs):
        raise UserError("%d --label for %d logs" % (len(labels), len(logs)))
    series = [item for index, log in enumerate(logs)
              for item in curve_series(log, labels[index] if labels else None)]
    if not series:
        raise UserError("no validated epoch in %s" % ", ".join(paths))
    metric = logs[0].metric
    figure = draw(series, title="validation %s per epoch (%s)" % (metric, "Table 8: Faster R-CNN"
                  if tasks[0] == "detection" else "Table 9: semantic segmentation"))
    figure.axes[0].set_ylabel("validation %s (%%)" % metric)
    return figure
