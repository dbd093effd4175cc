"""The run scaffolding a transfer command (detect, segment) shares with the classifier
(training/transfer_run.py around training/run_guard.py), on a one-layer network: checkpoints
through the guard continue where they stopped with the state and progress they saved, a
checkpoint written with other flags is refused unless the flag is free on resume, a stop signal
checkpoints mid-epoch, and a refused start removes the save folder it created."""
import os
import signal

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.errors import UserError
from gluon_tricks.training.distributed import World
from gluon_tricks.training.preemption import PREEMPTED_EXIT_CODE, Preempted
from gluon_tricks.training.transfer_run import GuardedRun, TransferRun, TransferState

BATCHES = 3  # an epoch


def _run(save_dir, **config):
    flags = dict(lr=0.1, epochs=2, num_workers=0)
    flags.update(config)
    return TransferRun(model="tiny", save_dir=str(save_dir),
                       logging_file=os.path.join(str(save_dir), "tiny.log"), config=flags,
                       free_on_resume=("epochs", "num_workers"), iters_per_epoch=BATCHES,
                       process_batch_size=2)


def _state():
    mx.random.seed(1)
    net = mx.gluon.nn.Dense(1, in_units=3)
    net.initialize(mx.init.Normal(1.0))
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1,
                                                            "momentum": 0.9})
    return TransferState(net, trainer, [mx.cpu()])


def _batch(epoch, batch):
    rng = np.random.default_rng([epoch, batch])
    return mx.nd.array(rng.normal(size=(2, 3))), mx.nd.array(rng.normal(size=(2, 1)))


def _train(run, stop_at=None):
    """A transfer command's loop in a few lines: the guard around it, batches agreed on, the
    epoch checkpoint saved with the command's progress. Returns (weights, session start)."""
    state = _state()
    with GuardedRun(run, World(), state, epochs=run.config["epochs"]) as session:
        if session.finished:
            return None, session.start
        start_epoch, start_batch = session.start
        for epoch in range(start_epoch, run.config["epochs"]):
            first = start_batch if epoch == start_epoch else 0
            batches = (_batch(epoch, i) for i in range(first, BATCHES))
            for i, (x, y) in enumerate(session.guard.agreed_batches(epoch, batches, first),
                                       first):
                if (epoch, i) == stop_at:
                    os.kill(os.getpid(), signal.SIGTERM)
                with mx.autograd.record():
                    loss = ((state.net(x) - y) ** 2).sum()
                loss.backward()
                state.trainer.step(2)
            session.guard.progress["epochs_seen"] = session.guard.progress.get(
                "epochs_seen", 0) + 1
            session.guard.save(epoch + 1)
    return state.net.weight.data().asnumpy(), session.start


def test_a_run_stopped_by_a_signal_continues_to_the_uninterrupted_weights(tmp_path):
    whole, _ = _train(_run(tmp_path / "whole"))
    with pytest.raises(Preempted) as stopped:
        _train(_run(tmp_path / "parts"), stop_at=(1, 1))
    assert stopped.value.exit_code == PREEMPTED_EXIT_CODE
    assert "stopped by SIGTERM at epoch 1 after batch 2" in str(stopped.value)
    assert (tmp_path / "parts" / "tiny-0001-batch000002.json").exists()
    parts, start = _train(_run(tmp_path / "parts"))
    assert start == (1, 2)  # the step in progress was finished and saved
    assert np.array_equal(whole, parts)
    log = (tmp_path / "parts" / "tiny.log").read_text()
    assert "resumed from" in log and "epochs_seen" not in log


def test_progress_is_saved_and_a_finished_run_opens_no_log(tmp_path):
    import json
    _train(_run(tmp_path))
    saved = json.loads((tmp_path / "tiny-0002.json").read_text())
    assert saved["progress"] == {"epochs_seen": 2}
    assert saved["config"]["lr"] == 0.1 and saved["config"]["world_size"] == 1
    before = (tmp_path / "tiny.log").read_text()
    weights, start = _train(_run(tmp_path))
    assert weights is None and start == (2, 0)
    assert (tmp_path / "tiny.log").read_text() == before


def test_other_flags_are_refused_unless_free_on_resume(tmp_path):
    _train(_run(tmp_path, epochs=1))
    with pytest.raises(UserError, match=r"differs in: lr 0\.1 -> 0\.2.*--save-prefix"):
        _train(_run(tmp_path, lr=0.2, epochs=2))
    weights, start = _train(_run(tmp_path, epochs=2, num_workers=3))  # free: continues
    assert start == (1, 0) and weights is not None


def test_a_refused_start_removes_the_save_folder_it_created(tmp_path):
    from gluon_tricks.training.savedir_lock import RunLock
    other = tmp_path / "held"
    held = RunLock(str(other))
    held.acquire()
    try:
        with pytest.raises(UserError, match="in use by another run"):
            _train(_run(other))
    finally:
        held.release()
    assert other.exists()  # it was not this run's to remove
    fresh = tmp_path / "fresh"
    (tmp_path / "a_file").write_text("")  # the log's lock cannot be made below a file
    run = _run(fresh)
    run = TransferRun(**dict(run.__dict__, logging_file=str(tmp_path / "a_file" / "l.log")))
    with pytest.raises(UserError, match="cannot create the folder of --logging-file"):
        _train(run)
    assert not fresh.exists()
