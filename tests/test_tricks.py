"""Each trick against its formula: schedule, label smoothing, mixup, distillation, NAG, no bias
decay, FP16 master weights, and the flag checks."""
import math

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from conftest import parse_train_flags
from gluon_tricks.errors import UserError
from gluon_tricks.streams import mixup_rng
from gluon_tricks.training import config as train_config
from gluon_tricks.training.distributed import World
from gluon_tricks.training.losses import DistillationLoss, soft_targets
from gluon_tricks.training.optim import apply_no_bias_decay, make_trainer, optimizer_settings
from gluon_tricks.training.schedule import lr_per_epoch, make_lr_schedule
from gluon_tricks.training.targets import (dominant_labels, mixup, optimal_logit_gap,
                                           sample_mixup_lambda, smooth_one_hot)

ITERS = 10


# -- schedule ---------------------------------------------------------------------------------
def test_warmup_is_linear_per_iteration_then_cosine_reaches_zero():
    lr, epochs, warm = 0.4, 6, 2
    schedule = make_lr_schedule(lr, "cosine", epochs, ITERS, warmup_epochs=warm, warmup_lr=0.0)
    m = warm * ITERS
    for i in range(m):  # batch i of warmup (0-based): lr * i / (m - 1)
        assert schedule(i) == pytest.approx(lr * i / (m - 1))
    total = (epochs - warm) * ITERS
    for t in range(total):  # t-th batch after warmup
        cosine = 0.5 * (1 + math.cos(math.pi * t / (total - 1))) * lr
        assert schedule(m + t) == pytest.approx(cosine)
    assert schedule(epochs * ITERS - 1) == pytest.approx(0.0)
    assert schedule(m) == pytest.approx(lr)


def test_step_decay_counts_epochs_from_the_start_of_training():
    schedule = make_lr_schedule(0.1, "step", 10, ITERS, warmup_epochs=2, lr_decay=0.1,
                                lr_decay_epoch="4,7")
    assert schedule(2 * ITERS) == pytest.approx(0.1)          # warmup over
    assert schedule(4 * ITERS - 1) == pytest.approx(0.1)      # last batch of epoch 3
    assert schedule(4 * ITERS) == pytest.approx(0.01)         # first batch of epoch 4
    assert schedule(7 * ITERS - 1) == pytest.approx(0.01)
    assert schedule(7 * ITERS) == pytest.approx(0.001)
    periodic = make_lr_schedule(1.0, "step", 9, ITERS, lr_decay=0.5, lr_decay_period=3)
    assert [periodic(e * ITERS) for e in (0, 3, 6)] == pytest.approx([1.0, 0.5, 0.25])


def test_lr_per_epoch_samples_the_same_schedule():
    schedule = make_lr_schedule(0.1, "cosine", 4, ITERS, warmup_epochs=1)
    points = lr_per_epoch(schedule, 4, ITERS, points_per_epoch=10)
    assert len(points) == 4 * ITERS
    assert all(lr == pytest.approx(schedule(int(e * ITERS) + 1)) for e, lr in points)


# -- label smoothing --------------------------------------------------------------------------
def test_label_smoothing_follows_the_paper():
    q = smooth_one_hot(mx.nd.array([2, 0]), 5, 0.1).asnumpy()
    assert q[0, 2] == pytest.approx(0.9) and q[1, 0] == pytest.approx(0.9)
    assert q[0, [0, 1, 3, 4]] == pytest.approx([0.1 / 4] * 4)
    assert q.sum(axis=1) == pytest.approx([1, 1])
    assert np.array_equal(smooth_one_hot(mx.nd.array([1]), 3, 0.0).asnumpy(), [[0, 1, 0]])


def test_optimal_gap_minimises_the_smoothed_loss():
    assert optimal_logit_gap(1000, 0.1) == pytest.approx(9.10, abs=0.005)
    classes, eps = 10, 0.2
    q = np.full(classes, eps / (classes - 1))
    q[0] = 1 - eps
    gaps = np.linspace(0, 10, 10001)
    # logits: the true class at gap g, the others at 0; loss = -sum q log softmax
    losses = [-(q * (np.r_[g, np.zeros(classes - 1)] - np.log(np.exp(g) + classes - 1))).sum()
              for g in gaps]
    assert gaps[int(np.argmin(losses))] == pytest.approx(optimal_logit_gap(classes, eps), abs=1e-3)


# -- mixup ------------------------------------------------------------------------------------
def test_mixup_lambda_is_beta_alpha_alpha():
    rng = mixup_rng(3, 0, 1)
    draws = np.array([sample_mixup_lambda(rng, 0.2) for _ in range(20000)])
    assert draws.min() >= 0 and draws.max() <= 1
    assert draws.mean() == pytest.approx(0.5, abs=0.01)
    assert draws.var() == pytest.approx(1 / (4 * (2 * 0.2 + 1)), rel=0.03)  # Beta(a, a) variance
    assert np.mean(draws < 0.1) > 0.3  # U-shaped: most mass near 0 and 1


def test_mixup_mixes_images_and_targets_with_the_reversed_batch():
    x = mx.nd.array(np.arange(3 * 2).reshape(3, 2))
    y = smooth_one_hot(mx.nd.array([0, 1, 2]), 3, 0.0)
    mixed_x, mixed_y = mixup(x, y, 0.7)
    assert mixed_x.asnumpy()[0] == pytest.approx(0.7 * np.array([0, 1]) + 0.3 * np.array([4, 5]))
    assert mixed_y.asnumpy()[0] == pytest.approx([0.7, 0, 0.3])
    assert mixed_y.asnumpy().sum(axis=1) == pytest.approx([1, 1, 1])
    labels = mx.nd.array([0, 1, 2])
    assert list(dominant_labels(labels, 0.7).asnumpy()) == [0, 1, 2]
    assert list(dominant_labels(labels, 0.3).asnumpy()) == [2, 1, 0]


# -- distillation -----------------------------------------------------------------------------
def test_distillation_loss_matches_the_formula_and_gluoncv():
    from gluoncv.loss import DistillationSoftmaxCrossEntropyLoss
    rng = np.random.RandomState(0)
    z, r = rng.randn(4, 6) * 3, rng.randn(4, 6) * 3
    q = smooth_one_hot(mx.nd.array([0, 1, 2, 3]), 6, 0.1)
    T, w = 20.0, 0.3
    soft = soft_targets(mx.nd.array(r), T)
    ours = DistillationLoss(T, w)(mx.nd.array(z), q, soft).asnumpy()

    def log_softmax(a):
        top = a.max(1, keepdims=True)
        return a - np.log(np.exp(a - top).sum(1, keepdims=True)) - top
    p_teacher = np.exp(log_softmax(r / T))
    expected = (w * -(q.asnumpy() * log_softmax(z)).sum(1)
                + (1 - w) * T ** 2 * -(p_teacher * log_softmax(z / T)).sum(1))
    assert ours == pytest.approx(expected, rel=1e-5)
    theirs = DistillationSoftmaxCrossEntropyLoss(T, w, sparse_label=False)
    assert ours == pytest.approx(theirs(mx.nd.array(z), q, soft).asnumpy(), rel=1e-5)
    assert soft.asnumpy().sum(1) == pytest.approx(np.ones(4))


# -- optimiser --------------------------------------------------------------------------------
def _tiny_net():
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(3, in_units=4), gluon.nn.BatchNorm(in_channels=3))
    net.initialize(mx.init.Xavier())
    return net


def test_no_bias_decay_exempts_biases_and_bn_only():
    net = _tiny_net()
    exempted = apply_no_bias_decay(net)
    assert sorted(n.rsplit("_", 1)[1] for n in exempted) == ["beta", "bias", "gamma"]
    weight = net[0].weight
    before = {n: p.data().asnumpy().copy() for n, p in net.collect_params().items()}
    trainer = make_trainer(net, momentum=0.0, wd=0.5, dtype="float32", world=World())
    trainer.set_learning_rate(0.1)
    _zero_gradient_step(net, trainer, mx.nd.ones((2, 4)))  # only weight decay moves anything
    assert np.allclose(weight.data().asnumpy(), before[weight.name] * (1 - 0.1 * 0.5))
    for name in exempted:
        assert np.array_equal(net.collect_params()[name].data().asnumpy(), before[name])


def test_nag_update_follows_mxnet_nesterov_formula():
    """MXNet's nag_mom_update keeps an lr-scaled velocity v:  u = m v;
    w' = w + m u - (1 + m) lr (g + wd w);  v' = u - lr (g + wd w'). Run in place (as the Trainer
    runs it), the velocity's decay term reads the already-updated weight w'."""
    net = gluon.nn.Dense(1, in_units=2, use_bias=False)
    net.initialize(mx.init.Constant(1.0))
    trainer = make_trainer(net, momentum=0.9, wd=0.01, dtype="float32", world=World())
    lr, m, wd, w, v = 0.1, 0.9, 0.01, np.ones((1, 2)), np.zeros((1, 2))
    x = mx.nd.array([[1.0, 2.0]])
    for _ in range(3):
        trainer.set_learning_rate(lr)
        with autograd.record():
            loss = net(x).sum()
        loss.backward()
        trainer.step(1)
        g = np.array([[1.0, 2.0]])
        u = m * v
        w = w + m * u - (1 + m) * lr * (g + wd * w)
        v = u - lr * (g + wd * w)
        assert net.weight.data().asnumpy() == pytest.approx(w, rel=1e-5)


def _zero_gradient_step(net, trainer, x):
    """A real backward whose gradients are all zero, then one update."""
    with autograd.record():
        loss = (net(x) * 0).sum()
    loss.backward()
    trainer.step(1)


def test_fp16_keeps_fp32_master_weights():
    """Under FP16 the optimiser updates an FP32 master copy and writes it back rounded to FP16:
    updates far below FP16's resolution still accumulate."""
    settings = optimizer_settings(0.9, 0.0, "float16")
    assert settings["multi_precision"] is True
    assert "multi_precision" not in optimizer_settings(0.9, 1e-4, "float32")
    optimizer = mx.optimizer.create("nag", **dict(settings, learning_rate=1e-4))
    update = mx.optimizer.get_updater(optimizer)
    weight = mx.nd.ones((2, 2), dtype="float16")
    for _ in range(10):
        update(0, mx.nd.ones((2, 2), dtype="float16"), weight)
    momentum, master = update.states[0]
    v, w = np.float32(0), np.float32(1)
    for _ in range(10):  # the formula of test_nag_update..., in FP32, wd = 0
        u = np.float32(0.9) * v
        w = w + np.float32(0.9) * u - np.float32(1.9e-4)
        v = u - np.float32(1e-4)
    assert master.dtype == np.float32 and weight.dtype == np.float16
    assert master.asnumpy() == pytest.approx(np.full((2, 2), w), rel=1e-6)
    assert np.array_equal(weight.asnumpy(), master.asnumpy().astype(np.float16))
    assert master.asnumpy()[0, 0] < 0.9990  # moved, although one update is below FP16's step


# -- flags ------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,message", [
    (["--mixup", "--num-epochs", "5", "--mixup-off-epoch", "6"], "beyond --num-epochs"),
    (["--mixup-off-epoch", "2"], "needs --mixup"),
    (["--teacher", "resnet50_v1d"], "needs --teacher-params"),
    (["--teacher", "resnet50_v1d", "--teacher-params", "/nonexistent.params"], "no such file"),
    (["--dtype", "float16"], "needs GPUs"),
    (["--num-gpus", "2"], "sees 0 GPU"),
    (["--warmup-epochs", "5", "--num-epochs", "5"], "smaller than --num-epochs"),
    (["--lr-decay-epoch", "30;60"], "comma-separated"),
    (["--resume-params", "/nonexistent.params"], "no such file"),
    (["--seed", str(1 << 32)], "--seed must be in"),
])
def test_contradictory_flags_end_with_one_clear_line(argv, message):
    with pytest.raises(UserError) as error:
        train_config.check_flags(parse_train_flags(*argv))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_unwritable_save_dir_is_refused(tmp_path):
    from gluon_tricks.training.checkpoint import check_writable
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="not writable"):
        check_writable(str(blocker / "sub"))
    check_writable(str(tmp_path / "ok"))
