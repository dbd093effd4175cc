"""scripts/segmentation_twin.py: its verdict arithmetic against the formulas, its reading of
GluonCV's published segmentation log, of `segment train`'s log lines and of its own timing
record, its flags accepted by `segment train`, and its substitutions into GluonCV: the FCN that
train.py builds gets the demo set's class count, our backbone's weights (the same features as
`segment train`'s FCN from the same checkpoint) and heads for its channels, and GluonCV's
ADE20KSegmentation reads the demo set; from equal weights and batches, train.py's training step
and `segment train`'s give the same losses and weights. (A whole twin run takes minutes: not
run here.)"""
import importlib.util
import json
import os
import statistics

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.data import demo_scenes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLUONCV_LOG = os.path.join(REPO, "logs", "gluoncv", "segmentation", "fcn_resnet50_voc.log")


@pytest.fixture(scope="module")
def twin():
    spec = importlib.util.spec_from_file_location(
        "segmentation_twin", os.path.join(REPO, "scripts", "segmentation_twin.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pooled_std_is_the_pooled_sample_standard_deviation(twin):
    a, b = [0.30, 0.34, 0.29], [0.31, 0.27, 0.35, 0.33]
    expected = np.sqrt(((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1))
                       / (len(a) + len(b) - 2))
    assert twin.pooled_std(a, b) == pytest.approx(expected, rel=1e-12)
    assert twin.pooled_std([0.3], [0.4]) == 0.0  # no degree of freedom


def test_the_verdict_is_mean_difference_below_twice_the_pooled_std(twin):
    a, b = [0.30, 0.34, 0.29], [0.31, 0.33, 0.28]
    diff, bound, same = twin.same_within_noise(a, b)
    assert diff == pytest.approx(abs(np.mean(a) - np.mean(b)))
    assert bound == pytest.approx(2 * twin.pooled_std(a, b)) and same is True
    assert twin.same_within_noise(a, [x + 0.2 for x in b])[2] is False
    assert twin.same_within_noise([0.3], [0.3])[2] is None  # one seed each: no noise estimate


def test_at_least_as_fast_allows_noise_but_not_a_clear_slowdown(twin):
    gluoncv = [1.00, 1.10, 0.90]
    assert twin.at_least_as_fast([0.8, 0.85, 0.9], gluoncv) is True
    assert twin.at_least_as_fast([1.05, 1.1, 1.0], gluoncv) is True  # slower, within the noise
    assert twin.at_least_as_fast([1.5, 1.6, 1.4], gluoncv) is False
    assert twin.at_least_as_fast([0.9], [1.0]) is True
    assert twin.at_least_as_fast([1.1], [1.0]) is None  # slower, no noise to compare with


def test_final_metrics_are_the_last_validation_of_gluoncvs_published_log(twin):
    with open(GLUONCV_LOG) as f:
        last = f.read().rsplit("validation pixAcc: ", 1)[1]
    pix_acc, miou = last.split(", mIoU: ")[0], last.split(", mIoU: ")[1][:5]
    assert twin.final_metrics(GLUONCV_LOG) == (float(pix_acc), float(miou)) == (0.852, 0.634)


def test_our_iteration_time_is_each_epochs_training_cost_over_its_iterations(twin, tmp_path):
    from gluon_tricks.segmentation import loop
    lines = []
    for epoch, (iterations, seconds) in enumerate([(12, 30.0), (13, 26.0), (12, 12.0),
                                                   (13, 39.0)]):
        lines += [loop.training_message(epoch, 6, iterations, 0.7),  # a mid-epoch line
                  loop.training_message(epoch, iterations, iterations, 0.6),
                  "Epoch %d training cost: %.1f s" % (epoch, seconds),
                  loop.validation_message(epoch, 0.5 + epoch / 100, 0.1 + epoch / 100)]
    path = tmp_path / "train.log"
    path.write_text("\n".join(lines) + "\n")
    assert twin.our_iteration_time(str(path)) == statistics.median([2.0, 1.0, 3.0])
    assert twin.final_metrics(str(path)) == (0.53, 0.13)
    path.write_text("\n".join(lines[:3]) + "\n")  # one epoch: itself
    assert twin.our_iteration_time(str(path)) == 2.5
    path.write_text(lines[3] + "\n")
    with pytest.raises(ValueError, match="training cost"):
        twin.our_iteration_time(str(path))


def test_the_timed_bar_records_training_passes_only(twin, tmp_path):
    import tqdm

    class Split(mx.gluon.data.Dataset):
        def __init__(self, mode):
            self.mode = mode

        def __len__(self):
            return 6

        def __getitem__(self, index):
            return np.float32(index)
    times = twin.TrainingTimes(str(tmp_path / "times.jsonl"))
    bar = times.bar_class(tqdm.tqdm)
    for mode in ("train", "val", "train"):
        loader = mx.gluon.data.DataLoader(Split(mode), 4, last_batch="rollover")
        assert [b.shape[0] for b in bar(loader, disable=True)] == [4]
    records = [json.loads(line) for line in open(times.path)]
    assert [r["iterations"] for r in records] == [1, 1] and all(r["seconds"] >= 0
                                                               for r in records)
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"seconds": s, "iterations": n}) + "\n"
                                              for s, n in [(9, 3), (4, 2), (12, 3), (2, 2)]))
    assert twin.gluoncv_iteration_time(str(tmp_path / "t.jsonl")) == 2.0  # median(2, 4, 1)


def test_the_last_epochs_weights_give_gluoncvs_miou(twin, tmp_path):
    from gluon_tricks.segment import gluoncv_weights_name
    for epoch, miou in [(0, 0.25), (9, 0.4321), (10, 0.1234), (2, 0.9)]:
        (tmp_path / gluoncv_weights_name(epoch, miou)).write_bytes(b"")
    assert twin.last_weights_miou(str(tmp_path)) == 0.1234
    with pytest.raises(ValueError, match="no epoch"):
        twin.last_weights_miou(str(tmp_path / "none"))


def test_missing_or_bad_arguments_are_refused_in_one_line(twin, tmp_path, capsys):
    script = tmp_path / "train.py"
    script.write_text("")
    for argv, message in (
            ([], "--gluoncv-script is required"),
            (["--gluoncv-script", str(script)], "--backbone-params is required"),
            (["--gluoncv-script", str(tmp_path / "no.py"), "--backbone-params", str(script)],
             "--gluoncv-script: no file"),
            (["--gluoncv-script", str(script), "--backbone-params", str(script), "--seeds", "0"],
             "--seeds must be at least 1"),
            (["--gluoncv-script", str(script), "--backbone-params", str(script), "--backbone",
              "resnet26_v1d"], "--backbone must be")):
        with pytest.raises(SystemExit) as exit_info:
            twin.parse_args(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_our_side_is_a_command_segment_train_accepts_with_the_shared_flags(twin, tmp_path):
    from gluon_tricks.cli import build_parser
    args = twin.parse_args(["--gluoncv-script", __file__, "--backbone-params", __file__,
                            "--epochs", "3", "--lr", "0.02", "--crop-size", "48",
                            "--base-size", "72"])
    args.dataset_root = str(tmp_path)
    parsed = build_parser().parse_args(twin.ours_argv(args, 4, str(tmp_path / "run")))
    assert (parsed.backbone, parsed.epochs, parsed.lr, parsed.crop_size, parsed.base_size,
            parsed.seed, parsed.aux, parsed.num_class, parsed.batch_size,
            parsed.test_batch_size, parsed.workers, parsed.ngpus, parsed.backbone_params) == (
        "resnet18_v1d", 3, 0.02, 48, 72, 4, True, 10, 8, 8, 0, 0, os.path.abspath(__file__))
    gluoncv = twin.gluoncv_argv(args, "run")
    assert gluoncv[:-3] == twin.shared_flags(args, None, "run")  # no --seed: the wrapper's
    assert gluoncv[-3:] == ["--backbone", "resnet18", "--no-cuda"]


def _classifier(backbone, path):
    from gluon_tricks.models import get_model
    net = get_model(backbone, classes=10)  # random weights, saved as `train` saves them
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(path)
    return path


# backbone -> train.py's --backbone, (aux head's, head's) input channels
BACKBONES = {"resnet18_v1d": ("resnet18", (256, 512)), "resnet18_v1b": ("resnet18", (256, 512)),
             "resnet50_v1d": ("resnet50", (1024, 2048))}


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_gluoncvs_fcn_gets_the_demo_classes_and_the_features_of_our_fcn(
        twin, backbone, tmp_path, monkeypatch):
    from gluoncv.data import get_segmentation_dataset
    from gluoncv.model_zoo.segbase import get_segmentation_model
    from gluon_tricks.segmentation import model as ours
    params = _classifier(backbone, str(tmp_path / "classifier.params"))
    demo_scenes.write_segmentation_set(str(tmp_path))
    # `segment train`'s FCN (built first: it too takes GluonCV's _FCNHead, patched below)
    ref = ours.initialise(ours.build_fcn(backbone, 10, params, True, 48, 32), [mx.cpu()])
    twin.install_substitutions(dict(root=str(tmp_path), num_class=10, backbone=backbone,
                                    backbone_params=params), patch=monkeypatch.setattr)
    gluoncv_backbone, channels = BACKBONES[backbone]
    # what train.py calls, with what it passes
    trainset = get_segmentation_dataset("ade20k", split="train", mode="train", base_size=48,
                                        crop_size=32)
    assert (trainset.num_class, len(trainset)) == (10, 100)
    assert all(p.startswith(str(tmp_path)) for p in trainset.images)
    assert len(get_segmentation_dataset("ade20k", split="val", mode="val")) == 40
    net = get_segmentation_model(model="fcn", dataset="ade20k", backbone=gluoncv_backbone,
                                 norm_layer=mx.gluon.nn.BatchNorm, norm_kwargs={}, aux=True,
                                 base_size=48, crop_size=32)
    assert [h.block[0].weight.shape[1] for h in (net.auxlayer, net.head)] == list(channels)
    assert net.head.block[-1].weight.shape[0] == 10
    first = "conv1.0.weight" if backbone.endswith(("v1c", "v1d")) else "conv1.weight"
    stem = list(net.conv1.collect_params().values())[0].data()
    assert np.array_equal(stem.asnumpy(), mx.nd.load(params)[first].asnumpy())
    x = mx.nd.random.uniform(shape=(2, 3, 32, 32))
    outputs = net(x)
    assert [o.shape for o in outputs] == [(2, 10, 32, 32)] * 2
    with mx.autograd.predict_mode():
        for theirs, mine in zip(net.base_forward(x), ref.base_forward(x)):
            assert theirs.shape == mine.shape
            assert np.abs(theirs.asnumpy() - mine.asnumpy()).max() < 1e-4


def test_both_sides_take_the_same_training_steps_from_the_same_weights_and_batches(
        twin, tmp_path, monkeypatch):
    """GluonCV's step as train.py takes it (DataParallelModel and DataParallelCriterion, not
    hybridized, gluon.Trainer on a local KVStore object) and `segment train`'s (loop's trainer
    and criterion, hybridized), the heads' dropout off: the same losses and weights."""
    from mxnet import autograd, gluon
    from gluoncv.loss import MixSoftmaxCrossEntropyLoss
    from gluoncv.model_zoo.segbase import get_segmentation_model
    from gluoncv.utils import LRScheduler, LRSequential
    from gluoncv.utils.parallel import DataParallelCriterion, DataParallelModel
    from gluon_tricks.segmentation import loop, model as ours
    params = _classifier("resnet18_v1d", str(tmp_path / "classifier.params"))
    mine = ours.initialise(ours.build_fcn("resnet18_v1d", 10, params, True, 48, 32), [mx.cpu()])
    twin.install_substitutions(dict(root=str(tmp_path), num_class=10, backbone="resnet18_v1d",
                                    backbone_params=params), patch=monkeypatch.setattr)
    theirs = get_segmentation_model(model="fcn", dataset="ade20k", backbone="resnet18",
                                    norm_layer=mx.gluon.nn.BatchNorm, norm_kwargs={}, aux=True,
                                    base_size=48, crop_size=32)
    mine_params = list(mine.collect_params().values())
    their_params = list(theirs.collect_params().values())
    for a, b in zip(mine_params, their_params, strict=True):
        assert (a.shape, a.lr_mult, a.wd_mult) == (b.shape, b.lr_mult, b.wd_mult)
        b.set_data(a.data())  # the heads' random initial weights made equal
    for net in (mine, theirs):
        for head in (net.head, net.auxlayer):
            head.block[3]._rate = 0.0  # Dropout(0.1): its draws differ between the sides
    mine.hybridize()
    ctx = [mx.cpu(0)]
    net = DataParallelModel(theirs, ctx, False)
    criterion = DataParallelCriterion(MixSoftmaxCrossEntropyLoss(True, aux_weight=0.5), ctx,
                                      False)
    schedule = LRSequential([
        LRScheduler("linear", base_lr=0, target_lr=0.01, nepochs=0, iters_per_epoch=3),
        LRScheduler(mode="poly", base_lr=0.01, nepochs=2, iters_per_epoch=3, power=0.9)])
    their_trainer = gluon.Trainer(theirs.collect_params(), "sgd", {
        "lr_scheduler": schedule, "wd": 1e-4, "momentum": 0.9, "learning_rate": 0.01},
        kvstore=mx.kv.create("local"))
    my_trainer = loop.make_trainer(mine, 0.9, 1e-4, loop.lr_scheduler(0.01, 2, 0, 3))
    my_criterion = loop.make_criterion(True, 0.5)
    rng = np.random.RandomState(0)
    for _ in range(2):
        x = mx.nd.array(rng.randn(4, 3, 32, 32))
        y = mx.nd.array(rng.randint(-1, 10, (4, 32, 32)))
        with autograd.record(True):
            their_losses = criterion(net(x), y)
            mx.nd.waitall()
            autograd.backward(their_losses)
        their_trainer.step(4)
        with autograd.record(True):
            my_losses = my_criterion(*mine(x), y)
        autograd.backward(my_losses)
        my_trainer.step(4)
        assert np.allclose(their_losses[0].asnumpy(), my_losses.asnumpy(), rtol=1e-5)
        assert max(np.abs(a.data().asnumpy() - b.data().asnumpy()).max()
                   for a, b in zip(mine_params, their_params)) < 1e-5
    assert their_trainer.learning_rate == my_trainer.learning_rate < 0.01
