"""Training logs in GluonCV's train_imagenet.py line format, with a JSON-lines twin holding the
same numbers; the lines on stdout are the progress display. Only rank 0's TrainLog writes."""
import json
import logging
import os
import sys

from gluon_tricks import files
from gluon_tricks.errors import UserError
from gluon_tricks.provenance import code_version


class _FileHandler(logging.FileHandler):
    """A log file whose write errors (a full disk) go to `report`, not to a traceback."""

    def __init__(self, path, report):
        super().__init__(path, mode="a")
        self.report = report

    def handleError(self, record):
        self.report(sys.exc_info()[1])


def _same_file(opened, named):
    """Whether the open file (its fstat) is still the file at its path (stat, None: gone)."""
    return named is not None and (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)


def _duration(seconds):
    minutes, seconds = divmod(int(round(seconds)), 60)
    return "%d:%02d:%02d" % (minutes // 60, minutes % 60, seconds)


def etas(seconds_per_batch, left, epochs_after, batches, validation_seconds):
    """(seconds left of the epoch, of the run), a validation after each epoch."""
    epoch = left * seconds_per_batch
    return epoch, (epoch + epochs_after * batches * seconds_per_batch
                   + (epochs_after + 1) * validation_seconds)


class TrainLog:
    """Writes the Namespace line, per-interval batch lines and per-epoch lines."""

    def __init__(self, path=None, enabled=True, stream=None):
        self.enabled = enabled
        self.jsonl = None
        self.path, self.write_failed = path, False
        self.file_handler = None
        self.logger = logging.getLogger("gluon_tricks.train.%d" % id(self))
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        if not enabled:
            return
        formatter = logging.Formatter("%(message)s")
        handlers = [logging.StreamHandler(stream or sys.stdout)]
        if path:
            try:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                self.file_handler = _FileHandler(path, self._lost)
                self.jsonl = open(path + ".jsonl", "a")
            except OSError as error:
                raise UserError("cannot open the training log %s: %s"
                                % (error.filename or path, error.strerror or error)) from None
            handlers.append(self.file_handler)
        for handler in handlers:
            handler.setFormatter(formatter)
            self.logger.addHandler(handler)

    def _emit(self, message, record):
        if not self.enabled:
            return
        self._reopen_if_gone()
        self.logger.info(message)
        if self.jsonl:
            try:
                self.jsonl.write(json.dumps(record, sort_keys=True) + "\n")
                self.jsonl.flush()
            except OSError as error:
                self._lost(error)

    def _reopen_if_gone(self):
        """Reopen a log deleted or replaced during the run (else its lines go to an unlinked
        file), saying so in it and on stderr."""
        if self.jsonl is None or self.file_handler.stream is None:
            return
        try:
            gone = [f for f in (self.file_handler.stream, self.jsonl)
                    if not _same_file(os.fstat(f.fileno()), self._stat(f.name))]
        except OSError:
            return
        if not gone:
            return
        try:
            self.file_handler.stream.close()
            self.file_handler.stream = self.file_handler._open()
            self.jsonl.close()
            self.jsonl = open(self.path + ".jsonl", "a")
        except OSError as error:
            raise UserError("the training log %s was deleted during the run and cannot be "
                            "opened again: %s" % (self.path, error.strerror or error)) from None
        line = ("the training log %s was deleted or replaced during the run; reopened (the "
                "lines before this one are not in this file)" % self.path)
        print("gluon-tricks: warning: " + line, file=sys.stderr)
        self.logger.info(line)
        self.jsonl.write(json.dumps({"event": "info", "message": line}) + "\n")

    @staticmethod
    def _stat(path):
        try:
            return os.stat(path)
        except FileNotFoundError:
            return None

    def _lost(self, error):
        """A log write failed (a full disk): say so once, with the free space, and train on."""
        if self.write_failed:
            return
        self.write_failed = True
        reason = getattr(error, "strerror", None) or str(error)
        print("gluon-tricks: warning: cannot write the training log %s: %s (%s); training goes "
              "on, log lines are lost until there is room"
              % (self.path, reason, files.describe_free(os.path.dirname(
                  os.path.abspath(self.path)))), file=sys.stderr)

    def namespace(self, config):
        """GluonCV's first line: the resolved flags as a Namespace, with the `code_version`."""
        config = dict(config, code_version=code_version())
        items = ", ".join("%s=%r" % (k, v) for k, v in sorted(config.items()))
        self._emit("Namespace(%s)" % items, dict(config, event="config"))

    def info(self, message):
        self._emit(message, {"event": "info", "message": message})

    def batch(self, epoch, batch, speed, metric, value, lr, loss, batches, eta):
        """GluonCV's batch line, then the loss since the previous line, progress and `eta`."""
        self._emit("Epoch[%d] Batch [%d]\tSpeed: %f samples/sec\t%s=%f\tlr=%f\tloss=%f\t%d/%d "
                   "batches, ETA epoch %s, run %s" % (epoch, batch, speed, metric, value, lr, loss,
                                                      batch + 1, batches, _duration(eta[0]),
                                                      _duration(eta[1])),
                   {"event": "batch", "epoch": epoch, "batch": batch, "speed": speed, metric: value,
                    "lr": lr, "loss": loss, "batches": batches, "eta_epoch": eta[0],
                    "eta_run": eta[1]})

    def epoch(self, epoch, metric, value, loss, speed, seconds, err_top1, err_top5):
        self._emit("[Epoch %d] training: %s=%f loss=%f" % (epoch, metric, value, loss),
                   {"event": "train", "epoch": epoch, metric: value, "loss": loss})
        self._emit("[Epoch %d] speed: %d samples/sec\ttime cost: %f" % (epoch, speed, seconds),
                   {"event": "speed", "epoch": epoch, "speed": speed, "time": seconds})
        self._emit("[Epoch %d] validation: err-top1=%f err-top5=%f" % (epoch, err_top1, err_top5),
                   {"event": "validation", "epoch": epoch, "err_top1": err_top1,
                    "err_top5": err_top5})

    def close(self):
        for handler in list(self.logger.handlers):
            try:
                handler.close()
            except OSError as error:  # its last flush, on a full disk
                self._lost(error)
            self.logger.removeHandler(handler)
        if self.jsonl:
            try:
                self.jsonl.close()
            except OSError as error:
                self._lost(error)
