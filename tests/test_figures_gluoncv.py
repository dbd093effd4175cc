"""GluonCV's published logs (logs/gluoncv/) read by `report --paper`, the reference figures'
data, and the learning rate they used against the trainer's own schedule."""
import json
import os
import re

import pytest

from gluon_tricks.figures import reference
from gluon_tricks.figures.logparse import parse_log

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGS = os.path.join(REPO, "logs", "gluoncv")
DUPLICATES = {"inceptionv3.log": "inceptionv3-mixup.log",
              "mobilenet1.0.log": "mobilenet1.0-mixup.log"}


def log_path(name):
    return os.path.join(LOGS, name)


def last_validation(name):
    """Final top-1 (%) read with a plain regex, independently of the parser."""
    with open(log_path(name)) as f:
        errors = re.findall(r"validation: err-top1=([\d.]+)", f.read())
    return 100 * (1 - float(errors[-1]))


@pytest.fixture(scope="module")
def report_rows():
    from gluon_tricks.cli import main
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["report", LOGS, "--paper", "--json"]) == 0
    return {os.path.basename(row["log"]): row for row in json.loads(out.getvalue())}


def test_report_matches_every_run_that_is_a_row_of_the_paper(report_rows):
    matched = {name: (row["paper"]["table"], row["paper"]["row"])
               for name, row in report_rows.items() if row["paper"]}
    mixup = ("Table 6", "+ mixup w/o distill")
    assert matched == {"resnet50_v1d.log": ("Table 6", "+ label smoothing"),
                       "resnet50_v1d-mixup.log": mixup,
                       "inceptionv3-mixup.log": mixup, "inceptionv3.log": mixup,
                       "mobilenet1.0-mixup.log": mixup, "mobilenet1.0.log": mixup}
    row = report_rows["resnet50_v1d.log"]
    assert row["final_top1"] == pytest.approx(last_validation("resnet50_v1d.log"), abs=1e-3)
    assert row["paper"]["diff_top1"] == pytest.approx(row["final_top1"] - 78.31, abs=0.006)
    assert all(row["batch"] in (256, 512, 1024) for row in report_rows.values())


def test_the_published_logs_get_the_warnings_they_deserve(report_rows):
    warned = {name: row["warnings"] for name, row in report_rows.items() if row["warnings"]}
    expected = {}
    for copy, original in DUPLICATES.items():
        expected[copy] = ["byte-identical to %s (one run given twice)" % log_path(original)]
        expected[original] = ["byte-identical to %s (one run given twice)" % log_path(copy)]
    expected["resnet152_v1d.log"] = [
        "implausible validation: top-1 equals top-5 at 120 of 120 epochs",
        "implausible validation: top-1 99.17% at epoch 119 on 1000 classes"]
    assert warned == expected
    assert len(report_rows) == 23


@pytest.fixture(scope="module")
def runs():
    return reference.load_runs([LOGS])


def test_table5_across_depths(runs):
    grid = reference.depth_grid(runs)
    assert sorted(grid) == sorted([(d, v) for d in (18, 34) for v in ("v1", "v1b")]
                                  + [(d, v) for d in (50, 101, 152)
                                     for v in ("v1", "v1b", "v1c", "v1d")])
    for (depth, variant), run in grid.items():
        name = "resnet%d_%s.log" % (depth, variant)
        assert run.name == name and not run.mixup
        assert run.final == pytest.approx(last_validation(name), abs=1e-6)
    table = reference.depth_table(runs)
    assert "| 50 | 77.33 | 77.66 | 78.00 | 78.47 |" in table
    assert "| 50, paper | 76.21 | 76.66 | 76.87 | 77.16 |" in table
    assert "| 152 | 79.22 | 79.63 | 79.98 | (broken validation) |" in table
    macs = {"resnet%d_%s" % (d, v): d * 1e9 for d in (18, 34, 50, 101, 152)
            for v in ("v1", "v1b", "v1c", "v1d")}
    series = dict(reference.depth_series(runs, macs))
    assert [p[2] for p in series["ResNet-D (GluonCV)"]] == [50, 101]  # 152-D's is broken


def test_mixup_pairs_are_real_runs_only(runs):
    pairs = {model: (plain and plain.name, mixed and mixed.name, note)
             for model, plain, mixed, note in reference.mixup_pairs(runs)}
    assert pairs["resnet50_v1d"] == ("resnet50_v1d.log", "resnet50_v1d-mixup.log", "")
    assert pairs["resnet101_v1d"] == ("resnet101_v1d.log", "resnet101_v1d-mixup.log", "")
    assert pairs["resnet152_v1d"][:2] == ("resnet152_v1d.log", "resnet152_v1d-mixup.log")
    assert "broken validation" in pairs["resnet152_v1d"][2]
    for model in ("inceptionv3", "mobilenet1.0"):  # the "without mixup" log is the mixup one
        plain, mixed, note = pairs[model]
        assert plain is None and mixed == "%s-mixup.log" % model and "copy" in note
    table = reference.mixup_table(runs)
    assert "| resnet50_v1d | 78.47 | 79.08 | +0.61 |" in table


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(LOGS) if f.endswith(".log")))
def test_the_lr_gluoncv_used_is_the_trainers_schedule(name):
    """Every lr= of every published log (every 20th, for time) against `gluon-tricks train`'s
    schedule for the same flags: within two warmup increments during warmup (GluonCV 2018
    counted batches from 0 and divided by m; the LRScheduler the trainer uses counts MXNet's
    num_update from 1 and divides by m - 1), within the same offset of the cosine after it."""
    log = parse_log(log_path(name))
    log.batches = log.batches[::20]
    points = reference.lr_agreement(log)
    assert len(points) >= 150
    in_warmup, after = reference.lr_tolerance(log.config, log.format)
    warmup_end = 5 * reference.iters_per_epoch(log.config, log.format)
    for index, _, logged, trainer in points:
        assert abs(logged - trainer) <= (in_warmup if index < warmup_end else after), \
            (name, index, logged, trainer)
    # the tolerance can fail: one warmup epoch less is far outside it
    log.config["warmup_epochs"] = 4
    shifted = reference.lr_agreement(log)
    assert max(abs(a - b) for _, _, a, b in shifted) > 10 * in_warmup


def test_plot_reference_writes_the_figures_and_tables(tmp_path):
    """The command on a few of the logs (all of them take a minute on two cores)."""
    import shutil
    from gluon_tricks.cli import main
    subset = tmp_path / "logs"
    subset.mkdir()
    for name in ("resnet50_v1.log", "resnet50_v1d.log", "resnet50_v1d-mixup.log",
                 "inceptionv3.log", "inceptionv3-mixup.log"):
        shutil.copy(log_path(name), subset / name)
    out = tmp_path / "figures"
    assert main(["plot", "reference", str(subset), "-o", str(out)]) == 0
    written = sorted(os.listdir(out))
    assert written == sorted([f + ".png" for f in reference.FIGURES.values()]
                             + [reference.TABLES_FILE])
    for name in (n for n in written if n.endswith(".png")):
        with open(out / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    tables = (out / reference.TABLES_FILE).read_text()
    assert "| 50 | 77.33 | - | - | 78.47 |" in tables
    assert "| inceptionv3 | - | 78.02 | - |" in tables


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/logs"], "no such file"),
    ([os.path.join(LOGS, "resnet50_v1.log"), "--lr-log", "nope.log"],
     "--lr-log nope.log: no such log"),
    ([os.path.join(LOGS, "inceptionv3.log"), "--lr-log", "inceptionv3.log"],
     "no ResNet-50 log without mixup"),
    ([os.path.join(LOGS, "resnet50_v1.log"), "--lr-log", "resnet50_v1.log", "-o",
      "/proc/gluon-tricks-cannot"], "cannot create /proc/gluon-tricks-cannot"),
])
def test_plot_reference_bad_input_ends_in_one_line(cli, args, message):
    status, out, err = cli("plot", "reference", *args)
    assert status == 2 and "wrote" not in out
    errors = [line for line in err.splitlines() if line.startswith("gluon-tricks: error: ")]
    assert len(errors) == 1 and message in errors[0], err
