"""Faults injected into whole training runs on tiny real images: a signal at a random batch (the
rerun ends on bitwise the uninterrupted weights), interval checkpoints, a second run in the same
save dir, a stale lock, a damaged newest checkpoint, a killed data worker, hostile or swapped
resume files, and eval of NaN weights. Exit codes, messages, files and final weights."""
import json
import os
import pickle
import signal

import mxnet as mx
import numpy as np
import pytest

from conftest import read_params, small_tmpfs, write_disc_folder
from gluon_tricks.cli import main
from gluon_tricks.training.preemption import PREEMPTED_EXIT_CODE
from gluon_tricks.training.savedir_lock import LOCK_NAME, RunLock

TINY = ["--model", "resnet18_v1d", "--input-size", "32", "--batch-size", "8", "-j", "0",
        "--log-interval", "2", "--num-epochs", "2", "--save-frequency", "1"]
TRICKS = ["--warmup-epochs", "1", "--lr-mode", "cosine", "--last-gamma", "--no-wd",
          "--label-smoothing", "--mixup", "--lr", "0.05"]
FINAL = "resnet18_v1d-0002.params"
ONE_EPOCH = ["--num-epochs", "1", "--warmup-epochs", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability_data")
    write_disc_folder(root / "train", 8, seed=1)  # 32 images: 4 batches of 8 per epoch
    write_disc_folder(root / "val", 3, seed=2)
    return root


def _flags(data, out, *extra):
    return ["train", *TINY, *TRICKS, "--train-dir", str(data / "train"), "--val-dir",
            str(data / "val"), "--save-dir", str(out), "--logging-file",
            str(os.path.join(str(out), "train.log")), *extra]


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _same(a, b):
    """Equal weights to 1e-6: on this CPU a resumed run ends bitwise equal to the uninterrupted
    one, and the margin allows for kernels that round differently elsewhere, while a resume that
    lost or repeated a batch, a mixup draw or the momentum differs by 1e-3 or more."""
    a, b = read_params(a), read_params(b)
    return a.keys() == b.keys() and max(np.abs(a[k] - b[k]).max() for k in a) < 1e-6


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """The uninterrupted run's save dir."""
    out = tmp_path_factory.mktemp("reference")
    assert main(_flags(data, out)) == 0
    return out


def _signal_at(monkeypatch, signum, batch):
    """Send `signum` to this process while the step of global batch `batch` (from 1) runs."""
    from gluon_tricks.training import loop
    real, calls = loop.smooth_one_hot, []

    def with_signal(*args, **kwargs):
        calls.append(1)
        if len(calls) == batch:
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)
    monkeypatch.setattr(loop, "smooth_one_hot", with_signal)


@pytest.mark.parametrize("signum,batch", [
    (signal.SIGTERM, None), (signal.SIGUSR1, None),  # None: a random batch (seeded)
    (signal.SIGINT, 4)])  # the last batch of epoch 0: the rerun starts at an empty epoch end
def test_a_signal_at_a_random_batch_saves_mid_epoch_and_the_rerun_ends_equal(
        data, reference, tmp_path, capsys, monkeypatch, signum, batch):
    if batch is None:  # of the 8 steps of 2 epochs
        batch = int(np.random.default_rng(int(signum)).integers(1, 8))
    _signal_at(monkeypatch, signum, batch)
    status, out, err = _run(capsys, *_flags(data, tmp_path))
    assert status == PREEMPTED_EXIT_CODE and err.count("\n") == 1
    epoch, done = (batch - 1) // 4, (batch - 1) % 4 + 1  # 4 batches an epoch
    assert "stopped by %s at epoch %d after batch %d" % (signal.Signals(signum).name, epoch,
                                                          done) in err
    saved = tmp_path / ("resnet18_v1d-%04d-batch%06d.json" % (epoch, done))
    assert json.load(open(saved))["batch"] == done
    monkeypatch.undo()
    status, out, err = _run(capsys, *_flags(data, tmp_path))
    assert status == 0, err
    assert _same(tmp_path / FINAL, reference / FINAL)


def test_interval_checkpoints_keep_the_newest_k_and_change_nothing(data, reference, tmp_path,
                                                                   capsys):
    status, out, err = _run(capsys, *_flags(data, tmp_path, "--save-interval-minutes", "1e-9",
                                            "--keep-checkpoints", "2"))
    assert status == 0, err
    mid = sorted(n for n in os.listdir(tmp_path) if "-batch" in n and n.endswith(".json"))
    assert mid == ["resnet18_v1d-0001-batch000003.json", "resnet18_v1d-0001-batch000004.json"]
    log = open(tmp_path / "train.log").read()
    assert log.count("checkpoint at batch") == 8 and "--keep-checkpoints 2" in log
    assert _same(tmp_path / FINAL, reference / FINAL)


def test_a_second_run_in_the_same_save_dir_is_refused_before_writing(data, tmp_path, capsys):
    holder = RunLock(str(tmp_path))
    holder.acquire()  # a live run holds the save dir
    try:
        status, out, err = _run(capsys, *_flags(data, tmp_path))
    finally:
        holder.release()
    assert status == 2 and err.count("\n") == 1
    assert "--save-dir %s is in use by another run (pid %d on " % (tmp_path, os.getpid()) in err
    assert sorted(os.listdir(tmp_path)) == [LOCK_NAME]  # no log, no checkpoint


def test_a_second_run_with_another_save_dir_but_the_same_log_is_refused(data, tmp_path,
                                                                       capsys):
    log = tmp_path / "first" / "train.log"
    holder = RunLock(str(tmp_path / "first"), str(log))
    holder.acquire()
    argv = _flags(data, tmp_path / "second")
    argv[argv.index("--logging-file") + 1] = str(log)
    try:
        status, out, err = _run(capsys, *argv)
    finally:
        holder.release()
    assert status == 2 and err.count("\n") == 1
    assert "--logging-file %s is in use by another run (pid %d" % (log, os.getpid()) in err
    assert not log.exists() and not (tmp_path / "second").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(data, tmp_path, capsys):
    import subprocess
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"host": "h", "pid": dead.pid, "since": "x"}))
    status, out, err = _run(capsys, *_flags(data, tmp_path, *ONE_EPOCH))
    assert status == 0, err
    assert "took over the lock" in open(tmp_path / "train.log").read()


def test_an_incompatible_run_is_refused_before_it_writes_its_log(data, reference, tmp_path,
                                                                 capsys):
    import shutil
    shutil.copytree(reference, tmp_path / "out")
    before = open(tmp_path / "out" / "train.log").read()
    status, out, err = _run(capsys, *_flags(data, tmp_path / "out", "--num-epochs", "3",
                                            "--mixup-alpha", "0.4"))
    assert status == 2 and "different run" in err
    assert open(tmp_path / "out" / "train.log").read() == before


def test_a_damaged_newest_checkpoint_is_named_skipped_and_the_run_ends_equal(
        data, reference, tmp_path, capsys):
    import shutil
    shutil.copytree(reference, tmp_path / "out")
    newest = tmp_path / "out" / FINAL
    os.truncate(newest, os.path.getsize(newest) // 2)
    status, out, err = _run(capsys, *_flags(data, tmp_path / "out"))
    assert status == 0, err
    log = open(tmp_path / "out" / "train.log").read()
    assert "resnet18_v1d-0002.json fails verification" in log and "truncated" in log
    assert "resumed from %s" % (tmp_path / "out" / "resnet18_v1d-0001.json") in log
    assert _same(newest, reference / FINAL)


def test_a_save_dir_whose_only_checkpoint_is_damaged_needs_fresh_start(data, tmp_path, capsys):
    assert _run(capsys, *_flags(data, tmp_path, *ONE_EPOCH))[0] == 0
    only = tmp_path / "resnet18_v1d-0001.json"
    os.truncate(only, 20)
    status, out, err = _run(capsys, *_flags(data, tmp_path, *ONE_EPOCH))
    assert status == 2 and "--fresh-start" in err and os.path.getsize(only) == 20
    status, out, err = _run(capsys, *_flags(data, tmp_path, *ONE_EPOCH, "--fresh-start"))
    assert status == 0 and os.path.getsize(only) > 20


def _children():
    """Process ids whose parent is this process (the data workers)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = open("/proc/%s/stat" % name).read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                found.append(int(name))
    return found


def test_a_killed_data_worker_is_replaced_and_the_run_ends_equal(data, reference, tmp_path,
                                                                 capsys, monkeypatch):
    from gluon_tricks.training import loop
    real, calls = loop.smooth_one_hot, []
    earlier = set(_children())  # other tests' processes: the victim must be this run's worker

    def killing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # epoch 0's third batch: this run's children are its train workers
            os.kill(min(set(_children()) - earlier), signal.SIGKILL)
        return real(*args, **kwargs)
    monkeypatch.setattr(loop, "smooth_one_hot", killing)
    status, out, err = _run(capsys, *_flags(data, tmp_path, "-j", "2"))
    assert status == 0, err
    assert "died (killed by signal 9" in open(tmp_path / "train.log").read()
    assert _same(tmp_path / FINAL, reference / FINAL)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_resume_files_that_are_pickles_swapped_or_of_another_model_are_named(
        data, reference, tmp_path, capsys):
    params, states = (str(reference / ("resnet18_v1d-0001" + ext)) for ext in (".params",
                                                                              ".states"))
    crafted = str(tmp_path / "crafted.states")
    open(crafted, "wb").write(pickle.dumps(_Exploit(str(tmp_path / "exploit-ran"))))

    def resume(*extra):
        return _run(capsys, *_flags(data, tmp_path / "out", "--resume-epoch", "1", *extra))
    status, out, err = resume("--resume-params", params, "--resume-states", crafted)
    assert status == 2 and "is a pickle" in err and "--trust-pickled-states" in err
    assert not os.path.exists(tmp_path / "exploit-ran")
    status, out, err = resume("--resume-params", states, "--resume-states", params)
    assert status == 2 and "holds an optimizer state (.states), not weights" in err
    status, out, err = resume("--resume-params", params, "--resume-states", states,
                              "--momentum", "0.8")
    assert status == 2 and "saved with momentum 0.9 but --momentum is 0.8" in err
    status, out, err = resume("--resume-params", params, "--resume-states", states,
                              "--model", "resnet34_v1d")
    assert status == 2 and params in err and "does not hold the weights of this network" in err
    status, out, err = resume("--resume-params", params, "--resume-states", states)
    assert status == 0, err


def test_eval_of_non_finite_weights_is_an_error(data, reference, tmp_path, capsys):
    arrays = mx.nd.load(str(reference / FINAL))
    arrays[sorted(arrays)[0]][:] = np.nan
    mx.nd.save(str(tmp_path / "nan.params"), arrays)
    status, out, err = _run(capsys, "eval", "--model", "resnet18_v1d", "--params",
                            tmp_path / "nan.params", "--val-dir", data / "val", "--input-size",
                            "32", "-j", "0")
    assert status == 2 and err.count("\n") == 1 and "NaN or infinite weights" in err


def test_resuming_on_another_number_of_ranks_is_refused_with_the_reason(data, reference,
                                                                        tmp_path, capsys):
    """A checkpoint as 2 ranks of 4 images would write it (the same global batch of 8)."""
    import shutil
    shutil.copytree(reference, tmp_path / "out")
    for name in ("resnet18_v1d-0001.json", "resnet18_v1d-0002.json"):
        record = json.load(open(tmp_path / "out" / name))
        record["config"].update(world_size=2, process_batch_size=4, batch_size=4)
        json.dump(record, open(tmp_path / "out" / name, "w"))
    status, out, err = _run(capsys, *_flags(data, tmp_path / "out", "--num-epochs", "3"))
    assert status == 2 and err.count("\n") == 1
    assert ("written by 2 rank(s) x 1 device(s) of 4 images each (global batch 8); this run has "
            "1 x 1 of 8 (global batch 8). Not resumable exactly: BatchNorm") in err
    assert "resume with 2 rank(s)" in err


HOROVOD_SCRIPT = """
import os, signal, sys
from gluon_tricks.training.config import add_arguments, check_flags
from gluon_tricks.training.distributed import World
from gluon_tricks.training import loop
from gluon_tricks.training.preemption import Preempted
import argparse
parser = argparse.ArgumentParser()
add_arguments(parser)
flags = parser.parse_args(sys.argv[3:])
check_flags(flags)
world = World.from_environment()
signal_batch = int(sys.argv[2])
real, calls = loop.smooth_one_hot, []
def with_signal(*args, **kwargs):  # rank 1 alone is signalled: rank 0 must still save
    calls.append(1)
    if world.rank == 1 and len(calls) == signal_batch:
        os.kill(os.getpid(), signal.SIGUSR1)
    return real(*args, **kwargs)
loop.smooth_one_hot = with_signal
try:
    loop.train(flags, world)
except Preempted as error:
    print("rank %d: %s" % (world.rank, error))
    sys.exit(error.exit_code)
world.finish()
"""


@pytest.mark.skipif(not os.path.exists(os.path.join(os.path.dirname(__import__("sys").executable),
                                                    "horovodrun")), reason="no horovodrun")
def test_two_ranks_one_signalled_save_mid_epoch_and_resume_equal(data, tmp_path):
    """Rank 1 alone gets SIGUSR1: both stop after the same step, rank 0 saves (with each rank's
    BatchNorm statistics), and the rerun ends on the uninterrupted 2-rank weights."""
    import subprocess
    import sys
    script = tmp_path / "rank.py"
    script.write_text(HOROVOD_SCRIPT)
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    env = dict(os.environ, PYTHONPATH=os.getcwd(), OMP_NUM_THREADS="1")

    def run(out, signal_batch):
        flags = _flags(data, out, "--batch-size", "4", "--num-epochs", "1", "--warmup-epochs",
                       "0")[1:]
        return subprocess.run([horovodrun, "-np", "2", "-H", "localhost:2", "--gloo",
                               sys.executable, str(script), str(out), str(signal_batch), *flags],
                              capture_output=True, text=True, timeout=600, env=env)
    done = run(tmp_path / "straight", 0)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    done = run(tmp_path / "stopped", 2)
    assert done.returncode != 0 and "stopped by a signal on another rank at epoch 0 after " \
        "batch 2" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    assert os.path.isfile(tmp_path / "stopped" / "resnet18_v1d-0000-batch000002.ranks")
    done = run(tmp_path / "stopped", 0)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert _same(tmp_path / "stopped" / "resnet18_v1d-0001.params",
                 tmp_path / "straight" / "resnet18_v1d-0001.params")


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MB tmpfs, filled (needs root to mount)."""
    with small_tmpfs(tmp_path / "full", "1m") as mount:
        try:
            with open(mount / "filler", "wb") as f:
                f.write(bytes(1 << 20))
        except OSError:
            pass  # full
        yield mount


def test_a_full_log_disk_is_reported_once_and_training_goes_on(data, tmp_path, full_disk,
                                                               capsys):
    argv = _flags(data, tmp_path / "out", *ONE_EPOCH)
    argv[argv.index("--logging-file") + 1] = str(full_disk / "train.log")
    status, out, err = _run(capsys, *argv)
    assert status == 0, err
    warnings = [line for line in err.splitlines() if "cannot write the training log" in line]
    assert len(warnings) == 1 and str(full_disk / "train.log") in warnings[0]
    assert "No space left on device" in warnings[0] and "MB free in %s" % full_disk in warnings[0]
    assert os.path.isfile(tmp_path / "out" / "resnet18_v1d-0001.params")


def test_two_devices_stopped_mid_epoch_resume_to_the_uninterrupted_weights(
        data, tmp_path, capsys, monkeypatch):
    """--num-gpus 2 on two CPU contexts, stopped mid-epoch: the checkpoint also holds each
    device's own BatchNorm running statistics (.ranks) and the rerun ends on the uninterrupted
    weights. (Their mean alone, what .params holds, would give the same to rounding: the running
    statistics are linear in their start, and the copies are averaged at the epoch's end.)"""
    monkeypatch.setenv("GLUON_TRICKS_DEVICES", "cpu(0),cpu(1)")
    two = ["--num-gpus", "2", "--batch-size", "4", *ONE_EPOCH]
    assert _run(capsys, *_flags(data, tmp_path / "straight", *two))[0] == 0
    with monkeypatch.context() as patch:
        _signal_at(patch, signal.SIGTERM, 2)
        assert _run(capsys, *_flags(data, tmp_path / "stopped", *two))[0] == PREEMPTED_EXIT_CODE
    table = mx.nd.load(str(tmp_path / "stopped" / "resnet18_v1d-0000-batch000002.ranks"))
    half = table["running_statistics"].shape[1] // 2
    assert table["running_statistics"].shape[0] == 1 and half > 0
    assert _run(capsys, *_flags(data, tmp_path / "stopped", *two))[0] == 0
    assert _same(tmp_path / "stopped" / "resnet18_v1d-0001.params",
                 tmp_path / "straight" / "resnet18_v1d-0001.params")
