"""Which images each Horovod rank reads: disjoint equal training shares reshuffled every epoch
from a shared seed, and a validation split in which every image is seen exactly once."""
import numpy as np

from gluon_tricks import streams
from gluon_tricks.errors import UserError


def check_ranks(rank, num_ranks):
    if not (isinstance(num_ranks, int) and num_ranks >= 1 and 0 <= rank < num_ranks):
        raise UserError("rank %r is not in [0, num_ranks=%r)" % (rank, num_ranks))


def epoch_permutation(n, seed, epoch):
    """The order of all n images in `epoch`, the same on every rank (it depends on the seed)."""
    return streams.permutation_rng(seed, epoch).permutation(n)


def train_share(n, seed, epoch, rank, num_ranks):
    """This rank's images for `epoch`: block `rank` of n // num_ranks of the epoch's permutation
    (equal shares, so every rank runs the same steps; the leftovers change every epoch)."""
    size = n // num_ranks
    return epoch_permutation(n, seed, epoch)[rank * size:(rank + 1) * size]


def val_share(n, rank, num_ranks):
    """This rank's validation images: contiguous blocks covering 0..n-1 exactly once."""
    return np.arange(rank * n // num_ranks, (rank + 1) * n // num_ranks)


def sample_rng(seed, epoch, index, attempt=0):
    """The generator of image `index`'s augmentation in `epoch` (keyed in gluon_tricks.streams)."""
    return streams.sample_rng(seed, epoch, index, attempt)
