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
    log.epoch(25, loss=1.9, accuracy=0.3, images_per_sec=128.0, err_top1=0.6, err_top5=0.1)
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
        log.epoch(1, 1.0, 0.5, 10.0, 0.5, 0.1)
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
