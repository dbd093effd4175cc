"""A data worker that stops (SIGSTOP; in real life a hung NFS read), then a TERM: the wait for
data is cut short, the run checkpoints at its last completed batch and exits 75 well before the
data deadline, in one process and with 2 Horovod ranks (one rank waiting for data, the other
inside the step agreement). Real processes, real signals, the real CLI."""
import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from gluon_tricks.training.preemption import PREEMPTED_EXIT_CODE

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
DEADLINE = 120  # --data-timeout: the stop must come long before it
TINY = ["--model", "resnet18_v1d", "--input-size", "32", "-j", "2", "--log-interval", "1",
        "--num-epochs", "20", "--save-frequency", "0", "--lr", "0.05",
        "--data-timeout", str(DEADLINE)]


def _env():
    return dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")


def _train(demo, out, batch_size):
    """The demo data (320 training images): 40 batches of 4 per rank and epoch, far more than
    the workers fetch ahead, so a rank whose workers stop waits for data within the epoch."""
    return [sys.executable, "-m", "gluon_tricks", "train", *TINY, "--batch-size",
            str(batch_size), "--train-dir", demo["train_dir"], "--val-dir", demo["val_dir"],
            "--save-dir", str(out), "--logging-file", str(out / "t.log")]


def _wait_for_batches(log, count=2, seconds=300):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if os.path.exists(log) and open(log).read().count("Epoch[0] Batch") >= count:
            return
        time.sleep(0.1)
    raise AssertionError("training never logged %d batches" % count)


def _stop(processes):
    for process in processes:
        process.send_signal(signal.SIGSTOP)


def _kill(processes):
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def _mid_epoch_checkpoints(out):
    return sorted(name for name in os.listdir(out) if "-batch" in name and name.endswith(".json"))


def test_a_term_while_a_data_worker_is_stopped_checkpoints_and_exits_75(demo, tmp_path):
    out = tmp_path / "out"
    trainer = subprocess.Popen(_train(demo, out, 4), env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    workers = []
    try:
        _wait_for_batches(str(out / "t.log"))
        workers = psutil.Process(trainer.pid).children()
        assert workers, "no data workers"
        _stop(workers)  # every worker: the next batch never comes
        time.sleep(2)
        tic = time.time()
        trainer.send_signal(signal.SIGTERM)
        _, err = trainer.communicate(timeout=DEADLINE)
        seconds = time.time() - tic
    finally:
        _kill(workers)
        if trainer.poll() is None:
            trainer.kill()
    assert trainer.returncode == PREEMPTED_EXIT_CODE, err[-3000:]
    assert seconds < DEADLINE / 4, seconds
    assert "stopped by SIGTERM at epoch" in err
    saved = _mid_epoch_checkpoints(out)
    assert saved, os.listdir(out)
    assert json.load(open(out / saved[-1]))["batch"] > 0


@pytest.mark.skipif(not os.path.exists(os.path.join(BIN, "horovodrun")), reason="no horovodrun")
def test_two_ranks_one_waiting_for_a_stopped_worker_checkpoint_and_exit_75(demo, tmp_path):
    """Rank 1's workers stop: rank 1 waits for data, rank 0 waits in the step agreement. A TERM
    to both ranks (as a scheduler sends it to every task) ends both with a checkpoint, 75."""
    out = tmp_path / "out"
    launcher = subprocess.Popen([os.path.join(BIN, "horovodrun"), "-np", "2", "-H",
                                 "localhost:2", "--gloo", *_train(demo, out, 4)],
                                env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    workers = []
    try:
        _wait_for_batches(str(out / "t.log"))
        ranks = {}
        for process in psutil.Process(launcher.pid).children(recursive=True):
            environ = process.environ()
            if "HOROVOD_RANK" in environ and "gluon_tricks" in " ".join(process.cmdline()):
                ranks.setdefault(int(environ["HOROVOD_RANK"]), process)
        assert sorted(ranks) == [0, 1], ranks
        workers = ranks[1].children()
        assert workers, "rank 1 has no data workers"
        _stop(workers)
        time.sleep(2)
        tic = time.time()
        for process in ranks.values():
            process.send_signal(signal.SIGTERM)
        output, _ = launcher.communicate(timeout=DEADLINE)
        seconds = time.time() - tic
    finally:
        _kill(workers)
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    assert seconds < DEADLINE / 4, seconds
    assert output.count("exit with status code %d" % PREEMPTED_EXIT_CODE) == 2, output[-3000:]
    assert "stopped by SIGTERM at epoch" in output
    assert _mid_epoch_checkpoints(out), os.listdir(out)
