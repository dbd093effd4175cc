"""GluonCV's training samplers and transforms with their random draws keyed by (seed, epoch,
image), so that a transfer command's batches are the same whatever the number of loader
workers, the number of ranks sharing them, or where the run was resumed.

GluonCV's samplers and transforms draw from Python's and NumPy's global generators: here those
are seeded from the key just before GluonCV draws (the data order once per epoch in the main
process, each image's transform in whichever process decodes it).
"""
import random

import numpy as np

from gluon_tricks import streams
from gluon_tricks.errors import UserError


def _seed_globals(value):
    random.seed(value)
    np.random.seed(value)


class EpochBatches:
    """A batch sampler for mx.gluon.data.DataLoader: the batches of the epoch set by
    `set_epoch`, from a given batch on. Each global batch is one of `global_sampler`'s (GluonCV's
    bucketing sampler over every image, `batch_size x ranks` images a batch) drawn with the
    globals seeded from (seed, epoch); rank `rank` takes its `batch_size` images of each. Items
    are keys (epoch, index), for KeyedTransform."""

    def __init__(self, global_sampler, batch_size, seed, rank=0, ranks=1):
        self.sampler, self.batch_size, self.seed = global_sampler, batch_size, seed
        self.rank, self.ranks = rank, ranks
        self.epoch, self.first = 0, 0

    def set_epoch(self, epoch, first=0):
        """The next iteration yields `epoch`'s batches from batch `first` on."""
        self.epoch, self.first = epoch, first
        return self

    def global_batches(self, epoch):
        _seed_globals(streams.transfer_order_seed(self.seed, epoch))
        return [list(batch) for batch in self.sampler]

    def __iter__(self):
        begin = self.rank * self.batch_size
        for batch in self.global_batches(self.epoch)[self.first:]:
            yield [(self.epoch, int(index)) for index in batch[begin:begin + self.batch_size]]

    def __len__(self):
        return len(self.sampler)


def bucket_sampler(ratios, global_batch_size):
    """GluonCV's SplitSortedBucketSampler (its detection training order: shuffled buckets of
    images sorted by aspect ratio) over every image, one global batch at a time."""
    from gluoncv.data.sampler import SplitSortedBucketSampler
    if len(ratios) < global_batch_size:
        raise UserError("the training set (%d images) is smaller than one global batch of %d"
                        % (len(ratios), global_batch_size))
    return SplitSortedBucketSampler(ratios, global_batch_size, shuffle=True)


def shuffled_sampler(length, global_batch_size):
    """A plain shuffled order (MXNet's RandomSampler, drawn from NumPy's global generator),
    `global_batch_size` images a batch, the last incomplete batch left out."""
    import mxnet as mx
    if length < global_batch_size:
        raise UserError("the training set (%d images) is smaller than one global batch of %d"
                        % (length, global_batch_size))
    return mx.gluon.data.BatchSampler(mx.gluon.data.RandomSampler(length), global_batch_size,
                                      "discard")


class KeyedTransform:
    """`transform(*dataset[index])` (or `dataset[index]` without a transform, for a dataset
    that draws its own augmentation) for the key (epoch, index), with the globals seeded from
    (seed, epoch, index) first: a Dataset for mx.gluon.data.DataLoader fed by EpochBatches."""

    def __init__(self, dataset, transform, seed):
        self.dataset, self.transform, self.seed = dataset, transform, seed

    def __getitem__(self, key):
        epoch, index = key
        _seed_globals(streams.transfer_sample_seed(self.seed, epoch, index))
        item = self.dataset[index]
        return item if self.transform is None else self.transform(*item)

    def __len__(self):
        return len(self.dataset)


class EpochLoader:
    """A DataLoader over EpochBatches: `epoch(epoch, first_batch)` iterates the batches of
    `epoch` from `first_batch` on; len() is the batches of an epoch."""

    def __init__(self, loader, batches):
        self.loader, self.batches = loader, batches

    def epoch(self, epoch, first_batch=0):
        self.batches.set_epoch(epoch, first_batch)
        return iter(self.loader)

    def __len__(self):
        return len(self.batches)
