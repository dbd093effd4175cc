"""Training and validation batches as MXNet NDArrays, decoded and augmented in parallel workers.

TrainLoader: this rank's equal share of a per-epoch permutation, whole batches; every random draw
of an image depends on (seed, epoch, image index) alone, so `epoch(e)` is bit-identical whenever
it runs (exact resume). ValLoader: each rank a disjoint block, every image once. A corrupt image
is replaced by the next readable one of the share (training) or dropped (validation), counted in
`skipped`. `data_timeout` and `stop_requested` are WorkerPool's (not applied with 0 workers).
"""
import logging
import os

import numpy as np

from gluon_tricks.data import recordio, sharding, transforms
from gluon_tricks.data.sources import check_bad_fraction
from gluon_tricks.data.workers import WorkerPool
from gluon_tricks.errors import UserError

LOG = logging.getLogger(__name__)
SPARES = 8  # readable-image candidates handed to each training batch to replace corrupt ones


def _read(source, index):
    """(label, bytes) or None if the record is unreadable."""
    try:
        return source.read(int(index))
    except recordio.CorruptRecord:
        return None


class _TrainFill:
    """Fills one training batch (runs in a worker): task = (epoch, indices, spares)."""

    reports_reading = True

    def __init__(self, source, input_size, flavour, seed, fast_decode):
        self.source, self.size, self.flavour = source, input_size, flavour
        self.seed, self.fast_decode = seed, fast_decode
        self.scratch = transforms.Scratch()

    def _sample(self, index, epoch, attempt, out, reading):
        if reading is not None:
            reading[0] = index
        record = _read(self.source, index)
        if record is None:
            return None
        rng = sharding.sample_rng(self.seed, epoch, int(index), attempt)
        ok = transforms.train_sample(record[1], rng, self.size, self.flavour, out,
                                     self.fast_decode, self.scratch)
        return record[0] if ok else None

    def __call__(self, task, data, labels, reading=None):
        epoch, indices, spares = task
        spares, filled, skipped = list(spares), 0, 0
        for index in indices:
            label = self._sample(index, epoch, 0, data[filled], reading)
            if label is None:
                skipped += 1
                while label is None and spares:  # the spare's own image and its own label
                    label = self._sample(spares.pop(0), epoch, 1, data[filled], reading)
            if label is not None:
                labels[filled] = label
                filled += 1
        return filled, skipped


class _ValFill:
    """Fills one validation batch (runs in a worker): task = indices."""

    reports_reading = True

    def __init__(self, source, input_size, crop_ratio, fast_decode):
        self.source, self.size = source, input_size
        self.crop_ratio, self.fast_decode = crop_ratio, fast_decode
        self.scratch = transforms.Scratch()

    def __call__(self, indices, data, labels, reading=None):
        filled = 0
        for index in indices:
            if reading is not None:
                reading[0] = index
            record = _read(self.source, index)
            if record is not None and transforms.val_sample(
                    record[1], self.size, data[filled], self.crop_ratio, self.fast_decode,
                    self.scratch):
                labels[filled] = record[0]
                filled += 1
        return filled, len(indices) - filled


def _describe_image(source, index):
    """Where image `index` of `source` lies, for the line naming a stuck worker."""
    if index < 0:
        return "a batch it had not started"
    entry = source.entry(index)
    if source.kind == "rec":
        return "image %d (the record at byte %d of %s)" % (index, entry, source.path)
    return "image %d (%s)" % (index, os.path.join(source.path, entry))


def _check_waits(data_timeout, stop_requested):
    if data_timeout is not None and not (isinstance(data_timeout, (int, float, np.integer,
                                                                   np.floating))
                                         and 0 <= data_timeout < float("inf")):
        raise UserError("the data timeout must be a number of seconds >= 0 (0 or None: no "
                        "deadline), not %r" % (data_timeout,))
    if stop_requested is not None and not callable(stop_requested):
        raise UserError("stop_requested must be a callable, not %r" % (stop_requested,))


def _check(source, batch_size, input_size, num_workers, rank, num_ranks):
    if len(source) == 0:
        raise UserError("%r has no images" % (source,))
    for name, value in (("batch_size", batch_size), ("input_size", input_size)):
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise UserError("%s must be a positive integer, not %r" % (name, value))
    if not (isinstance(num_workers, (int, np.integer)) and num_workers >= 0):
        raise UserError("num_workers must be 0 or more, not %r" % (num_workers,))
    sharding.check_ranks(rank, num_ranks)


class _Loader:
    """What both loaders share: the worker pool, `skipped`, the end-of-pass warning."""

    def __init__(self, source, batch_size, input_size, num_workers, fill, zero_copy,
                 max_bad_fraction, data_timeout, stop_requested, rank, num_ranks):
        _check_waits(data_timeout, stop_requested)
        self.source, self.batch_size, self.input_size = source, batch_size, input_size
        self.max_bad_fraction = max_bad_fraction  # None: any number of corrupt images is skipped
        self.skipped = 0
        # zero_copy off: every batch copied (for a process that forks with batches in flight)
        self._pool = WorkerPool(fill, num_workers, (batch_size, 3, input_size, input_size),
                                lend=2 if zero_copy else 0, data_timeout=data_timeout,
                                stop_requested=stop_requested,
                                describe=lambda task, index: _describe_image(source, index),
                                label="rank %d" % rank if num_ranks > 1 else "")

    @property
    def worker_deaths(self):
        """Data workers replaced so far (died, or killed after data_timeout)."""
        return self._pool.deaths

    def worker_reports(self):
        """The lines logged for workers replaced since the last call, then forgotten."""
        lines, self._pool.events = self._pool.events, []
        return lines

    def _batches(self, tasks, what, keep_count, images):
        """The pool's batches; with keep_count an empty batch is an error, not a dropped step
        (Horovod ranks must take the same steps); beyond max_bad_fraction of `images`, too."""
        self.skipped = 0
        for number, (skipped, data, label) in enumerate(self._pool.map(tasks)):
            self.skipped += skipped
            check_bad_fraction(self.skipped, images, self.max_bad_fraction, self.source.path,
                               "images of %s are corrupt or unreadable" % what)
            if data is not None:
                yield data, label
            elif keep_count:
                raise UserError("%s: no image of batch %d nor any of its %d spares is readable; "
                                "is %s corrupt?" % (what, number, SPARES, self.source.path))
        if self.skipped:
            LOG.warning("%s: skipped %d corrupt or unreadable images of %s", what, self.skipped,
                        self.source.path)

    def close(self):
        """Stop the worker processes (also done on garbage collection)."""
        self._pool.close()


class TrainLoader(_Loader):
    """This rank's augmented training batches: `len(loader)` (equal on every rank) (data (B, 3,
    S, S), label (B,)) float32 pairs from `loader.epoch(e)`."""

    def __init__(self, source, batch_size, input_size=224, flavour="paper", num_workers=2,
                 rank=0, num_ranks=1, seed=0, fast_decode=True, zero_copy=True,
                 max_bad_fraction=None, data_timeout=None, stop_requested=None):
        _check(source, batch_size, input_size, num_workers, rank, num_ranks)
        transforms.check_flavour(flavour)
        if not (isinstance(seed, (int, np.integer)) and 0 <= seed < 1 << 64):
            raise UserError("seed must be a non-negative integer, not %r" % (seed,))
        self.flavour, self.rank, self.num_ranks, self.seed = flavour, rank, num_ranks, seed
        self.share_size = len(source) // num_ranks
        if self.share_size < batch_size:
            raise UserError("%d images over %d ranks leave %d per rank, fewer than the batch "
                            "size %d" % (len(source), num_ranks, self.share_size, batch_size))
        fill = _TrainFill(source, input_size, flavour, seed, fast_decode)
        super().__init__(source, batch_size, input_size, num_workers, fill, zero_copy,
                         max_bad_fraction, data_timeout, stop_requested, rank, num_ranks)

    def __len__(self):
        return self.share_size // self.batch_size

    def _share(self, epoch):
        return sharding.train_share(len(self.source), self.seed, epoch, self.rank, self.num_ranks)

    def indices(self, epoch):
        """The image indices of this rank's batches in `epoch`, shape (len(self), B)."""
        return self._share(epoch)[:len(self) * self.batch_size].reshape(len(self), -1)

    def epoch(self, epoch, first_batch=0):
        """This rank's (data, label) batches of `epoch` from batch `first_batch` (as an
        uninterrupted epoch yields them); calling it again ends the previous iterator."""
        if not (isinstance(epoch, (int, np.integer)) and 0 <= epoch < 1 << 26):
            raise UserError("epoch must be a non-negative integer, not %r" % (epoch,))
        if not (isinstance(first_batch, (int, np.integer)) and 0 <= first_batch <= len(self)):
            raise UserError("first_batch must be in [0, %d], not %r" % (len(self), first_batch))
        share, b = self._share(epoch), self.batch_size
        tasks = ((epoch, share[i * b:(i + 1) * b],
                  np.take(share, range((i + 1) * b, (i + 1) * b + SPARES), mode="wrap"))
                 for i in range(first_batch, len(self)))
        return self._batches(tasks, "epoch %d" % epoch, keep_count=True,
                             images=(len(self) - first_batch) * b)


class ValLoader(_Loader):
    """This rank's validation batches (shorter side to input_size / crop_ratio, centre crop),
    deterministic; iterate once per evaluation."""

    def __init__(self, source, batch_size, input_size=224, crop_ratio=0.875, num_workers=2,
                 rank=0, num_ranks=1, fast_decode=True, zero_copy=True, max_bad_fraction=None,
                 data_timeout=None, stop_requested=None):
        _check(source, batch_size, input_size, num_workers, rank, num_ranks)
        if not 0 < crop_ratio <= 1:
            raise UserError("crop ratio must be in (0, 1], not %r" % (crop_ratio,))
        self.crop_ratio = crop_ratio
        self.share = sharding.val_share(len(source), rank, num_ranks)
        fill = _ValFill(source, input_size, crop_ratio, fast_decode)
        super().__init__(source, batch_size, input_size, num_workers, fill, zero_copy,
                         max_bad_fraction, data_timeout, stop_requested, rank, num_ranks)

    def __len__(self):
        return -(-len(self.share) // self.batch_size)

    def __iter__(self):
        b = self.batch_size
        tasks = (self.share[i * b:(i + 1) * b] for i in range(len(self)))
        return self._batches(tasks, "validation", keep_count=False, images=len(self.share))
