"""Our ResNets inside GluonCV's Faster R-CNN: the features/top_features split against GluonCV's own
split of its own ResNet, on shared weights; loading a classifier's weights as a backbone."""
import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.errors import UserError
from gluon_tricks.models import get_model
from gluon_tricks.models.backbones import (SEGMENTATION_STAGES, attach_to_segmentation_model,
                                           faster_rcnn_backbone, load_backbone,
                                           split_for_faster_rcnn)
from gluon_tricks.models.resnet import Bottleneck

SMALL_IMAGE = (1, 3, 128, 160)


def _gluoncv_split(name):
    """GluonCV's split of its own ResNet, as faster_rcnn_resnet50_v1b_voc writes it."""
    from gluoncv.model_zoo import resnetv1b
    base = getattr(resnetv1b, name)(pretrained=False, use_global_stats=True)
    features, top_features = mx.gluon.nn.HybridSequential(), mx.gluon.nn.HybridSequential()
    for layer in ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"]:
        features.add(getattr(base, layer))
    top_features.add(base.layer4)
    return base, features, top_features


def _randomise_bn_statistics(block):
    for pname, param in block.collect_params().items():
        if pname.endswith("running_mean"):
            param.set_data(mx.nd.random.normal(0, 0.1, shape=param.shape))
        elif pname.endswith("running_var"):
            param.set_data(mx.nd.random.uniform(0.5, 1.5, shape=param.shape))


@pytest.mark.parametrize("name", ["resnet50_v1b", "resnet50_v1d"])
def test_split_equals_gluoncvs_split_with_frozen_bn(name, tmp_path):
    from mxnet import autograd
    base, features, top = _gluoncv_split(name)
    base.initialize(mx.init.Xavier())
    base(mx.nd.zeros((1, 3, 64, 64)))
    _randomise_bn_statistics(base)
    base.save_parameters(str(tmp_path / "base.params"))
    ours_features, ours_top = faster_rcnn_backbone(name, str(tmp_path / "base.params"))
    assert [type(b).__name__ for b in ours_features] == [type(b).__name__ for b in features]
    x = mx.nd.random.uniform(-1, 1, shape=SMALL_IMAGE)
    regions = mx.nd.random.uniform(-1, 1, shape=(3, 1024, 14, 14))  # pooled regions
    with autograd.record(train_mode=True):  # frozen BN: training mode too uses running stats
        expected = features(x), top(regions)
        got = ours_features(x), ours_top(regions)
    for e, g in zip(expected, got):
        assert e.shape == g.shape
        assert np.abs(e.asnumpy() - g.asnumpy()).max() < 1e-5
    assert expected[0].shape[2:] == (SMALL_IMAGE[2] // 16, SMALL_IMAGE[3] // 16)
    trainable = get_model(name)  # without frozen BN, training mode differs
    trainable.load_parameters(str(tmp_path / "base.params"))
    free_features, _ = split_for_faster_rcnn(trainable)
    with autograd.record(train_mode=True):
        assert np.abs(free_features(x).asnumpy() - expected[0].asnumpy()).max() > 1e-3


def test_gluoncvs_faster_rcnn_with_our_split_equals_its_own(monkeypatch, tmp_path):
    """GluonCV's faster_rcnn_resnet50_v1b_voc, once as GluonCV builds it and once with our split
    put in its place (the same recipe: only the backbone differs), on shared weights. Both keep
    fewer test proposals (32 of 300) so that stage 4 runs on fewer regions: seconds, not minutes."""
    from gluoncv.model_zoo.rcnn.faster_rcnn import predefined_models
    real_get_faster_rcnn = predefined_models.get_faster_rcnn
    ours_wanted = []

    def fewer_proposals(**kwargs):
        kwargs.update(rpn_test_pre_nms=500, rpn_test_post_nms=32)
        if ours_wanted:
            kwargs["features"], kwargs["top_features"] = faster_rcnn_backbone("resnet50_v1b")
        return real_get_faster_rcnn(**kwargs)
    monkeypatch.setattr(predefined_models, "get_faster_rcnn", fewer_proposals)
    theirs = predefined_models.faster_rcnn_resnet50_v1b_voc(pretrained_base=False)
    ours_wanted.append(True)
    ours = predefined_models.faster_rcnn_resnet50_v1b_voc(pretrained_base=False)
    assert isinstance(ours.features[4][0], Bottleneck)  # really ours
    assert not isinstance(theirs.features[4][0], Bottleneck)
    theirs.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, 160, 192))
    theirs(x)
    _randomise_bn_statistics(theirs)
    theirs.save_parameters(str(tmp_path / "faster_rcnn.params"))
    ours.load_parameters(str(tmp_path / "faster_rcnn.params"))  # strict: every name matches
    expected = [o.asnumpy() for o in theirs(x)]  # class ids, scores, boxes
    got = [o.asnumpy() for o in ours(x)]
    assert (got[2][0, :, 0] >= 0).sum() > 5  # boxes were really proposed
    differences = [np.abs(e - g).max() for e, g in zip(expected, got)]
    print("Faster R-CNN ids/scores/boxes max abs differences: %s" % differences)
    assert max(differences) < 1e-4


def test_loading_a_classifier_of_any_class_count_as_backbone(tmp_path):
    net = get_model("resnet18_v1d", classes=10)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(tmp_path / "demo.params"))
    loaded = load_backbone("resnet18_v1d", str(tmp_path / "demo.params"), dilated=True)
    assert np.array_equal(loaded.layer4[0].conv1.weight.data().asnumpy(),
                          net.layer4[0].conv1.weight.data().asnumpy())
    assert loaded.dilated


@pytest.mark.parametrize("case", ["garbage", "other_depth", "not_a_resnet", "no_fc"])
def test_bad_backbone_weights_are_one_clear_error(case, tmp_path):
    path = tmp_path / "bad.params"
    name = "resnet18_v1d"
    if case == "garbage":
        path.write_bytes(b"not a params file")
    elif case == "no_fc":
        mx.nd.save(str(path), {"conv1.weight": mx.nd.zeros((1,))})
    else:
        other = get_model("resnet34_v1d", classes=10)
        other.initialize()
        other(mx.nd.zeros((1, 3, 32, 32)))
        other.save_parameters(str(path))
        name = "mobilenet1.0" if case == "not_a_resnet" else name
    with pytest.raises(UserError) as error:
        load_backbone(name, str(path))
    message = str(error.value)
    assert "\n" not in message
    assert {"garbage": "cannot read", "other_depth": "not those of resnet18_v1d",
            "not_a_resnet": "one of our ResNets", "no_fc": "no fc.weight"}[case] in message


def test_gluoncvs_fcn_with_our_dilated_resnet_equals_it_with_gluoncvs(monkeypatch, tmp_path):
    """GluonCV's FCN (with its auxiliary head) on GluonCV's own dilated resnet50_v1d, chosen
    through its get_backbone, against the same FCN with our dilated network attached; shared
    weights, equal outputs (main and auxiliary)."""
    from gluoncv.model_zoo import resnetv1b, segbase
    from gluoncv.model_zoo.fcn import FCN
    monkeypatch.setattr(segbase, "get_backbone",
                        lambda name, **kwargs: resnetv1b.resnet50_v1d(**kwargs))
    theirs = FCN(11, backbone="resnet50", aux=True, pretrained_base=False, crop_size=64)
    ours = FCN(11, backbone="resnet50", aux=True, pretrained_base=False, crop_size=64)
    attach_to_segmentation_model(ours, load_backbone("resnet50_v1d", dilated=True))
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, 64, 64))
    theirs.initialize(mx.init.Xavier())
    theirs(x)
    _randomise_bn_statistics(theirs)
    theirs.save_parameters(str(tmp_path / "fcn.params"))
    ours.load_parameters(str(tmp_path / "fcn.params"))  # strict: every name matches
    expected, got = theirs(x), ours(x)
    assert len(expected) == len(got) == 2 and expected[0].shape == (1, 11, 64, 64)
    differences = [float(np.abs(e.asnumpy() - g.asnumpy()).max()) for e, g in zip(expected, got)]
    print("FCN main/auxiliary max abs differences: %s" % differences)
    assert max(differences) < 1e-4
    assert isinstance(ours.layer4[0], Bottleneck) and isinstance(ours.layer1[0], Bottleneck)
    assert ours.layer4[0].conv2._kwargs["dilate"] == (2, 2)  # really ours, really dilated
    with pytest.raises(UserError):
        attach_to_segmentation_model(ours, get_model("resnet50_v1d"))


@pytest.mark.parametrize("gluoncv_backbone,ours", [("resnet50", "resnet50_v1b"),
                                                    ("resnet18", "resnet18_v1d")])
def test_our_stem_replaces_gluoncvs_whichever_kind_each_has(gluoncv_backbone, ours):
    """GluonCV's segmentation backbone has a deep stem at depth 50 (resnet50_v1s) and a plain
    one at 18; ours of either kind takes its place (a Conv2D stem for a HybridSequential one and
    the reverse), and the model then runs on it."""
    from gluoncv.model_zoo.fcn import FCN
    model = FCN(5, backbone=gluoncv_backbone, aux=False, pretrained_base=False, crop_size=32)
    net = load_backbone(ours, dilated=True)
    attach_to_segmentation_model(model, net)
    assert model.conv1 is net.conv1 and model.layer4 is net.layer4
    assert type(model.conv1) is not type(FCN(5, backbone=gluoncv_backbone, aux=False,
                                             pretrained_base=False).conv1)
    assert [name for name in model._children][:8] == list(SEGMENTATION_STAGES)
