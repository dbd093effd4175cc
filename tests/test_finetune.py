"""Fine-tuning: GluonCV's and our weights load (the classifier re-initialised when the class count
differs), another architecture is refused in one line, the classifier's learning rate is
multiplied, and frozen stages keep their weights and BN statistics bit for bit."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from gluon_tricks.errors import UserError
from gluon_tricks.models import get_model, initialize
from gluon_tricks.training import finetune

SIZE = 32


def _net(classes, model="resnet18_v1d", seed=0):
    mx.random.seed(seed)
    return initialize(get_model(model, classes=classes), [mx.cpu()], SIZE)


def _values(net):
    return {k: p.data().asnumpy().copy() for k, p in net._collect_params_with_prefix().items()}


def _gluoncv_resnet18_v1d():
    """GluonCV's ResNet-18-D (its ResNetV1b class with the D options), 1000 ImageNet classes."""
    from gluoncv.model_zoo import resnetv1b
    net = resnetv1b.ResNetV1b(resnetv1b.BasicBlockV1b, [2, 2, 2, 2], deep_stem=True,
                              avg_down=True, name_prefix="resnetv1d_")
    net.initialize(mx.init.Normal(0.5))
    net(mx.nd.zeros((1, 3, SIZE, SIZE)))
    return net


def test_gluoncv_weights_load_with_a_new_classifier(tmp_path):
    theirs = _gluoncv_resnet18_v1d()
    path = str(tmp_path / "gluoncv.params")
    theirs.save_parameters(path)
    ours = _net(10)
    fresh_fc = ours.fc.weight.data().asnumpy().copy()
    message = finetune.load_pretrained(ours, path, "resnet18_v1d")
    assert "1000 classes" in message and "fc.bias, fc.weight re-initialised" in message
    expected, got = _values(theirs), _values(ours)
    for name, value in got.items():
        if name.startswith("fc."):
            continue
        assert np.array_equal(value, expected[name]), name
    assert np.array_equal(got["fc.weight"], fresh_fc)  # left as initialised
    assert got["fc.weight"].shape == (10, 512) and expected["fc.weight"].shape == (1000, 512)


@pytest.mark.parametrize("names", ["structural", "export", "save_params"])
def test_same_class_count_loads_everything(tmp_path, names):
    source = _net(10, seed=1)
    path = str(tmp_path / "ours.params")
    if names == "export":  # MXNet's export writes arg:/aux: + full names
        source.hybridize()
        source(mx.nd.zeros((1, 3, SIZE, SIZE)))
        source.export(str(tmp_path / "exported"), epoch=0)
        path = str(tmp_path / "exported-0000.params")
    elif names == "save_params":  # the older format: full names less the network's prefix
        source.collect_params().save(path, strip_prefix=source.prefix)
        assert "dense0_weight" in mx.nd.load(path)
    else:
        source.save_parameters(path)
    target = _net(10, seed=2)
    assert "classifier included" in finetune.load_pretrained(target, path, "resnet18_v1d")
    expected = _values(source)
    assert all(np.array_equal(v, expected[k]) for k, v in _values(target).items())


def test_reset_classifier_leaves_a_fitting_classifier_out(tmp_path):
    source = _net(10, seed=1)
    path = str(tmp_path / "ours.params")
    source.save_parameters(path)
    target = _net(10, seed=2)
    fresh = _values(target)
    message = finetune.load_pretrained(target, path, "resnet18_v1d", reset_classifier=True)
    assert "is left out (--reset-classifier): fc.bias, fc.weight re-initialised" in message
    got, expected = _values(target), _values(source)
    assert np.array_equal(got["fc.weight"], fresh["fc.weight"])
    assert not np.array_equal(got["fc.weight"], expected["fc.weight"])
    assert np.array_equal(got["layer4.1.conv2.weight"], expected["layer4.1.conv2.weight"])


@pytest.mark.parametrize("other", ["resnet34_v1d", "resnet18_v1", "mobilenet1.0"])
def test_another_architecture_is_refused(tmp_path, other):
    path = str(tmp_path / "other.params")
    _net(10, model=other).save_parameters(path)
    with pytest.raises(UserError, match="is not a resnet18_v1d .params file"):
        finetune.load_pretrained(_net(10), path, "resnet18_v1d")


def test_not_a_params_file_is_one_line(tmp_path):
    path = tmp_path / "junk.params"
    path.write_bytes(b"not a params file")
    with pytest.raises(UserError, match="not an MXNet .params file"):
        finetune.load_pretrained(_net(10), str(path), "resnet18_v1d")


def test_classifier_learning_rate_multiplier():
    """One SGD step: the classifier moves 10x as far with lr_mult 10, the rest as far."""
    x = mx.nd.random.normal(shape=(4, 3, SIZE, SIZE))
    y = mx.nd.array([0, 1, 2, 3])
    deltas = []
    for mult in (1.0, 10.0):
        net = _net(5, seed=3)
        assert finetune.set_classifier_lr_mult(net, mult) == ["fc.bias", "fc.weight"]
        before = _values(net)
        trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01})
        with autograd.record():
            loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), y)
        loss.backward()
        trainer.step(4)
        deltas.append({k: v - before[k] for k, v in _values(net).items()})
    np.testing.assert_allclose(deltas[1]["fc.weight"], 10 * deltas[0]["fc.weight"], rtol=1e-3,
                               atol=1e-6)
    np.testing.assert_allclose(deltas[1]["layer4.1.conv2.weight"],
                               deltas[0]["layer4.1.conv2.weight"], rtol=1e-4, atol=1e-9)
    assert np.abs(deltas[0]["fc.weight"]).max() > 0


@pytest.mark.parametrize("hybrid", [True, False])
def test_frozen_stages_keep_weights_and_bn_statistics_bitwise(hybrid):
    net = _net(5, seed=4)
    frozen = finetune.freeze_stages(net, "resnet18_v1d", 2)
    assert frozen and all(n.split(".")[0] in ("conv1", "bn1", "layer1", "layer2") for n in frozen)
    assert "conv1.1.running_mean" in frozen and "layer2.0.downsample.2.running_var" in frozen
    if hybrid:
        net.hybridize(static_alloc=True, static_shape=True)
    before = _values(net)
    trainer = gluon.Trainer(net.collect_params(), "nag",
                            {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4})
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = mx.nd.array(rng.normal(2.0, 3.0, (4, 3, SIZE, SIZE)))  # far from the running stats
        with autograd.record():
            loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), mx.nd.array([0, 1, 2, 3]))
        loss.backward()
        trainer.step(4)
    after = _values(net)
    for name in before:
        unchanged = np.array_equal(before[name], after[name])
        if name in frozen:
            assert unchanged, name  # weights, gamma/beta and running mean/var alike
        else:
            assert not unchanged, name  # the rest trains, its BN statistics move


def test_freeze_stages_checks_its_argument():
    with pytest.raises(UserError, match=r"must be in \[0, 4\]"):
        finetune.freeze_stages(_net(5), "resnet18_v1d", 5)
    with pytest.raises(UserError, match="applies to the ResNets"):
        finetune.freeze_stages(get_model("mobilenet1.0", classes=5), "mobilenet1.0", 1)
    assert finetune.freeze_stages(_net(5), "resnet18_v1d", 0) == []


# -- end to end: `gluon-tricks train` fine-tuning on half of the demo classes -------------------

TINY = ["--model", "resnet18_v1d", "--input-size", SIZE, "--batch-size", "8", "-j", "0",
        "--log-interval", "2"]
EVERY_TRICK = ["--warmup-epochs", "1", "--lr-mode", "cosine", "--last-gamma", "--no-wd",
               "--label-smoothing", "--mixup", "--lr", "0.05"]
OTHER_HALF = ["ring", "square", "star", "stripes", "triangle"]


@pytest.fixture(scope="module")
def demo_half(tmp_path_factory):
    """The demo set's last 5 classes, 8 training and 4 validation images each, as folders."""
    import os
    import shutil
    from gluon_tricks.data.demo_data import default_demo_data
    demo = default_demo_data()
    root = tmp_path_factory.mktemp("demo_half")
    for split, count in (("train", 8), ("val", 4)):
        for name in OTHER_HALF:
            source = os.path.join(demo[split + "_dir"], name)
            os.makedirs(str(root / split / name))
            for filename in sorted(os.listdir(source))[:count]:
                shutil.copy(os.path.join(source, filename), str(root / split / name))
    return root


@pytest.fixture(scope="module")
def ten_class_weights(tmp_path_factory):
    """A resnet18_v1d for the 10 demo classes with non-trivial BN statistics."""
    net = _net(10, seed=11)
    for name, param in net._collect_params_with_prefix().items():
        if name.endswith("running_mean"):
            param.set_data(mx.nd.random.normal(0, 0.1, shape=param.shape))
        elif name.endswith("running_var"):
            param.set_data(mx.nd.random.uniform(0.5, 1.5, shape=param.shape))
    path = str(tmp_path_factory.mktemp("pretrained") / "ten.params")
    net.save_parameters(path)
    return path


def _flags(demo_half, out):
    return ["--train-dir", demo_half / "train", "--val-dir", demo_half / "val", "--save-dir",
            out, "--logging-file", out / "train.log", "--num-epochs", "2"]


def test_train_fine_tunes_with_every_trick(cli, demo_half, ten_class_weights, tmp_path):
    status, _, stderr = cli("train", *TINY, *EVERY_TRICK, *_flags(demo_half, tmp_path),
                            "--pretrained-params", ten_class_weights, "--freeze-stages", "2",
                            "--lr-mult-classifier", "10")
    assert status == 0, stderr
    log = open(str(tmp_path / "train.log")).read()
    assert "its classifier (10 classes) is left out (it does not fit 5 classes): fc.bias, " \
           "fc.weight re-initialised" in log
    assert "learning rate x10 on fc.bias, fc.weight" in log and "stages 1-2" in log
    pretrained = {k: v.asnumpy() for k, v in mx.nd.load(ten_class_weights).items()}
    final = {k: v.asnumpy() for k, v in
             mx.nd.load(str(tmp_path / "resnet18_v1d-0002.params")).items()}
    frozen = [k for k in final if k.split(".")[0] in ("conv1", "bn1", "layer1", "layer2")]
    assert any(k.endswith("running_var") for k in frozen) and len(frozen) > 20
    for name in frozen:  # weights, gamma/beta and running statistics: bit for bit
        assert np.array_equal(final[name], pretrained[name]), name
    for name in ("layer3.0.conv1.weight", "layer4.1.bn2.running_mean"):
        assert not np.array_equal(final[name], pretrained[name]), name
    assert final["fc.weight"].shape == (5, 512)


def test_pretrained_weights_of_another_architecture_end_in_one_line(cli, demo_half, tmp_path):
    path = str(tmp_path / "r34.params")
    _net(10, model="resnet34_v1d").save_parameters(path)
    status, _, stderr = cli("train", *TINY, *_flags(demo_half, tmp_path),
                            "--pretrained-params", path)
    assert status == 2
    assert stderr.strip() == ("gluon-tricks: error: --pretrained-params %s is not a resnet18_v1d "
                              ".params file: it holds 80 weights it does not have (e.g. "
                              "layer1.2.bn1.beta)" % path)


@pytest.mark.parametrize("flags, message", [
    (["--pretrained-params", "/nonexistent.params"], "--pretrained-params: no such file"),
    (["--freeze-stages", "5"], "--freeze-stages must be in [0, 4], not 5"),
    (["--lr-mult-classifier", "0"], "--lr-mult-classifier must be positive"),
    (["--reset-classifier"], "--reset-classifier needs --pretrained-params FILE"),
    (["--freeze-stages", "1", "--model", "mobilenet1.0"], "--freeze-stages applies to the ResNets"),
])
def test_bad_fine_tuning_flags_end_in_one_line(cli, demo_half, tmp_path, flags, message):
    status, _, stderr = cli("train", *TINY, *_flags(demo_half, tmp_path), *flags)
    assert status == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_finetune_demo_script_runs_its_three_rows(tmp_path):
    """scripts/finetune_demo.sh on 8 images a class and 1 epoch: the halves share no class, the
    fine-tuned runs start from the first half's weights, and the report has its three rows."""
    import os
    import subprocess
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "demo"
    env = dict(os.environ, PER_CLASS="8", BATCH="8", PRETRAIN_EPOCHS="1", EPOCHS="1",
               PYTHON=sys.executable, OMP_NUM_THREADS="1")
    done = subprocess.run([os.path.join(repo, "scripts", "finetune_demo.sh"), str(out)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    first = set(os.listdir(str(out / "data" / "first" / "train")))
    second = set(os.listdir(str(out / "data" / "second" / "train")))
    assert len(first) == len(second) == 5 and not first & second
    assert len(os.listdir(str(out / "data" / "second" / "train" / "ring"))) == 8
    for name in ("finetune", "finetune_frozen"):
        log = open(str(out / name / (name + ".log"))).read()
        assert "pretrain_first_half/resnet18_v1d-0001.params; its classifier (5 classes) is " \
               "left out (--reset-classifier): fc.bias, fc.weight re-initialised" in log
    assert "froze the stem and stages 1-2" in open(str(out / "finetune_frozen" /
                                                       "finetune_frozen.log")).read()
    rows = [line for line in open(str(out / "report.md")) if line.startswith("| /")]
    assert [row.split(" | ")[0].rsplit("/", 1)[1] for row in rows] == [
        "scratch.log", "finetune.log", "finetune_frozen.log", "pretrain_first_half.log"]


@pytest.mark.skipif(__import__("shutil").which(
    "horovodrun", path=__import__("os").path.dirname(__import__("sys").executable)) is None,
    reason="horovodrun is not installed in this environment")
def test_two_horovod_ranks_fine_tune_with_frozen_stages(demo_half, ten_class_weights, tmp_path):
    """Two ranks: the frozen stages (and their BN statistics) end bit for bit as loaded, and only
    rank 0 writes TensorBoard's events."""
    import os
    import subprocess
    import sys
    from gluon_tricks.training.tensorboard import read_scalars
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    command = [horovodrun, "-np", "2", "-H", "localhost:2", "--gloo", sys.executable, "-m",
               "gluon_tricks", "train", *[str(a) for a in TINY], "--batch-size", "4",
               *[str(a) for a in _flags(demo_half, tmp_path)], *EVERY_TRICK,
               "--pretrained-params", ten_class_weights, "--freeze-stages", "1",
               "--lr-mult-classifier", "10", "--tensorboard-dir", str(tmp_path / "tb")]
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    pretrained = {k: v.asnumpy() for k, v in mx.nd.load(ten_class_weights).items()}
    final = {k: v.asnumpy() for k, v in
             mx.nd.load(str(tmp_path / "resnet18_v1d-0002.params")).items()}
    frozen = [k for k in final if k.split(".")[0] in ("conv1", "bn1", "layer1")]
    assert all(np.array_equal(final[k], pretrained[k]) for k in frozen)
    assert not np.array_equal(final["layer2.0.bn1.running_mean"],
                              pretrained["layer2.0.bn1.running_mean"])
    assert len(os.listdir(str(tmp_path / "tb"))) == 1
    assert [s for s, _ in read_scalars(str(tmp_path / "tb"))["val/top1"]] == [5, 10]
