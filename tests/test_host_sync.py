"""No host sync per batch: the training step reads nothing back from the device (dynamic loss
scaling: one flag); the loop reads loss, correct counts and finite flags every --log-interval
batches, and logs exactly what the per-batch metric of the earlier loop logged. Non-finite
weights and gradients stop training with exit 2 (issue 14, item 2)."""
import json
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from conftest import read_params
from gluon_tricks.training import step as step_module
from gluon_tricks.training.loss_scale import LossScaler
from gluon_tricks.training.targets import smooth_one_hot

TINY = ["--model", "resnet18_v1d", "--input-size", "32", "--batch-size", "8", "-j", "0",
        "--lr", "0.05", "--label-smoothing", "--mixup"]


def _train(cli, disc_data, out, *extra):
    return cli("train", *TINY, "--train-dir", disc_data / "train", "--val-dir",
               disc_data / "val", "--save-dir", out, "--logging-file", out / "train.log", *extra)


class SyncCounter:
    """Counts the calls that make the host wait for the device, while `active`."""

    NAMES = ("asnumpy", "asscalar", "wait_to_read")

    def __init__(self, monkeypatch):
        self.active, self.count, self.depth = False, 0, 0
        for name in self.NAMES:
            real = getattr(mx.nd.NDArray, name)
            monkeypatch.setattr(mx.nd.NDArray, name, self._counting(real))
        real_waitall = mx.nd.waitall
        monkeypatch.setattr(mx.nd, "waitall", self._counting(real_waitall))

    def _counting(self, real):
        def counted(*args, **kwargs):
            if self.active and self.depth == 0:  # asscalar calls asnumpy: one wait
                self.count += 1
            self.depth += 1
            try:
                return real(*args, **kwargs)
            finally:
                self.depth -= 1
        return counted


def _small_step(flag):
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, 3), gluon.nn.BatchNorm(), gluon.nn.GlobalAvgPool2D(),
            gluon.nn.Dense(3))
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), "nag", {"learning_rate": 0.1, "momentum": 0.9},
                            kvstore=None)
    return step_module.TrainStep(net, trainer,
                                 gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False),
                                 [mx.cpu()], scaler=LossScaler.from_flag(flag))


@pytest.mark.parametrize("flag, reads_per_step", [("1", 0), ("1024", 0), ("dynamic", 1)])
def test_a_step_does_not_wait_for_the_device(monkeypatch, flag, reads_per_step):
    step = _small_step(flag)
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(4):
        label = mx.nd.array(rng.integers(0, 3, 6))
        batches.append((mx.nd.array(rng.normal(size=(6, 3, 8, 8))), smooth_one_hot(label, 3),
                        label))
    step(*batches[0])  # shapes and memory settled outside the count
    step.read()
    counter = SyncCounter(monkeypatch)
    counter.active = True
    for batch in batches[1:]:
        step(*batch)
    counter.active = False
    assert counter.count == reads_per_step * 3
    counter.active = True
    stats = step.read()
    assert counter.count == reads_per_step * 3 + 1  # one transfer for the whole interval
    assert stats.batches == 3 and stats.samples == 18 and stats.finite


def test_logged_numbers_are_the_per_batch_metrics_of_the_earlier_loop(cli, disc_data, tmp_path,
                                                                     monkeypatch):
    """The earlier loop fed mx.metric.Accuracy with every batch's outputs: run that metric beside
    the device-side counts and compare every logged accuracy; log every batch or every 3rd: the
    same numbers at the same batches and bitwise the same weights."""
    reference = {}
    real_accumulate = step_module.TrainStep._accumulate

    def accumulate_and_measure(self, outputs, losses, hard_parts, count_loss):
        metric = reference.setdefault("metric", mx.metric.Accuracy())
        metric.update(hard_parts, outputs)  # the earlier loop's per-batch update
        reference.setdefault("values", []).append(metric.get()[1])
        return real_accumulate(self, outputs, losses, hard_parts, count_loss)

    def epoch_start(*args, **kwargs):
        reference["metric"] = mx.metric.Accuracy()  # the earlier loop's metric was per epoch
        return real_epoch(*args, **kwargs)
    from gluon_tricks.training import loop
    real_epoch = loop.train_one_epoch
    monkeypatch.setattr(step_module.TrainStep, "_accumulate", accumulate_and_measure)
    monkeypatch.setattr(loop, "train_one_epoch", epoch_start)
    runs = {}
    for interval in (1, 3):
        reference.clear()
        out = tmp_path / str(interval)
        status, _, err = _train(cli, disc_data, out, "--num-epochs", "2", "--log-interval",
                                interval)
        assert status == 0, err
        events = [json.loads(line) for line in open(out / "train.log.jsonl")]
        runs[interval] = (events, list(reference["values"]), read_params(
            out / "resnet18_v1d-0002.params"))
    events, values, weights = runs[1]
    batch_lines = [e for e in events if e["event"] == "batch"]
    assert [e["accuracy"] for e in batch_lines] == pytest.approx(values, abs=1e-12)
    train_lines = [e["accuracy"] for e in events if e["event"] == "train"]
    assert train_lines == pytest.approx([values[3], values[7]], abs=1e-12)
    sparse = {(e["epoch"], e["batch"]): e for e in runs[3][0] if e["event"] == "batch"}
    assert sorted(sparse) == [(0, 0), (0, 2), (1, 2)]  # the run's first batch, then every 3
    for (epoch, batch), event in sparse.items():
        dense = next(e for e in batch_lines if (e["epoch"], e["batch"]) == (epoch, batch))
        assert event["accuracy"] == dense["accuracy"] and event["lr"] == dense["lr"]
    assert [e["accuracy"] for e in runs[3][0] if e["event"] == "train"] == train_lines
    for name, value in weights.items():
        np.testing.assert_array_equal(runs[3][2][name], value)


def test_a_nan_weight_stops_training_naming_batches_and_the_last_good_checkpoint(
        cli, disc_data, tmp_path, monkeypatch):
    """Issue 14: one NaN weight, with the loss still finite (ReLU), went unnoticed."""
    calls = []
    real_call = step_module.TrainStep.__call__

    def poisoning_call(self, data, target, hard):
        real_call(self, data, target, hard)
        calls.append(1)
        if len(calls) == 6:  # epoch 1, batch 1
            weight = self.params[0].data(self.ctx[0])
            weight[0] = np.nan  # pylint: disable=unsupported-assignment-operation
    monkeypatch.setattr(step_module.TrainStep, "__call__", poisoning_call)
    status, out, err = _train(cli, disc_data, tmp_path, "--num-epochs", "3", "--save-frequency",
                              "1", "--log-interval", "2")
    assert status == 2 and err.startswith("gluon-tricks: error: ") and err.count("\n") == 1
    for fragment in ("the weights became NaN or infinite", "at epoch 1, batches 0-1",
                     "the last good checkpoint is", "resnet18_v1d-0001.json"):
        assert fragment in err, err
    assert not os.path.exists(tmp_path / "resnet18_v1d-0002.json")
    assert all(np.all(np.isfinite(v))
               for v in read_params(tmp_path / "resnet18_v1d-0001.params").values())


def test_resuming_from_weights_with_one_nan_stops_at_the_first_read(cli, disc_data, tmp_path):
    assert _train(cli, disc_data, tmp_path / "good", "--num-epochs", "1")[0] == 0
    params = mx.nd.load(str(tmp_path / "good" / "resnet18_v1d-0001.params"))
    first = sorted(params)[0]
    params[first][0] = np.nan
    mx.nd.save(str(tmp_path / "nan.params"), params)
    status, out, err = _train(cli, disc_data, tmp_path / "resumed", "--num-epochs", "2",
                              "--resume-epoch", "1", "--resume-params", tmp_path / "nan.params",
                              "--resume-states",
                              tmp_path / "good" / "resnet18_v1d-0001.states",
                              "--log-interval", "2")
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "NaN" in err or "non-finite" in err or "infinit" in err, err
    assert not os.path.exists(tmp_path / "resumed")  # a refused run leaves no save dir


def test_a_huge_learning_rate_ends_in_exit_2_without_a_non_finite_checkpoint(cli, disc_data,
                                                                           tmp_path):
    status, out, err = _train(cli, disc_data, tmp_path, "--num-epochs", "3", "--save-frequency",
                              "1", "--log-interval", "2", "--lr", "1e12")
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "became NaN or infinite" in err and "the last good checkpoint is" in err
    for name in os.listdir(tmp_path):
        if name.endswith(".params"):
            assert all(np.all(np.isfinite(v)) for v in read_params(tmp_path / name).values())
