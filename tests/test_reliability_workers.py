"""Dead data workers: killed mid-epoch, a worker is replaced and the batches it owed are filled
again, so the stream is unchanged; workers that keep dying stop the stream with one clear error."""
import logging
import os
import signal
import time

import numpy as np
import pytest

from gluon_tricks.data.loader import TrainLoader, ValLoader
from gluon_tricks.data.sources import DataSource
from gluon_tricks.data.workers import WorkerPool, WorkersKeepDying

SIZE = 16


class _SlowFill:
    """Task k: the batch filled with k; slow enough that a worker killed mid-stream owes one."""

    def __init__(self, die_on=None):
        self.die_on = die_on

    def __call__(self, task, data, labels):
        if task == self.die_on:
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does
        time.sleep(0.05)
        data[:] = task
        labels[:] = task
        return len(labels), task


def test_a_killed_worker_is_replaced_and_its_batches_are_redone_in_order(caplog):
    pool = WorkerPool(_SlowFill(), 2, (3, 2, 2))
    seen = []
    with caplog.at_level(logging.WARNING, logger="gluon_tricks.data.workers"):
        for meta, data, label in pool.map(range(20)):
            seen.append((meta, float(data.asnumpy().mean()), float(label.asnumpy()[0])))
            if meta == 3:
                victim = pool.worker_pids()[0]
                os.kill(victim, signal.SIGKILL)
    assert seen == [(k, float(k), float(k)) for k in range(20)]
    assert pool.deaths == 1 and victim not in pool.worker_pids() and len(pool.worker_pids()) == 2
    lines = [r.getMessage() for r in caplog.records if "died" in r.getMessage()]
    assert len(lines) == 1 and str(victim) in lines[0] and "replaced" in lines[0]
    assert "signal 9" in lines[0]
    # the pool goes on serving further streams
    assert [meta for meta, _, _ in pool.map(range(5))] == list(range(5))
    pool.close()


def test_a_worker_killed_after_its_last_batch_is_reported_when_the_stream_ends(caplog):
    """A worker that dies owing nothing (its batches all delivered) is still found and replaced
    before the stream ends: the run's log says so, not a stderr line after the run has closed
    its log (a 1-epoch run of few batches lost the line that way)."""
    pool = WorkerPool(_SlowFill(), 2, (3, 2, 2))
    with caplog.at_level(logging.WARNING, logger="gluon_tricks.data.workers"):
        for meta, _, _ in pool.map(range(6)):
            if meta == 5:  # the last batch: every result is in, nobody owes anything
                victim = pool.worker_pids()[0]
                os.kill(victim, signal.SIGKILL)
                time.sleep(0.2)
        lines = [r.getMessage() for r in caplog.records if "died" in r.getMessage()]
    assert pool.deaths == 1 and victim not in pool.worker_pids()
    assert len(lines) == 1 and str(victim) in lines[0] and "0 batch(es) redone" in lines[0]
    pool.close()


def test_workers_that_keep_dying_stop_the_stream_with_the_cause():
    pool = WorkerPool(_SlowFill(die_on=4), 2, (3, 2, 2))
    tic = time.time()
    with pytest.raises(WorkersKeepDying, match=r"3 data workers died in a row.*signal 9.*out "
                                               r"of memory"):
        for _ in pool.map(range(10)):
            pass
    assert time.time() - tic < 30  # never a hang
    assert pool.worker_pids() == []
    pool.close()


@pytest.fixture(scope="module")
def rec_source(small_image_set):
    return DataSource.from_rec(small_image_set["rec"])


@pytest.mark.parametrize("which", ["train", "val", "both"])
def test_killing_loader_workers_changes_nothing_in_the_batches(rec_source, which):
    def make(workers):
        if which == "val":
            return ValLoader(rec_source, 4, SIZE, num_workers=workers)
        return TrainLoader(rec_source, 4, SIZE, num_workers=workers, seed=2)

    def batches(loader, kill):
        out = []
        stream = loader.epoch(1) if which != "val" else iter(loader)
        for i, (data, label) in enumerate(stream):
            out.append((data.asnumpy(), label.asnumpy()))
            if i == 1 and kill:
                for pid in loader._pool.worker_pids()[:2 if which == "both" else 1]:
                    os.kill(pid, signal.SIGKILL)
        return out
    reference = batches(make(0), kill=False)
    loader = make(2)
    killed = batches(loader, kill=True)
    assert loader._pool.deaths == (2 if which == "both" else 1)
    assert len(killed) == len(reference)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(killed, reference))
    loader.close()


def test_an_epoch_started_mid_way_yields_the_same_batches_from_there(rec_source):
    loader = TrainLoader(rec_source, 4, SIZE, num_workers=2, seed=4)
    whole = [(d.asnumpy(), y.asnumpy()) for d, y in loader.epoch(3)]
    tail = [(d.asnumpy(), y.asnumpy()) for d, y in loader.epoch(3, first_batch=5)]
    assert len(tail) == len(whole) - 5
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(whole[5:], tail))
    loader.close()
