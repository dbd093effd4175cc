"""Every random stream of a run, keyed in one place: named tags, one layout.

A stream is a function of the run's seed and its position in training only (epoch, batch, image),
never of what ran before, so a resumed run draws exactly what an uninterrupted one draws.

Layout. The numpy streams are seeded with the uint32 words (tag, seed, epoch[, counter]): the tag
comes first and names the stream, and each tag has one fixed number of words. Two rules keep
distinct keys apart, both forced by how numpy's SeedSequence reads its entropy: every word is
below 2**32 (a larger seed would spill into the next word: (0, 2**32, 1) is (0, 0, 1, 1)), and no
two streams share a tag (trailing zero words do not count: (0, s, e) is (0, s, e, 0)).
The per-image augmentation stream is a counter-based Philox generator, a family apart, keyed by
128 bits packed from (seed; epoch, index, attempt). Weight initialisation uses MXNet's own global
generator, seeded with the run's seed.
"""
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
    """The generator of mixup's draws for batch `batch` of `epoch` (the same on every rank), so
    that a run resumed in the middle of an epoch draws what it would have drawn."""
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
    """The generator of every random draw for image `index` in `epoch`: a function of these
    numbers only, so a batch comes out bit-identical whatever the workers or the history.

    A counter-based Philox stream keyed by (seed; epoch, index, attempt): independent streams by
    construction, and cheaper to set up per image than hashing a seed sequence."""
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
