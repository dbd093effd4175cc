"""The loaders: Horovod sharding for 1-3 ranks, bit-identical epochs whatever the workers or the
history (exact resume), corrupt records skipped without shifting labels, and `bench data`."""
import json
import logging

import cv2
import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.data import sharding, transforms as T
from gluon_tricks.data.loader import TrainLoader, ValLoader
from gluon_tricks.data.sources import DataSource
from gluon_tricks.errors import UserError

SIZE = 16


@pytest.fixture(scope="module")
def rec_source(small_image_set):
    return DataSource.from_rec(small_image_set["rec"])


@pytest.mark.parametrize("num_ranks", [1, 2, 3])
def test_training_shares_are_disjoint_equal_and_reshuffled_every_epoch(rec_source, num_ranks):
    loaders = [TrainLoader(rec_source, 5, SIZE, num_workers=0, rank=r, num_ranks=num_ranks,
                           seed=11) for r in range(num_ranks)]
    n = len(rec_source)
    assert len({len(loader) for loader in loaders}) == 1
    assert len(loaders[0]) == (n // num_ranks) // 5
    orders = []
    for epoch in (0, 1):
        shares = [sharding.train_share(n, 11, epoch, r, num_ranks) for r in range(num_ranks)]
        together = np.concatenate(shares)
        assert len(together) == len(set(together.tolist())) == num_ranks * (n // num_ranks)
        for loader, share in zip(loaders, shares):
            assert np.array_equal(loader.indices(epoch).ravel(), share[:len(loader) * 5])
        orders.append(together)
    assert not np.array_equal(orders[0], orders[1])  # a new permutation every epoch


@pytest.mark.parametrize("num_ranks", [1, 2, 3])
def test_validation_sees_every_image_exactly_once_across_ranks(rec_source, num_ranks):
    seen, labels = [], []
    for rank in range(num_ranks):
        loader = ValLoader(rec_source, 5, SIZE, num_workers=0, rank=rank, num_ranks=num_ranks)
        seen.extend(loader.share.tolist())
        batches = list(loader)
        assert len(batches) == len(loader)
        assert all(data.shape[1:] == (3, SIZE, SIZE) for data, _ in batches)
        labels.extend(np.concatenate([label.asnumpy() for _, label in batches]).tolist())
    assert sorted(seen) == list(range(len(rec_source)))
    assert sorted(labels) == sorted(rec_source.labels.tolist())


def test_validation_is_deterministic_and_labels_match_the_pixels(rec_source):
    loader = ValLoader(rec_source, 8, SIZE, num_workers=2)
    first = [(d.asnumpy(), y.asnumpy()) for d, y in loader]
    second = [(d.asnumpy(), y.asnumpy()) for d, y in loader]
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(first, second))
    data = np.concatenate([d for d, _ in first]) * np.asarray(T.STD_RGB)[:, None, None]
    grey = (data + np.asarray(T.MEAN_RGB)[:, None, None]).mean(axis=(1, 2, 3))
    labels = np.concatenate([y for _, y in first])
    assert np.allclose(grey, 40 + 80 * labels + 10 / 16, atol=3)  # the fixture's grey levels


def test_epochs_are_bit_identical_whatever_the_workers_or_the_history(rec_source):
    def epoch(loader, e):
        return [(d.asnumpy(), y.asnumpy()) for d, y in loader.epoch(e)]
    inline = TrainLoader(rec_source, 6, SIZE, num_workers=0, seed=3, zero_copy=False)
    parallel = TrainLoader(rec_source, 6, SIZE, num_workers=2, seed=3)
    later_first = epoch(parallel, 2)
    reference = [epoch(inline, e) for e in (0, 1, 2)]
    assert len(reference[0]) == len(inline) == 6
    for got, expected in ((epoch(parallel, 0), reference[0]), (later_first, reference[2]),
                          (epoch(parallel, 2), reference[2])):
        assert all(np.array_equal(g[0], e[0]) and np.array_equal(g[1], e[1])
                   for g, e in zip(got, expected))
    assert not np.array_equal(reference[0][0][0], reference[1][0][0])
    data, label = next(iter(parallel.epoch(0)))  # abandoning an epoch half-way is fine too
    assert isinstance(data, mx.nd.NDArray) and data.dtype == np.float32 and data.shape == (
        6, 3, SIZE, SIZE) and label.dtype == np.float32 and label.shape == (6,)
    assert np.array_equal(data.asnumpy(), reference[0][0][0])
    assert np.array_equal(epoch(parallel, 1)[0][0], reference[1][0][0])
    parallel.close()


def test_a_new_epoch_ends_the_previous_iterator_without_mixing_batches(rec_source):
    loader = TrainLoader(rec_source, 6, SIZE, num_workers=2, seed=3)
    reference = [d.asnumpy() for d, _ in TrainLoader(rec_source, 6, SIZE, num_workers=0,
                                                     seed=3).epoch(1)]
    old = loader.epoch(0)
    next(old)
    new = [d.asnumpy() for d, _ in loader.epoch(1)]
    assert len(new) == len(reference) and all(np.array_equal(a, b) for a, b in zip(new, reference))
    assert list(old) == []
    loader.close()


def test_batches_held_by_the_consumer_stay_intact(rec_source):
    loader = TrainLoader(rec_source, 4, SIZE, num_workers=2, seed=5)
    reference = [d.asnumpy() for d, _ in TrainLoader(rec_source, 4, SIZE, num_workers=0,
                                                     seed=5).epoch(0)]
    kept = [d for d, _ in loader.epoch(0)]  # more than the loader lends: later ones are copies
    assert all(np.array_equal(k.asnumpy(), r) for k, r in zip(kept, reference))
    loader.close()


def test_gluoncv_flavour_produces_normalised_batches(rec_source):
    loader = TrainLoader(rec_source, 12, SIZE, flavour="gluoncv", num_workers=0)
    data, label = next(iter(loader.epoch(0)))
    assert data.shape == (12, 3, SIZE, SIZE) and abs(float(data.mean().asscalar())) < 2


@pytest.fixture
def corrupt_source(tmp_path):
    """20 records, label i % 4, grey level 20 + 10 * i; records 3, 7 and 12 corrupt."""
    writer = mx.recordio.MXIndexedRecordIO(str(tmp_path / "c.idx"), str(tmp_path / "c.rec"), "w")
    for i in range(20):
        buf = cv2.imencode(".jpg", np.full((24, 32, 3), 20 + 10 * i, np.uint8))[1].tobytes()
        buf = {3: buf[:len(buf) // 2], 7: b"\x00" * 50, 12: b"\xff\xd8garbage\xff\xd9"}.get(i, buf)
        writer.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, i % 4, i, 0), buf))
    writer.close()
    return DataSource.from_rec(str(tmp_path / "c.rec")), {3, 7, 12}


def test_corrupt_records_are_replaced_counted_and_never_shift_labels(corrupt_source, caplog):
    source, corrupt = corrupt_source
    loader = TrainLoader(source, 4, SIZE, num_workers=2, seed=1)
    for epoch in (0, 1):
        indices = loader.indices(epoch)
        share = sharding.train_share(len(source), 1, epoch, 0, 1)
        with caplog.at_level(logging.WARNING, logger="gluon_tricks.data"):
            caplog.clear()
            batches = list(loader.epoch(epoch))
        expected_skips = sum(int(i) in corrupt for i in indices.ravel())
        assert loader.skipped == expected_skips
        assert ("skipped %d corrupt" % expected_skips in caplog.text) == (expected_skips > 0)
        for b, (data, label) in enumerate(batches):
            assert data.shape[0] == 4
            spares = [int(i) for i in np.take(share, range((b + 1) * 4, (b + 1) * 4 + 8),
                                              mode="wrap")]
            for j, index in enumerate(indices[b]):
                attempt, index = 0, int(index)
                if index in corrupt:  # the next readable spare, with its own label
                    while spares[0] in corrupt:
                        spares.pop(0)
                    attempt, index = 1, spares.pop(0)
                assert label.asnumpy()[j] == index % 4
                out = np.empty((3, SIZE, SIZE), np.float32)
                assert T.train_sample(source.read(index)[1],
                                      sharding.sample_rng(1, epoch, index, attempt), SIZE,
                                      "paper", out)
                assert np.array_equal(data.asnumpy()[j], out)
    # validation drops them: every readable image once, labels matching pixels
    val = ValLoader(source, 6, SIZE, num_workers=0)
    labels = np.concatenate([y.asnumpy() for _, y in val])
    assert val.skipped == 3 and sorted(labels) == sorted(i % 4 for i in range(20)
                                                         if i not in corrupt)


def test_a_training_batch_with_nothing_readable_is_an_error_not_a_missing_step(tmp_path):
    writer = mx.recordio.MXIndexedRecordIO(str(tmp_path / "x.idx"), str(tmp_path / "x.rec"), "w")
    for i in range(16):
        writer.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, i % 2, i, 0), b"junk"))
    writer.close()
    loader = TrainLoader(DataSource.from_rec(str(tmp_path / "x.rec")), 4, SIZE, num_workers=0)
    with pytest.raises(UserError, match="corrupt"):
        next(iter(loader.epoch(0)))


def test_bad_arguments_are_user_errors(rec_source):
    for kwargs in ({"batch_size": 0}, {"batch_size": 40}, {"flavour": "timm"},
                   {"rank": 2, "num_ranks": 2}, {"seed": -1}):
        arguments = dict(batch_size=4, input_size=SIZE, num_workers=0)
        arguments.update(kwargs)
        with pytest.raises(UserError):
            TrainLoader(rec_source, **arguments)
    with pytest.raises(UserError):
        ValLoader(rec_source, 4, SIZE, crop_ratio=1.5)


def test_bench_data_prints_both_pipelines_and_their_ratio(small_image_set, cli):
    status, out, err = cli("bench", "data", "--rec", small_image_set["rec"], "--idx",
                           small_image_set["idx"], "--workers", "1", "--batch-size", "12",
                           "--input-size", "32", "--images", "24", "--rounds", "1", "--json")
    assert status == 0, err
    result = json.loads(out)
    assert set(result) == {"ours", "recorditer", "ratio"}
    assert result["ours"] > 0 and result["recorditer"] > 0
    assert abs(result["ratio"] - result["ours"] / result["recorditer"]) < 1e-9
