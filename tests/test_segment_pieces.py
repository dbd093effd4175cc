"""The pieces of `segment train`: the rollover batches against MXNet's own rollover sampler and
across a resume, per-sample augmentation seeds, the FCN on our backbone at any depth, the
polynomial schedule against its formula, and the validation metric on known predictions."""
import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.data import demo_scenes
from gluon_tricks.segmentation import data, loop, model


class _Orders:
    """A sampler yielding RolloverBatches' order of epoch 0, 1, 2, ... on successive passes."""

    def __init__(self, batches):
        self.batches, self.epoch = batches, 0

    def __iter__(self):
        order = self.batches.order(self.epoch)
        self.epoch += 1
        return iter(int(i) for i in order)

    def __len__(self):
        return self.batches.size


def test_rollover_batches_are_mxnets_and_any_epoch_follows_from_the_seed():
    """MXNet's BatchSampler(last_batch='rollover'), GluonCV's training loader, over the same
    orders gives the same batches epoch after epoch; a fresh object set to epoch e (a resumed
    run) gives epoch e's batches, the images carried over from e-1 included, and from batch b
    on when asked; every key (epoch of its order, image) comes once."""
    size, batch = 10, 4
    ours = data.RolloverBatches(size, batch, seed=5)
    theirs = mx.gluon.data.BatchSampler(_Orders(ours), batch, "rollover")
    lengths, keys = [], []
    for epoch in range(5):
        ours.set_epoch(epoch)
        got = list(ours)
        assert [[index for _, index in b] for b in got] == [list(b) for b in theirs], epoch
        lengths.append(len(ours))
        keys += [key for b in got for key in b]
        resumed = data.RolloverBatches(size, batch, seed=5).set_epoch(epoch)
        assert list(resumed) == got
        assert list(resumed.set_epoch(epoch, 1)) == got[1:]
    assert lengths == [2, 3, 2, 3, 2]  # 10 images in batches of 4: 2 carried over every 2nd
    assert len(set(keys)) == len(keys) == 48
    assert data.RolloverBatches(size, batch, seed=6).order(0).tolist() != ours.order(0).tolist()


def test_each_image_draws_its_augmentation_from_its_own_key(tmp_path):
    """GluonCV's random crop, scale, mirror and blur of one key (epoch, image) are the same
    whenever and in whatever order it is read; other epochs give other crops."""
    from gluon_tricks.data import keyed
    demo_scenes.write_segmentation_set(str(tmp_path))
    dataset = data.gluoncv_dataset(str(tmp_path), "train", "train", 48, 32, 10)
    samples = keyed.KeyedTransform(dataset, None, 11)  # GluonCV's dataset draws its own
    first = samples[(0, 3)]
    samples[(0, 5)]
    again = samples[(0, 3)]
    assert first[0].shape == (3, 32, 32) and first[1].shape == (32, 32)
    assert (first[0] == again[0]).min() == 1 and (first[1] == again[1]).min() == 1
    others = [samples[(epoch, 3)][0] for epoch in range(1, 5)]
    assert any((o - first[0]).abs().max().asscalar() > 0 for o in others)
    assert dataset.num_class == 10 and dataset.images == sorted(dataset.images)
    assert first[1].min().asscalar() >= -1 and first[1].max().asscalar() <= 9  # 0 is now -1


@pytest.mark.parametrize("backbone,channels", [("resnet18_v1b", (256, 512)),
                                               ("resnet50_v1d", (1024, 2048))])
def test_the_fcn_takes_our_backbone_at_any_depth(backbone, channels):
    """Head on stage 4 and auxiliary head on stage 3, with their input channels; heads at 10x
    the learning rate, the backbone at 1x; outputs at the crop size."""
    net = model.build_fcn(backbone, 7, None, aux=True, base_size=40, crop_size=32)
    model.initialise(net, [mx.cpu()])
    main, aux = net(mx.nd.zeros((1, 3, 32, 32)))
    assert main.shape == aux.shape == (1, 7, 32, 32)
    assert net.head.block[0].weight.shape[1] == channels[1]
    assert net.auxlayer.block[0].weight.shape[1] == channels[0]
    mults = {name.split(".")[0]: p.lr_mult for name, p in net._collect_params_with_prefix().items()}
    assert mults["head"] == mults["auxlayer"] == 10 and mults["layer4"] == 1
    assert net.layer4 is not None and getattr(net.layer4[0], "conv2")._kwargs["dilate"] != (1, 1)


def test_a_scratch_backbone_is_initialised_from_the_seed_not_at_the_first_step():
    """Every weight exists on every device once `initialise` returns: none is left to the first
    training forward, whose draws follow the step's dropout seed (a rank and a device of one
    process would then draw different dropout masks after the same seed)."""
    def initialised():
        mx.random.seed(5)
        net = model.build_fcn("resnet18_v1d", 3, None, aux=True, base_size=40, crop_size=32)
        return model.initialise(net, [mx.cpu(0), mx.cpu(1)])
    net, again = initialised(), initialised()
    for (name, param), other in zip(net.collect_params().items(), again.collect_params().values()):
        for ctx in (mx.cpu(0), mx.cpu(1)):
            assert (param.data(ctx) == other.data(ctx)).min() == 1, name
    first = next(iter(net.collect_params().values()))  # the stem's first convolution
    assert first.data().abs().sum().asscalar() > 0


def test_the_backbone_weights_come_from_the_classifier_file(tmp_path):
    from gluon_tricks.models import get_model
    classifier = get_model("resnet18_v1d", classes=5)
    classifier.initialize(mx.init.Xavier())
    classifier(mx.nd.zeros((1, 3, 32, 32)))
    path = str(tmp_path / "c.params")
    classifier.save_parameters(path)
    net = model.build_fcn("resnet18_v1d", 3, path, aux=False, base_size=40, crop_size=32)
    model.initialise(net, [mx.cpu()])
    saved = mx.nd.load(path)
    own = net._collect_params_with_prefix()
    stages = [name for name in saved if not name.startswith("fc.")]
    assert stages and all((own[name].data() == saved[name]).min() == 1 for name in stages)


def test_the_schedule_is_polynomial_with_power_0_9():
    """lr (1 - T / (N - 1)) ** 0.9 at update T of N, after a linear warmup when asked."""
    scheduler = loop.lr_scheduler(0.01, epochs=3, warmup_epochs=0, iters_per_epoch=5)
    for t in (0, 3, 7, 14):
        assert scheduler(t) == pytest.approx(0.01 * (1 - t / 14) ** 0.9)
    warm = loop.lr_scheduler(0.01, epochs=3, warmup_epochs=1, iters_per_epoch=5)
    assert warm(0) == 0 and warm(2) == pytest.approx(0.01 * 2 / 4)
    assert warm(5) == pytest.approx(0.01) and warm(7) == pytest.approx(0.01 * (1 - 2 / 9) ** 0.9)


class _Oracle:
    """A 'model' whose main head scores each pixel's label (from a lookup) as the best class."""

    def __init__(self, targets, nclass, wrong_class=None):
        self.targets, self.nclass, self.wrong = iter(targets), nclass, wrong_class

    def evaluate(self, x):
        target = next(self.targets).asnumpy()
        label = np.where(target < 0, 0, target)
        if self.wrong is not None:
            label = np.where(label == self.wrong, (self.wrong + 1) % self.nclass, label)
        scores = np.eye(self.nclass)[label].transpose(0, 3, 1, 2)
        return mx.nd.array(scores)


def test_validation_counts_pixels_and_ignores_label_minus_one():
    """Perfect predictions: pixAcc 1 and mIoU 1 (every class present); class 1 always predicted
    as 2: pixAcc the other pixels' share, IoU 0 for class 1 and |2| / |1 or 2| for class 2."""
    from gluoncv.utils.metrics import SegmentationMetric
    target = mx.nd.array([[[0, 1, 2], [2, 2, -1]]], dtype="int32")
    loader = [(mx.nd.zeros((1, 3, 2, 3)), target)]
    pix_acc, miou = loop.validate(_Oracle([target], 3), [loader], SegmentationMetric(3),
                                  [mx.cpu()])
    assert (pix_acc, miou) == pytest.approx((1.0, 1.0))
    pix_acc, miou = loop.validate(_Oracle([target], 3, wrong_class=1), [loader],
                                  SegmentationMetric(3), [mx.cpu()])
    assert pix_acc == pytest.approx(4 / 5)
    assert miou == pytest.approx((1 + 0 + 3 / 4) / 3)


class _ConstantClass(mx.gluon.HybridBlock):
    """A segmentation 'model' that scores class `k` highest at every pixel of any image."""

    def __init__(self, k, nclass, crop_size):
        super().__init__()
        self.k, self.nclass, self.base_size, self.crop_size = k, nclass, crop_size, crop_size
        with self.name_scope():
            self.unused = self.params.get("unused", shape=(1,), init="zeros")
        self.initialize()

    def evaluate(self, x):
        return mx.nd.one_hot(mx.nd.full(x.shape[:1] + x.shape[2:], self.k), self.nclass) \
            .transpose((0, 3, 1, 2))


def test_multi_scale_evaluation_scores_whole_images(tmp_path):
    """Whole validation images through MultiEvalModel (two scales, flipped) with a model that
    always says class k: pixAcc = the share of class k among the labelled pixels of the masks,
    mIoU = that share / classes (IoU 0 elsewhere), counted here from the PNGs."""
    from PIL import Image
    from gluoncv.utils.metrics import SegmentationMetric
    demo_scenes.write_segmentation_set(str(tmp_path))
    masks = sorted(tmp_path.glob("ADEChallengeData2016/annotations/validation/*.png"))[:6]
    for extra in sorted(tmp_path.glob("ADEChallengeData2016/*/validation/*"))[6:]:
        if extra.stem not in {m.stem for m in masks}:
            extra.unlink()
    labels = np.concatenate([np.array(Image.open(m)).ravel() for m in masks])
    k = int(np.bincount(labels[labels > 0]).argmax()) - 1  # mask value k + 1 is class k
    share = np.sum(labels == k + 1) / np.sum(labels > 0)
    dataset = data.gluoncv_dataset(str(tmp_path), "val", "testval", 48, 32, 10)
    assert len(dataset) == 6
    pix_acc, miou = loop.validate_multi_scale(
        _ConstantClass(k, 10, 32), data.testval_loader(dataset, 0), SegmentationMetric(10), 10,
        mx.cpu(), scales=(0.75, 1.5))
    assert 0 < share < 1 and pix_acc == pytest.approx(share)
    assert miou == pytest.approx(share / 10)


def test_the_trainer_steps_along_the_schedule():
    """SGD's rate after k updates is the scheduler's at k; --no-wd clears the biases' decay."""
    from mxnet import autograd
    net = mx.gluon.nn.Dense(2)
    net.initialize()
    scheduler = loop.lr_scheduler(0.01, epochs=2, warmup_epochs=0, iters_per_epoch=5)
    trainer = loop.make_trainer(net, 0.9, 1e-4, scheduler, no_wd=True)
    for _ in range(3):
        with autograd.record():
            loss = net(mx.nd.ones((1, 4))).sum()
        loss.backward()
        trainer.step(1)
    assert trainer.learning_rate == pytest.approx(0.01 * (1 - 3 / 9) ** 0.9)
    assert net.bias.wd_mult == 0 and net.weight.wd_mult == 1
