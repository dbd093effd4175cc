"""Every random stream of a run, keyed in one place, by the seed and the position in training
only (so a resumed run draws what an uninterrupted one draws).

numpy streams are seeded with uint32 words (tag, seed, epoch[, counter]): every word below 2**32
and one tag per stream, as SeedSequence would otherwise merge keys ((0, 2**32, 1) is (0, 0, 1, 1);
trailing zeros do not count). Per-image augmentation is a Philox stream keyed by 128 bits."""
import numpy as np

SEED_LIMIT = 1 << 32  # --seed is one uint32 word of every key
EPOCH_LIMIT = 1 << 26  # the per-image Philox key's field widths
INDEX_LIMIT = 1 << 34
ATTEMPT_LIMIT = 1 << 4


class Tag:
    """The first word of each numpy stream's key (never reuse or renumber one: logged runs and
    checkpoints were drawn with these)."""
    PERMUTATION = 0  # data order of an epoch, shared by all ranks
    MIXUP = 2  # mixup's lambda of one batch (1 was mixup's old last word: kept unused)
    TRANSFER_ORDER = 3  # a transfer command's data order of an epoch (GluonCV's sampler)
    TRANSFER_STEP = 4  # the network's own draws in one step on one device (R-CNN's sampler)


def _check(seed, epoch):
    if not (0 <= seed < SEED_LIMIT and 0 <= epoch < EPOCH_LIMIT):
        raise ValueError("stream key out of range: seed %r (0 to 2**32 - 1), epoch %r"
                         % (seed, epoch))


def permutation_rng(seed, epoch):
    """The generator of the data order of `epoch` (the same on every rank)."""
    _check(seed, epoch)
    return np.random.default_rng([Tag.PERMUTATION, int(seed), int(epoch)])


def mixup_rng(seed, epoch, batch):
    """The generator of mixup's draws for batch `batch` of `epoch` (the same on every rank)."""
    _check(seed, epoch)
    if not 0 <= batch < SEED_LIMIT:
        raise ValueError("batch index out of range: %r" % (batch,))
    return np.random.default_rng([Tag.MIXUP, int(seed), int(epoch), int(batch)])


def _word(key):
    """A uint32 drawn from the numpy stream keyed by `key`, to seed a global generator."""
    return int(np.random.default_rng([int(k) for k in key]).integers(SEED_LIMIT))


def transfer_order_seed(seed, epoch):
    """The seed of Python's and NumPy's global generators while GluonCV's sampler draws the
    data order of `epoch` in a transfer command (the same on every rank)."""
    _check(seed, epoch)
    return _word([Tag.TRANSFER_ORDER, seed, epoch])


def transfer_step_seed(seed, epoch, batch, device):
    """The seed of MXNet's generator for the forward pass of batch `batch` of `epoch` on global
    device `device` (rank x devices per rank + local device)."""
    _check(seed, epoch)
    if not (0 <= batch < SEED_LIMIT and 0 <= device < SEED_LIMIT):
        raise ValueError("batch or device out of range: %r, %r" % (batch, device))
    return _word([Tag.TRANSFER_STEP, seed, epoch, batch, device])


def transfer_sample_seed(seed, epoch, index):
    """The seed of Python's and NumPy's global generators while GluonCV's transform of image
    `index` runs in `epoch` (in whichever worker process)."""
    return int(sample_rng(seed, epoch, index).integers(SEED_LIMIT))


def sample_rng(seed, epoch, index, attempt=0):
    """The generator of every draw for image `index` in `epoch`: Philox keyed by (seed; epoch,
    index, attempt), independent by construction and cheaper per image than a SeedSequence."""
    if not (0 <= seed < 1 << 64 and 0 <= epoch < EPOCH_LIMIT and 0 <= index < INDEX_LIMIT
            and 0 <= attempt < ATTEMPT_LIMIT):
        raise ValueError("sample key out of range: seed %r, epoch %r, index %r, attempt %r"
                         % (seed, epoch, index, attempt))
    key = (int(seed) << 64) | (int(epoch) << 38) | (int(index) << 4) | int(attempt)
    return np.random.Generator(np.random.Philox(key=key))


def seed_initialisation(seed):
    """Seed MXNet's global generator, which draws the network's initial weights."""
    import mxnet as mx
    mx.random.seed(int(seed))
