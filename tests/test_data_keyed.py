"""GluonCV-style samplers and transforms whose random draws are keyed by (seed, epoch, image)
(data/keyed.py): the same batches whatever the loader workers, the ranks sharing them, the
history of the global generators, or the batch a run resumes at."""
import random

import mxnet as mx
import numpy as np

from gluon_tricks.data import keyed


def _noisy(image, label):
    """A transform drawing from NumPy's and Python's global generators, as GluonCV's do."""
    return image + np.random.uniform(size=image.shape).astype("float32") + random.random(), label


def _dataset(count=12):
    return mx.gluon.data.SimpleDataset([(np.full((2,), i, "float32"), i) for i in range(count)])


def _batches(loader, epoch, first=0):
    return [(data.asnumpy(), label.asnumpy()) for data, label in loader.epoch(epoch, first)]


def _loader(batch_size, rank=0, ranks=1, workers=0, seed=5):
    dataset = _dataset()
    batches = keyed.EpochBatches(keyed.shuffled_sampler(len(dataset), batch_size * ranks),
                                 batch_size, seed, rank, ranks)
    return keyed.EpochLoader(mx.gluon.data.DataLoader(
        keyed.KeyedTransform(dataset, _noisy, seed), batch_sampler=batches,
        num_workers=workers), batches)


def test_the_batches_depend_on_seed_and_epoch_only():
    loader = _loader(4)
    first = _batches(loader, 1)
    np.random.seed(99)
    random.seed(99)
    again = _batches(loader, 1)
    assert len(first) == len(loader) == 3
    for (a, la), (b, lb) in zip(first, again):
        assert np.array_equal(a, b) and np.array_equal(la, lb)
    other = _batches(loader, 2)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, other))
    resumed = _batches(loader, 1, first=2)
    assert len(resumed) == 1 and np.array_equal(resumed[0][0], first[2][0])


def test_workers_and_ranks_give_the_images_of_one_process():
    whole = _batches(_loader(4), 0)
    with_workers = _batches(_loader(4, workers=2), 0)
    halves = [_batches(_loader(2, rank, 2), 0) for rank in (0, 1)]
    for i, (data, label) in enumerate(whole):
        assert np.array_equal(data, with_workers[i][0])
        assert np.array_equal(data, np.concatenate([halves[0][i][0], halves[1][i][0]]))
        assert np.array_equal(label, np.concatenate([halves[0][i][1], halves[1][i][1]]))


def test_a_dataset_drawing_its_own_augmentation_is_seeded_too():
    class Drawing:
        def __getitem__(self, index):
            return np.random.uniform(), index

        def __len__(self):
            return 4
    plain = keyed.KeyedTransform(Drawing(), None, seed=3)
    assert plain[(0, 1)] == plain[(0, 1)] and plain[(0, 1)] != plain[(1, 1)]
