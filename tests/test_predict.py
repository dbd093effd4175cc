"""`gluon-tricks predict`: probabilities are the softmax of the logits `eval` computes over the
same images (the validation pipeline), class names come from the data's class list, an export
predicts what the weights predict, and bad files are reported and skipped."""
import json
import os
import shutil

import mxnet as mx
import numpy as np
import pytest

from conftest import scaled_resnet18_weights

SIZE = 32


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """resnet18_v1d for the 10 demo classes, classifier scaled so the probabilities differ."""
    return scaled_resnet18_weights(tmp_path_factory.mktemp("weights"), seed=5, scale=30,
                                   size=SIZE)


@pytest.fixture
def image_folder(demo, tmp_path):
    """root/images/: 7 demo validation images, a truncated JPEG and a text file."""
    folder = tmp_path / "root" / "images"
    folder.mkdir(parents=True)
    sources = sorted(os.listdir(os.path.join(demo["val_dir"], "ring")))[:7]
    for name in sources:
        shutil.copy(os.path.join(demo["val_dir"], "ring", name), str(folder / name))
    data = open(os.path.join(demo["val_dir"], "star", sorted(
        os.listdir(os.path.join(demo["val_dir"], "star")))[0]), "rb").read()
    (folder / "zz_truncated.jpg").write_bytes(data[:60])
    (folder / "notes.txt").write_text("not an image")
    return folder


def _predict_json(cli, *args):
    status, stdout, stderr = cli("predict", "--json", *args)
    return status, [json.loads(line) for line in stdout.splitlines()], stderr


def test_probabilities_are_softmax_of_eval_logits(cli, demo, weights, image_folder):
    from gluon_tricks.data.sources import DataSource
    from gluon_tricks.data.loader import ValLoader
    from gluon_tricks.evaluation.validation import iterate_logits
    from gluon_tricks.models.params import load_network
    status, rows, stderr = _predict_json(
        cli, "--model", "resnet18_v1d", "--params", weights, "--input-size", SIZE, "--topk", 10,
        "--classes", demo["classes_file"], "--batch-size", 3, str(image_folder))
    assert status == 0
    # the bad files are reported, one line each, and the rest predicted
    assert "zz_truncated.jpg: cannot be decoded" in stderr and "notes.txt: not an image" in stderr
    assert [os.path.basename(r["image"]) for r in rows] == sorted(
        n for n in os.listdir(str(image_folder)) if n.endswith(".jpg") and n[0] != "z")
    # eval's pipeline over the same images (a folder of one class: same order)
    os.remove(str(image_folder / "zz_truncated.jpg"))
    source = DataSource.from_folder(str(image_folder.parent))
    net = load_network("resnet18_v1d", weights, 10, [mx.cpu()])
    loader = ValLoader(source, 4, input_size=SIZE, crop_ratio=0.875, num_workers=0)
    logits = np.concatenate([part for part, _ in iterate_logits(net, loader, [mx.cpu()])])
    shifted = np.exp(logits - logits.max(1, keepdims=True))
    expected = shifted / shifted.sum(1, keepdims=True)
    names = open(demo["classes_file"]).read().split()
    for row, probs in zip(rows, expected):
        got = np.zeros(10)
        for entry in row["top"]:
            assert entry["class"] == names[entry["index"]]
            got[entry["index"]] = entry["probability"]
        np.testing.assert_allclose(got, probs, rtol=1e-5, atol=1e-7)
        assert [e["index"] for e in row["top"]] == list(np.argsort(-probs, kind="stable"))
    assert expected.max() > 0.3  # probabilities that differ: an order that could be wrong


def test_an_export_predicts_what_the_weights_predict(cli, demo, weights, image_folder, tmp_path):
    out = str(tmp_path / "exported")
    status, _, stderr = cli("export", "--model", "resnet18_v1d", "--params", weights, "--out",
                            out, "--format", "onnx", "--batch-size", "4", "--input-size", SIZE,
                            "--classes", demo["classes_file"])
    assert status == 0, stderr
    _, from_weights, _ = _predict_json(cli, "--model", "resnet18_v1d", "--params", weights,
                                       "--input-size", SIZE, "--topk", 3, "--classes",
                                       demo["classes_file"], str(image_folder))
    status, from_export, _ = _predict_json(cli, "--export", out, "--topk", 3, str(image_folder))
    assert status == 0 and len(from_export) == len(from_weights) == 7
    for a, b in zip(from_export, from_weights):
        assert [e["class"] for e in a["top"]] == [e["class"] for e in b["top"]]
        np.testing.assert_allclose([e["probability"] for e in a["top"]],
                                   [e["probability"] for e in b["top"]], atol=1e-5)


def test_text_output_names_classes_by_index_without_a_class_list(cli, weights, image_folder):
    status, stdout, _ = cli("predict", "--model", "resnet18_v1d", "--params", weights,
                            "--input-size", SIZE, "--topk", 2, str(image_folder))
    assert status == 0
    lines = stdout.splitlines()
    assert len(lines) == 7 and all(line.count("%") == 2 for line in lines)
    name, percent = lines[0].split(": ")[1].split(", ")[0].split()
    assert name in [str(i) for i in range(10)] and 0 < float(percent[:-1]) <= 100


@pytest.mark.parametrize("case, message", [
    ("only_bad", "none of the 2 files is an image that can be read"),
    ("missing", "no such file or folder"),
    ("no_network", "name the network"),
    ("topk", "--topk must be >= 1"),
])
def test_bad_requests_end_in_one_line(cli, weights, image_folder, tmp_path, case, message):
    network = ["--model", "resnet18_v1d", "--params", weights, "--input-size", SIZE]
    target = [str(image_folder)]
    if case == "only_bad":
        target = [str(image_folder / "zz_truncated.jpg"), str(image_folder / "notes.txt")]
    elif case == "missing":
        target = [str(tmp_path / "nope.jpg")]
    elif case == "no_network":
        network = []
    elif case == "topk":
        network += ["--topk", "0"]
    status, _, stderr = cli("predict", *network, *target)
    assert status == 2
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("gluon-tricks: error: ") and message in last, stderr
