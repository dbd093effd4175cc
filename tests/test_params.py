"""The one .params loader: every layout MXNet writes loads bit for bit (structural names, export,
the older save_params of any network's prefix), and each bad file is one line naming it and why,
whichever command reads it (eval, export, predict, resume, fine-tuning)."""
import pickle

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.errors import UserError
from gluon_tricks.models import get_model, initialize
from gluon_tricks.models.params import load_network, params_classes

SIZE = 32


def _net(classes=10, model="resnet18_v1d", seed=1):
    mx.random.seed(seed)
    return initialize(get_model(model, classes=classes), [mx.cpu()], SIZE)


def _values(net):
    return {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}


@pytest.mark.parametrize("layout", ["structural", "export", "save_params", "save_params_other"])
def test_every_layout_loads_bit_for_bit(tmp_path, layout):
    source = _net()
    path = str(tmp_path / "w.params")
    if layout == "export":
        source.hybridize()
        source(mx.nd.zeros((1, 3, SIZE, SIZE)))
        source.export(str(tmp_path / "e"), epoch=0)
        path = str(tmp_path / "e-0000.params")
    elif layout == "save_params":  # full names less the network's prefix
        source.collect_params().save(path, strip_prefix=source.prefix)
    elif layout == "save_params_other":  # full names of a network with another prefix
        arrays = {"resnetv1d7_" + p.name[len(source.prefix):]: p.data()
                  for p in source.collect_params().values()}
        mx.nd.save(path, arrays)
    else:
        source.save_parameters(path)
    assert params_classes("resnet18_v1d", path) == 10
    loaded = load_network("resnet18_v1d", path, 10, [mx.cpu()])
    expected = _values(source)
    assert all(np.array_equal(v, expected[k]) for k, v in _values(loaded).items())


def _bad(tmp_path, case):
    path = tmp_path / ("%s.params" % case)
    if case == "junk":
        path.write_bytes(b"not a params file at all")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "pickle":
        path.write_bytes(pickle.dumps({"momentum": 0.9}))
    elif case == "states":
        mx.nd.save(str(path), {"__layout__": mx.nd.zeros(3), "0": mx.nd.zeros(3)})
    elif case == "other_network":
        _net(model="resnet34_v1d").save_parameters(str(path))
    elif case == "other_classes":
        _net(classes=7).save_parameters(str(path))
    elif case == "nan":
        net = _net()
        net.fc.bias.set_data(mx.nd.full(net.fc.bias.shape, np.nan))
        net.save_parameters(str(path))
    return str(path)


@pytest.mark.parametrize("case, message", [
    ("missing", "--params: no such file"),
    ("junk", "does not hold resnet18_v1d weights for 10 classes: it is not an MXNet .params"),
    ("empty", "it is not an MXNet .params file"),
    ("pickle", "is a pickled optimizer state (.states), not weights"),
    ("states", "holds an optimizer state (.states), not weights"),
    ("other_network", "does not hold resnet18_v1d weights for 10 classes: it "),
    ("other_classes", "its fc.bias has shape (7,), the network's is (10,)"),
    ("nan", "holds NaN or infinite weights (1 arrays, first: fc.bias)"),
])
def test_a_bad_file_is_one_line_naming_it(tmp_path, case, message):
    path = str(tmp_path / "missing.params") if case == "missing" else _bad(tmp_path, case)
    with pytest.raises(UserError) as error:
        load_network("resnet18_v1d", path, 10, [mx.cpu()])
    assert message in str(error.value) and path in str(error.value)
    assert "\n" not in str(error.value)


def test_resume_refuses_nan_weights_with_the_resume_flag(tmp_path):
    from gluon_tricks.training.checkpoint import load_params
    with pytest.raises(UserError, match="--resume-params .* holds NaN or infinite weights"):
        load_params(_net(), _bad(tmp_path, "nan"), [mx.cpu()])


@pytest.mark.parametrize("command", ["eval", "export", "predict"])
def test_the_commands_word_a_bad_file_alike(cli, demo, tmp_path, command):
    path = _bad(tmp_path, "other_network")
    argv = {"eval": ["--val-dir", demo["val_dir"]], "export": ["--out", tmp_path / "x"],
            "predict": [demo["val_dir"] + "/ring"]}[command]
    status, out, err = cli(command, "--model", "resnet18_v1d", "--params", path,
                           "--input-size", SIZE, *argv)
    assert status == 2 and err.count("\n") == 1, err
    assert "--params %s does not hold resnet18_v1d weights for " % path in err
