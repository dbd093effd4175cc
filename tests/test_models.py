"""ResNet-A/B/C/D against GluonCV's and MXNet's own networks, the paper's Table 5, init, export."""
import json

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from gluon_tricks.models import (GLUONCV_NAMES, get_model, initialize,
                                 paper_initializer)
from gluon_tricks.models.complexity import count_multiply_adds, count_parameters
from gluon_tricks.errors import UserError
from gluon_tricks.models.convert import convert_resnet_v1_params

SMALL_INPUT = (2, 3, 64, 64)


def _structural_shapes(net):
    return {name: p.shape for name, p in net._collect_params_with_prefix().items()}


def _outputs(net, x):
    """Inference-mode and training-mode (batch statistics) outputs of `net` on `x`."""
    inference = net(x).asnumpy()
    with autograd.record(train_mode=True):
        training = net(x).asnumpy()
    return inference, training


def _gluoncv_net(name, **kwargs):
    """GluonCV's network of that name; GluonCV's zoo has no basic-block C/D constructors, so
    those are GluonCV's own ResNetV1b class with its deep_stem/avg_down options. `kwargs`
    (dilated, use_global_stats) go to GluonCV's constructor."""
    from gluoncv.model_zoo import resnetv1b
    if hasattr(resnetv1b, name):
        return getattr(resnetv1b, name)(pretrained=False, **kwargs)
    depth, variant = name[len("resnet"):].split("_")
    layers = {"18": [2, 2, 2, 2], "34": [3, 4, 6, 3]}[depth]
    return resnetv1b.ResNetV1b(resnetv1b.BasicBlockV1b, layers, deep_stem=True,
                               avg_down=variant == "v1d", name_prefix="resnet%s_" % variant,
                               **kwargs)


def _randomise_bn_statistics(net):
    """Make running mean/var non-trivial so that inference mode really tests them."""
    for name, param in net.collect_params().items():
        if name.endswith("running_mean"):
            param.set_data(mx.nd.random.normal(0, 0.1, shape=param.shape))
        elif name.endswith("running_var"):
            param.set_data(mx.nd.random.uniform(0.5, 1.5, shape=param.shape))


@pytest.mark.parametrize("name", ["resnet18_v1b", "resnet18_v1c", "resnet18_v1d",
                                  "resnet50_v1b", "resnet50_v1c", "resnet50_v1d"])
def test_gluoncv_weights_load_into_ours_and_back_with_equal_outputs(name, tmp_path):
    x = mx.nd.random.uniform(-1, 1, shape=SMALL_INPUT)
    theirs = _gluoncv_net(name)
    theirs.initialize(mx.init.Xavier())
    theirs(x)
    _randomise_bn_statistics(theirs)
    ours = get_model(name)
    assert set(_structural_shapes(ours)) == set(_structural_shapes(theirs))
    theirs.save_parameters(str(tmp_path / "theirs.params"))
    ours.load_parameters(str(tmp_path / "theirs.params"))  # strict: no missing or extra names
    assert _structural_shapes(ours) == _structural_shapes(theirs)
    theirs.hybridize()
    ours.hybridize()
    expected = _outputs(theirs, x)
    got = _outputs(ours, x)
    for mode, e, g in zip(("inference", "training"), expected, got):
        assert np.abs(e - g).max() < 1e-5, mode
    assert np.abs(expected[0] - expected[1]).max() > 1e-3  # the two modes really differ

    ours.save_parameters(str(tmp_path / "ours.params"))
    back = _gluoncv_net(name)
    back.load_parameters(str(tmp_path / "ours.params"))
    back.hybridize()
    assert np.abs(back(x).asnumpy() - expected[0]).max() < 1e-5


@pytest.mark.parametrize("depth", [18, 50])
def test_resnet_a_matches_mxnet_resnet_v1_after_weight_conversion(depth, tmp_path):
    from mxnet.gluon.model_zoo import vision
    x = mx.nd.random.uniform(-1, 1, shape=SMALL_INPUT)
    theirs = vision.get_model("resnet%d_v1" % depth)
    theirs.initialize(mx.init.Xavier())
    theirs(x)
    _randomise_bn_statistics(theirs)
    theirs.save_parameters(str(tmp_path / "mx.params"))
    convert_resnet_v1_params(mx.nd.load(str(tmp_path / "mx.params")), str(tmp_path / "ours.params"))
    ours = get_model("resnet%d_v1" % depth)
    ours.load_parameters(str(tmp_path / "ours.params"))
    theirs.hybridize()
    ours.hybridize()
    for e, g in zip(_outputs(theirs, x), _outputs(ours, x)):
        assert np.abs(e - g).max() < 1e-5
    assert count_parameters(ours) == count_parameters(theirs)
    assert count_multiply_adds(ours) == count_multiply_adds(theirs)


@pytest.mark.parametrize("variant,paper_gmacs", [("v1", 3.86), ("v1b", 4.09), ("v1c", 4.33),
                                                 ("v1d", 4.33)])
def test_table5_parameters_and_multiply_adds(variant, paper_gmacs):
    net = get_model("resnet50_" + variant)
    assert round(count_multiply_adds(net) / 1e9, 2) == paper_gmacs
    assert 25.55e6 < count_parameters(net) < 25.59e6
    if variant != "v1":
        reference = _gluoncv_net("resnet50_" + variant)
        assert count_multiply_adds(net) == count_multiply_adds(reference)
        assert count_parameters(net) == count_parameters(reference)


def test_multiply_adds_of_a_single_conv_follow_the_formula():
    conv = mx.gluon.nn.HybridSequential()
    conv.add(mx.gluon.nn.Conv2D(8, 3, strides=2, padding=1, in_channels=4, use_bias=False),
             mx.gluon.nn.Dense(5, in_units=8 * 16 * 16))
    # 8 output channels x 16x16 pixels x (4 x 3 x 3) weights, then 2048 x 5
    assert count_multiply_adds(conv, (1, 4, 32, 32)) == 8 * 16 * 16 * 4 * 9 + 2048 * 5
    assert count_parameters(conv, (1, 4, 32, 32)) == 8 * 4 * 9 + 2048 * 5 + 5


@pytest.mark.parametrize("name,last_bn", [("resnet18_v1d", "bn2"), ("resnet50_v1b", "bn3")])
def test_last_gamma_zeroes_exactly_the_last_bn_of_every_block(name, last_bn):
    net = initialize(get_model(name, classes=10, last_gamma=True), mx.cpu())
    net(mx.nd.zeros(SMALL_INPUT))
    blocks = sum(len(getattr(net, "layer%d" % i)) for i in range(1, 5))
    zero, one = [], []
    for pname, param in net._collect_params_with_prefix().items():
        if pname.endswith("gamma"):
            (zero if np.all(param.data().asnumpy() == 0) else one).append(pname)
    assert len(zero) == blocks
    assert all(p.endswith("%s.gamma" % last_bn) and ".downsample." not in p for p in zero)
    assert all(np.all(net._collect_params_with_prefix()[p].data().asnumpy() == 1) for p in one)
    plain = initialize(get_model(name, classes=10), mx.cpu())
    plain(mx.nd.zeros(SMALL_INPUT))
    assert all(np.all(p.data().asnumpy() == 1) for n, p in plain.collect_params().items()
               if n.endswith("gamma"))


def test_paper_initialisation_is_xavier_uniform_with_zero_biases():
    net = initialize(get_model("resnet18_v1d", classes=10), mx.cpu())
    net(mx.nd.zeros(SMALL_INPUT))
    for name, param in net._collect_params_with_prefix().items():
        value = param.data().asnumpy()
        if name.endswith("weight"):
            receptive = int(np.prod(value.shape[2:]))
            bound = np.sqrt(6.0 / (value.shape[1] * receptive + value.shape[0] * receptive))
            assert np.abs(value).max() <= bound * (1 + 1e-6), name
            assert np.abs(value).max() > 0.5 * bound, name
            if value.size > 5000:  # uniform: variance bound^2 / 3
                assert abs(value.var() / (bound ** 2 / 3) - 1) < 0.1, name
        elif name.endswith(("bias", "beta", "running_mean")):
            assert np.all(value == 0), name
        elif name.endswith(("gamma", "running_var")):
            assert np.all(value == 1), name
    assert isinstance(paper_initializer(), mx.init.Xavier)


def test_hybridized_export_reloads_with_the_same_outputs(tmp_path):
    net = initialize(get_model("resnet18_v1d", classes=10), mx.cpu())
    net.hybridize()
    x = mx.nd.random.uniform(shape=SMALL_INPUT)
    expected = net(x).asnumpy()
    net.export(str(tmp_path / "net"), epoch=3)
    loaded = mx.gluon.SymbolBlock.imports(str(tmp_path / "net-symbol.json"), ["data"],
                                          str(tmp_path / "net-0003.params"))
    assert np.abs(loaded(x).asnumpy() - expected).max() < 1e-6


@pytest.mark.parametrize("name,size", [("mobilenet1.0", 64), ("inceptionv3", 299)])
def test_the_papers_other_baselines_come_from_gluoncv(name, size):
    assert name in GLUONCV_NAMES
    net = initialize(get_model(name, classes=7), mx.cpu())
    assert net(mx.nd.zeros((1, 3, size, size))).shape == (1, 7)


def test_dilated_applies_only_to_our_resnets():
    with pytest.raises(UserError) as error:
        get_model("mobilenet1.0", dilated=True)
    assert "no dilated form" in str(error.value)


def test_unknown_model_is_one_line_listing_valid_names(cli, monkeypatch):
    from gluon_tricks.models import table
    with pytest.raises(UserError) as error:
        get_model("resnet51_v1d")
    assert "resnet50_v1d" in str(error.value) and "inceptionv3" in str(error.value)
    monkeypatch.setattr(table, "model_rows", lambda input_size: [get_model("resnet51_v1d")])
    status, out, err = cli("models")
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("gluon-tricks: error: unknown model")


def test_models_command_prints_json_rows(cli):
    status, out, err = cli("models", "--json", "--input-size", "64")
    assert status == 0
    printed = json.loads(out)
    assert len(printed) == 20
    assert {tuple(sorted(r)) for r in printed} == {("macs", "model", "params")}
    assert {r["model"]: r["params"] for r in printed}["resnet50_v1d"] == \
        count_parameters(get_model("resnet50_v1d"), (1, 3, 64, 64))


def _feature_map(net, x):
    """The last stage's output (before global pooling) of our ResNet or GluonCV's ResNetV1b."""
    x = mx.nd.relu(net.bn1(net.conv1(x)))
    return net.layer4(net.layer3(net.layer2(net.layer1(net.maxpool(x))))).asnumpy()


@pytest.mark.parametrize("name", ["resnet18_v1b", "resnet18_v1c", "resnet18_v1d",
                                  "resnet50_v1b", "resnet50_v1c", "resnet50_v1d"])
def test_dilated_resnet_equals_gluoncvs_dilated_network_on_shared_weights(name, tmp_path):
    """Output stride 8 as GluonCV's `dilated=True`; the basic block dilates its second conv by
    the stage's dilation even in a stage's first block, the bottleneck only its 3x3 conv."""
    x = mx.nd.random.uniform(-1, 1, shape=SMALL_INPUT)
    theirs = _gluoncv_net(name, dilated=True)
    theirs.initialize(mx.init.Xavier())
    theirs(x)
    _randomise_bn_statistics(theirs)
    theirs.save_parameters(str(tmp_path / "theirs.params"))
    ours = get_model(name, dilated=True)
    ours.load_parameters(str(tmp_path / "theirs.params"))
    assert _structural_shapes(ours) == _structural_shapes(theirs)
    expected_map, got_map = _feature_map(theirs, x), _feature_map(ours, x)
    assert got_map.shape[2:] == (SMALL_INPUT[2] // 8, SMALL_INPUT[3] // 8)
    difference = np.abs(expected_map - got_map).max()
    print("%s dilated: max abs difference of the stride-8 feature map %.3g" % (name, difference))
    assert difference < 1e-5
    theirs.hybridize()
    ours.hybridize()
    for mode, e, g in zip(("inference", "training"), _outputs(theirs, x), _outputs(ours, x)):
        assert np.abs(e - g).max() < 1e-5, mode
    plain = get_model(name)  # the same weights without dilation compute something else
    plain.load_parameters(str(tmp_path / "theirs.params"))
    assert _feature_map(plain, x).shape[2:] == (SMALL_INPUT[2] // 32, SMALL_INPUT[3] // 32)
    assert np.abs(plain(x).asnumpy() - ours(x).asnumpy()).max() > 1e-3


@pytest.mark.parametrize("depth", [18, 50])
def test_dilated_resnet_a_keeps_stages_1_2_and_dilates_stages_3_4(depth):
    """ResNet-A has no dilated GluonCV twin: its stages 1-2 equal the plain network's on the
    same weights, and stages 3-4 run at stride 8 with GluonCV's dilation schedule."""
    x = mx.nd.random.uniform(-1, 1, shape=SMALL_INPUT)
    plain = initialize(get_model("resnet%d_v1" % depth), mx.cpu())
    dilated = get_model("resnet%d_v1" % depth, dilated=True)
    dilated.initialize()
    plain(x)
    dilated(x)
    for name, param in plain._collect_params_with_prefix().items():
        dilated._collect_params_with_prefix()[name].set_data(param.data())

    def stage2(net):
        out = net.maxpool(mx.nd.relu(net.bn1(net.conv1(x))))
        return net.layer2(net.layer1(out)).asnumpy()
    assert np.array_equal(stage2(plain), stage2(dilated))
    assert _feature_map(dilated, x).shape[2:] == (SMALL_INPUT[2] // 8, SMALL_INPUT[3] // 8)
    first, second = ("conv1", "conv2") if depth == 18 else ("conv2", "conv2")
    for stage, dilation in ((3, 2), (4, 4)):
        blocks = list(getattr(dilated, "layer%d" % stage))
        assert getattr(blocks[0], first)._kwargs["dilate"] == (dilation // 2,) * 2
        assert getattr(blocks[-1], second)._kwargs["dilate"] == (dilation,) * 2
        assert all(getattr(b, first)._kwargs["stride"] == (1, 1) for b in blocks)
