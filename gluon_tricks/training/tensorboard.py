"""TensorBoard scalars of a training run (`--tensorboard-dir`, rank 0 only), indexed by the global
step, and a reader of their event files. Through tensorboardX (maintained; mxboard's last release
is from 2019); the text log stays the figures' source."""
import glob
import os
import struct

from gluon_tricks.errors import UserError


class TensorBoardLog:
    """Scalars per log interval and per epoch into an event file in `logdir` (rank 0 only)."""

    def __init__(self, logdir, enabled=True):
        self.enabled = bool(logdir) and enabled
        self.writer = None
        if not self.enabled:
            return
        logdir = os.path.expanduser(str(logdir))
        try:
            os.makedirs(logdir, exist_ok=True)
        except OSError as error:
            raise UserError("--tensorboard-dir %s cannot be created (%s)"
                            % (logdir, error.strerror)) from None
        from tensorboardX import SummaryWriter
        self.writer = SummaryWriter(logdir=logdir, flush_secs=10)

    def _scalars(self, step, values):
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag, float(value), global_step=int(step))

    def batch(self, step, loss, accuracy, lr, images_per_sec, loss_scale=None):
        """The scalars of one log interval, ending at global step `step`."""
        if self.enabled:
            self._scalars(step, {"train/loss": loss, "train/accuracy": accuracy, "train/lr": lr,
                                 "train/images_per_sec": images_per_sec,
                                 "train/loss_scale": loss_scale})

    def epoch_train(self, step, loss, accuracy, images_per_sec, loss_scale=None):
        """The training scalars of an epoch that ended at global step `step`."""
        if self.enabled:
            self._scalars(step, {"epoch/train_loss": loss, "epoch/train_accuracy": accuracy,
                                 "epoch/images_per_sec": images_per_sec,
                                 "epoch/loss_scale": loss_scale})

    def validation(self, step, err_top1, err_top5):
        """Validation after the epoch that ended at global step `step`, as accuracies."""
        if self.enabled:
            self._scalars(step, {"val/top1": 1.0 - err_top1, "val/top5": 1.0 - err_top5})
            self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _masked_crc(data):
    """TFRecord's masked CRC-32C of `data`."""
    from tensorboardX.crc32c import crc32c
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_event_records(path):
    """The serialized records of a TFRecord file (an event file), each one's CRCs checked."""
    records = []
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if not header:
                return records
            if len(header) < 12:
                raise ValueError("%s: truncated record header" % path)
            length, length_crc = struct.unpack("<QI", header)
            if _masked_crc(header[:8]) != length_crc:
                raise ValueError("%s: bad length checksum" % path)
            data, (data_crc,) = f.read(length), struct.unpack("<I", f.read(4))
            if len(data) < length or _masked_crc(data) != data_crc:
                raise ValueError("%s: bad or truncated record" % path)
            records.append(data)


def read_scalars(logdir):
    """{tag: [(step, value), ...]} of every event file in `logdir`, in the order written."""
    from tensorboardX.proto.event_pb2 import Event
    scalars = {}
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        for record in read_event_records(path):
            event = Event.FromString(record)
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars
