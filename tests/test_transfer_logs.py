"""GluonCV's detection and segmentation logs (logs/gluoncv/detection|segmentation/, the paper's
Tables 8-9): byte-identical copies, fetch_gluoncv_logs.sh --task, the parser read exactly against
the raw lines, `report --paper` beside the paper's row and `plot curves`."""
import hashlib
import json
import os
import re
import subprocess

import pytest

from gluon_tricks.errors import UserError
from gluon_tricks.figures import transfer_logs
from gluon_tricks.figures.transfer_logs import parse_transfer_log, split_lines

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGS = os.path.join(REPO, "logs", "gluoncv")
DETECTION = os.path.join(LOGS, "detection")
SEGMENTATION = os.path.join(LOGS, "segmentation")
FASTER_RCNN = os.path.join(DETECTION, "faster_rcnn_resnet50_v1b_voc_train.log")
FCN_VOC = os.path.join(SEGMENTATION, "fcn_resnet50_voc.log")
SCRIPT = os.path.join(REPO, "scripts", "fetch_gluoncv_logs.sh")
COMMIT = "0818ee5787b3824f1bca2f4bd98ef6abe689f7db"
VOC_CLASSES = ("aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse "
               "motorbike person pottedplant sheep sofa train tvmonitor").split()


def raw_lines(path):
    with open(path, "rb") as f:
        return re.split(r"\r\n|\r|\n", f.read().decode("utf-8"))


def listing(folder, name):
    with open(os.path.join(folder, name)) as f:
        return {parts[1]: parts[0] for parts in (line.split() for line in f) if parts}


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# -- the copies and their provenance

@pytest.mark.parametrize("folder, kept", [
    (DETECTION, ["faster_rcnn_resnet50_v1b_voc.sh", "faster_rcnn_resnet50_v1b_voc_train.log"]),
    (SEGMENTATION, ["fcn_resnet50_ade.sh", "fcn_resnet50_voc.log", "fcn_resnet50_voc.sh",
                    "psp_resnet50_ade.sh"]),
])
def test_copies_are_the_upstream_files(folder, kept):
    names = sorted(f for f in os.listdir(folder) if f.endswith((".log", ".sh")))
    assert names == kept
    sums, blobs = listing(folder, "SHA256SUMS"), listing(folder, "GIT_BLOBS")
    assert set(sums) <= set(blobs)  # SHA-256 where the content was available; blob ids of all
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        assert hashlib.sha256(data).hexdigest() == sums[name], name
        assert git_blob_id(data) == blobs[name], name
    with open(os.path.join(folder, "README.md")) as f:
        readme = f.read()
    for fact in ("dmlc/web-data", "gluoncv/logs/%s/" % os.path.basename(folder), COMMIT,
                 "Apache License 2.0"):
        assert fact in readme
    for name in names:
        assert "`%s`" % name in readme, name


def test_the_ade20k_fcn_log_is_pinned_by_its_blob_id():
    blobs = listing(SEGMENTATION, "GIT_BLOBS")
    assert blobs["fcn_resnet50_ade.log"] == "1eb5f91be4b67b2f37fb80d0e38b36ae6d2bdb3b"
    assert "fcn_resnet50_ade.log" not in listing(SEGMENTATION, "SHA256SUMS")


# -- fetch_gluoncv_logs.sh --task (offline: DRY_RUN and file:// base URLs)

def fetch(tmp_path, *args, **env):
    merged = {k: v for k, v in os.environ.items() if k not in ("DRY_RUN", "BASE_URL", "OUT_DIR")}
    merged.update(OUT_DIR=str(tmp_path / "out"), **{k: str(v) for k, v in env.items()})
    return subprocess.run(["bash", SCRIPT, *args], env=merged, capture_output=True, text=True,
                          timeout=60)


def test_fetch_dry_run_per_task(tmp_path):
    base = "https://raw.githubusercontent.com/dmlc/web-data/%s/gluoncv/logs/" % COMMIT
    result = fetch(tmp_path, "--task", "detection", DRY_RUN=1)
    assert result.returncode == 0 and result.stderr == ""
    assert [line.split() for line in result.stdout.splitlines()] == [
        [base + "detection/" + name, str(tmp_path / "out" / name)]
        for name in ("faster_rcnn_resnet50_v1b_voc.sh", "faster_rcnn_resnet50_v1b_voc_train.log")]
    ade = fetch(tmp_path, "--task", "segmentation", "fcn_resnet50_ade", "psp_resnet50_ade.log",
                DRY_RUN=1)
    assert [line.split()[0] for line in ade.stdout.splitlines()] == [
        base + "segmentation/" + name for name in
        ("fcn_resnet50_ade.log", "fcn_resnet50_ade.sh", "psp_resnet50_ade.log")]


def test_fetch_downloads_and_verifies_by_sha256(tmp_path):
    result = fetch(tmp_path, "--task", "detection", "faster_rcnn_resnet50_v1b_voc",
                   BASE_URL="file://" + DETECTION)
    assert result.returncode == 0, result.stderr
    for name in os.listdir(tmp_path / "out"):
        with open(os.path.join(DETECTION, name), "rb") as f:
            assert (tmp_path / "out" / name).read_bytes() == f.read()
    assert len(os.listdir(tmp_path / "out")) == 2


def test_fetch_verifies_a_file_without_sha256_by_its_git_blob_id(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with open(FCN_VOC, "rb") as f:
        data = f.read()
    # the ADE20K log is not stored here: another file under its name must be refused (the blob
    # id printed is the one git computes, so a true copy would pass)
    (mirror / "fcn_resnet50_ade.log").write_bytes(data)
    refused = fetch(tmp_path, "--task", "segmentation", "fcn_resnet50_ade.log",
                    BASE_URL="file://%s" % mirror)
    assert refused.returncode != 0 and len(refused.stderr.splitlines()) == 1
    assert "git blob id %s is not the recorded 1eb5f91b" % git_blob_id(data) in refused.stderr
    assert os.listdir(tmp_path / "out") == []


def test_fetch_refuses_a_changed_detection_log(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with open(FASTER_RCNN, "rb") as f:
        data = bytearray(f.read())
    data[100] ^= 1
    (mirror / "faster_rcnn_resnet50_v1b_voc_train.log").write_bytes(bytes(data))
    result = fetch(tmp_path, "--task", "detection", "faster_rcnn_resnet50_v1b_voc_train.log",
                   BASE_URL="file://%s" % mirror)
    assert result.returncode != 0 and "SHA-256" in result.stderr
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("args, message", [
    (["--task", "pose"], "--task must be classification, detection or segmentation"),
    (["--task"], "--task needs a value"),
    (["--task", "detection", "resnet50_v1d"], "is not in gluoncv/logs/detection"),
])
def test_fetch_bad_task_or_name_is_one_line(tmp_path, args, message):
    result = fetch(tmp_path, *args, DRY_RUN=1)
    assert result.returncode != 0 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr


# -- the parser, exactly against the raw lines

def test_faster_rcnn_every_epoch_equals_its_raw_lines():
    log = parse_transfer_log(FASTER_RCNN)
    lines = raw_lines(FASTER_RCNN)
    assert log.task == "detection" and len(log.runs) == 1 and not log.truncated
    run = log.runs[0]
    assert run.config["network"] == "resnet50_v1b" and run.config["dataset"] == "voc"
    assert run.command.endswith("python train_faster_rcnn.py --gpus 0,1,2,3 --dataset voc "
                                "--network resnet50_v1b")
    records = run.validated()
    raw_maps = [line for line in lines if line.startswith("mAP=")]
    assert [r.epoch for r in records] == list(range(20)) and len(raw_maps) == 20
    for record, raw in zip(records, raw_maps):
        assert lines[record.line] == raw == "mAP=" + repr(record.metrics["mAP"])
        assert lines[record.line - 21] == "[Epoch %d] Validation: " % record.epoch
        for offset, name in enumerate(VOC_CLASSES):  # the 20 class lines between them
            assert lines[record.line - 20 + offset] == "%s=%r" % (name, record.metrics[name])
        training = [line for line in lines if line.startswith("[Epoch %d] Training cost: "
                                                              % record.epoch)]
        assert len(training) == 1
        assert training[0].endswith(",".join("%s=%.3f" % item for item in record.losses.items()))
    assert records[-1].metrics["mAP"] == 0.7765967923775811
    assert max(r.metrics["mAP"] for r in records) == 0.7830827040656632


def test_fcn_every_epoch_equals_its_last_complete_bar():
    log = parse_transfer_log(FCN_VOC)
    lines = raw_lines(FCN_VOC)
    assert log.task == "segmentation" and len(log.runs) == 2
    # the two commands of the .sh, one per run: the augmented set, then fine-tuning on VOC
    assert [run.config["dataset"] for run in log.runs] == ["pascal_aug", "pascal_voc"]
    assert [run.config["backbone"] for run in log.runs] == ["resnet50", "resnet50"]
    bar = re.compile(r"Epoch (\d+), validation pixAcc: ([\d.]+), mIoU: ([\d.]+): 100%\|.*\| "
                     r"(\d+)/(\d+) ")
    for run in log.runs:
        records = run.validated()
        assert [r.epoch for r in records] == list(range(50))
        for record in records:
            found = bar.match(lines[record.line])
            assert found and found.group(4) == found.group(5), lines[record.line]
            assert (int(found.group(1)), found.group(2), found.group(3)) == (
                record.epoch, "%.3f" % record.metrics["pixAcc"], "%.3f" % record.metrics["mIoU"])
    # epoch 0 of run 1 has an unfinished bar (99%) before its last one: the last one counts
    first = log.runs[0].epochs[0]
    assert first.metrics == {"pixAcc": 0.841, "mIoU": 0.488}
    assert log.runs[0].validated()[-1].metrics == {"pixAcc": 0.899, "mIoU": 0.679}
    assert log.runs[1].validated()[-1].metrics == {"pixAcc": 0.852, "mIoU": 0.634}
    assert log.runs[1].evaluation.metrics == {"pixAcc": 0.852, "mIoU": 0.634}
    assert log.runs[0].epochs[49].losses == {"training loss": 0.128}
    validation_lines = sum("validation pixAcc" in line for line in lines)
    assert validation_lines == 104  # 2 x 50 epochs + 2 unfinished bars + 2 evaluations


def test_carriage_return_bars_and_the_logger_format():
    text = ("Namespace(model='fcn', backbone='resnet50_v1d', dataset='ade20k')\n"
            "Epoch 0, validation pixAcc: 0.500, mIoU: 0.100:   0%|  | 0/9 [00:01<?]\r"
            "Epoch 0, validation pixAcc: 0.700, mIoU: 0.300: 100%|##| 9/9 [00:09<00:00]\n"
            "Epoch 1 validation pixAcc: 0.750, mIoU: 0.350\n"
            "Epoch 2 validation pixAcc: 0.760, mIoU: 0.36")  # cut off: dropped
    lines, truncated = split_lines(text)
    assert truncated and len(lines) == 4
    runs = transfer_logs.parse_segmentation(lines)
    assert len(runs) == 1 and runs[0].config["dataset"] == "ade20k"
    assert {e: r.metrics["mIoU"] for e, r in runs[0].epochs.items()} == {0: 0.3, 1: 0.35}


def test_a_detection_restart_starts_a_new_run():
    lines = ["Namespace(network='resnet50_v1d', dataset='voc')", "Start training from [Epoch 0]",
             "[Epoch 0] Validation: ", "cat=0.5", "mAP=0.5",
             "Start training from [Epoch 1]", "[Epoch 1] Validation: ", "cat=0.7", "mAP=0.6",
             "[Epoch 2] Validation: ", "cat=0.8"]  # no mAP line: no record for epoch 2
    runs = transfer_logs.parse_detection(lines)
    assert [sorted(r.epochs) for r in runs] == [[0], [1]]
    assert runs[1].config["network"] == "resnet50_v1d"
    assert runs[1].epochs[1].metrics == {"cat": 0.7, "mAP": 0.6}


def test_not_a_transfer_log_is_one_clear_error(tmp_path):
    other = tmp_path / "x.log"
    other.write_text("[Epoch 0] validation: err-top1=0.5 err-top5=0.2\n")
    with pytest.raises(UserError, match="not a detection or segmentation log"):
        parse_transfer_log(str(other))
    with pytest.raises(UserError, match="no such file"):
        parse_transfer_log(str(tmp_path / "missing.log"))


# -- report and plot curves

def test_report_places_the_detection_log_beside_table8_b_standard(cli):
    status, out, _ = cli("report", DETECTION, SEGMENTATION, "--paper", "--json")
    assert status == 0
    rows = {os.path.basename(row["log"]): row for row in json.loads(out)}
    detection = rows["faster_rcnn_resnet50_v1b_voc_train.log"]
    assert detection["final"] == {"mAP": 77.66} and (detection["best"], detection["best_epoch"]) \
        == (78.31, 16)
    from gluon_tricks.paper import TABLE8_ROWS
    b_standard = [row for row in TABLE8_ROWS if row.backbone == "resnet50_v1b"]
    assert len(b_standard) == 1 and detection["paper"]["row"] == b_standard[0].label
    assert detection["paper"]["diff"]["mAP"] == pytest.approx(
        77.66 - b_standard[0].metric("mAP"), abs=0.005)
    segmentation = rows["fcn_resnet50_voc.log"]
    assert segmentation["final"] == {"pixAcc": 85.2, "mIoU": 63.4}
    assert segmentation["paper"]["row"] is None and "ADE20K" in segmentation["paper"]["why"]


def test_report_markdown_and_classification_logs_left_out_with_a_warning(cli, tmp_path):
    import shutil
    folder = tmp_path / "logs"
    (folder / "detection").mkdir(parents=True)
    shutil.copy(os.path.join(LOGS, "resnet18_v1.log"), folder)
    shutil.copy(FASTER_RCNN, folder / "detection")
    alone = cli("report", os.path.join(LOGS, "resnet18_v1.log"), "--paper")
    status, out, err = cli("report", folder, "--paper")
    assert status == 0 and alone[0] == 0
    # the classification table is the one of that log alone
    assert out.replace(str(folder), LOGS) == alone[1]
    assert err.count("warning: 1 detection/segmentation log left out") == 1
    status, out, _ = cli("report", FASTER_RCNN, "--paper")
    assert status == 0 and "| Table 8: B-standard |" in out and "mAP 77.66" in out


def test_plot_curves_draws_map_and_miou(cli, tmp_path):
    status, out, _ = cli("plot", "curves", FASTER_RCNN, "-o", tmp_path / "det.png")
    assert status == 0 and (tmp_path / "det.png").stat().st_size > 0
    series = transfer_logs.curve_series(parse_transfer_log(FCN_VOC))
    assert [name for name, _, _ in series] == ["FCN resnet50 on pascal_aug, run 1 of 2",
                                               "FCN resnet50 on pascal_voc, run 2 of 2"]
    assert series[1][1] == list(range(1, 51)) and series[1][2][-1] == pytest.approx(63.4)
    status, _, err = cli("plot", "curves", FASTER_RCNN, FCN_VOC, "-o", tmp_path / "both.png")
    assert status != 0 and "not both" in err and len(err.strip().splitlines()) == 1


def test_classification_readers_skip_transfer_logs(tmp_path):
    import shutil
    from gluon_tricks.figures import logparse
    shutil.copy(os.path.join(LOGS, "resnet18_v1.log"), tmp_path)
    shutil.copy(FCN_VOC, tmp_path)
    logs = logparse.load_logs([str(tmp_path)], warn=pytest.fail)
    assert [os.path.basename(log.path) for log in logs] == ["resnet18_v1.log"]
    with pytest.raises(UserError, match="a detection log, not a classification training log"):
        logparse.load_logs([FASTER_RCNN], warn=pytest.fail)


@pytest.mark.parametrize("backbone, row, why", [
    ("resnet50_v1b", "B-standard", None),
    ("resnet50_v1d", None, "rows of Table 9 have backbone resnet50_v1d"),
    ("resnet50", None, "backbone resnet50 is not one of Table 9"),  # GluonCV's default name
])
def test_a_segmentation_log_on_ade20k_finds_its_table9_row(tmp_path, backbone, row, why):
    path = tmp_path / "fcn.log"
    path.write_text("Namespace(model='fcn', backbone='%s', dataset='ade20k')\n"
                    "Epoch 0 validation pixAcc: 0.781, mIoU: 0.371\n" % backbone)
    entry = transfer_logs.summarise(parse_transfer_log(str(path)), paper=True)["paper"]
    assert entry["table"] == "Table 9" and entry["row"] == row
    if row:
        from gluon_tricks.paper import TABLE9_ROWS
        paper_row = [r for r in TABLE9_ROWS if r.label == row][0]
        assert entry["diff"] == {"pixAcc": round(78.1 - paper_row.metric("pixAcc"), 2),
                                 "mIoU": round(37.1 - paper_row.metric("mIoU"), 2)}
    else:
        assert why in entry["why"] and "diff" not in entry


def test_an_unfinished_or_unvalidated_run_is_warned_about(tmp_path):
    path = tmp_path / "det.log"
    path.write_text("Namespace(network='resnet50_v1b', dataset='voc', epochs=20)\n"
                    "[Epoch 0] Validation: \ncat=0.5\nmAP=0.5\n")
    assert transfer_logs.summarise(parse_transfer_log(str(path)))["warnings"] == [
        "last validated epoch 1 of 20 configured"]
    path.write_text("Namespace(network='resnet50_v1b', dataset='coco', epochs=1)\n"
                    "[Epoch 0] Validation: \n~~~~ MeanAP @ IoU=[0.50,0.95] ~~~~\n")
    assert transfer_logs.summarise(parse_transfer_log(str(path)))["warnings"] == [
        "no validated epoch"]
    assert transfer_logs.summarise(parse_transfer_log(FASTER_RCNN))["warnings"] == []


@pytest.mark.parametrize("recipe, row, why", [
    ("table6_resnet50_v1d_cosine", "+ cosine", None),
    ("table6_resnet50_v1d_distill_mixup", "+ distill w/ mixup", None),
    (None, None, "rows of Table 8 have backbone resnet50_v1d"),  # the architecture alone
    ("table2_resnet50_baseline", None, "trains the backbone of no row of Table 8"),
])
def test_a_detection_log_naming_its_backbone_recipe_finds_that_table8_row(tmp_path, recipe, row,
                                                                          why):
    """`detect train --backbone-recipe` writes backbone_recipe= into the Namespace: the rows of
    Table 8 sharing resnet50_v1d are told apart by it."""
    path = tmp_path / "faster_rcnn_resnet50_v1d_voc_train.log"
    path.write_text("Namespace(network='resnet50_v1d', dataset='voc', epochs=1%s)\n"
                    "[Epoch 0] Validation: \ncat=0.79\nmAP=0.79\n"
                    % (", backbone_recipe=%r" % recipe if recipe else ""))
    entry = transfer_logs.summarise(parse_transfer_log(str(path)), paper=True)["paper"]
    assert entry["table"] == "Table 8" and entry["row"] == row
    if row:
        from gluon_tricks.paper import TABLE8_ROWS
        paper_row = [r for r in TABLE8_ROWS if r.label == row][0]
        assert paper_row.recipe == recipe and recipe in entry["match"]
        assert entry["diff"] == {"mAP": round(79.0 - paper_row.metric("mAP"), 2)}
    else:
        assert why in entry["why"] and "diff" not in entry
