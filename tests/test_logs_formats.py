"""The log parser on logs written here in each format GluonCV's scripts used (the strings are
those of train_imagenet.py 2018/current and train_horovod.py) and with each defect real logs have.

The log writers shared with test_figures_*.py are in conftest.py.
"""
import logging

import pytest

from conftest import (BASE_CONFIG, current_epoch, horovod_epoch, namespace, project_log,
                      write_log)
from gluon_tricks.errors import UserError
from gluon_tricks.figures.logparse import expand_log_paths, load_logs, parse_log, parse_text
from gluon_tricks.figures.namespace import parse_namespace

def early_2018_epoch(epoch, top1, top5=0.9):
    """train_imagenet.py as first published: errors, no lr, `time cost` on its own line."""
    return ["Epoch[%d] Batch [%d]\tSpeed: %f samples/sec\ttop1-err=%f\ttop5-err=%f"
            % (epoch, 49, 800.0, 0.7, 0.5),
            "[Epoch %d] training: err-top1=%f err-top5=%f" % (epoch, 0.7, 0.5),
            "[Epoch %d] time cost: %f" % (epoch, 1500.5),
            "[Epoch %d] validation: err-top1=%f err-top5=%f" % (epoch, 1 - top1, 1 - top5)]


def late_2018_epoch(epoch, top1, top5=0.9, lr=0.1):
    """train_imagenet.py later in 2018: top1-err with lr, the `speed:` line."""
    return ["Epoch[%d] Batch [%d]\tSpeed: %f samples/sec\ttop1-err=%f\tlr=%f"
            % (epoch, 49, 900.0, 0.6, lr),
            "[Epoch %d] training: err-top1=%f" % (epoch, 0.6),
            "[Epoch %d] speed: %d samples/sec\ttime cost: %f" % (epoch, 950, 1400.0),
            "[Epoch %d] validation: err-top1=%f err-top5=%f" % (epoch, 1 - top1, 1 - top5)]


def test_current_format_with_logging_prefix(tmp_path):
    lines = [namespace(lr_mode="cosine")]
    for epoch, top1 in enumerate([0.2, 0.5, 0.6]):
        lines += current_epoch(epoch, top1, top5=top1 + 0.2, lr=0.1 * (epoch + 1))
    log = parse_log(write_log(tmp_path / "a.log", lines))
    assert log.format == "gluoncv" and log.restarts == 0 and not log.truncated
    assert log.config["lr_mode"] == "cosine" and log.config["teacher"] is None
    assert [r.epoch for r in log.validated()] == [0, 1, 2]
    assert [round(r.top1, 6) for r in log.validated()] == [0.2, 0.5, 0.6]
    assert log.epochs[1].top5 == pytest.approx(0.7)
    assert log.epochs[2].speed == 1000 and log.epochs[2].time_cost == pytest.approx(1228.78)
    assert log.epochs[0].train_metric == ("accuracy", 0.5)
    # batches counted from 0 in train_imagenet.py: batch 49 means 50 done
    assert [(b.epoch, b.done, b.lr) for b in log.batches][:2] == [(0, 50, 0.1), (0, 100, 0.1)]
    assert log.batches[-1].lr == pytest.approx(0.3) and log.batches[0].speed == 1049.0


def test_timestamp_prefix_written_by_python_logging_and_rmse(tmp_path):
    path = tmp_path / "mixup.log"
    logger = logging.getLogger("test_logs_formats.timestamp")
    handler = logging.FileHandler(str(path))
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info(namespace(mixup=True))
        for epoch in range(2):
            for line in current_epoch(epoch, 0.3 + epoch / 10, metric="rmse"):
                logger.info(line)
    finally:
        handler.close()
        logger.removeHandler(handler)
    assert path.read_text().startswith("20")  # the asctime prefix is really there
    log = parse_log(str(path))
    assert log.config["mixup"] is True
    assert log.epochs[1].train_metric == ("rmse", 0.5)
    assert log.batches[0].metric == ("rmse", 0.5)
    assert [round(r.top1, 6) for r in log.validated()] == [0.3, 0.4]


def test_this_projects_own_train_log_writer_is_read_back(tmp_path):
    from gluon_tricks.training.train_log import TrainLog
    path = str(tmp_path / "ours.log")
    writer = TrainLog(path, stream=open(str(tmp_path / "stdout.txt"), "w"))
    writer.namespace(dict(BASE_CONFIG, global_batch_size=1024, iters_per_epoch=1251))
    writer.batch(0, 49, 1036.623, "accuracy", 0.001016, 0.004, 6.9, 1251, (60.0, 600.0))
    writer.epoch(0, "accuracy", 0.013562, 6.8, 1056, 1228.78125, 0.93876, 0.83894)
    writer.close()
    log = parse_log(path)
    assert log.config["global_batch_size"] == 1024
    assert log.batches[0].done == 50 and log.batches[0].lr == pytest.approx(0.004)
    assert log.epochs[0].top1 == pytest.approx(0.06124)
    assert log.epochs[0].top5 == pytest.approx(0.16106)
    assert log.epochs[0].speed == 1056


def test_this_projects_logs_are_read_from_their_json_lines_twin(tmp_path):
    path = project_log(tmp_path / "ours.log", [[(0, 0.123456789), (1, 0.1)]])
    log = parse_log(path)
    assert log.format == "gluon-tricks" and log.source == path + ".jsonl" and log.path == path
    # the twin keeps what the text's %f rounds away
    assert log.epochs[0].top1 == 1 - 0.123456789 and log.epochs[0].top5 == 1 - 0.123456789 / 2
    assert log.config["world_size"] == 8 and "event" not in log.config
    assert (log.batches[0].epoch, log.batches[0].done) == (0, 50)  # batch 49 from 0: 50 done
    assert log.batches[0].metric == ("accuracy", 0.5)
    text = parse_text(open(path).read(), path)  # the text log, read by the regex parser
    assert text.format == "gluoncv" and text.epochs[0].top1 == pytest.approx(1 - 0.123457)
    assert parse_log(path + ".jsonl").epochs[0].top1 == log.epochs[0].top1  # the twin alone


def test_a_resume_appended_to_a_project_log_is_a_restart(tmp_path):
    clean = parse_log(project_log(tmp_path / "clean.log", [[(0, 0.9), (1, 0.8)], [(2, 0.7)]]))
    assert clean.restarts == 1 and clean.restart_epochs == [2]
    assert sorted(clean.epochs) == [0, 1, 2]
    repeated = parse_log(project_log(tmp_path / "rep.log", [[(0, 0.9), (1, 0.8), (2, 0.75)],
                                                            [(2, 0.7), (3, 0.6)]]))
    assert repeated.restarts == 1 and repeated.restart_epochs == [2]  # counted once
    assert [round(1 - r.top1, 6) for r in repeated.validated()] == [0.9, 0.8, 0.7, 0.6]


def test_a_second_namespace_after_records_is_a_resume_but_doubled_ones_at_the_top_are_not(
        tmp_path):
    doubled = [namespace(), namespace()] + current_epoch(0, 0.2) + current_epoch(1, 0.3)
    assert parse_log(write_log(tmp_path / "doubled.log", doubled)).restarts == 0
    resumed = [namespace()] + current_epoch(0, 0.2) + [namespace(resume_epoch=1)] \
        + current_epoch(1, 0.3)
    log = parse_log(write_log(tmp_path / "resumed.log", resumed))
    assert log.restarts == 1 and log.restart_epochs == [1] and log.config["resume_epoch"] == 1


def test_a_cut_off_json_line_and_foreign_records(tmp_path):
    path = project_log(tmp_path / "cut.log", [[(0, 0.9), (1, 0.8)]])
    twin = path + ".jsonl"
    text = open(twin).read()
    with open(twin, "w") as f:
        f.write('not json\n{"event": "mystery"}\n[1, 2]\n{"event": "validation"}\n'
                + text[:-20])
    log = parse_log(path)
    assert log.truncated and log.ignored_lines == 4
    assert [r.epoch for r in log.validated()] == [0]


def test_2018_formats_store_errors_as_accuracies(tmp_path):
    early = parse_log(write_log(tmp_path / "early.log", [namespace()] + early_2018_epoch(0, 0.25)
                                + early_2018_epoch(1, 0.45, 0.7)))
    assert early.format == "gluoncv-2018"
    assert [round(r.top1, 6) for r in early.validated()] == [0.25, 0.45]
    assert early.epochs[1].top5 == pytest.approx(0.7)
    assert early.epochs[0].time_cost == pytest.approx(1500.5)
    assert early.epochs[0].train_metric == ("err-top1", 0.7)
    assert early.batches[0].metric == ("top1-err", 0.7) and early.batches[0].lr is None

    late_lines = [namespace()] + late_2018_epoch(0, 0.3, lr=0.2)
    late = parse_log(write_log(tmp_path / "late.log", late_lines, prefix=""))
    assert late.format == "gluoncv-2018"
    assert late.batches[0].lr == pytest.approx(0.2) and late.epochs[0].speed == 950


def test_horovod_format(tmp_path):
    lines = [namespace(model="resnet50_v1b")]
    for epoch, top1 in enumerate([0.4, 0.55]):
        lines += horovod_epoch(epoch, top1, top5=top1 + 0.2, lr=0.05 * (epoch + 1))
    lines.append("Epoch[1] Rank[0]\tValidation-accuracy=0.550000\tValidation-top_k_accuracy_5="
                 "0.750000")  # the script evaluates its last epoch a second time
    log = parse_log(write_log(tmp_path / "hvd.log", lines))
    assert log.format == "horovod" and log.restarts == 0
    assert [round(r.top1, 6) for r in log.validated()] == [0.4, 0.55]
    assert log.epochs[1].top5 == pytest.approx(0.75)
    assert log.epochs[0].speed == 5120.0 and log.epochs[1].speed == 5121.0
    assert log.epochs[0].time_cost == 250.0 and log.epochs[0].train_metric == ("metric", 0.31)
    # rank 1's lines are ignored; the speed and the metric lines of batch 40 are one record
    assert [(b.epoch, b.done, b.lr, b.speed) for b in log.batches] == \
        [(0, 40, 0.05, 5000.0), (1, 40, 0.1, 5000.0)]


def test_truncated_last_line_is_dropped(tmp_path):
    lines = [namespace()] + current_epoch(0, 0.2) + current_epoch(1, 0.4)
    text = "\n".join(lines)
    cut = text[:text.rindex("err-top1=") + len("err-top1=0.6")]  # mid-number, no newline
    path = tmp_path / "cut.log"
    path.write_text(cut)
    log = parse_log(str(path))
    assert log.truncated
    assert [r.epoch for r in log.validated()] == [0]
    assert log.epochs[1].speed == 1000  # the complete lines of epoch 1 are kept


def test_namespace_cut_off_keeps_the_complete_items():
    config = parse_namespace("INFO:root:Namespace(model='resnet50_v1c', lr=0.4, save_dir='/x/y")
    assert config == {"model": "resnet50_v1c", "lr": 0.4}


def test_restart_replaces_repeated_epochs(tmp_path):
    first = [namespace()] + current_epoch(0, 0.1) + current_epoch(1, 0.2) + current_epoch(2, 0.3)
    first += current_epoch(3, 0.35, batches=(49,))[:1]  # killed inside epoch 3
    second = [namespace(resume_epoch=2)] + current_epoch(2, 0.33, lr=0.05) \
        + current_epoch(3, 0.44) + current_epoch(4, 0.5)
    log = parse_log(write_log(tmp_path / "restart.log", first + second))
    assert log.restarts == 1
    assert [round(r.top1, 6) for r in log.validated()] == [0.1, 0.2, 0.33, 0.44, 0.5]
    assert log.config["resume_epoch"] == 2
    epoch2 = [b for b in log.batches if b.epoch == 2]
    assert len(epoch2) == 2 and all(b.lr == pytest.approx(0.05) for b in epoch2)
    positions = [(b.epoch, b.done) for b in log.batches]
    assert positions == sorted(positions)


def test_restart_without_batch_lines_is_found_from_epoch_lines(tmp_path):
    lines = [namespace()] + current_epoch(0, 0.1, batches=()) + current_epoch(1, 0.2, batches=()) \
        + current_epoch(1, 0.25, batches=()) + current_epoch(2, 0.3, batches=()) \
        + current_epoch(0, 0.15, batches=()) + current_epoch(1, 0.27, batches=())
    log = parse_log(write_log(tmp_path / "r.log", lines, prefix=""))
    assert log.restarts == 1
    assert [round(r.top1, 6) for r in log.validated()] == [0.15, 0.27]


def test_interleaved_warnings_and_foreign_lines_are_ignored(tmp_path):
    lines = [namespace()] + current_epoch(0, 0.2)
    lines[2:2] = ["/usr/lib/python3.8/site-packages/mxnet/gluon/block.py:1512: UserWarning: "
                  "Cannot decide type for the following arguments.",
                  "  warnings.warn(",
                  "[17:21:04] src/operator/nn/./cudnn/./cudnn_algoreg-inl.h:97: Running "
                  "performance tests to find the best convolution algorithm, this can take a "
                  "while... (set the environment variable MXNET_CUDNN_AUTOTUNE_DEFAULT to 0 to "
                  "disable)",
                  "Training [0/120]:  42%|####2     | 2100/5004 [07:01<09:42,  4.98it/s]",
                  "Traceback (most recent call last): Epoch = 3, lr=0.5 in a message"]
    log = parse_log(write_log(tmp_path / "noisy.log", lines))
    assert log.ignored_lines == 5
    assert [round(r.top1, 6) for r in log.validated()] == [0.2]
    assert len(log.batches) == 2


def test_odd_namespace_values():
    line = ("2019-01-03 10:00:00,001 Namespace(model='resnet50_v1d', lr_decay_epoch='30,60,90', "
            "save_dir='/data/run (2), final', teacher=None, ctx=[gpu(0), gpu(1)], "
            "fn=<function f at 0x7f00>, note=\"it's, odd\", sizes=[224, 256], "
            "opts={'a': 1, 'b': (2, 3)}, weird='a\\'b', use_rec=True, lr=1e-05, mode=hybrid)")
    config = parse_namespace(line)
    assert config["lr_decay_epoch"] == "30,60,90"
    assert config["save_dir"] == "/data/run (2), final"
    assert config["teacher"] is None and config["use_rec"] is True
    assert config["ctx"] == "[gpu(0), gpu(1)]" and config["fn"] == "<function f at 0x7f00>"
    assert config["note"] == "it's, odd" and config["sizes"] == [224, 256]
    assert config["opts"] == {"a": 1, "b": (2, 3)} and config["weird"] == "a'b"
    assert config["lr"] == 1e-05 and config["mode"] == "hybrid"


def test_config_object_line_instead_of_namespace(tmp_path):
    lines = ['config: {"model": "mobilenet1.0", "lr_mode": "cosine", "batch_size": 64}'] \
        + current_epoch(0, 0.2)
    log = parse_log(write_log(tmp_path / "json.log", lines))
    assert log.config["model"] == "mobilenet1.0" and log.config["lr_mode"] == "cosine"


def test_epochs_without_validation(tmp_path):
    lines = [namespace()] + current_epoch(0, 0.2) + current_epoch(1, 0.3, validation=False) \
        + current_epoch(2, 0.4) + current_epoch(3, 0.5, validation=False)
    log = parse_log(write_log(tmp_path / "sparse.log", lines))
    assert sorted(log.epochs) == [0, 1, 2, 3]
    assert [r.epoch for r in log.validated()] == [0, 2]
    assert log.epochs[3].top1 is None and log.epochs[3].speed == 1000


def test_log_with_only_a_namespace_is_recognised():
    log = parse_text(namespace() + "\n")
    assert log.recognised and not log.epochs and not log.batches


@pytest.mark.parametrize("content, message", [
    ("", "empty file"),
    ("  \n\n", "empty file"),
    ("hello\nthis is not a log\n", "not a training log"),
])
def test_unreadable_files_are_named(tmp_path, content, message):
    path = tmp_path / "bad.log"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as error:
        parse_log(str(path))
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        parse_log(str(tmp_path / "missing.log"))
    with pytest.raises(UserError, match="directory with no log files"):
        expand_log_paths([str(tmp_path)])
    (tmp_path / "run1").mkdir()
    write_log(tmp_path / "run1" / "train.log", [namespace()])
    write_log(tmp_path / "b.txt", [namespace()])
    (tmp_path / "run1" / "train.log.jsonl").write_text("{}\n")  # a twin: its log stands for it
    (tmp_path / "run1" / "alone.jsonl").write_text("{}\n")  # no text log: listed itself
    assert expand_log_paths([str(tmp_path)]) == [str(tmp_path / "b.txt"),
                                                 str(tmp_path / "run1" / "alone.jsonl"),
                                                 str(tmp_path / "run1" / "train.log")]


def test_load_logs_skips_a_bad_file_with_a_warning_and_fails_when_all_are_bad(tmp_path):
    good = write_log(tmp_path / "good.log", [namespace()] + current_epoch(0, 0.2))
    empty = tmp_path / "empty.log"
    empty.write_text("")
    warnings = []
    logs = load_logs([good, str(empty)], warnings.append)
    assert [log.path for log in logs] == [good]
    assert warnings == ["%s: empty file" % empty]
    with pytest.raises(UserError, match="none of the 2 log files"):
        load_logs([str(empty), str(tmp_path / "nope.log")], warnings.append)
    with pytest.raises(UserError, match="no log file given"):
        load_logs([], warnings.append)
