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
from gluon_tricks.data import workers
from gluon_tricks.data.workers import DataWaitStopped, WorkerPool, WorkersKeepDying
from gluon_tricks.errors import UserError

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


def _wait_until_dead(pid, timeout=10.0):
    """Until `pid` has exited, every thread of it (a zombie its parent can reap), or is gone. Its
    main thread shows 'Z' while other threads still exit: waitpid cannot reap it yet."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state in ("Z", "X") and len(os.listdir("/proc/%d/task" % pid)) <= 1:
                return
        except OSError:
            return
        time.sleep(0.01)
    raise AssertionError("process %d still alive %.0f s after SIGKILL" % (pid, timeout))


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
                _wait_until_dead(victim)  # not a fixed sleep: a loaded machine is slow to kill
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


# -- stuck workers (SIGSTOP, a hung read), stop requests while waiting, death causes ----------


def _batches(stream):
    return [(d.asnumpy(), y.asnumpy()) for d, y in stream]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])
                                    for x, y in zip(a, b))


def _gone(pid):
    """True once process `pid` no longer exists (killed and reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_stopped_worker_is_killed_after_the_data_timeout_and_the_batches_are_unchanged(
        rec_source, caplog):
    reference = _batches(TrainLoader(rec_source, 4, SIZE, num_workers=0, seed=3).epoch(2))
    loader = TrainLoader(rec_source, 4, SIZE, num_workers=2, seed=3, data_timeout=1.5)
    out = []
    with caplog.at_level(logging.WARNING, logger="gluon_tricks.data.workers"):
        for i, (data, label) in enumerate(loader.epoch(2)):
            out.append((data.asnumpy(), label.asnumpy()))
            if i == 1:
                victim = loader._pool.worker_pids()[0]
                os.kill(victim, signal.SIGSTOP)  # as a read hung on NFS
    assert _same(out, reference)
    assert loader.worker_deaths == 1 and _gone(victim)
    lines = [r.getMessage() for r in caplog.records if str(victim) in r.getMessage()]
    assert len(lines) == 1
    assert "sent no batch for 2 s (--data-timeout 1.5) while at " in lines[0]
    assert ("(the record at byte" in lines[0] and "small.rec)" in lines[0]
            or "a batch it had not started" in lines[0])
    assert "killed with SIGKILL; replaced, its" in lines[0]
    assert loader.worker_reports() == lines and loader.worker_reports() == []
    loader.close()


class _HangingFill:
    """Task k fills the batch with k, noting image 10 k + 7 as the one it reads; task `hang_on`
    hangs in that read (a sleep) in the first worker that gets it (in every one without a
    marker file)."""

    reports_reading = True

    def __init__(self, hang_on, marker):
        self.hang_on, self.marker = hang_on, marker

    def __call__(self, task, data, labels, reading=None):
        reading[0] = 10 * task + 7
        if task == self.hang_on and (self.marker is None or not os.path.exists(self.marker)):
            if self.marker is not None:
                open(self.marker, "w").close()
            time.sleep(3600)
        data[:] = task
        labels[:] = task
        return len(labels), task


def test_a_worker_hung_in_a_read_is_named_with_the_image_it_reads(tmp_path, caplog):
    pool = WorkerPool(_HangingFill(4, str(tmp_path / "hung")), 2, (3, 2, 2), data_timeout=1.0,
                      describe=lambda task, index: "image %d of task %d" % (index, task))
    with caplog.at_level(logging.WARNING, logger="gluon_tricks.data.workers"):
        seen = [(meta, float(data.asnumpy().mean())) for meta, data, _ in pool.map(range(8))]
    assert seen == [(k, float(k)) for k in range(8)]
    lines = [r.getMessage() for r in caplog.records if "sent no batch" in r.getMessage()]
    assert len(lines) == 1 and "while at image 47 of task 4: killed with SIGKILL" in lines[0]
    assert pool.deaths == 1
    pool.close()


def test_workers_that_keep_hanging_stop_the_stream_saying_so():
    pool = WorkerPool(_HangingFill(2, None), 1, (3, 2, 2), data_timeout=0.5)
    tic = time.time()
    with pytest.raises(WorkersKeepDying, match=r"3 data workers died in a row .*sent no batch "
                                               r"for \d s \(--data-timeout 0.5\) while at task "
                                               r".*is the data's storage hanging\?"):
        for _ in pool.map(range(5)):
            pass
    assert time.time() - tic < 30  # never a hang
    assert pool.worker_pids() == []
    pool.close()


def test_a_stop_request_ends_a_wait_on_a_stopped_worker_and_leaks_no_process(rec_source):
    armed, asked = [], []

    def stop_requested():  # True at the fourth question once every worker is stopped
        if armed:
            asked.append(time.monotonic())
        return len(asked) >= 4
    loader = TrainLoader(rec_source, 4, SIZE, num_workers=2, seed=3,
                         stop_requested=stop_requested)
    stream = loader.epoch(0)
    next(stream)
    pids = loader._pool.worker_pids()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)  # as reads hung on NFS
    armed.append(True)
    tic = time.monotonic()
    with pytest.raises(DataWaitStopped, match="stopped while waiting for data"):
        for _ in stream:
            pass
    assert time.monotonic() - tic < 20  # never a hang (4 polls of 0.5 s)
    assert len(asked) == 4 and max(b - a for a, b in zip(asked, asked[1:])) < 2.0
    assert all(_gone(pid) for pid in pids) and loader._pool.worker_pids() == []
    # the loader serves the next epoch as if nothing happened, then closes cleanly
    armed.clear()
    asked.clear()
    reference = _batches(TrainLoader(rec_source, 4, SIZE, num_workers=0, seed=3).epoch(1))
    assert _same(_batches(loader.epoch(1)), reference)
    pids = loader._pool.worker_pids()
    loader.close()
    assert all(_gone(pid) for pid in pids)


@pytest.mark.parametrize("kind", ["train", "val"])
def test_both_loaders_take_the_wait_arguments_also_without_workers(rec_source, kind):
    never = []

    def stop_requested():
        never.append(1)
        return False
    for count in (0, 2):
        if kind == "train":
            loader = TrainLoader(rec_source, 4, SIZE, num_workers=count, data_timeout=30,
                                 stop_requested=stop_requested)
            assert len(list(loader.epoch(0))) == len(loader)
        else:
            loader = ValLoader(rec_source, 4, SIZE, num_workers=count, data_timeout=0,
                               stop_requested=stop_requested)
            assert len(list(loader)) == len(loader)
        loader.close()
    for bad in (-1, "10", float("nan"), float("inf")):
        with pytest.raises(UserError, match="data timeout must be a number of seconds"):
            TrainLoader(rec_source, 4, SIZE, num_workers=0, data_timeout=bad)
    with pytest.raises(UserError, match="stop_requested must be a callable"):
        ValLoader(rec_source, 4, SIZE, num_workers=0, stop_requested=True)


def test_a_sigkill_from_another_process_is_not_blamed_on_the_oom_killer(caplog, monkeypatch):
    counts = {"oom_kill": 5}
    monkeypatch.setattr(workers, "oom_kill_count", lambda: counts["oom_kill"])
    pool = WorkerPool(_SlowFill(), 2, (3, 2, 2))
    with caplog.at_level(logging.WARNING, logger="gluon_tricks.data.workers"):
        for meta, _, _ in pool.map(range(12)):
            if meta == 2:
                victim = pool.worker_pids()[0]
                os.kill(victim, signal.SIGKILL)  # the test is another process
                _wait_until_dead(victim)
            if meta == 7:
                counts["oom_kill"] += 1  # as the kernel counts an out-of-memory kill
                victim = pool.worker_pids()[1]
                os.kill(victim, signal.SIGKILL)
                _wait_until_dead(victim)
    lines = [r.getMessage() for r in caplog.records if "died" in r.getMessage()]
    assert len(lines) == 2
    assert "signal 9, SIGKILL, by another process (not the out-of-memory killer" in lines[0]
    assert "out-of-memory killer (the kernel's oom_kill count rose by 1" in lines[1]
    pool.close()


def test_without_a_readable_oom_count_a_sigkill_names_both_causes(caplog, monkeypatch):
    monkeypatch.setattr(workers, "oom_kill_count", lambda: None)
    pool = WorkerPool(_SlowFill(), 1, (3, 2, 2))
    with caplog.at_level(logging.WARNING, logger="gluon_tricks.data.workers"):
        for meta, _, _ in pool.map(range(6)):
            if meta == 1:
                os.kill(pool.worker_pids()[0], signal.SIGKILL)
    assert "killed by signal 9, SIGKILL (out of memory or killed by another process)" in caplog.text
    pool.close()


def test_the_kernels_oom_kill_count_is_read_here():
    """The counter the causes come from exists on this machine (cgroup v2 or /proc/vmstat)."""
    count = workers.oom_kill_count()
    assert count is None or count >= 0
    if os.path.exists("/proc/vmstat"):
        assert isinstance(count, int)


def test_worker_deaths_on_another_rank_are_kept_for_rank_0s_log(rec_source):
    loader = TrainLoader(rec_source, 4, SIZE, num_workers=2, rank=1, num_ranks=2, seed=1)
    for i, _ in enumerate(loader.epoch(0)):
        if i == 0:
            victim = loader._pool.worker_pids()[1]
            os.kill(victim, signal.SIGKILL)
            time.sleep(0.2)  # dead before the last look of a short epoch
    reports = loader.worker_reports()
    assert len(reports) == 1 and reports[0].startswith("data worker %d of rank 1 died (" % victim)
    assert loader.worker_reports() == [] and loader.worker_deaths == 1
    loader.close()
