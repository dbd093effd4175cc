"""The `--num-gpus N` path on two CPU contexts (GLUON_TRICKS_DEVICES=cpu(0),cpu(1)): the batch split
over devices, per-device BatchNorm, the 'device' kvstore, metrics, validation and checkpoints run
in CI. It trains, its logged validation equals `eval` of its checkpoint, and it matches the
1-device run where it must: the same batches in the same order, global batch and lr."""
import json

import numpy as np
import pytest

from conftest import read_params

TINY = ["--model", "resnet18_v1d", "--input-size", "32", "-j", "0", "--log-interval", "2",
        "--num-epochs", "2", "--lr", "0.05", "--label-smoothing", "--mixup"]


def _run(cli, monkeypatch, disc_data, out, devices, batch_size, num_gpus):
    """Train in-process; returns (status, stderr, the labels of every batch in order)."""
    from gluon_tricks.training import step as step_module
    if devices:
        monkeypatch.setenv("GLUON_TRICKS_DEVICES", devices)
    else:
        monkeypatch.delenv("GLUON_TRICKS_DEVICES", raising=False)
    seen = []
    real_call = step_module.TrainStep.__call__

    def recording_call(self, data, target, hard):
        seen.append((hard.asnumpy().copy(), float(data.sum().asscalar())))
        return real_call(self, data, target, hard)
    monkeypatch.setattr(step_module.TrainStep, "__call__", recording_call)
    status, _, err = cli("train", *TINY, "--batch-size", batch_size, "--num-gpus", num_gpus,
                         "--save-frequency", 1,
                         "--train-dir", disc_data / "train", "--val-dir", disc_data / "val",
                         "--save-dir", out, "--logging-file", out / "train.log")
    monkeypatch.undo()
    return status, err, seen


def _logged(out):
    return [json.loads(line) for line in open(out / "train.log.jsonl")]


def test_two_cpu_contexts_train_validate_and_checkpoint_like_one_device(cli, monkeypatch,
                                                                         disc_data, tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    status, err, two_batches = _run(cli, monkeypatch, disc_data, two, "cpu(0),cpu(1)", 4, 2)
    assert status == 0, err
    status, err, one_batches = _run(cli, monkeypatch, disc_data, one, None, 8, 0)
    assert status == 0, err

    # It ran on both contexts, with the 1-device run's global batch, lr and schedule.
    config_two, config_one = _logged(two)[0], _logged(one)[0]
    assert config_two["devices"] == "cpu(0),cpu(1)" and config_two["num_devices"] == 2
    for key in ("global_batch_size", "lr", "iters_per_epoch", "process_batch_size"):
        assert config_two[key] == config_one[key], key
    # The same images in the same order, augmented and mixed alike: the split is per batch.
    assert len(two_batches) == len(one_batches) == 8
    for (labels_two, sum_two), (labels_one, sum_one) in zip(two_batches, one_batches):
        np.testing.assert_array_equal(labels_two, labels_one)
        assert sum_two == pytest.approx(sum_one, rel=1e-6)

    # It trained: the second epoch moved the weights, which stayed finite.
    after_one = read_params(two / "resnet18_v1d-0001.params")
    final = read_params(two / "resnet18_v1d-0002.params")
    assert set(final) == set(read_params(one / "resnet18_v1d-0002.params"))
    assert max(np.abs(final[k] - after_one[k]).max() for k in final) > 1e-3
    assert all(np.all(np.isfinite(v)) for v in final.values())

    # Its logged validation is what `eval` of its checkpoint measures.
    logged = [e for e in _logged(two) if e["event"] == "validation"][-1]
    status, out, err = cli("eval", "--model", "resnet18_v1d", "--params",
                           two / "resnet18_v1d-0002.params", "--val-dir", disc_data / "val",
                           "--input-size", "32", "-j", "0", "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["err_top1"] == pytest.approx(logged["err_top1"], abs=1e-9)
    assert result["err_top5"] == pytest.approx(logged["err_top5"], abs=1e-9)


def test_devices_are_read_from_the_environment(monkeypatch):
    import mxnet as mx
    from gluon_tricks.errors import UserError
    from gluon_tricks.devices import process_devices, uses_gpus
    env = {"GLUON_TRICKS_DEVICES": "cpu(0), cpu(1)"}
    assert process_devices(2, environ=env) == [mx.cpu(0), mx.cpu(1)]
    assert process_devices(1, local_rank=1, ranks=2, environ=env) == [mx.cpu(1)]
    assert process_devices(0, environ=env) == [mx.cpu()]
    assert not uses_gpus(2, environ=env) and uses_gpus(2, environ={})
    with pytest.raises(UserError, match="names only 2"):
        process_devices(3, environ=env)
    with pytest.raises(UserError, match="cpu\\(0\\),cpu\\(1\\)"):
        process_devices(1, environ={"GLUON_TRICKS_DEVICES": "tpu(0)"})


@pytest.mark.parametrize("loss_scale", ["1", "dynamic"])
def test_batch_norm_statistics_of_the_devices_become_what_a_checkpoint_holds(tmp_path,
                                                                              loss_scale):
    """Each device normalises its own half of the batch, so its running statistics differ from
    the other's; validation must see the mean that save_parameters writes. The trained weights
    stay identical on both devices, also when dynamic loss scaling reduces and checks the
    gradients before updating."""
    import mxnet as mx
    from mxnet import gluon
    from gluon_tricks.training.step import TrainStep, average_batch_norm_over_devices
    from gluon_tricks.training.targets import smooth_one_hot
    ctx = [mx.cpu(0), mx.cpu(1)]
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, 3), gluon.nn.BatchNorm(), gluon.nn.GlobalAvgPool2D(),
            gluon.nn.Dense(3))
    net.initialize(mx.init.Xavier(), ctx=ctx)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1},
                            kvstore="device", update_on_kvstore=False)
    from gluon_tricks.training.loss_scale import LossScaler
    step = TrainStep(net, trainer, gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False), ctx,
                     scaler=LossScaler.from_flag(loss_scale))
    rng = np.random.default_rng(0)
    for _ in range(3):
        label = mx.nd.array(rng.integers(0, 3, 8))
        step(mx.nd.array(rng.normal(size=(8, 3, 8, 8))), smooth_one_hot(label, 3), label)
    assert step.read().finite
    running = [p for p in net.collect_params().values() if p.grad_req == "null"]
    trained = [p for p in net.collect_params().values() if p.grad_req != "null"]
    for param in trained:  # the same reduced gradients: identical copies
        np.testing.assert_array_equal(*[d.asnumpy() for d in param.list_data()])
    assert any(not np.array_equal(*[d.asnumpy() for d in p.list_data()]) for p in running)
    net.save_parameters(str(tmp_path / "saved.params"))
    saved = {k: v.asnumpy() for k, v in mx.nd.load(str(tmp_path / "saved.params")).items()}
    average_batch_norm_over_devices(net)
    for name, param in net._collect_params_with_prefix().items():  # save_parameters' names
        for copy in param.list_data():
            np.testing.assert_array_equal(copy.asnumpy(), saved[name])
