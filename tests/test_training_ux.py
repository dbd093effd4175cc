"""What a user of `train` meets first: a refused run writes nothing, a rerun of a finished run adds
no configuration line, log lines carry the loss, batch i/N and the ETAs (in the log, its JSON-lines
twin and on stdout), help texts show defaults, flags are never abbreviated, and epoch-end and
mid-epoch checkpoints are written by one owner with the loss-scale state apart from the run's
configuration."""
import argparse
import dataclasses
import glob
import json
import os
import re

import mxnet as mx
import pytest

from conftest import assert_one_line_error

TINY = ["--model", "resnet18_v1d", "--input-size", "32", "--batch-size", "8", "-j", "0",
        "--log-interval", "2"]


def _train(cli, disc_data, out, *extra, log=None):
    log = log or os.path.join(str(out), "train.log")
    return cli("train", *TINY, "--train-dir", disc_data / "train", "--val-dir", disc_data / "val",
               "--save-dir", out, "--logging-file", log, *extra)


@pytest.fixture(scope="module")
def misfit_teacher(tmp_path_factory):
    """A resnet18_v1d .params of 7 classes: not a teacher for the 4-class disc data."""
    from gluon_tricks.models import get_model, initialize
    path = tmp_path_factory.mktemp("teacher") / "seven.params"
    net = initialize(get_model("resnet18_v1d", classes=7), mx.cpu())
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(path))
    return path


@pytest.mark.parametrize("extra, message", [
    (["--model", "resnet19_v1d"], "unknown model 'resnet19_v1d'"),
    (["--train-dir", "/nonexistent/train"], "/nonexistent/train"),
    (["--warmup-epochs", "3", "--num-epochs", "2"], "--warmup-epochs (3)"),
    (["--resume-epoch", "3"], "--resume-epoch 3 needs --resume-params"),
    (["--teacher", "resnet18_v1d", "--teacher-params", "TEACHER"], "does not fit"),
    (["--resume-params", "TEACHER", "--resume-states", "TEACHER", "--resume-epoch", "1"],
     "--resume-params %s does not hold the weights"),  # refused once the save dir is locked
])
def test_a_refused_run_writes_no_log_line_and_no_save_dir(cli, disc_data, tmp_path,
                                                          misfit_teacher, extra, message):
    extra = [str(misfit_teacher) if e == "TEACHER" else e for e in extra]
    message = message.replace("%s", str(misfit_teacher))
    out = tmp_path / "run"
    status, stdout, err = _train(cli, disc_data, out, *extra, log=out / "logs" / "train.log")
    assert_one_line_error(status, stdout, err, message)
    assert not os.path.exists(out)


def test_rerunning_a_finished_run_adds_nothing_to_its_log_and_is_no_restart(cli, disc_data,
                                                                         tmp_path):
    from gluon_tricks.figures.log_checks import warnings_of
    from gluon_tricks.figures.logparse import parse_log
    assert _train(cli, disc_data, tmp_path, "--num-epochs", "1")[0] == 0
    log = tmp_path / "train.log"
    before = (log.read_text(), open(str(log) + ".jsonl").read())
    status, out, err = _train(cli, disc_data, tmp_path, "--num-epochs", "1")
    assert status == 0, err
    assert out.startswith("nothing to train") and out.count("\n") == 1
    assert (log.read_text(), open(str(log) + ".jsonl").read()) == before
    assert warnings_of([parse_log(str(log))]) == [[]]


@pytest.fixture(scope="module")
def demo_classes(tmp_path_factory):
    """Every demo class, 4 training and 2 validation images each, as image folders."""
    import shutil
    from gluon_tricks.data.demo_data import default_demo_data
    demo = default_demo_data()
    root = tmp_path_factory.mktemp("demo_classes")
    for split, count in (("train", 4), ("val", 2)):
        for name in sorted(os.listdir(demo[split + "_dir"])):
            source = os.path.join(demo[split + "_dir"], name)
            os.makedirs(str(root / split / name))
            for filename in sorted(os.listdir(source))[:count]:
                shutil.copy(os.path.join(source, filename), str(root / split / name))
    return root


def test_demo_run_again_re_evaluates_and_leaves_its_log_as_it_is(cli, demo_classes, tmp_path,
                                                                 monkeypatch):
    """`make demo` twice: the second run trains nothing, evaluates again, and the log shows one
    run (no restart warning in `report` or `plot`)."""
    from gluon_tricks import demo
    from gluon_tricks.figures.log_checks import warnings_of
    from gluon_tricks.figures.logparse import parse_log
    monkeypatch.setattr(demo, "DEMO_FLAGS", [
        "--model", "resnet18_v1d", "--input-size", "32", "--batch-size", "8", "-j", "0",
        "--num-epochs", "1", "--log-interval", "2", "--train-dir", str(demo_classes / "train"),
        "--val-dir", str(demo_classes / "val")])
    out = tmp_path / "demo"
    status, first, err = cli("demo", "--out", out)
    assert status == 0, err
    log = out / "train.log"
    before = (log.read_text(), open(str(log) + ".jsonl").read())
    status, second, err = cli("demo", "--out", out)
    assert status == 0, err
    assert "nothing to train" in second and "err-top1" in second
    assert (log.read_text(), open(str(log) + ".jsonl").read()) == before
    assert warnings_of([parse_log(str(log))]) == [[]]


BATCH_LINE = re.compile(  # GluonCV's line, then ours: loss, batches done / per epoch, the ETAs
    r"^Epoch\[(\d+)\] Batch \[(\d+)\]\tSpeed: [\d.]+ samples/sec\taccuracy=([\d.]+)\tlr=[\d.]+"
    r"\tloss=([\d.]+)\t(\d+)/(\d+) batches, ETA epoch (\d+):(\d\d):(\d\d), "
    r"run (\d+):(\d\d):(\d\d)$")


def test_log_lines_hold_loss_progress_and_etas_in_the_log_the_twin_and_stdout(cli, disc_data,
                                                                            tmp_path):
    status, out, err = _train(cli, disc_data, tmp_path, "--num-epochs", "2")
    assert status == 0, err
    lines = (tmp_path / "train.log").read_text().splitlines()
    batch_lines = [line for line in lines if line.startswith("Epoch[")]
    matches = [BATCH_LINE.match(line) for line in batch_lines]
    assert all(matches), batch_lines
    # the run's first batch is logged at once, then every --log-interval batches (4 per epoch)
    assert [(int(m.group(1)), int(m.group(2))) for m in matches] == [(0, 0), (0, 1), (0, 3),
                                                                    (1, 1), (1, 3)]
    assert all(int(m.group(5)) == int(m.group(2)) + 1 and m.group(6) == "4" for m in matches)
    ready = [i for i, line in enumerate(lines) if "4 batches per epoch" in line]
    assert ready and ready[0] < lines.index(batch_lines[0])  # said before the first step
    events = [json.loads(line) for line in open(str(tmp_path / "train.log") + ".jsonl")]
    batches = [e for e in events if e["event"] == "batch"]
    assert [(e["epoch"], e["batch"], e["batches"]) for e in batches] == [
        (0, 0, 4), (0, 1, 4), (0, 3, 4), (1, 1, 4), (1, 3, 4)]
    for event, match in zip(batches, matches):
        assert float(match.group(4)) == pytest.approx(event["loss"], abs=1e-6)
        seconds = lambda h, m, s: 3600 * int(h) + 60 * int(m) + int(s)  # noqa: E731
        assert seconds(*match.group(7, 8, 9)) == round(event["eta_epoch"])
        assert seconds(*match.group(10, 11, 12)) == round(event["eta_run"])
        assert 0 <= event["eta_epoch"] <= event["eta_run"]
    assert [e["eta_epoch"] for e in batches if e["batch"] == 3] == [0, 0]
    assert batches[0]["eta_run"] > batches[2]["eta_run"] > 0  # epoch 1 and its validation left
    # the epoch's training loss is the sample-weighted mean of its intervals' (8, 8, 16 images)
    trained = [e for e in events if e["event"] == "train"]
    assert trained[0]["loss"] == pytest.approx(
        (8 * batches[0]["loss"] + 8 * batches[1]["loss"] + 16 * batches[2]["loss"]) / 32,
        rel=1e-5)
    assert "[Epoch 0] training: accuracy=%f loss=%f" % (trained[0]["accuracy"],
                                                        trained[0]["loss"]) in lines
    # not a terminal (a pipe, horovodrun, nohup): the same lines are the progress on stdout
    shown = out.splitlines()
    assert all(line in shown for line in batch_lines)
    # the figures still read the log: GluonCV's metric and lr, not the new fields
    from gluon_tricks.figures.logparse import parse_log, parse_text
    for log in (parse_log(str(tmp_path / "train.log")), parse_text("\n".join(lines) + "\n")):
        assert [(b.epoch, b.done) for b in log.batches] == [(0, 1), (0, 2), (0, 4), (1, 2),
                                                            (1, 4)]
        assert log.batches[-1].metric == ("accuracy", pytest.approx(batches[-1]["accuracy"],
                                                                    abs=1e-6))
        assert log.epochs[0].train_metric[0] == "accuracy" and log.restarts == 0


def _parsers(parser):
    """`parser` and every subcommand parser below it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def test_no_parser_accepts_an_abbreviated_flag(cli, capsys):
    from gluon_tricks.cli import COMMANDS, build_parser
    parsers = list(_parsers(build_parser()))
    assert len(parsers) >= len(COMMANDS) + 3  # bench data and bench train as well
    assert [p.prog for p in parsers if p.allow_abbrev] == []
    with pytest.raises(SystemExit) as exit_status:
        cli("train", "--model", "resnet18_v1d", "--lr-mod", "step")
    assert exit_status.value.code == 2
    assert "unrecognized arguments: --lr-mod step" in capsys.readouterr().err


def test_every_help_text_shows_its_default(cli, capsys):
    from gluon_tricks.cli import build_parser
    missing = []
    for parser in _parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if (action.option_strings and action.default is not None
                    and action.default is not False and action.default != ""
                    and action.default is not argparse.SUPPRESS):
                text = formatter._expand_help(action) if action.help else ""
                if "default" not in text:
                    missing.append("%s %s" % (parser.prog, action.option_strings[0]))
    assert missing == []
    with pytest.raises(SystemExit):
        cli("train", "--help")
    shown = " ".join(capsys.readouterr().out.split())
    for flag, default in (("--batch-size", "32"), ("--warmup-epochs", "0"), ("--momentum", "0.9"),
                          ("--wd", "0.0001"), ("--save-dir", "params"),
                          ("--logging-file", "train_imagenet.log")):
        assert re.search(re.escape(flag) + r" [A-Z_]+ [^-]*\(default:? " + re.escape(default)
                         + r"\)", shown), flag


def test_epoch_and_mid_epoch_checkpoints_hold_one_config_and_the_loss_scale_apart(
        cli, disc_data, tmp_path):
    status, out, err = _train(cli, disc_data, tmp_path, "--num-epochs", "1",
                              "--save-interval-minutes", "1e-9", "--keep-checkpoints", "1",
                              "--loss-scale", "dynamic", "--loss-scale-window", "2")
    assert status == 0, err
    mid, = glob.glob(str(tmp_path / "resnet18_v1d-0000-batch*.json"))
    records = [json.load(open(path)) for path in (mid, tmp_path / "resnet18_v1d-0001.json")]
    assert records[0]["batch"] == 4 and records[1]["batch"] == 0
    assert records[0]["config"] == records[1]["config"]
    assert "loss_scaler" not in records[1]["config"]
    for record in records:  # 4 clean steps, window 2: doubled twice
        assert record["loss_scaler"] == {"scale": 2.0 ** 18, "dynamic": True, "window": 2,
                                         "clean_steps": 0, "skipped": 0}
    from gluon_tricks.training.run_config import RunConfig
    assert set(records[1]["config"]) == {f.name for f in dataclasses.fields(RunConfig)}


def test_an_older_checkpoint_keeps_its_loss_scale_in_its_config():
    from gluon_tricks.training.checkpoint import loss_scaler_state
    state = {"scale": 8.0, "clean_steps": 1, "skipped": 0}
    assert loss_scaler_state({"config": {"seed": 0, "loss_scaler": state}}) == state
    assert loss_scaler_state({"config": {"seed": 0}, "loss_scaler": state}) == state
    assert loss_scaler_state({"config": {"seed": 0}}) is None


def test_bench_compare_gluoncv_of_a_model_gluoncv_lacks_is_one_line(cli):
    status, out, err = cli("bench", "train", "--model", "resnet18_v1d", "--compare-gluoncv",
                           "--input-size", "32", "--batch-size", "2", "--steps", "1")
    assert_one_line_error(status, out, err, "resnet18_v1d", "--compare-gluoncv",
                          "resnet18_v1b")
