"""Defects of training logs that a table or figure would otherwise hide (a log given twice, an
impossible validation, an unknown batch, a restart, a cut-off line), as one-line warnings."""
import json

from gluon_tricks.figures.tricks import batch_of
from gluon_tricks.paper import flag_is_set, flag_number

# GluonCV's ImageNet scripts hard-code 1000 classes; this project logs `classes`.
GLUONCV_FORMATS = ("gluoncv", "gluoncv-2018", "horovod")
IMPLAUSIBLE_TOP1 = 0.95  # above any published ImageNet-1k top-1 of these networks
# A change of top-1 between two validations that no schedule explains after the first epochs
# (GluonCV's 23 published logs move by at most 10 points from epoch 10 on, step decay aside).
JUMP = 0.15


def warnings_of(logs):
    """One list of warnings per log of `logs`, in order."""
    found = [[] for _ in logs]
    _duplicates(logs, found)
    for log, warnings in zip(logs, found):
        warnings.extend(validation_warnings(log))
        if batch_of(log.config, log.format) is None:
            warnings.append(_unknown_batch(log))
        if log.restarts:
            where = ", ".join("epoch %d" % e for e in log.restart_epochs) or "an earlier epoch"
            warnings.append("restarted %d time(s) inside the file (the later run from %s); "
                            "repeated epochs are the later run's" % (log.restarts, where))
        if log.truncated:
            warnings.append("the last line was cut off and skipped")
        if log.epochs and not log.validated():
            warnings.append("no validation lines")
    return found


def _records(log):
    """What a log says, free of its file's form (line prefixes, doubled lines, twin or text)."""
    epochs = [(r.epoch, r.top1, r.top5, r.train_metric, r.speed, r.time_cost)
              for _, r in sorted(log.epochs.items())]
    batches = [(b.epoch, b.done, b.speed, b.metric, b.lr) for b in log.batches]
    return json.dumps([epochs, batches], default=str)


def _duplicates(logs, found):
    """Each log that is another's bytes, or holds the same records, names the other."""
    for i, log in enumerate(logs):
        for j, other in enumerate(logs):
            if i == j:
                continue
            if log.digest and log.digest == other.digest:
                found[i].append("byte-identical to %s (one run given twice)" % other.path)
            elif (log.epochs or log.batches) and _records(log) == _records(other):
                found[i].append("the same records as %s (a copy of one run)" % other.path)


def classes_of(log):
    """The run's logged number of classes, 1000 for GluonCV's ImageNet scripts, else None."""
    for key in ("classes", "num_classes"):
        classes = flag_number(log.config.get(key), 0)
        if classes > 0:
            return int(classes)
    return 1000 if log.format in GLUONCV_FORMATS else None


def validation_warnings(log):
    """Impossible validation: top-1 equal to top-5, top-1 above 95% on 1000 classes, a jump that
    neither a step decay nor the end of mixup explains."""
    records = log.validated()
    warnings = []
    both = [r for r in records if r.top5 is not None]
    same = [r for r in both if abs(r.top1 - r.top5) < 1e-9]
    if len(same) >= 2 and 2 * len(same) >= len(both):
        warnings.append("implausible validation: top-1 equals top-5 at %d of %d epochs"
                        % (len(same), len(both)))
    classes = classes_of(log)
    high = [r for r in records if r.top1 > IMPLAUSIBLE_TOP1]
    if classes and classes >= 1000 and high:
        warnings.append("implausible validation: top-1 %.2f%% at epoch %d on %d classes"
                        % (100 * high[-1].top1, high[-1].epoch, classes))
    explained = _step_epochs(log.config) | _mixup_off_epochs(log.config)
    settled = max(int(flag_number(log.config.get("warmup_epochs"), 0)) + 5,
                  int(flag_number(log.config.get("num_epochs"), 0)) // 10)
    for before, after in zip(records, records[1:]):
        change = after.top1 - before.top1
        if after.epoch > settled and abs(change) > JUMP and \
                not (change > 0 and explained & set(range(before.epoch + 1, after.epoch + 1))):
            warnings.append("implausible validation: top-1 jumps by %+.2f points from epoch %d "
                            "to %d, which the learning-rate schedule does not explain"
                            % (100 * change, before.epoch, after.epoch))
    return warnings


def _step_epochs(config):
    """The epochs where a step decay starts (accuracy may rise there)."""
    if str(config.get("lr_mode", "step")) != "step":
        return set()
    period = int(flag_number(config.get("lr_decay_period"), 0))
    epochs = int(flag_number(config.get("num_epochs"), 0))
    if period > 0:
        return set(range(period, epochs, period))
    text = str(config.get("lr_decay_epoch", ""))
    return {int(e) for e in text.split(",") if e.strip().isdigit()}


def _mixup_off_epochs(config):
    """The epoch from which `--mixup-off-epoch` trains on clean images (accuracy may rise)."""
    epochs = int(flag_number(config.get("num_epochs"), 0))
    off = int(flag_number(config.get("mixup_off_epoch"), 0))
    return {epochs - off} if flag_is_set(config.get("mixup")) and 0 < off < epochs else set()


def _unknown_batch(log):
    if log.format == "horovod":
        why = "a Horovod log records neither its world size nor a global batch"
    else:
        why = "the log records neither global_batch_size nor batch_size and num_gpus"
    return ("batch size unknown (%s): the paper's BS=256/1024 rows are not matched" % why)
