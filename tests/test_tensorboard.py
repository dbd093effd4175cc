"""TensorBoard scalars: what the writer writes is read back from the event file (TFRecord framing
and CRC-32C checked, events parsed with TensorBoard's protobuf)."""
import os

import numpy as np
import pytest

from gluon_tricks.training.tensorboard import (TensorBoardLog, read_event_records,
                                               read_scalars)


def test_scalars_read_back_with_their_steps(tmp_path):
    log = TensorBoardLog(str(tmp_path / "tb"))
    log.batch(10, loss=2.25, accuracy=0.125, lr=0.05, images_per_sec=123.5)
    log.batch(20, loss=1.75, accuracy=0.25, lr=0.1, images_per_sec=130.0, loss_scale=1024.0)
    log.epoch_train(25, loss=1.9, accuracy=0.3, images_per_sec=128.0)
    log.validation(25, err_top1=0.6, err_top5=0.1)
    log.close()
    scalars = read_scalars(str(tmp_path / "tb"))
    assert scalars["train/loss"] == [(10, 2.25), (20, 1.75)]
    assert scalars["train/lr"] == [(10, 0.05000000074505806), (20, 0.10000000149011612)]
    assert scalars["train/loss_scale"] == [(20, 1024.0)]  # only where there is one
    assert [s for s, _ in scalars["val/top1"]] == [25]
    np.testing.assert_allclose(scalars["val/top1"][0][1], 0.4, rtol=1e-6)  # 1 - err-top1
    np.testing.assert_allclose(scalars["val/top5"][0][1], 0.9, rtol=1e-6)
    assert "epoch/loss_scale" not in scalars
    assert set(scalars) == {"train/loss", "train/accuracy", "train/lr", "train/images_per_sec",
                            "train/loss_scale", "epoch/train_loss", "epoch/train_accuracy",
                            "epoch/images_per_sec", "val/top1", "val/top5"}


def test_other_ranks_and_no_directory_write_nothing(tmp_path):
    for log in (TensorBoardLog(str(tmp_path / "rank1"), enabled=False), TensorBoardLog(None)):
        log.batch(1, 1.0, 0.5, 0.1, 10.0)
        log.epoch_train(1, 1.0, 0.5, 10.0)
        log.validation(1, 0.5, 0.1)
        log.close()
    assert not os.path.exists(str(tmp_path / "rank1"))


def test_a_damaged_event_file_is_detected(tmp_path):
    log = TensorBoardLog(str(tmp_path))
    log.batch(1, 1.0, 0.5, 0.1, 10.0)
    log.close()
    path = [p for p in os.listdir(str(tmp_path)) if p.startswith("events.out.tfevents.")][0]
    path = str(tmp_path / path)
    assert len(read_event_records(path)) >= 2  # the file version, then the scalars
    data = bytearray(open(path, "rb").read())
    data[-6] ^= 0xFF  # a bit flip inside the last record
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match="bad or truncated record"):
        read_event_records(path)


@pytest.fixture(scope="module")
def demo_subset(tmp_path_factory):
    """4 demo classes, 8 training and 4 validation images each, as image folders."""
    import shutil
    from gluon_tricks.data.demo_data import default_demo_data
    demo = default_demo_data()
    root = tmp_path_factory.mktemp("demo_subset")
    for split, count in (("train", 8), ("val", 4)):
        for name in ("checker", "disk", "star", "stripes"):
            source = os.path.join(demo[split + "_dir"], name)
            os.makedirs(str(root / split / name))
            for filename in sorted(os.listdir(source))[:count]:
                shutil.copy(os.path.join(source, filename), str(root / split / name))
    return root


def test_train_writes_the_logged_numbers_to_tensorboard(cli, demo_subset, tmp_path):
    import json
    status, _, stderr = cli(
        "train", "--model", "resnet18_v1d", "--input-size", "32", "--batch-size", "8", "-j", "0",
        "--log-interval", "2", "--num-epochs", "2", "--lr", "0.05", "--warmup-epochs", "1",
        "--lr-mode", "cosine", "--mixup", "--label-smoothing", "--train-dir",
        demo_subset / "train", "--val-dir", demo_subset / "val", "--save-dir", tmp_path,
        "--logging-file", tmp_path / "train.log", "--tensorboard-dir", tmp_path / "tb")
    assert status == 0, stderr
    records = [json.loads(line) for line in open(str(tmp_path / "train.log.jsonl"))]
    batches = [r for r in records if r["event"] == "batch"]
    epochs = [r for r in records if r["event"] == "train"]
    validations = [r for r in records if r["event"] == "validation"]
    assert len(os.listdir(str(tmp_path / "tb"))) == 1  # one event file
    scalars = read_scalars(str(tmp_path / "tb"))
    iters = 4  # 32 images / 8
    # every log line (the first batch, then every interval): the step, the log's lr and accuracy
    assert [s for s, _ in scalars["train/lr"]] == [r["epoch"] * iters + r["batch"] + 1
                                                   for r in batches] == [1, 2, 4, 6, 8]
    np.testing.assert_allclose([v for _, v in scalars["train/lr"]], [r["lr"] for r in batches],
                               rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars["train/accuracy"]],
                               [r["accuracy"] for r in batches], rtol=1e-6)
    losses = [v for _, v in scalars["train/loss"]]
    assert all(np.isfinite(v) and v > 0 for v in losses), losses  # cross-entropy per image
    np.testing.assert_allclose(losses, [r["loss"] for r in batches], rtol=1e-6)
    # every epoch: training accuracy and validation as the log has them, at the epoch's end
    assert [s for s, _ in scalars["val/top1"]] == [iters, 2 * iters]
    np.testing.assert_allclose([v for _, v in scalars["val/top1"]],
                               [1 - r["err_top1"] for r in validations], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars["val/top5"]],
                               [1 - r["err_top5"] for r in validations], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars["epoch/train_accuracy"]],
                               [r["accuracy"] for r in epochs], rtol=1e-6)
    epoch_loss = [v for _, v in scalars["epoch/train_loss"]]
    # epoch 0's intervals: batch 0, batch 1, batches 2-3
    np.testing.assert_allclose(epoch_loss[0], (losses[0] + losses[1] + 2 * losses[2]) / 4,
                               rtol=1e-5)
    assert "train/loss_scale" not in scalars  # FP32: no loss scale


def test_a_dynamic_loss_scale_is_written(cli, demo_subset, tmp_path):
    status, _, stderr = cli(
        "train", "--model", "resnet18_v1d", "--input-size", "32", "--batch-size", "8", "-j", "0",
        "--log-interval", "2", "--num-epochs", "1", "--lr", "0.05", "--loss-scale", "dynamic",
        "--train-dir", demo_subset / "train", "--val-dir", demo_subset / "val", "--save-dir",
        tmp_path, "--logging-file", tmp_path / "train.log", "--tensorboard-dir", tmp_path / "tb")
    assert status == 0, stderr
    scalars = read_scalars(str(tmp_path / "tb"))
    # FP32 gradients never overflow: the scale stays at its start, 2^16, for the 4 batches
    assert scalars["train/loss_scale"] == [(1, 65536.0), (2, 65536.0), (4, 65536.0)]
    assert scalars["epoch/loss_scale"] == [(4, 65536.0)]
