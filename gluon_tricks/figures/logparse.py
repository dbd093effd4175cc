"""One parser for training logs: this project's from their JSON-lines twin (`LOG.jsonl`), GluonCV's
train_imagenet.py (all versions since 2018) and train_horovod.py logs from their text.

Handled: a last line cut off (dropped), restarts that repeat epochs (the later run wins from the
repeated epoch on) or append a second configuration (a resume), foreign lines and other ranks'
lines (ignored), epochs without validation (top-1/top-5 None).
"""
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from gluon_tricks.errors import UserError
from gluon_tricks.figures import transfer_logs
from gluon_tricks.figures.namespace import parse_config_object, parse_namespace

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
_KEY_VALUE = re.compile(r"([A-Za-z_][\w\-]*)\s*=\s*(" + _NUM + r")(?![\w.])", re.IGNORECASE)
_BRACKET_EPOCH = re.compile(r"\[Epoch (\d+)\]\s*(training|speed|validation|time cost)\s*:?(.*)")
_EPOCH = re.compile(r"Epoch\[(\d+)(?:/\d+)?\]")
_RANK = re.compile(r"Rank\[(\d+)\]")
_BATCH = re.compile(r"Batch\s*\[(\d+)(?:/\d+)?\]")
_SPEED = re.compile(r"Speed:\s*(" + _NUM + r")\s*samples/sec")
_TIME_COST = re.compile(r"[Tt]ime cost\s*[:=]\s*(" + _NUM + ")")
_VALIDATION = re.compile(r"Validation-([\w\-]+)=(" + _NUM + ")")
_TRAIN_METRIC = re.compile(r"Train-([\w\-]+)=(" + _NUM + ")")
_TOP1_NAMES = ("accuracy", "acc", "top1", "acc-top1")
_TOP5_NAMES = ("top_k_accuracy_5", "top5", "acc-top5")
LOG_SUFFIXES = (".log", ".txt")
TWIN_SUFFIX = ".jsonl"  # `gluon-tricks train` writes LOG + ".jsonl" beside LOG


@dataclass
class EpochRecord:
    """What the end of one epoch logged; accuracies are fractions, None where not logged."""
    epoch: int
    top1: Optional[float] = None
    top5: Optional[float] = None
    train_metric: Optional[Tuple[str, float]] = None
    speed: Optional[float] = None          # training samples/sec over the epoch
    time_cost: Optional[float] = None      # seconds


@dataclass
class BatchRecord:
    """One per-interval line; `done` counts the epoch's batches trained so far."""
    epoch: int
    done: int
    speed: Optional[float] = None
    metric: Optional[Tuple[str, float]] = None
    lr: Optional[float] = None


@dataclass
class TrainingLog:
    """A parsed log: its configuration, per-epoch records (after restarts) and batch records."""
    path: str
    config: Dict[str, object] = field(default_factory=dict)
    epochs: Dict[int, EpochRecord] = field(default_factory=dict)
    batches: List[BatchRecord] = field(default_factory=list)
    formats: set = field(default_factory=set)
    restarts: int = 0
    restart_epochs: List[int] = field(default_factory=list)  # where each later run started
    source: str = ""        # the file read: `path`, or its JSON-lines twin
    digest: str = ""        # SHA-256 of the file read
    ignored_lines: int = 0
    truncated: bool = False

    @property
    def recognised(self):
        return bool(self.config or self.epochs or self.batches)

    @property
    def format(self):
        """'gluon-tricks', 'horovod', 'gluoncv-2018' (error-based metrics) or 'gluoncv'."""
        for name in ("gluon-tricks", "horovod", "gluoncv-2018", "gluoncv"):
            if name in self.formats:
                return name
        return "unknown"

    def validated(self):
        """The epoch records with a top-1 accuracy (not NaN), in epoch order."""
        return [r for _, r in sorted(self.epochs.items())
                if r.top1 is not None and r.top1 == r.top1]


class _Parser:
    """Line-by-line state; a position that goes backwards is a restart."""

    def __init__(self, path):
        self.log = TrainingLog(path=path)
        self.last_batch = (-1, -1)
        self.last_epoch_of = {}
        self.resuming = False  # a configuration line came after records: a second run

    # -- restarts -------------------------------------------------------------------------
    def _config(self, config):
        """A configuration line; after records it starts a resume (repeats before any record,
        from GluonCV's doubled log handlers, are one run)."""
        if (self.log.epochs or self.log.batches) and not self.resuming:
            self.log.restarts += 1
            self.resuming = True
        self.log.config.update(config)

    def _started(self, epoch):
        """The first record after a resume says where it started."""
        if self.resuming:
            self.log.restart_epochs.append(epoch)
            self.resuming = False

    def _restart_at(self, epoch):
        """A resumed run repeats `epoch` and what follows: forget the earlier run's records."""
        log = self.log
        if not self.resuming:  # a resume already counted by its configuration line
            log.restarts += 1
            log.restart_epochs.append(epoch)
        log.epochs = {e: r for e, r in log.epochs.items() if e < epoch}
        log.batches = [b for b in log.batches if b.epoch < epoch]
        self.last_batch = (log.batches[-1].epoch, log.batches[-1].done) if log.batches else (-1, -1)
        self.last_epoch_of = {k: min(v, epoch - 1) for k, v in self.last_epoch_of.items()}

    def _epoch_record(self, epoch, kind):
        """The record of `epoch` for a `kind` value; an earlier epoch means a restart (the same
        one only overwrites: Horovod evaluates its last epoch twice)."""
        if self.last_epoch_of.get(kind, -1) > epoch:
            self._restart_at(epoch)
        self._started(epoch)
        self.last_epoch_of[kind] = epoch
        return self.log.epochs.setdefault(epoch, EpochRecord(epoch))

    def _batch_record(self, epoch, done):
        if (epoch, done) < self.last_batch:
            self._restart_at(epoch)
        self._started(epoch)
        if (epoch, done) == self.last_batch:
            return self.log.batches[-1]  # a second line about the same batch (Horovod)
        self.last_batch = (epoch, done)
        record = BatchRecord(epoch, done)
        self.log.batches.append(record)
        return record

    # -- lines ----------------------------------------------------------------------------
    def feed(self, line):
        """Take one line; returns whether it was a log line this parser knows."""
        if "Namespace(" in line:
            config = parse_namespace(line)
            if config:
                self._config(config)
                return True
        if "[Epoch " in line:
            match = _BRACKET_EPOCH.search(line)
            if match:
                return self._bracket_epoch(int(match.group(1)), match.group(2), match.group(3))
        epoch_match = _EPOCH.search(line)
        if epoch_match:
            return self._epoch_line(int(epoch_match.group(1)), line[epoch_match.end():])
        if "{" in line and not self.log.config:
            config = parse_config_object(line)
            if config:
                self._config(config)
                return True
        return False

    def _bracket_epoch(self, epoch, kind, rest):
        """`[Epoch N] training|speed|validation|time cost: ...` (train_imagenet.py)."""
        values = dict((k.lower(), float(v)) for k, v in _KEY_VALUE.findall(rest))
        if kind == "validation":
            if "err-top1" not in values:
                return False
            record = self._epoch_record(epoch, "validation")
            record.top1 = 1.0 - values["err-top1"]
            if "err-top5" in values:
                record.top5 = 1.0 - values["err-top5"]
        elif kind == "training":
            pairs = _KEY_VALUE.findall(rest)
            if not pairs:
                return False
            self._epoch_record(epoch, "training").train_metric = (pairs[0][0], float(pairs[0][1]))
            self.log.formats.add("gluoncv-2018" if pairs[0][0].startswith("err") else "gluoncv")
        elif kind == "speed":
            speed = _SPEED.search("Speed: " + rest)
            if not speed:
                return False
            record = self._epoch_record(epoch, "speed")
            record.speed = float(speed.group(1))
            time_cost = _TIME_COST.search(rest)
            if time_cost:
                record.time_cost = float(time_cost.group(1))
        else:  # `[Epoch N] time cost: T` of the 2018 script
            time_cost = re.match(r"\s*:?\s*(" + _NUM + ")", rest)
            if not time_cost:
                return False
            self._epoch_record(epoch, "time").time_cost = float(time_cost.group(1))
            self.log.formats.add("gluoncv-2018")
        return True

    def _epoch_line(self, epoch, rest):
        """`Epoch[N] ...` lines: train_imagenet.py's batch lines and all of train_horovod.py's."""
        rank = _RANK.search(rest)
        if rank:
            self.log.formats.add("horovod")
            if int(rank.group(1)) != 0:
                return True  # every rank logs; rank 0 speaks for the run
        validation = _VALIDATION.findall(rest)
        if validation:
            self.log.formats.add("horovod")
            record = self._epoch_record(epoch, "validation:" + validation[0][0])
            for name, value in validation:
                if name.lower() in _TOP1_NAMES:
                    record.top1 = float(value)
                elif name.lower() in _TOP5_NAMES:
                    record.top5 = float(value)
            return True
        time_cost = _TIME_COST.search(rest)
        train = _TRAIN_METRIC.search(rest)
        if time_cost:  # Horovod's end of epoch: `Batch[n]\tTime cost=..\tTrain-metric=..`
            record = self._epoch_record(epoch, "time")
            record.time_cost = float(time_cost.group(1))
            if train:
                record.train_metric = (train.group(1), float(train.group(2)))
            return True
        batch = _BATCH.search(rest)
        speed = _SPEED.search(rest)
        if not batch and train:  # MXNet Module.fit's `Epoch[N] Train-accuracy=..`
            self._epoch_record(epoch, "training").train_metric = (train.group(1),
                                                                  float(train.group(2)))
            return True
        if not batch:
            if not speed:
                return False
            self.log.formats.add("horovod")  # `Epoch[N]\tSpeed: ...` over the whole epoch
            self._epoch_record(epoch, "speed").speed = float(speed.group(1))
            return True
        after = rest[batch.end():]
        values = [(k, float(v)) for k, v in _KEY_VALUE.findall(after)]
        lr = next((v for k, v in values if k.lower() == "lr"), None)
        metric = next(((k, v) for k, v in values if k.lower() not in ("lr", "time")), None)
        if speed is None and lr is None and metric is None:
            return "Loss[" in after  # Horovod's loss line: known, nothing to keep
        # train_imagenet.py logs speed and metric on one line and counts batches from 0;
        # train_horovod.py splits them over two lines and counts from 1.
        one_line = speed is not None and (metric is not None or lr is not None) and not rank
        self.log.formats.add("gluoncv" if one_line else "horovod")
        done = int(batch.group(1)) + (1 if one_line else 0)
        record = self._batch_record(epoch, done)
        if speed is not None:
            record.speed = float(speed.group(1))
        if metric is not None:
            record.metric = metric
            if metric[0].lower() in ("top1-err", "top5-err"):
                self.log.formats.add("gluoncv-2018")
        if lr is not None:
            record.lr = lr
        return True


    # -- events of a JSON-lines twin (gluon_tricks.training.train_log) ----------------------
    def feed_event(self, event):
        """Take one record of this project's JSON-lines log; returns whether it was known."""
        kind = event.get("event")
        values = {k: v for k, v in event.items() if k != "event"}
        self.log.formats.add("gluon-tricks")
        try:
            if kind == "config":
                self._config(values)
            elif kind == "batch":  # `batch` is the index of the batch just trained, from 0
                record = self._batch_record(int(values.pop("epoch")), int(values.pop("batch")) + 1)
                record.speed = _float_or_none(values.pop("speed", None))
                record.lr = _float_or_none(values.pop("lr", None))
                record.metric = _first_metric(values)
            elif kind == "train":
                epoch = int(values.pop("epoch"))
                self._epoch_record(epoch, "training").train_metric = _first_metric(values)
            elif kind == "speed":
                record = self._epoch_record(int(values["epoch"]), "speed")
                record.speed = _float_or_none(values.get("speed"))
                record.time_cost = _float_or_none(values.get("time"))
            elif kind == "validation":
                record = self._epoch_record(int(values["epoch"]), "validation")
                record.top1 = 1.0 - float(values["err_top1"])
                if values.get("err_top5") is not None:
                    record.top5 = 1.0 - float(values["err_top5"])
            else:
                return kind == "info"
        except (KeyError, TypeError, ValueError):
            return False  # a record without the fields its kind needs
        return True


def _float_or_none(value):
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _first_metric(values):
    """(name, value) of the one numeric field left in a record, or None."""
    for name, value in sorted(values.items()):
        number = _float_or_none(value) if not isinstance(value, bool) else None
        if number is not None:
            return (name, number)
    return None


def read_bytes(path):
    """The file's bytes, or a UserError naming it: missing, a directory, unreadable, empty."""
    if not os.path.exists(path):
        raise UserError("%s: no such file" % path)
    if os.path.isdir(path):
        raise UserError("%s: is a directory" % path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise UserError("%s: cannot read: %s" % (path, error.strerror or error)) from None
    if not data.strip():
        raise UserError("%s: empty file" % path)
    return data


def _decode(data):
    return data.replace(b"\x00", b"").decode("utf-8", errors="replace")


def parse_text(text, path="<log>"):
    """A TrainingLog from a log's text (never raises on messy content)."""
    parser = _Parser(path)
    for line in _lines(text, parser.log):
        if line.strip() and not parser.feed(line):
            parser.log.ignored_lines += 1
    return parser.log


def _lines(text, log):
    """The complete lines of `text`: a last line without newline was cut off (noted in `log`)."""
    lines = text.splitlines()
    if text and not text.endswith(("\n", "\r")):
        lines = lines[:-1]
        log.truncated = True
    return lines


def parse_jsonl(text, path="<log>"):
    """A TrainingLog from the text of this project's JSON-lines log (never raises)."""
    parser = _Parser(path)
    for line in _lines(text, parser.log):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not parser.feed_event(event):
            parser.log.ignored_lines += 1
    return parser.log


def twin_of(path):
    """The JSON-lines twin `gluon-tricks train` wrote beside the text log `path`, or None."""
    twin = path + TWIN_SUFFIX
    return twin if not path.endswith(TWIN_SUFFIX) and os.path.isfile(twin) else None


def parse_log(path):
    """Parse one log file, through its JSON-lines twin when it has one; UserError if unknown."""
    source = twin_of(path) or path
    data = read_bytes(source)
    text = _decode(data)
    if source.endswith(TWIN_SUFFIX):
        log = parse_jsonl(text, path)
    else:
        log = parse_text(text, path)
    log.source, log.digest = source, hashlib.sha256(data).hexdigest()
    if not log.recognised:
        raise UserError("%s: not a training log (no Namespace, epoch or batch line of GluonCV's "
                        "train_imagenet.py/train_horovod.py formats)" % path)
    return log


def expand_log_paths(paths):
    """Files as given; a directory stands for its .log/.txt files (recursively) and its .jsonl
    files that are not a text log's twin."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = []
            for root, _, names in os.walk(path):
                for name in names:
                    alone = name.endswith(TWIN_SUFFIX) and name[:-len(TWIN_SUFFIX)] not in names
                    if name.endswith(LOG_SUFFIXES) or alone:
                        found.append(os.path.join(root, name))
            found.sort()
            if not found:
                raise UserError("%s: directory with no log files (*.log, *.txt, *.jsonl)" % path)
            files.extend(found)
        else:
            files.append(path)
    return files


def load_logs(paths, warn):
    """Parse every log; an unreadable one is `warn`ed and skipped; none readable: UserError."""
    if not paths:
        raise UserError("no log file given")
    files = expand_log_paths(paths)
    transfer = [path for path in files if transfer_logs.is_transfer_log(path)]
    if transfer:  # detection/segmentation logs (Tables 8-9) are read by transfer_logs
        files = [path for path in files if path not in transfer]
        if not files:
            raise UserError("%s: a %s log, not a classification training log" % (
                transfer[0], transfer_logs.sniff_file(transfer[0])))
    logs, errors = [], []
    for path in files:
        try:
            logs.append(parse_log(path))
        except UserError as error:
            errors.append(str(error))
    if not logs:
        if len(errors) == 1:
            raise UserError(errors[0])
        for message in errors:
            warn(message)
        raise UserError("none of the %d log files could be read" % len(files))
    for message in errors:
        warn(message)
    return logs
