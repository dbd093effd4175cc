"""The warnings `report` and `plot` give about defective logs, each on a small crafted log:
duplicates, implausible validation, an unknown batch size, a restart inside the file."""
import json
import shutil

from gluon_tricks.figures import log_checks, report
from gluon_tricks.figures.logparse import parse_log
from conftest import current_epoch, horovod_epoch, namespace, project_log, write_log


def curve(top1s, top5_gap=0.2, **config):
    """A Namespace line and one current-format epoch per top-1 (top-5 = top-1 + gap, at most 1)."""
    lines = [namespace(**config)]
    for epoch, top1 in enumerate(top1s):
        lines += current_epoch(epoch, top1, min(1.0, top1 + top5_gap), batches=(49,))
    return lines


def warnings(*paths):
    return log_checks.warnings_of([parse_log(str(p)) for p in paths])


def rising(epochs, start=0.1, step=0.01):
    return [start + step * e for e in range(epochs)]


def test_a_sound_log_has_no_warning(tmp_path):
    assert warnings(write_log(tmp_path / "ok.log", curve(rising(30)))) == [[]]


def test_byte_identical_logs_name_each_other(tmp_path):
    first = write_log(tmp_path / "a.log", curve(rising(5)))
    second = str(tmp_path / "b.log")
    shutil.copy(first, second)
    assert warnings(first, second) == [
        ["byte-identical to %s (one run given twice)" % second],
        ["byte-identical to %s (one run given twice)" % first]]
    assert warnings(first) == [[]]  # alone, it is fine


def test_content_identical_logs_in_other_bytes(tmp_path):
    lines = curve(rising(5))
    plain = write_log(tmp_path / "plain.log", lines, prefix="")
    prefixed = write_log(tmp_path / "prefixed.log", lines, prefix="INFO:root:")
    found = warnings(plain, prefixed)
    assert found == [["the same records as %s (a copy of one run)" % prefixed],
                     ["the same records as %s (a copy of one run)" % plain]]
    other = write_log(tmp_path / "other.log", curve(rising(5, start=0.11)))
    assert warnings(plain, other) == [[], []]


def test_top1_equal_to_top5_across_epochs(tmp_path):
    path = write_log(tmp_path / "same.log", curve(rising(10), top5_gap=0.0))
    [found] = warnings(path)
    assert found == ["implausible validation: top-1 equals top-5 at 10 of 10 epochs"]
    # one epoch where they meet (both 100% on an easy set, say) is no warning
    lines = curve(rising(10)) + current_epoch(10, 0.5, 0.5)
    assert warnings(write_log(tmp_path / "once.log", lines)) == [[]]


def test_top1_above_95_percent_on_1000_classes(tmp_path):
    gluoncv = write_log(tmp_path / "high.log", curve([0.9, 0.93, 0.96], top5_gap=0.01))
    assert warnings(gluoncv) == [["implausible validation: top-1 96.00% at epoch 2 on 1000 "
                                  "classes"]]
    # this project's logs say their classes: 96% on the 10-class demo set is plausible
    ten = project_log(tmp_path / "demo.log", [[(0, 0.1), (1, 0.04)]])
    thousand = project_log(tmp_path / "imagenet.log", [[(0, 0.1), (1, 0.04)]])
    for path, classes in ((ten, 10), (thousand, 1000)):
        log = parse_log(path)
        log.config["classes"] = classes
        assert log_checks.validation_warnings(log) == (
            [] if classes == 10 else ["implausible validation: top-1 96.00% at epoch 1 on 1000 "
                                      "classes"])


def test_a_jump_the_schedule_does_not_explain(tmp_path):
    top1s = rising(30)
    top1s[20:] = [t + 0.25 for t in top1s[20:]]
    cosine = write_log(tmp_path / "cosine.log", curve(top1s, lr_mode="cosine", num_epochs=30))
    assert warnings(cosine) == [["implausible validation: top-1 jumps by +26.00 points from "
                                 "epoch 19 to 20, which the learning-rate schedule does not "
                                 "explain"]]
    # step decay at epoch 20 explains the rise, not a fall
    step = write_log(tmp_path / "step.log", curve(top1s, lr_mode="step", lr_decay_epoch="20,25",
                                                  num_epochs=30))
    assert warnings(step) == [[]]
    falling = rising(30)
    falling[20:] = [t - 0.2 for t in falling[20:]]
    step_fall = write_log(tmp_path / "fall.log", curve(falling, lr_mode="step",
                                                      lr_decay_epoch="20", num_epochs=30))
    assert "jumps by -19.00 points from epoch 19 to 20" in warnings(step_fall)[0][0]
    # early epochs rise fast by nature: no warning before warmup + 5 epochs
    early = rising(30)
    early[3:] = [t + 0.25 for t in early[3:]]
    assert warnings(write_log(tmp_path / "early.log", curve(early, num_epochs=30))) == [[]]


def test_a_horovod_log_has_no_batch_and_matches_no_batch_column(tmp_path):
    config = dict(model="resnet50_v1", warmup_epochs=5, batch_size=128)  # 128 per rank, 8 ranks
    lines = ["Namespace(%s)" % ", ".join("%s=%r" % item for item in config.items())]
    for epoch in range(2):
        lines += horovod_epoch(epoch, 0.3 + 0.1 * epoch)
    log = parse_log(write_log(tmp_path / "hvd.log", lines))
    assert log.format == "horovod"
    [found] = log_checks.warnings_of([log])
    assert found == ["batch size unknown (a Horovod log records neither its world size nor a "
                     "global batch): the paper's BS=256/1024 rows are not matched"]
    row = report.summarise(log, paper=True, warnings=found)
    assert row["batch"] is None and row["paper"] is None  # not Table 4 "+ warmup, BS=256"
    # a GluonCV Namespace without num_gpus cannot tell its batch either
    no_gpus = [line.replace("num_gpus=8, ", "") for line in curve(rising(3), model="resnet50_v1")]
    assert warnings(write_log(tmp_path / "nogpus.log", no_gpus)) == [[
        "batch size unknown (the log records neither global_batch_size nor batch_size and "
        "num_gpus): the paper's BS=256/1024 rows are not matched"]]


def test_a_run_restarted_inside_the_file(tmp_path):
    lines = curve(rising(4)) + [namespace(resume_epoch=2)]
    lines += current_epoch(2, 0.125) + current_epoch(3, 0.135) + current_epoch(4, 0.145)
    assert warnings(write_log(tmp_path / "resumed.log", lines)) == [[
        "restarted 1 time(s) inside the file (the later run from epoch 2); repeated epochs are "
        "the later run's"]]


def test_report_json_and_text_carry_the_warnings(cli, tmp_path):
    first = write_log(tmp_path / "a.log", curve(rising(5)))
    second = str(tmp_path / "b.log")
    shutil.copy(first, second)
    status, out, _ = cli("report", "--json", first, second)
    assert status == 0
    assert [row["warnings"] for row in json.loads(out)] == [
        ["byte-identical to %s (one run given twice)" % second],
        ["byte-identical to %s (one run given twice)" % first]]
    status, out, _ = cli("report", first, second)
    assert out.splitlines()[2].endswith("| 1 |")
    assert "- %s: byte-identical to %s (one run given twice)." % (first, second) in out


def test_plot_flags_defective_logs_on_stderr_and_in_the_legend(cli, tmp_path):
    from gluon_tricks.figures.plot_command import legend_labels
    first = write_log(tmp_path / "a.log", curve(rising(5)))
    second = str(tmp_path / "b.log")
    shutil.copy(first, second)
    status, out, err = cli("plot", "curves", first, second, "-o", tmp_path / "curves.png")
    assert status == 0 and (tmp_path / "curves.png").exists()
    assert err.splitlines() == [
        "gluon-tricks: warning: %s: byte-identical to %s (one run given twice)" % (first, second),
        "gluon-tricks: warning: %s: byte-identical to %s (one run given twice)" % (second, first)]
    status, out, err = cli("plot", "lr", "--log", first, second, "-o", tmp_path / "lr.png")
    assert status == 0 and len(err.splitlines()) == 2
    logs = [parse_log(first), parse_log(second)]
    assert legend_labels(logs, [[0], [1]], ["one", "two"]) == ["one [1 warning]",
                                                                "two [1 warning]"]
    assert legend_labels(logs, [[0, 1]], ["both"]) == ["both [2 warnings]"]
    sound = write_log(tmp_path / "c.log", curve(rising(6)))
    assert legend_labels([parse_log(sound)], [[0]], ["three"]) == ["three"]


def test_the_epoch_mixup_stops_explains_a_rise(tmp_path):
    """--mixup-off-epoch N trains the last N epochs on clean images: validation rises there (the
    CPU ablation's mixup rows did, by 19 points); a fall there, or a rise elsewhere, still warns."""
    top1s = rising(30)
    top1s[25:] = [t + 0.25 for t in top1s[25:]]
    mixup = dict(lr_mode="cosine", num_epochs=30, mixup=True, mixup_off_epoch=5)
    assert warnings(write_log(tmp_path / "off.log", curve(top1s, **mixup))) == [[]]
    other = dict(mixup, mixup_off_epoch=3)
    assert "from epoch 24 to 25" in warnings(write_log(tmp_path / "other.log",
                                                       curve(top1s, **other)))[0][0]
    falling = rising(30)
    falling[25:] = [t - 0.2 for t in falling[25:]]
    assert "jumps by -" in warnings(write_log(tmp_path / "fall.log", curve(falling, **mixup)))[0][0]
