"""scripts/detection_twin.py: its verdict arithmetic against the formulas, its log reading on
GluonCV's published detection log, its flags accepted by `detect train`, and its substitutions
into GluonCV: faster_rcnn_resnet50_v1b_voc (and the same recipe on GluonCV's resnet18_v1b)
built through GluonCV's model zoo gets the demo classes, the small recipe and exactly the
backbone weights of our classifier checkpoint, and GluonCV's VOCDetection reads the demo set.
(A whole twin run takes minutes: not run here.)"""
import argparse
import importlib.util
import os
import statistics

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.data import demo_scenes
from gluon_tricks.data.demo_data import CLASSES
from gluon_tricks.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLUONCV_LOG = os.path.join(REPO, "logs", "gluoncv", "detection",
                           "faster_rcnn_resnet50_v1b_voc_train.log")


@pytest.fixture(scope="module")
def twin():
    spec = importlib.util.spec_from_file_location(
        "detection_twin", os.path.join(REPO, "scripts", "detection_twin.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pooled_std_is_the_pooled_sample_standard_deviation(twin):
    a, b = [0.30, 0.34, 0.29], [0.31, 0.27, 0.35, 0.33]
    expected = np.sqrt(((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1))
                       / (len(a) + len(b) - 2))
    assert twin.pooled_std(a, b) == pytest.approx(expected, rel=1e-12)
    # equal groups: the root of the mean of the two variances
    c = [0.5, 0.6, 0.4]
    assert twin.pooled_std(a, c) == pytest.approx(
        np.sqrt((np.var(a, ddof=1) + np.var(c, ddof=1)) / 2), rel=1e-12)


def test_the_map_verdict_is_mean_difference_below_twice_the_pooled_std(twin):
    a, b = [0.30, 0.34, 0.29], [0.31, 0.33, 0.28]
    diff, bound, same = twin.same_within_noise(a, b)
    assert diff == pytest.approx(abs(np.mean(a) - np.mean(b)))
    assert bound == pytest.approx(2 * twin.pooled_std(a, b)) and same is True
    far = [x + 0.2 for x in b]
    assert twin.same_within_noise(a, far)[2] is False
    assert twin.same_within_noise([0.3], [0.3])[2] is None  # one seed each: no noise estimate


def test_at_least_as_fast_allows_noise_but_not_a_clear_slowdown(twin):
    gluoncv = [1.00, 1.10, 0.90]
    assert twin.at_least_as_fast([0.8, 0.85, 0.9], gluoncv)
    assert twin.at_least_as_fast([1.05, 1.1, 1.0], gluoncv)  # slower by less than the noise
    assert not twin.at_least_as_fast([1.5, 1.6, 1.4], gluoncv)
    assert twin.at_least_as_fast([0.5], [1.0]) is None  # one run each: no noise estimate


def test_read_log_takes_gluoncvs_final_map_and_its_median_iteration_time(twin):
    mean_ap, per_iteration = twin.read_log(GLUONCV_LOG, batch_size=8)
    with open(GLUONCV_LOG) as f:
        text = f.read()
    assert mean_ap == float(text.rsplit("mAP=", 1)[1].split()[0])
    speeds = [float(s) for e, s in twin.ITERATION.findall(text) if int(e) > 0]
    assert len(speeds) > 100
    assert per_iteration == pytest.approx(8 / statistics.median(speeds))


def test_read_log_skips_epoch_0_and_refuses_a_log_without_speed_or_map(twin, tmp_path):
    lines = ["[Epoch 0][Batch 9], Speed: 0.100 samples/sec, RPN_Conf=0.1",
             "[Epoch 1][Batch 9], Speed: 1.000 samples/sec, RPN_Conf=0.1",
             "[Epoch 1][Batch 19], Speed: 2.000 samples/sec, RPN_Conf=0.1",
             "[Epoch 1][Batch 29], Speed: 4.000 samples/sec, RPN_Conf=0.1",
             "[Epoch 1] Validation: ", "disk=0.5", "mAP=0.25"]
    path = tmp_path / "run_train.log"
    path.write_text("\n".join(lines) + "\n")
    assert twin.read_log(str(path), batch_size=2) == (0.25, 1.0)  # 2 / median(1, 2, 4)
    path.write_text("\n".join(lines[:4]) + "\n")
    with pytest.raises((ValueError, UserError), match="mAP"):
        twin.read_log(str(path), 2)
    path.write_text("\n".join(lines[4:]) + "\n")
    with pytest.raises(ValueError, match="Speed"):
        twin.read_log(str(path), 2)


def test_missing_or_bad_arguments_are_refused_in_one_line(twin, tmp_path, capsys):
    script = tmp_path / "train_faster_rcnn.py"
    script.write_text("")
    for argv, message in (
            ([], "--gluoncv-script is required"),
            (["--gluoncv-script", str(script)], "--backbone-params is required"),
            (["--gluoncv-script", str(tmp_path / "no.py"), "--backbone-params", str(script)],
             "--gluoncv-script: no file"),
            (["--gluoncv-script", str(script), "--backbone-params", str(script), "--seeds", "0"],
             "--seeds must be at least 1"),
            (["--gluoncv-script", str(script), "--backbone-params", str(script),
              "--first-seed", "-1"], "--first-seed must not be negative")):
        with pytest.raises(SystemExit) as exit_info:
            twin.parse_args(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_our_side_of_the_twin_is_a_command_detect_train_accepts(twin, tmp_path):
    from gluon_tricks.cli import build_parser
    args = twin.parse_args(["--gluoncv-script", __file__, "--backbone-params", __file__,
                            "--epochs", "2", "--lr", "0.02", "--lr-decay-epoch", "1"])
    args.dataset_root = str(tmp_path)
    parsed = build_parser().parse_args(twin.ours_argv(args, 4, str(tmp_path) + "/"))
    assert (parsed.network, parsed.epochs, parsed.lr, parsed.lr_decay_epoch, parsed.seed,
            parsed.short, parsed.max_size, parsed.rcnn_num_samples, parsed.val_interval) == (
        "resnet18_v1d", 2, 0.02, "1", 4, 96, 144, 8, 2)
    gluoncv = twin.gluoncv_argv(args, 4, "p/")
    shared = twin.shared_flags(args, 4)
    assert gluoncv[:2] == ["--network", "resnet18_v1b"]  # the script has no resnet18_v1d
    assert gluoncv[2:2 + len(shared)] == shared and "--gpus" in gluoncv


# network -> (features of fc, its first and its last convolution, named as in our checkpoint)
BACKBONES = {"resnet50_v1b": (2048, "conv1.weight", "layer4.2.conv3.weight"),
             "resnet18_v1b": (512, "conv1.weight", "layer4.1.conv2.weight"),
             "resnet18_v1d": (512, "conv1.0.weight", "layer4.1.conv2.weight")}


@pytest.mark.parametrize("network", sorted(BACKBONES))
def test_gluoncvs_own_detector_gets_the_demo_recipe_and_our_backbone_weights(
        twin, network, tmp_path, monkeypatch):
    from gluon_tricks.models import get_model as our_model
    classifier = our_model(network, classes=10)  # random weights, saved as `train` saves them
    classifier.initialize(mx.init.Xavier())
    classifier(mx.nd.zeros((1, 3, 32, 32)))
    classifier_file = str(tmp_path / (network + ".params"))
    classifier.save_parameters(classifier_file)
    demo_scenes.write_detection_set(str(tmp_path))
    args = argparse.Namespace(short=96, max_size=144, rcnn_num_samples=16, rpn_test_post_nms=20)
    wide = twin.widened_classifier(classifier_file, str(tmp_path / "wide.params"))
    spec = dict(network=network, root=str(tmp_path / "VOCdevkit"), classes=list(CLASSES),
                backbone=wide, recipe=twin.recipe_overrides(args))
    twin.install_substitutions(spec, patch=monkeypatch.setattr)
    import gluoncv.data
    from gluoncv.model_zoo import get_model, resnetv1b
    resnet50_v1b = resnetv1b.resnet50_v1b
    # what train_faster_rcnn.py calls, with what it passes
    net = get_model("faster_rcnn_%s_voc" % twin.NETWORKS[network], pretrained_base=True,
                    per_device_batch_size=1)
    assert resnetv1b.resnet50_v1b is resnet50_v1b  # restored after building
    assert tuple(net.classes) == tuple(CLASSES)
    assert (net.short, net.max_size, net._batch_size, net._num_sample) == (96, 144, 1, 16)
    assert net._rpn_test_post_nms == 20 and net.rpn._train_pre_nms == 540
    width, first_conv, last_conv = BACKBONES[network]
    saved, loaded = mx.nd.load(classifier_file), mx.nd.load(wide)
    assert loaded["fc.weight"].shape == (1000, width)
    np.testing.assert_array_equal(loaded["fc.weight"][:10].asnumpy(),
                                  saved["fc.weight"].asnumpy())
    assert not loaded["fc.weight"][10:].asnumpy().any()
    # the backbone is GluonCV's own ResNet of that depth, holding the checkpoint's arrays
    assert type(net.features[4][0]).__name__ == (
        "BottleneckV1b" if network == "resnet50_v1b" else "BasicBlockV1b")
    average_down = isinstance(net.features[5][0].downsample[0], mx.gluon.nn.AvgPool2D)
    assert average_down == network.endswith("v1d")  # features[5]: stage 2
    stem = list(net.features[0].collect_params().values())[0]
    np.testing.assert_array_equal(stem.data().asnumpy(), saved[first_conv].asnumpy())
    stage4 = dict(net.top_features[0].collect_params().items())
    conv = [p for name, p in stage4.items() if p.shape == saved[last_conv].shape][-1]
    np.testing.assert_array_equal(conv.data().asnumpy(), saved[last_conv].asnumpy())
    train = gluoncv.data.VOCDetection(splits=[(2007, "trainval"), (2012, "trainval")])
    assert len(train) == 100 and train.classes == tuple(CLASSES)  # VOC2012 absent: skipped


def test_the_demo_set_can_be_cut_to_its_first_training_images(twin, tmp_path):
    from gluon_tricks.detection import data
    root = twin.demo_set(str(tmp_path), train_images=5)
    devkit = data.devkit(root)
    train_splits, test_splits = data.checked_sets(devkit, CLASSES)
    assert train_splits == ((2007, "trainval"),) and test_splits == ((2007, "test"),)
    from gluon_tricks.data.voc import gluoncv_dataset
    whole = twin.demo_set(str(tmp_path / "whole"))
    ids = open(os.path.join(data.devkit(whole), "VOC2007", "ImageSets", "Main",
                            "trainval.txt")).read().split()
    assert len(ids) == 100
    cut = gluoncv_dataset(devkit, [(2007, "trainval")], CLASSES)
    assert [item[1] for item in cut._items] == ids[:5]
    assert len(gluoncv_dataset(devkit, [(2007, "test")], CLASSES)) == 40
    assert twin.demo_set(str(tmp_path), train_images=5) == root  # drawn once
