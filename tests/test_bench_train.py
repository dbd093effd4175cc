"""`gluon-tricks bench train` on the CPU, tiny: its numbers agree with each other, GluonCV's side
runs in the same process, `--rec` says what bounds the run, and impossible precisions end in one
line. (Speeds themselves are printed side by side, never asserted.)"""
import json

import pytest

TINY = ["bench", "train", "--model", "resnet18_v1b", "--input-size", "32", "--batch-size", "4",
        "--classes", "10", "--steps", "2", "--warmup", "1", "--rounds", "1"]


def test_json_numbers_agree_with_each_other(cli):
    status, out, err = cli(*TINY, "--json")
    assert status == 0, err
    result = json.loads(out)
    assert set(result) == {"ours", "ms_per_step", "host_ms"}
    # images/s and ms per step describe the same timed steps of 4 images
    assert result["ours"] * result["ms_per_step"] / 1000 == pytest.approx(4, rel=1e-6)
    assert 0 < result["host_ms"]


def test_compare_gluoncv_prints_both_and_their_ratio(cli):
    status, out, err = cli(*TINY, "--compare-gluoncv", "--json")
    assert status == 0, err
    result = json.loads(out)
    assert set(result) == {"ours", "gluoncv", "ratio", "host_ms", "gluoncv_host_ms"}
    assert result["ratio"] == pytest.approx(result["ours"] / result["gluoncv"])
    assert min(result.values()) > 0


def test_table_names_both_sides(cli):
    status, out, err = cli(*TINY, "--compare-gluoncv", "--loss-scale", "dynamic")
    assert status == 0, err
    assert "ours (gluon_tricks step)" in out and "GluonCV (model_zoo + its loop)" in out
    assert "loss scale dynamic" in out and "ratio ours / GluonCV:" in out


def test_rec_end_to_end_says_what_bounds_the_run(cli, small_image_set):
    status, out, err = cli(*TINY, "--rec", small_image_set["rec"], "-j", "1", "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["bound"] == ("input" if result["input"] < result["ours"] else "compute")
    assert result["end_to_end"] > 0 and result["input"] > 0


@pytest.mark.parametrize("flags, message", [
    (["--amp"], "--amp needs GPUs"),
    (["--dtype", "float16"], "--dtype float16 needs GPUs"),
    (["--loss-scale", "-1"], "--loss-scale must be"),
    (["--loss-scale", "x"], "--loss-scale must be"),
    (["--num-gpus", "1"], "--num-gpus 1"),
    (["--steps", "0"], "--steps"),
])
def test_impossible_settings_end_in_one_line(cli, flags, message, monkeypatch):
    monkeypatch.delenv("GLUON_TRICKS_DEVICES", raising=False)
    status, out, err = cli(*TINY, *flags)
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
