"""Loss scaling (paper section 3.2) on the CPU in FP32, with inf/NaN injected into the reduced
gradients: the skip leaves weights and optimiser state untouched, the scale halves and doubles,
a static scale equals no scale, and a resume in the middle continues exactly."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from gluon_tricks.errors import UserError
from gluon_tricks.training.loss_scale import (DYNAMIC_INITIAL_SCALE, MIN_SCALE, LossScaler,
                                              parse_loss_scale)
from gluon_tricks.training.optim import optimizer_settings
from gluon_tricks.training.step import TrainStep, all_finite
from gluon_tricks.training.targets import smooth_one_hot

CLASSES, BATCH = 5, 6


# --- the scaler's rules, by themselves ---------------------------------------------------------

def test_parse_loss_scale():
    assert parse_loss_scale("1024") == (1024.0, False)
    assert parse_loss_scale("dynamic") == (DYNAMIC_INITIAL_SCALE, True)
    for bad in ("0", "-3", "inf", "nan", "big"):
        with pytest.raises(UserError, match="--loss-scale"):
            parse_loss_scale(bad)


def test_dynamic_scale_halves_on_overflow_and_doubles_after_a_clean_window():
    scaler = LossScaler.from_flag("dynamic", window=3)
    assert scaler.record(False) is False and scaler.scale == DYNAMIC_INITIAL_SCALE / 2
    assert [scaler.record(True) for _ in range(2)] == [True, True]
    assert scaler.scale == DYNAMIC_INITIAL_SCALE / 2  # two clean steps: not yet
    assert scaler.record(True) and scaler.scale == DYNAMIC_INITIAL_SCALE  # the third doubles
    scaler.record(True)
    scaler.record(False)  # an overflow restarts the count of clean steps
    scaler.record(True)
    scaler.record(True)
    assert scaler.scale == DYNAMIC_INITIAL_SCALE / 2 and scaler.skipped == 2


def test_overflow_at_the_smallest_scale_means_divergence():
    scaler = LossScaler(scale=2.0, dynamic=True)
    scaler.record(False)
    assert scaler.scale == MIN_SCALE and not scaler.exhausted
    scaler.record(False)
    assert scaler.exhausted and scaler.scale == MIN_SCALE


def test_static_scale_never_skips():
    scaler = LossScaler.from_flag("128")
    assert scaler.record(False) and scaler.scale == 128 and scaler.skipped == 0


# --- the step on a small network ---------------------------------------------------------------

def _net():
    mx.random.seed(3)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, 3, padding=1), gluon.nn.BatchNorm(), gluon.nn.Activation("relu"),
            gluon.nn.GlobalAvgPool2D(), gluon.nn.Dense(CLASSES))
    net.initialize(mx.init.Xavier(), ctx=mx.cpu())
    net(mx.nd.zeros((1, 3, 8, 8)))
    return net


def _batches(count):
    rng = np.random.default_rng(11)
    for _ in range(count):
        data = mx.nd.array(rng.normal(size=(BATCH, 3, 8, 8)))
        label = mx.nd.array(rng.integers(0, CLASSES, BATCH))
        yield data, smooth_one_hot(label, CLASSES, 0.1), label


class Injector:
    """Puts inf (or NaN) into one gradient element after the reduction, at chosen step numbers."""

    def __init__(self, trainer, steps, value=np.inf):
        self.steps, self.value, self.count = set(steps), value, 0
        original = trainer._allreduce_grads  # what step() and allreduce_grads() both call

        def allreduce_grads():
            original()
            self.count += 1
            if self.count in self.steps:
                param = next(iter(trainer._params))
                param.grad()[0] = self.value  # pylint: disable=unsupported-assignment-operation
        trainer._allreduce_grads = allreduce_grads


def _setup(flag, window=2000):
    net = _net()
    trainer = gluon.Trainer(net.collect_params(), "nag",
                            dict(optimizer_settings(0.9, 1e-4, "float32"), learning_rate=0.1),
                            kvstore=None)
    loss = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)
    return net, trainer, TrainStep(net, trainer, loss, [mx.cpu()],
                                   scaler=LossScaler.from_flag(flag, window))


def _weights(net, trained_only=False):
    """Parameters by position (each new network's names carry a new prefix); `trained_only`
    leaves out BN's running statistics, which every forward pass in training mode updates."""
    return {i: v.data().asnumpy().copy() for i, v in enumerate(net.collect_params().values())
            if not trained_only or v.grad_req != "null"}


def _momenta(trainer):
    states = trainer._updaters[0].states  # index -> momentum NDArray
    return {i: s.asnumpy().copy() for i, s in states.items() if s is not None}


def test_static_scale_gives_the_weights_of_no_scale():
    results = []
    for flag in ("1", "1024"):
        net, _, step = _setup(flag)
        for data, target, hard in _batches(5):
            step(data, target, hard)
        results.append(_weights(net))
        stats = step.read()
        assert stats.finite and stats.batches == 5 and stats.samples == 5 * BATCH
    for name in results[0]:
        np.testing.assert_allclose(results[1][name], results[0][name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_a_skipped_step_leaves_weights_and_optimiser_state_untouched(value):
    net, trainer, step = _setup("dynamic")
    Injector(trainer, steps=[3], value=value)
    batches = list(_batches(4))
    for data, target, hard in batches[:2]:
        step(data, target, hard)
    before, momenta = _weights(net, trained_only=True), _momenta(trainer)
    updates = trainer._optimizer.num_update
    counts = dict(trainer._optimizer._index_update_count)
    step(*batches[2])  # gradients overflow: skipped
    assert step.scaler.scale == DYNAMIC_INITIAL_SCALE / 2 and step.scaler.skipped == 1
    after = _weights(net, trained_only=True)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])
    for index, momentum in _momenta(trainer).items():
        np.testing.assert_array_equal(momentum, momenta[index])
    # the optimiser's update counter does not move (the schedule is the loop's, by batch)
    assert trainer._optimizer.num_update == updates
    assert dict(trainer._optimizer._index_update_count) == counts
    step(*batches[3])  # the next step updates again
    assert any(not np.array_equal(_weights(net, True)[n], after[n]) for n in after)
    stats = step.read()
    assert stats.finite and stats.skipped == 1 and stats.batches == 4


@pytest.mark.parametrize("bad_step, verdict", [(3, "the gradients and the weights"),
                                                (2, "the weights")])
def test_static_scaling_reports_a_non_finite_gradient_as_divergence(bad_step, verdict):
    net, trainer, step = _setup("1")
    Injector(trainer, steps=[bad_step])
    for data, target, hard in _batches(3):
        step(data, target, hard)
    stats = step.read()
    # The inf went into the update, yet the loss stayed finite (ReLU maps NaN to 0 on the CPU):
    # the read checks the last step's gradient norm, and the weights, where an earlier non-finite
    # gradient has gone.
    assert stats.loss_finite and not stats.finite
    assert stats.what_diverged() == verdict
    assert step.read().finite is False  # the weights stay non-finite: the next read says so


def test_dynamic_scale_doubles_after_the_window_in_a_run():
    _, trainer, step = _setup("dynamic", window=2)
    Injector(trainer, steps=[1, 2])
    for data, target, hard in _batches(6):
        step(data, target, hard)
    # two halvings, then 4 clean steps = two doublings
    assert step.scaler.scale == DYNAMIC_INITIAL_SCALE and step.scaler.skipped == 2
    assert step.read().finite


def test_resume_in_the_middle_continues_exactly(tmp_path):
    batches = list(_batches(6))
    net, trainer, step = _setup("dynamic", window=2)
    Injector(trainer, steps=[2, 5])
    for batch in batches:
        step(*batch)
    straight, straight_scale = _weights(net), step.scaler.state()

    net, trainer, step = _setup("dynamic", window=2)
    Injector(trainer, steps=[2])
    for batch in batches[:3]:
        step(*batch)
    net.save_parameters(str(tmp_path / "w.params"))
    trainer.save_states(str(tmp_path / "w.states"))
    saved = step.scaler.state()
    assert saved["scale"] == DYNAMIC_INITIAL_SCALE / 2

    net, trainer, step = _setup("dynamic", window=2)
    net.load_parameters(str(tmp_path / "w.params"))
    trainer.load_states(str(tmp_path / "w.states"))
    step.scaler.load_state(saved)
    Injector(trainer, steps=[2])  # the run's 5th step is the resumed run's 2nd
    for batch in batches[3:]:
        step(*batch)
    assert step.scaler.state() == straight_scale
    for name, value in _weights(net).items():
        np.testing.assert_array_equal(value, straight[name])


def test_all_finite_on_many_arrays():
    arrays = [mx.nd.ones((3,)) for _ in range(450)]  # more than one chunk
    assert all_finite(arrays, mx.cpu()).asscalar() == 1
    arrays[-1][1] = np.nan
    assert all_finite(arrays, mx.cpu()).asscalar() == 0


# --- the training loop: logged, checkpointed, restored -----------------------------------------

def test_the_loop_logs_checkpoints_and_restores_a_dynamic_scale(cli, tmp_path_factory):
    """4 batches per epoch, window 3: straight, 2 epochs double the scale at steps 3 and 6 and
    leave 2 clean steps; stopped after epoch 1 (one doubling, 1 clean step) and resumed, the
    same scale, clean count and bitwise the same weights."""
    import json
    from conftest import read_params, write_disc_folder
    data = tmp_path_factory.mktemp("discs")
    write_disc_folder(data / "train", 8, seed=1)
    write_disc_folder(data / "val", 5, seed=2)

    def train(out, epochs):
        return cli("train", "--model", "resnet18_v1d", "--input-size", "32", "--batch-size", "8",
                   "-j", "0", "--lr", "0.05", "--num-epochs", epochs, "--save-frequency", "1",
                   "--loss-scale", "dynamic", "--loss-scale-window", "3",
                   "--train-dir", data / "train", "--val-dir", data / "val",
                   "--save-dir", out, "--logging-file", out / "train.log")
    import glob
    import os
    root = tmp_path_factory.mktemp("runs")
    assert train(root / "straight", 2)[0] == 0
    assert train(root / "resumed", 2)[0] == 0
    for path in glob.glob(str(root / "resumed" / "resnet18_v1d-0002.*")):
        os.remove(path)  # as if stopped after epoch 1
    first = json.load(open(root / "resumed" / "resnet18_v1d-0001.json"))["loss_scaler"]
    assert first["scale"] == DYNAMIC_INITIAL_SCALE * 2 and first["clean_steps"] == 1
    status, _, err = train(root / "resumed", 2)
    assert status == 0, err
    for run in ("straight", "resumed"):
        saved = json.load(open(root / run / "resnet18_v1d-0002.json"))["loss_scaler"]
        assert saved["scale"] == DYNAMIC_INITIAL_SCALE * 4 and saved["clean_steps"] == 2, run
    log = open(root / "resumed" / "train.log").read()
    assert "[Epoch 1] dynamic loss scale %g (0 updates skipped)" % (
        DYNAMIC_INITIAL_SCALE * 4) in log
    straight = read_params(root / "straight" / "resnet18_v1d-0002.params")
    resumed = read_params(root / "resumed" / "resnet18_v1d-0002.params")
    for name, value in straight.items():
        np.testing.assert_array_equal(resumed[name], value)


@pytest.mark.parametrize("flags, message", [
    (["--amp"], "--amp needs GPUs"),
    (["--loss-scale", "0"], "--loss-scale must be"),
    (["--loss-scale", "dynamic", "--loss-scale-window", "0"], "--loss-scale-window must be"),
    (["--gradient-predivide-factor", "0"], "--gradient-predivide-factor must be positive"),
])
def test_train_refuses_impossible_precision_flags_in_one_line(cli, flags, message, monkeypatch):
    monkeypatch.delenv("GLUON_TRICKS_DEVICES", raising=False)
    status, out, err = cli("train", "--model", "resnet18_v1d", *flags)
    assert status == 2 and message in err and err.count("\n") == 1, err
