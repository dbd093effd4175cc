"""The ADE20K sets of a segmentation run, checked before use, and GluonCV's loaders over them:
its ADE20KSegmentation (random mirror, scale, pad, crop and blur in training; the short side
resized to the crop and a centre crop in validation; whole images for multi-scale testing),
normalised as its train.py does.

Two departures make runs reproducible: the pairs are in sorted order (GluonCV keeps the file
system's), and every training image's augmentation draws from its own seed, derived from
(seed, epoch, image) (data.keyed), so the data of an epoch is the same whichever worker reads
it and wherever the run was resumed.
"""
import numpy as np

from gluon_tricks import streams
from gluon_tricks.data import ade20k, keyed
from gluon_tricks.errors import UserError

MEAN, STD = (.485, .456, .406), (.229, .224, .225)  # GluonCV's train.py normalisation


def checked_set(root, split, num_class):
    """Validate `split` of the ADE20K layout under `root` (one line naming the first defect);
    returns the number of images."""
    return ade20k.validate_ade20k(root, split, num_class)["images"]


def gluoncv_dataset(root, split, mode, base_size, crop_size, num_class):
    """GluonCV's ADE20KSegmentation of `split` in `mode` ('train', 'val' or 'testval'), its
    image/mask pairs sorted by name and its class count `num_class` (ADE20K's 150, or fewer for
    a smaller set in the same layout)."""
    from gluoncv.data import ADE20KSegmentation
    from mxnet.gluon.data.vision import transforms
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    dataset = ADE20KSegmentation(root=root, split=split, mode=mode, transform=transform,
                                 base_size=base_size, crop_size=crop_size)
    pairs = sorted(zip(dataset.images, dataset.masks))
    dataset.images, dataset.masks = [p[0] for p in pairs], [p[1] for p in pairs]
    dataset.NUM_CLASS = num_class  # read by num_class; the instance's, not the class's
    return dataset


class RolloverBatches:
    """The batches of one epoch, as GluonCV's loader (shuffle, last_batch='rollover') makes
    them: the images an epoch leaves over (fewer than a global batch) open the next one. The
    order of epoch e is a permutation drawn from (seed, e), so any epoch's batches, the
    carried-over images included, follow from (seed, e) alone: a resumed run reads what an
    uninterrupted one would. A global batch is `batch_size x ranks` images; rank `rank` takes
    its `batch_size` of each (images rank*batch_size...). Yields lists of keys (e, index), e
    the epoch whose order drew the image (each key comes once in a run), for
    data.keyed.KeyedTransform; `set_epoch` first."""

    def __init__(self, size, batch_size, seed, rank=0, ranks=1):
        if size < batch_size * ranks:
            raise UserError("the training set has %d images, fewer than one global batch of %d "
                            "(--batch-size %d x %d ranks)" % (size, batch_size * ranks,
                                                                batch_size, ranks)
                            if ranks > 1 else "the training set has %d images, fewer than "
                            "--batch-size %d" % (size, batch_size))
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.global_batch_size = rank, batch_size * ranks
        self.epoch, self.first = 0, 0

    def order(self, epoch):
        return np.random.default_rng(streams.transfer_order_seed(self.seed, epoch)).permutation(
            self.size)

    def carried(self, epoch):
        """How many images epoch `epoch` takes over from the one before."""
        return (epoch * self.size) % self.global_batch_size

    def set_epoch(self, epoch, first=0):
        """The next iteration yields `epoch`'s batches from batch `first` on."""
        self.epoch, self.first = epoch, first
        return self

    def __len__(self):
        return (self.carried(self.epoch) + self.size) // self.global_batch_size

    def __iter__(self):
        epoch, carried, step = self.epoch, self.carried(self.epoch), self.global_batch_size
        previous = self.order(epoch - 1)[self.size - carried:] if carried else []
        stream = ([(epoch - 1, int(i)) for i in previous]
                  + [(epoch, int(i)) for i in self.order(epoch)])
        for start in range(self.first * step, len(self) * step, step):
            begin = start + self.rank * self.batch_size
            yield stream[begin:begin + self.batch_size]


def train_loader(dataset, batch_size, num_workers, seed, rank=0, ranks=1):
    """GluonCV's shuffled rollover training loader over `dataset` (mode 'train'), its
    augmentation keyed by (seed, epoch, image) (data.keyed), `batch_size` images of each
    global batch for rank `rank` of `ranks`; its `epoch(epoch, first_batch)` gives the batches
    of an epoch."""
    import mxnet as mx
    batches = RolloverBatches(len(dataset), batch_size, seed, rank, ranks)
    return keyed.EpochLoader(mx.gluon.data.DataLoader(
        keyed.KeyedTransform(dataset, None, seed), batch_sampler=batches,
        num_workers=num_workers), batches)


def val_loader(dataset, batch_size, num_workers, share=0, shares=1):
    """Every validation image once, in order (GluonCV's loader rolls the last partial batch
    over to the next validation, so each of its validations sees a different subset); of
    `shares` (one per device of every rank), share `share` takes images share, share + shares,
    ... (their metric counts are summed: loop.validate)."""
    import mxnet as mx
    if len(dataset) < shares:
        raise UserError("the validation set (%d images) has fewer images than the %d devices "
                        "sharing it" % (len(dataset), shares))
    return mx.gluon.data.DataLoader(dataset, batch_size, last_batch="keep",
                                    sampler=list(range(share, len(dataset), shares)),
                                    num_workers=num_workers)


def testval_loader(dataset, num_workers):
    """Whole images of any size, one per batch, for MultiEvalModel (GluonCV's test.py)."""
    import mxnet as mx
    from gluoncv.data import ms_batchify_fn
    return mx.gluon.data.DataLoader(dataset, 1, shuffle=False, last_batch="keep",
                                    batchify_fn=ms_batchify_fn, num_workers=num_workers)
