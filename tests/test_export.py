"""`gluon-tricks export`: the MXNet symbol + params and the ONNX model compute what the network
computes (checked here independently of the command's own check: SymbolBlock.imports and
onnxruntime against the Gluon network on demo images), with the class names beside them."""
import json
import os
import warnings

import mxnet as mx
import numpy as np
import pytest

from conftest import scaled_resnet18_weights

SIZE = 32


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A resnet18_v1d for the 10 demo classes with a classifier scaled up, so that its logits
    are far apart (an untrained network's are all near 0 and would hide differences)."""
    return scaled_resnet18_weights(tmp_path_factory.mktemp("weights"), seed=3, scale=50,
                                   size=SIZE)


def _inputs(demo, count=6):
    """Demo validation images with the validation preprocessing, and the network's logits."""
    from gluon_tricks.inference import collect_images, preprocess_files
    files = collect_images([demo["val_dir"]])[::50][:count]
    inputs, kept, skipped = preprocess_files(files, SIZE, 0.875)
    assert len(kept) == count and not skipped
    return inputs


def _gluon_logits(weights, inputs):
    from gluon_tricks.models import get_model
    net = get_model("resnet18_v1d", classes=10)
    net.load_parameters(weights)
    return net(mx.nd.array(inputs)).asnumpy()


def test_mxnet_export_loads_with_symbolblock_and_matches(cli, demo, weights, tmp_path):
    out = str(tmp_path / "r18")
    status, stdout, stderr = cli("export", "--model", "resnet18_v1d", "--params", weights,
                                 "--out", out, "--input-size", SIZE, "--classes",
                                 demo["classes_file"], "--check-images", demo["val_dir"] + "/star")
    assert status == 0, stderr
    assert "max abs difference" in stdout
    with warnings.catch_warnings():  # MXNet cannot tell the input's type before it sees one
        warnings.simplefilter("ignore", UserWarning)
        block = mx.gluon.SymbolBlock.imports(out + "-symbol.json", ["data"], out + "-0000.params")
    inputs = _inputs(demo)
    expected = _gluon_logits(weights, inputs)
    np.testing.assert_allclose(block(mx.nd.array(inputs)).asnumpy(), expected, rtol=1e-5,
                               atol=1e-5)
    assert np.ptp(expected) > 1.0  # logits far apart: a wrong graph could not pass
    meta = json.load(open(out + ".json"))
    with open(demo["classes_file"]) as f:
        assert meta["classes"] == [line.strip() for line in f if line.strip()]
    assert meta["input_shape"][1:] == [3, SIZE, SIZE]
    assert meta["check"]["inputs"] == "50 images" and meta["check"]["max_abs_diff"] < 1e-4


def test_onnx_dynamic_batch_runs_in_onnxruntime_like_the_network(cli, demo, weights, tmp_path):
    import onnx
    import onnxruntime
    out = str(tmp_path / "r18")
    status, stdout, stderr = cli("export", "--model", "resnet18_v1d", "--params", weights,
                                 "--out", out, "--format", "onnx", "--input-size", SIZE,
                                 "--batch-size", "dynamic", "--json")
    assert status == 0, stderr
    report = json.loads(stdout)
    assert report["check"]["inputs"] == "4 random inputs"
    model = onnx.load(out + ".onnx")
    assert [i.name for i in model.graph.input] == ["data"]  # the weights are not inputs
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = onnxruntime.InferenceSession(out + ".onnx", providers=["CPUExecutionProvider"])
    inputs = _inputs(demo)
    expected = _gluon_logits(weights, inputs)
    for batch in (inputs[:1], inputs):  # one image and six: the batch is dynamic
        got = session.run(None, {"data": batch})[0]
        np.testing.assert_allclose(got, expected[:len(batch)], rtol=1e-4, atol=1e-4)
        assert np.array_equal(got.argmax(1), expected[:len(batch)].argmax(1))


def test_onnx_fixed_batch_has_that_shape(cli, weights, tmp_path):
    import onnx
    out = str(tmp_path / "r18")
    status, _, stderr = cli("export", "--model", "resnet18_v1d", "--params", weights, "--out",
                            out, "--format", "onnx", "--input-size", SIZE, "--batch-size", "3")
    assert status == 0, stderr
    dims = onnx.load(out + ".onnx").graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [3, 3, SIZE, SIZE]
    assert json.load(open(out + ".json"))["classes"] == [str(i) for i in range(10)]


@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "0"], "--batch-size must be a positive integer or `dynamic`"),
    (["--batch-size", "many"], "--batch-size must be a positive integer or `dynamic`"),
    (["--model", "resnet50_v1d"], "does not hold resnet50_v1d weights"),
    (["--params", "/nonexistent.params"], "no such file"),
    (["--out", "/nonexistent/dir/x"], "does not exist"),
])
def test_bad_export_requests_end_in_one_line(cli, weights, tmp_path, flags, message):
    args = {"--model": "resnet18_v1d", "--params": weights, "--out": str(tmp_path / "x")}
    extra = []
    for i in range(0, len(flags), 2):
        if flags[i] in args:
            args[flags[i]] = flags[i + 1]
        else:
            extra += flags[i:i + 2]
    argv = [item for pair in args.items() for item in pair] + ["--input-size", SIZE] + extra
    status, _, stderr = cli("export", *argv)
    assert status == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_class_names_must_match_the_network(cli, weights, tmp_path):
    names = tmp_path / "three.classes.txt"
    names.write_text("a\nb\nc\n")
    status, _, stderr = cli("export", "--model", "resnet18_v1d", "--params", weights, "--out",
                            str(tmp_path / "x"), "--input-size", SIZE, "--classes", str(names))
    assert status == 2 and "names 3 classes, the network has 10" in stderr
    assert not os.path.exists(str(tmp_path / "x.json"))


def test_check_images_that_cannot_be_read_are_named(cli, weights, tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    status, _, stderr = cli("export", "--model", "resnet18_v1d", "--params", weights, "--out",
                            str(tmp_path / "x"), "--input-size", SIZE, "--check-images",
                            str(tmp_path))
    lines = stderr.strip().splitlines()
    assert status == 2 and len(lines) == 3
    assert "broken.jpg: cannot be decoded" in lines[0] and "notes.txt: not an image" in lines[1]
    assert lines[2] == "gluon-tricks: error: --check-images: none of the images can be read"
