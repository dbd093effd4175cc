"""The random streams of a run (gluon_tricks.streams): distinct from each other at every seed and
epoch, functions of their key only, and the data order and augmentation unchanged by the rework."""
import itertools

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks import streams
from gluon_tricks.data import sharding

SEEDS, EPOCHS = (0, 1), (0, 1, 2)


def _draws(rng):
    return tuple(rng.random(6))


def _every_stream(seed, epoch):
    """name -> the first draws of each stream a run uses at (seed, epoch)."""
    drawn = {("permutation", seed, epoch): _draws(streams.permutation_rng(seed, epoch))}
    for batch in range(3):
        drawn["mixup", seed, epoch, batch] = _draws(streams.mixup_rng(seed, epoch, batch))
    for index, attempt in itertools.product(range(3), range(2)):
        drawn["sample", seed, epoch, index, attempt] = _draws(
            streams.sample_rng(seed, epoch, index, attempt))
    return drawn


def test_no_two_streams_draw_the_same_numbers_at_seeds_0_and_1():
    drawn = {}
    for seed, epoch in itertools.product(SEEDS, EPOCHS):
        drawn.update(_every_stream(seed, epoch))
    for seed in SEEDS:  # the initialisation: MXNet's own generator, seeded with the seed
        streams.seed_initialisation(seed)
        drawn["init", seed] = tuple(mx.nd.random.uniform(shape=(6,)).asnumpy().astype(float))
    names = list(drawn)
    assert len(names) == len(SEEDS) * (len(EPOCHS) * (1 + 3 + 6) + 1)
    clashes = [(a, b) for a, b in itertools.combinations(names, 2) if drawn[a] == drawn[b]]
    assert not clashes
    first_values = [d[0] for d in drawn.values()]
    assert len(set(first_values)) == len(first_values)


def test_mixup_of_epoch_0_is_not_the_data_order_of_epoch_1():
    """The old layouts collided: mixup drew from (seed, epoch, 1), the permutation from
    (0, seed, epoch), so at seed 0 mixup's lambdas of epoch 0 were the data order of epoch 1."""
    for batch in range(4):
        mixup = streams.mixup_rng(0, 0, batch).random(8)
        assert not np.array_equal(mixup, streams.permutation_rng(0, 1).random(8))
        assert not np.array_equal(mixup, streams.permutation_rng(0, 0).random(8))


def test_streams_are_functions_of_their_key():
    assert _draws(streams.mixup_rng(3, 4, 5)) == _draws(streams.mixup_rng(3, 4, 5))
    assert _draws(streams.mixup_rng(3, 4, 5)) != _draws(streams.mixup_rng(3, 4, 6))
    assert _draws(streams.mixup_rng(3, 4, 5)) != _draws(streams.mixup_rng(3, 5, 5))
    assert _draws(streams.permutation_rng(3, 4)) == _draws(streams.permutation_rng(3, 4))


def test_data_order_and_augmentation_draws_are_those_of_before_the_rework():
    """Runs without mixup keep their numbers: the permutation is still numpy's default_rng of
    the words (0, seed, epoch), the per-image stream Philox keyed by the packed 128 bits."""
    n, seed, epoch = 50, 7, 3
    assert np.array_equal(sharding.epoch_permutation(n, seed, epoch),
                          np.random.default_rng([0, seed, epoch]).permutation(n))
    key = (seed << 64) | (epoch << 38) | (11 << 4) | 1
    assert np.array_equal(sharding.sample_rng(seed, epoch, 11, 1).random(4),
                          np.random.Generator(np.random.Philox(key=key)).random(4))


@pytest.mark.parametrize("call", [
    lambda: streams.permutation_rng(1 << 32, 0),  # would spill into the epoch's word
    lambda: streams.permutation_rng(-1, 0),
    lambda: streams.mixup_rng(0, 1 << 26, 0),
    lambda: streams.mixup_rng(0, 0, -1),
    lambda: streams.sample_rng(0, 0, 1 << 34),
])
def test_keys_out_of_their_word_are_refused(call):
    with pytest.raises(ValueError):
        call()
