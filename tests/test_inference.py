"""Trained weights used as they were trained: a 32 px checkpoint exported and predicted without
--input-size scores what `eval` scores, with the class names of its data; a contradicting
--input-size is refused; damaged exports end in one line; `eval` runs on GLUON_TRICKS_DEVICES."""
import json
import os
import shutil

import mxnet as mx
import numpy as np
import pytest

from conftest import assert_one_line_error
from gluon_tricks import files


@pytest.fixture(scope="module")
def checkpoint(demo, tmp_path_factory):
    """A checkpoint of `train` at 32 px (1 epoch on 4 demo images per class), its classifier then
    drawn at random and its bias centred on the validation images' mean logits, so that its
    predictions differ from image to image (a barely trained network's features barely differ:
    it predicts one or two classes everywhere, which no input size could change)."""
    from gluon_tricks.cli import main
    root = tmp_path_factory.mktemp("checkpoint")
    small = root / "train"
    for name in sorted(os.listdir(demo["train_dir"])):
        (small / name).mkdir(parents=True)
        for image in sorted(os.listdir(os.path.join(demo["train_dir"], name)))[:4]:
            shutil.copy(os.path.join(demo["train_dir"], name, image), str(small / name))
    status = main(["train", "--model", "resnet18_v1d", "--input-size", "32", "--batch-size", "8",
                   "-j", "0", "--num-epochs", "1", "--train-dir", str(small), "--val-dir",
                   str(small), "--save-dir", str(root), "--logging-file", str(root / "t.log")])
    assert status == 0
    params = str(root / "resnet18_v1d-0001.params")
    arrays = mx.nd.load(params)
    mx.random.seed(7)
    arrays["fc.weight"] = mx.nd.random.normal(0, 50, arrays["fc.weight"].shape)
    mx.nd.save(params, arrays)
    logits = str(root / "logits.npz")
    assert main(["eval", "--params", params, "--val-dir", demo["val_dir"], "-j", "0",
                 "--save-logits", logits]) == 0
    arrays["fc.bias"] -= mx.nd.array(np.load(logits)["logits"].mean(0))
    mx.nd.save(params, arrays)
    return params


def _predictions(cli, *args):
    status, stdout, stderr = cli("predict", "--json", "--topk", 1, *args)
    assert status == 0, stderr
    return [json.loads(line) for line in stdout.splitlines()]


def test_export_and_predict_without_input_size_score_what_eval_scores(cli, demo, checkpoint,
                                                                      tmp_path):
    config = json.load(open(checkpoint[:-len(".params")] + ".json"))["config"]
    assert config["input_size"] == 32 and config["class_names"] == sorted(
        os.listdir(demo["val_dir"]))
    status, stdout, stderr = cli("eval", "--params", checkpoint, "--val-dir", demo["val_dir"],
                                 "-j", "0", "--json", "--save-logits", tmp_path / "l.npz")
    assert status == 0, stderr
    top1 = 1 - json.loads(stdout)["err_top1"]
    eval_classes = np.load(str(tmp_path / "l.npz"))["logits"].argmax(1)
    out = str(tmp_path / "exported")
    status, _, stderr = cli("export", "--model", "resnet18_v1d", "--params", checkpoint, "--out",
                            out)
    assert status == 0, stderr
    assert json.load(open(out + ".json"))["input_shape"] == [None, 3, 32, 32]
    for source in (["--export", out], ["--model", "resnet18_v1d", "--params", checkpoint]):
        rows = _predictions(cli, *source, demo["val_dir"])
        assert len(rows) == 500
        named = [row["top"][0]["class"] for row in rows]
        truth = [os.path.basename(os.path.dirname(row["image"])) for row in rows]
        assert np.mean([a == b for a, b in zip(named, truth)]) == pytest.approx(top1)
        assert [row["top"][0]["index"] for row in rows] == eval_classes.tolist()
    assert len(set(named)) >= 3  # not one class everywhere: an input size changes predictions
    ring = _predictions(cli, "--export", out, demo["val_dir"] + "/ring")
    at_224 = _predictions(cli, "--model", "resnet18_v1d", "--params", checkpoint, "--force",
                          "--input-size", 224, demo["val_dir"] + "/ring")
    assert [r["top"][0]["index"] for r in ring] != [r["top"][0]["index"] for r in at_224]


def test_a_contradicting_input_size_is_refused_unless_forced(cli, checkpoint, demo, tmp_path):
    weights = ["--model", "resnet18_v1d", "--params", checkpoint]
    status, out, err = cli("export", *weights, "--out", tmp_path / "x", "--input-size", 64)
    assert_one_line_error(status, out, err, "--input-size 64", "trained at 32")
    assert not os.path.exists(str(tmp_path / "x.json"))
    status, out, err = cli("predict", *weights, "--input-size", 64, demo["val_dir"] + "/ring")
    assert_one_line_error(status, out, err, "--input-size 64", "trained at 32")
    status, out, err = cli("eval", *weights, "--input-size", 64, "--val-dir", demo["val_dir"])
    assert_one_line_error(status, out, err, "--input-size 64", "trained at 32")
    status, _, err = cli("export", *weights, "--out", tmp_path / "x", "--input-size", 64,
                         "--force")
    assert status == 0, err
    assert json.load(open(str(tmp_path / "x.json")))["input_shape"][2:] == [64, 64]


def test_class_names_come_from_the_checkpoint_and_classes_overrides_them(cli, checkpoint, demo,
                                                                        tmp_path):
    names = sorted(os.listdir(demo["val_dir"]))
    weights = ["--model", "resnet18_v1d", "--params", checkpoint]
    status, stdout, _ = cli("predict", *weights, "--topk", 3, demo["val_dir"] + "/ring")
    assert status == 0
    shown = {part.rsplit(" ", 1)[0] for line in stdout.splitlines()
             for part in line.split(": ", 1)[1].split(", ")}
    assert shown <= set(names) and len(shown) >= 3
    other = tmp_path / "other.classes.txt"
    other.write_text("".join("c%d\n" % i for i in range(10)))
    rows = _predictions(cli, *weights, "--classes", other, demo["val_dir"] + "/ring")
    assert {row["top"][0]["class"] for row in rows} <= {"c%d" % i for i in range(10)}


def test_weights_without_a_checkpoint_json_say_what_is_assumed(cli, checkpoint, demo, tmp_path):
    bare = str(tmp_path / "bare.params")
    shutil.copy(checkpoint, bare)
    image = os.path.join(demo["val_dir"], "ring", sorted(os.listdir(demo["val_dir"] +
                                                                    "/ring"))[0])
    status, stdout, stderr = cli("predict", "--model", "resnet18_v1d", "--params", bare, image)
    assert status == 0, stderr
    assert "no checkpoint JSON" in stderr and "224" in stderr and "class indices" in stderr
    assert stdout.split(": ")[1].split(" ")[0] in [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def exports(checkpoint, tmp_path_factory):
    """An MXNet and an ONNX export of the checkpoint, made once; tests damage copies."""
    from gluon_tricks.cli import main
    folder = tmp_path_factory.mktemp("exports")
    for fmt in ("mxnet", "onnx"):
        assert main(["export", "--model", "resnet18_v1d", "--params", checkpoint, "--out",
                     str(folder / fmt), "--format", fmt]) == 0
    return folder


def _copy(exports, fmt, tmp_path):
    for name in os.listdir(str(exports)):
        if name.startswith(fmt):
            shutil.copy(str(exports / name), str(tmp_path / name))
    return str(tmp_path / fmt)


def _redigest(prefix, name):
    """Record the file's current size and digest, as an export of these bytes would."""
    meta = json.load(open(prefix + ".json"))
    size, sha256 = files.digest(os.path.join(os.path.dirname(prefix), name))
    meta["files"][name] = {"size": size, "sha256": sha256}
    json.dump(meta, open(prefix + ".json", "w"))


def test_an_export_records_the_size_and_digest_of_its_files(exports):
    meta = json.load(open(str(exports / "onnx.json")))
    assert list(meta["files"]) == ["onnx.onnx"]
    assert files.digest(str(exports / "onnx.onnx")) == (meta["files"]["onnx.onnx"]["size"],
                                                       meta["files"]["onnx.onnx"]["sha256"])


@pytest.mark.parametrize("damage, message", [
    ("truncated_onnx", "onnx.onnx has"),
    ("truncated_onnx_redigested", "not a valid ONNX model"),
    ("empty_symbol", "mxnet-symbol.json has 0 bytes"),
    ("empty_symbol_redigested", "cannot be loaded"),
    ("nan_onnx", "NaN or infinite"),
    ("nan_params", "NaN or infinite"),
])
def test_a_damaged_export_is_one_line(cli, exports, demo, tmp_path, damage, message):
    fmt = "mxnet" if "symbol" in damage or "params" in damage else "onnx"
    prefix = _copy(exports, fmt, tmp_path)
    if damage.startswith("truncated_onnx"):
        data = open(prefix + ".onnx", "rb").read()
        open(prefix + ".onnx", "wb").write(data[:len(data) // 2])
        name = "onnx.onnx"
    elif damage.startswith("empty_symbol"):
        open(prefix + "-symbol.json", "w").close()
        name = "mxnet-symbol.json"
    elif damage == "nan_onnx":
        import onnx
        from onnx import numpy_helper
        model = onnx.load(prefix + ".onnx")
        weight = model.graph.initializer[0]
        weight.CopyFrom(numpy_helper.from_array(
            np.full(numpy_helper.to_array(weight).shape, np.nan, np.float32), weight.name))
        onnx.save(model, prefix + ".onnx")
        name = "onnx.onnx"
    else:
        arrays = mx.nd.load(prefix + "-0000.params")
        arrays[next(k for k in sorted(arrays) if "dense" in k)][:] = np.nan  # the classifier
        mx.nd.save(prefix + "-0000.params", arrays)
        name = "mxnet-0000.params"
    if damage.endswith("redigested") or damage.startswith("nan"):
        _redigest(prefix, name)
    status, out, err = cli("predict", "--export", prefix, demo["val_dir"] + "/ring")
    assert_one_line_error(status, out, err, message)


def test_eval_runs_on_the_devices_the_environment_names(cli, checkpoint, demo, monkeypatch):
    folder = os.path.join(demo["val_dir"])
    args = ["eval", "--params", checkpoint, "--val-dir", folder, "-j", "0", "--json",
            "--batch-size", 16]
    status, out, err = cli(*args)
    assert status == 0, err
    monkeypatch.setenv("GLUON_TRICKS_DEVICES", "cpu(0),cpu(1)")
    status, two, err = cli(*args, "--num-gpus", 2)
    assert status == 0, err
    assert json.loads(two)["err_top1"] == pytest.approx(json.loads(out)["err_top1"], abs=1e-9)
    status, out, err = cli(*args, "--num-gpus", 3)
    assert_one_line_error(status, out, err, "names only 2 context(s)")


def test_eval_help_says_the_checkpoint_sets_the_input_size(cli):
    import argparse
    from gluon_tricks import evaluate
    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    text = next(a.help for a in parser._actions if a.dest == "input_size")
    assert "checkpoint" in text and "224" in text


def test_plot_gap_computes_logits_at_the_checkpoints_input_size(cli, demo, checkpoint, tmp_path):
    """`plot gap --model --params` without --input-size: the gap of the logits at the size the
    checkpoint was trained at, the same as from `eval --save-logits` (not at 224)."""
    status, _, stderr = cli("eval", "--params", checkpoint, "--val-dir", demo["val_dir"], "-j", "0",
                            "--save-logits", tmp_path / "eval.npz")
    assert status == 0, stderr
    status, from_eval, stderr = cli("plot", "gap", tmp_path / "eval.npz", "-o", tmp_path / "a.png")
    assert status == 0, stderr
    status, computed, stderr = cli("plot", "gap", "--model", "resnet18_v1d", "--params",
                                   checkpoint, "--val-dir", demo["val_dir"], "-j", "0",
                                   "-o", tmp_path / "b.png")
    assert status == 0, stderr

    def summary(stdout):
        return stdout.splitlines()[0].split(": ", 1)[1]
    assert summary(computed) == summary(from_eval)
