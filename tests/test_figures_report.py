"""`gluon-tricks report`: the Markdown table, --json, --paper against the paper's rows, bad input,
and a start without MXNet."""
import json
import os
import subprocess
import sys

import pytest

from gluon_tricks import paper
from gluon_tricks.figures.tricks import batch_of, tricks_of
from conftest import (assert_one_line_error, current_epoch, horovod_epoch, namespace,
                      write_log)

EFFICIENT = dict(warmup_epochs=5, last_gamma=True, no_wd=True, dtype="float16")


def table6_log(tmp_path):
    """ResNet-50-D with the efficient tricks + cosine + label smoothing, 3 epochs, the last
    one without validation."""
    lines = [namespace(model="resnet50_v1d", lr_mode="cosine", label_smoothing=True,
                       batch_size=128, num_gpus=8, **EFFICIENT)]
    lines += current_epoch(0, 0.70, 0.90, speed=1000.0)
    lines += current_epoch(1, 0.785, 0.9412, speed=1100.0)
    lines += current_epoch(2, 0.78, 0.94, speed=1300.0)
    lines += current_epoch(3, 0.0, speed=1200.0, validation=False)
    return write_log(tmp_path / "r50d_cosine_ls.log", lines)


def baseline_log(tmp_path):
    lines = [namespace(model="resnet50_v1", batch_size=32, num_gpus=8)]
    lines += current_epoch(0, 0.7587, 0.927, speed=900.0)
    return write_log(tmp_path / "baseline.log", lines)


def test_markdown_table(cli, tmp_path):
    status, out, err = cli("report", table6_log(tmp_path), baseline_log(tmp_path))
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == ("| log | model | tricks | epochs | best top-1 | best top-5 | final top-1 "
                        "| final top-5 | speed (samples/s) | warnings |")
    assert lines[1].startswith("|---|---|---|---:|")
    assert lines[2] == ("| %s | resnet50_v1d | warmup, zero-gamma, no-bias-decay, fp16, cosine, "
                        "label-smoothing | 4 | 78.50 | 94.12 | 78.00 | 94.00 | 1150.0 | - |"
                        % (tmp_path / "r50d_cosine_ls.log"))
    assert lines[3] == ("| %s | resnet50_v1 | baseline | 1 | 75.87 | 92.70 | 75.87 | 92.70 "
                        "| 900.0 | - |" % (tmp_path / "baseline.log"))
    assert "no validation lines" not in out  # epochs without one are fine when others have it


def test_json(cli, tmp_path):
    status, out, _ = cli("report", "--json", table6_log(tmp_path), baseline_log(tmp_path))
    assert status == 0
    rows = json.loads(out)
    assert [set(row) for row in rows] == [{"log", "model", "tricks", "epochs", "best_top1",
                                           "best_top5", "final_top1", "final_top5", "speed",
                                           "warnings"}] * 2
    assert rows[0] == {"log": str(tmp_path / "r50d_cosine_ls.log"), "model": "resnet50_v1d",
                       "tricks": ["warmup", "zero-gamma", "no-bias-decay", "fp16", "cosine",
                                  "label-smoothing"],
                       "epochs": 4, "best_top1": 78.5, "best_top5": 94.12, "final_top1": 78.0,
                       "final_top5": 94.0, "speed": 1150.0, "warnings": []}


def test_json_nulls_for_a_log_without_validation_or_speed(cli, tmp_path):
    path = write_log(tmp_path / "started.log", [namespace(model="mobilenet1.0")])
    status, out, _ = cli("report", "--json", path)
    assert status == 0
    assert json.loads(out) == [{"log": path, "model": "mobilenet1.0", "tricks": [], "epochs": 0,
                                "best_top1": None, "best_top5": None, "final_top1": None,
                                "final_top5": None, "speed": None, "warnings": []}]


def test_horovod_speed_and_accuracy(cli, tmp_path):
    lines = [namespace(model="resnet50_v1b", **EFFICIENT)]
    for epoch in range(3):
        lines += horovod_epoch(epoch, 0.5 + 0.1 * epoch, validation=epoch != 1)
    status, out, _ = cli("report", "--json", write_log(tmp_path / "hvd.log", lines))
    row = json.loads(out)[0]
    assert row["best_top1"] == 70.0 and row["final_top1"] == 70.0 and row["epochs"] == 3
    assert row["speed"] == 5121.0  # median of the per-epoch speeds 5120, 5121, 5122


def test_paper_columns_and_differences(cli, tmp_path):
    status, out, _ = cli("report", "--paper", "--json", table6_log(tmp_path),
                         baseline_log(tmp_path))
    assert status == 0
    ls_row, baseline = json.loads(out)
    assert ls_row["batch"] == 1024
    assert ls_row["paper"] == {"table": "Table 6", "row": "+ label smoothing", "top1": 78.31,
                               "top5": 94.09, "diff_top1": -0.31, "diff_top5": -0.09}
    assert baseline["batch"] == 256
    assert baseline["paper"] == {"table": "Table 3", "row": "baseline, BS=256, FP32",
                                 "top1": 75.87, "top5": 92.70, "diff_top1": 0.0,
                                 "diff_top5": 0.0}
    status, out, _ = cli("report", "--paper", table6_log(tmp_path))
    assert "| paper | paper top-1 | paper top-5 | Δ top-1 | Δ top-5 |" in out.splitlines()[0]
    assert out.splitlines()[2].endswith("| Table 6: + label smoothing | 78.31 | 94.09 | -0.31 "
                                        "| -0.09 | - |")


def test_paper_unmatched_row_is_empty(cli, tmp_path):
    path = write_log(tmp_path / "r18.log", [namespace(model="resnet18_v1b")]
                     + current_epoch(0, 0.7))
    status, out, _ = cli("report", "--paper", "--json", path)
    assert json.loads(out)[0]["paper"] is None
    status, out, _ = cli("report", "--paper", path)
    assert out.splitlines()[2].endswith("| - | - | - | - | - | - |")


@pytest.mark.parametrize("model, tricks, batch, expected", [
    ("resnet50_v1", ["warmup"], 256, (76.03, 92.81)),
    ("resnet50_v1", ["warmup"], 1024, (75.93, 92.84)),
    ("resnet50_v1", ["warmup", "zero-gamma", "no-bias-decay", "fp16"], 1024, (76.21, 92.97)),
    ("resnet50_v1", ["warmup", "zero-gamma", "no-bias-decay", "fp16"], 256, (76.15, 93.09)),
    ("resnet50_v1c", ["warmup", "zero-gamma", "no-bias-decay", "fp16"], 64, (76.87, 93.48)),
    ("resnet50_v1d", ["warmup", "zero-gamma", "no-bias-decay", "fp16"], None, (77.16, 93.52)),
    ("inceptionv3", ["warmup", "zero-gamma", "no-bias-decay", "fp16", "cosine",
                     "label-smoothing", "mixup"], 1024, (78.77, 94.39)),
    ("mobilenet1.0", ["warmup", "zero-gamma", "no-bias-decay", "fp16", "cosine",
                      "label-smoothing", "distillation", "mixup"], 1024, (72.51, 91.02)),
    ("mobilenet1.0", [], 256, (69.03, None)),
    # zero gamma needs residual blocks: Inception-V3 and MobileNet match the rows without it
    ("inceptionv3", ["warmup", "no-bias-decay", "fp16", "cosine", "label-smoothing", "mixup"],
     1024, (78.77, 94.39)),
    ("mobilenet1.0", ["warmup", "no-bias-decay", "fp16"], None, (71.90, 90.53)),
    ("resnet50_v1d", ["warmup", "no-bias-decay", "fp16"], 1024, None),  # a ResNet needs it
    ("resnet50_v1", ["warmup"], None, None),       # Table 4 needs the batch size
    ("resnet50_v1d", ["cosine"], 1024, None),      # not a row of the paper
])
def test_paper_rows(model, tricks, batch, expected):
    row = paper.match(model, tricks, batch)
    assert (row.top1, row.top5) == expected if expected else row is None


def test_paper_rows_are_unambiguous():
    keys = [(row.model, row.tricks, row.batch) for row in paper.ROWS]
    assert len(keys) == len(set(keys))
    for model, tricks, batch in keys:
        if batch is None:  # a row for any batch must not shadow one for a given batch
            assert not [k for k in keys if k[:2] == (model, tricks) and k[2] is not None]


def test_tricks_from_gluoncv_flags():
    config = {"model": "resnet50_v1d", "warmup_epochs": "5", "last_gamma": "True", "no_wd": False,
              "amp": True, "lr_mode": "cosine", "label_smoothing": True,
              "teacher": "resnet152_v1d", "hard_weight": 1.0, "mixup": True}
    assert tricks_of(config) == ["warmup", "zero-gamma", "fp16", "cosine", "label-smoothing",
                                 "mixup"]  # hard_weight 1: GluonCV does not distil
    assert "distillation" in tricks_of(dict(config, hard_weight=0.5))
    assert batch_of({"batch_size": 32, "num_gpus": 8}) == 256
    assert batch_of({"batch_size": 32, "num_gpus": 8, "global_batch_size": 1024}) == 1024
    assert batch_of({}) is None


def test_notes_on_restarts_truncation_and_missing_validation(cli, tmp_path):
    lines = [namespace()] + current_epoch(0, 0.3) + current_epoch(1, 0.4) + current_epoch(2, 0.5)
    lines += current_epoch(1, 0.45)  # resumed at epoch 1, its validation line cut off
    restarted = write_log(tmp_path / "restart.log", lines, final_newline=False)
    bare = write_log(tmp_path / "bare.log", [namespace()] + current_epoch(0, 0.3, validation=False))
    status, out, _ = cli("report", restarted, bare)
    assert status == 0
    assert ("- %s: restarted 1 time(s) inside the file (the later run from epoch 1); repeated "
            "epochs are the later run's; the last line was cut off and skipped." % restarted) in out
    assert "- %s: no validation lines." % bare in out
    assert "| %s | resnet50_v1d | baseline | 2 | 30.00 |" % restarted in out


def test_bad_input(cli, tmp_path):
    status, out, err = cli("report")
    assert_one_line_error(status, out, err, "no log file given")
    status, out, err = cli("report", tmp_path / "missing.log")
    assert_one_line_error(status, out, err, "missing.log: no such file")
    (tmp_path / "empty.log").write_text("")
    status, out, err = cli("report", tmp_path / "empty.log")
    assert_one_line_error(status, out, err, "empty.log: empty file")
    (tmp_path / "empty_dir").mkdir()
    status, out, err = cli("report", tmp_path / "empty_dir")
    assert_one_line_error(status, out, err, "empty_dir: directory with no log files")
    (tmp_path / "notes.log").write_text("some notes\nnothing else\n")
    status, out, err = cli("report", tmp_path / "notes.log")
    assert_one_line_error(status, out, err, "notes.log: not a training log")


def test_one_bad_log_among_good_ones_is_a_warning(cli, tmp_path):
    good = baseline_log(tmp_path)
    (tmp_path / "empty.log").write_text("")
    status, out, err = cli("report", "--json", good, tmp_path / "empty.log")
    assert status == 0 and len(json.loads(out)) == 1
    assert err == "gluon-tricks: warning: %s: empty file\n" % (tmp_path / "empty.log")


def test_report_and_log_parsing_do_not_import_mxnet(tmp_path):
    log = baseline_log(tmp_path)
    code = ("import sys; from gluon_tricks.cli import main; status = main(['report', %r]); "
            "assert 'mxnet' not in sys.modules and 'gluoncv' not in sys.modules, 'mxnet loaded'; "
            "assert 'matplotlib' not in sys.modules; sys.exit(status)" % log)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                            text=True, timeout=60,
                            env=dict(os.environ, PYTHONPATH=root))
    assert result.returncode == 0, result.stderr
    assert "| resnet50_v1 | baseline |" in result.stdout


def seeded_log(tmp_path, name, seed, final_top1, **flags):
    lines = [namespace(model="resnet18_v1d", batch_size=64, num_gpus=1, seed=seed, **flags)]
    lines += current_epoch(0, final_top1 - 0.05) + current_epoch(1, final_top1)
    return write_log(tmp_path / ("%s_seed%d.log" % (name, seed)), lines)


def test_group_seeds_gives_mean_std_and_the_noise_verdict(cli, tmp_path):
    """Three seeds per configuration: mean and sample std by hand; a change of 10 points over
    ~1-point noise exceeds it, a change of 0.5 points does not."""
    base = [seeded_log(tmp_path, "a", s, v) for s, v in enumerate((0.50, 0.52, 0.51))]
    cosine = [seeded_log(tmp_path, "b", s, v, lr_mode="cosine")
              for s, v in enumerate((0.60, 0.62, 0.61))]
    smooth = [seeded_log(tmp_path, "c", s, v, lr_mode="cosine", label_smoothing=True)
              for s, v in enumerate((0.615, 0.605, 0.625))]
    status, out, err = cli("report", "--group-seeds", "--json", *(base + cosine + smooth))
    assert status == 0, err
    groups = json.loads(out)
    assert [g["seeds"] for g in groups] == [[0, 1, 2]] * 3
    assert groups[0]["mean_top1"] == pytest.approx(51.0)
    assert groups[0]["std_top1"] == pytest.approx(1.0)  # sample std of 50, 52, 51
    assert groups[0]["versus_previous"] is None
    second, third = groups[1]["versus_previous"], groups[2]["versus_previous"]
    assert second["change"] == pytest.approx(10.0) and second["exceeds_noise"]
    assert second["stderr"] == pytest.approx((2 / 3) ** 0.5, abs=1e-4)  # rounded to 4 digits
    assert third["change"] == pytest.approx(0.5) and not third["exceeds_noise"]
    status, out, err = cli("report", "--group-seeds", *(base + cosine + smooth))
    assert status == 0 and "| resnet18_v1d | cosine | 2 | 0, 1, 2 |" in out
    assert out.count("| yes |") == 1 and out.count("| no |") == 1
