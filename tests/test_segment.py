"""`segment train` and `segment eval` on a tiny ADE20K-layout set (8 training and 4 validation
scenes of the demo): GluonCV's segmentation log format read back by the project's transfer-log
parser, `eval` giving the logged pixAcc and mIoU of a saved FCN, exact resume, and bad input
refused in one line before anything is written."""
import os
import re
import signal
import subprocess
import sys

import mxnet as mx
import pytest

from gluon_tricks.data import demo_scenes
from gluon_tricks.figures.transfer_logs import curve_series, parse_transfer_log, report_rows

from conftest import HOROVODRUN, assert_one_line_error, kill_9_once

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SMALL = ["--backbone", "resnet18_v1d", "--num-class", "10", "--aux", "--base-size", "40",
         "--crop-size", "32", "--test-batch-size", "4", "--workers", "0"]


@pytest.fixture(scope="module")
def tiny_ade(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_ade")
    demo_scenes.write_segmentation_set(str(root))
    for split, keep in (("training", 8), ("validation", 4)):
        for kind in ("images", "annotations"):
            for path in sorted((root / "ADEChallengeData2016" / kind / split).iterdir())[keep:]:
                path.unlink()
    return root


@pytest.fixture(scope="module")
def backbone_file(tmp_path_factory):
    """A resnet18_v1d classifier's weights (random, 10 classes), as `train` saves them."""
    from gluon_tricks.models import get_model
    net = get_model("resnet18_v1d", classes=10)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    path = str(tmp_path_factory.mktemp("backbone") / "resnet18_v1d.params")
    net.save_parameters(path)
    return path


@pytest.fixture(scope="module")
def trained(tiny_ade, backbone_file, tmp_path_factory):
    """One epoch of `segment train` from the backbone file: {status, save_dir, log}."""
    from gluon_tricks.cli import main
    out = tmp_path_factory.mktemp("run") / "fcn"
    status = main(["segment", "train", *SMALL, "--dataset-root", str(tiny_ade),
                   "--backbone-params", backbone_file, "--epochs", "1", "--batch-size", "4",
                   "--lr", "0.01", "--log-interval", "1", "--syncbn", "--save-dir", str(out)])
    return {"status": status, "save_dir": out, "log": str(out / "train.log")}


def _logged(trained):
    """(pixAcc, mIoU) as the log's last validation line writes them."""
    return re.findall(r"validation pixAcc: (\S+), mIoU: (\S+)$",
                      open(trained["log"]).read(), re.MULTILINE)[-1]


def test_the_training_log_is_read_as_gluoncvs_segmentation_log(trained):
    assert trained["status"] == 0
    log = parse_transfer_log(trained["log"])
    assert log.task == "segmentation" and len(log.runs) == 1
    run = log.runs[0]
    assert run.config["backbone"] == "resnet18_v1d" and run.config["model"] == "fcn"
    assert run.config["lr"] == 0.01 and run.config["syncbn"] is True
    (epoch,) = run.validated()
    assert epoch.epoch == 0 and set(epoch.metrics) == {"pixAcc", "mIoU"}
    assert 0 < epoch.losses["training loss"] < 10
    assert [float(v) for v in _logged(trained)] == [epoch.metrics["pixAcc"],
                                                    epoch.metrics["mIoU"]]
    assert (trained["save_dir"] / ("epoch_0000_mIoU_%2.4f.params"
                                   % epoch.metrics["mIoU"])).is_file()
    (row,) = report_rows([trained["log"]], paper=True)
    assert row["final"] == {"pixAcc": round(100 * epoch.metrics["pixAcc"], 2),
                            "mIoU": round(100 * epoch.metrics["mIoU"], 2)}
    assert "resnet18_v1d is not one of Table 9" in row["paper"]["why"]
    (series,) = curve_series(log)
    assert series[0] == "FCN resnet18_v1d on ade20k" and series[1] == [1]


def test_report_and_plot_curves_read_the_log_from_its_folder(trained, tmp_path, cli):
    status, out, err = cli("report", trained["save_dir"])
    assert status == 0, err
    assert "| segmentation | resnet18_v1d | ade20k | 1 | 1 |" in out
    status, out, err = cli("plot", "curves", trained["log"], "-o", tmp_path / "curves.png")
    assert status == 0, err
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_report_places_a_log_naming_its_backbone_recipe_beside_that_row(tmp_path):
    """A run of scripts/table9_fcn_cosine.sh (its Namespace and validation lines as segment
    train writes them): `report --paper` puts it beside Table 9's "+ cosine" row."""
    from gluon_tricks.paper import TABLE9_ROWS
    from gluon_tricks.segmentation.loop import validation_message
    from gluon_tricks.training.train_log import TrainLog
    log = TrainLog(str(tmp_path / "train.log"), stream=open(os.devnull, "w"))
    log.namespace({"model": "fcn", "backbone": "resnet50_v1d", "dataset": "ade20k",
                   "backbone_recipe": "table6_resnet50_v1d_cosine", "epochs": 1})
    log.info("Starting Epoch: 0")
    log.info(validation_message(0, 0.791, 0.3875))
    log.close()
    (row,) = report_rows([str(tmp_path / "train.log")], paper=True)
    (cosine,) = [r for r in TABLE9_ROWS if r.label == "+ cosine"]
    assert row["paper"]["row"] == "+ cosine"
    assert row["paper"]["diff"] == {"pixAcc": round(79.1 - cosine.metric("pixAcc"), 2),
                                    "mIoU": round(38.75 - cosine.metric("mIoU"), 2)}


def test_eval_of_the_saved_fcn_gives_the_logged_metrics(trained, tiny_ade, cli):
    pix_acc, miou = _logged(trained)
    weights = trained["save_dir"] / ("epoch_0000_mIoU_%2.4f.params" % float(miou))
    status, out, err = cli("segment", "eval", *SMALL, "--dataset-root", tiny_ade,
                           "--params", weights)
    assert status == 0, err
    assert out.splitlines() == ["pixAcc=" + pix_acc, "mIoU=" + miou]
    # whole images at two scales, flipped: other numbers, still fractions
    status, out, err = cli("segment", "eval", *SMALL, "--dataset-root", tiny_ade,
                           "--params", weights, "--mode", "testval", "--scales", "0.75,1.25")
    assert status == 0, err
    values = dict(line.split("=") for line in out.splitlines())
    assert set(values) == {"pixAcc", "mIoU"} and 0 < float(values["pixAcc"]) <= 1


RESUMABLE = ["segment", "train", *SMALL, "--batch-size", "3", "--lr", "0.01", "--epochs", "2"]
FINAL = "fcn-0002.params"  # the checkpoint after the last of RESUMABLE's epochs


@pytest.fixture(scope="module")
def reference(tiny_ade, tmp_path_factory):
    """Two epochs of RESUMABLE in one uninterrupted run (8 images in batches of 3: 2 batches,
    then 3 with the 2 images epoch 0 left over): its save folder."""
    from gluon_tricks.cli import main
    out = tmp_path_factory.mktemp("reference")
    assert main([*RESUMABLE, "--dataset-root", str(tiny_ade), "--save-dir", str(out)]) == 0
    return out


def test_a_resumed_run_ends_bitwise_equal_to_an_uninterrupted_one(tiny_ade, reference, tmp_path,
                                                                  cli):
    """The same command in a folder holding only the uninterrupted run's checkpoint after epoch
    1 (as a run stopped there leaves it) continues from it (weights, momentum, the poly
    schedule's step, the rolled-over images, dropout) to the same weights, to the bit. A run
    with other flags (another lr, or other --epochs, which stretch the poly decay) is refused
    by the checkpoint it would continue."""
    import shutil
    flags = [*RESUMABLE, "--dataset-root", tiny_ade]
    parts = tmp_path / "parts"
    parts.mkdir()
    for ext in ("json", "params", "states"):
        shutil.copy(reference / ("fcn-0001." + ext), parts)
    status, out, err = cli(*flags, "--save-dir", parts)
    assert status == 0, err
    assert (reference / FINAL).read_bytes() == (parts / FINAL).read_bytes()
    assert "Starting Epoch: 1" in out
    log = parse_transfer_log(str(parts / "train.log"))
    assert [[e.epoch for e in run.validated()] for run in log.runs] == [[1]]
    assert log.runs[0].validated()[0].metrics == parse_transfer_log(
        str(reference / "train.log")).runs[0].validated()[1].metrics
    (parts / "fcn-0002.json").unlink()
    assert_one_line_error(*cli(*flags, "--lr", "0.02", "--save-dir", parts),
                          "written by a different run", "lr 0.01 -> 0.02", "--save-dir")
    assert_one_line_error(*cli(*flags, "--epochs", "3", "--save-dir", parts),
                          "written by a different run", "epochs 2 -> 3")


def test_a_run_on_two_devices_resumes_bitwise_from_its_epoch_checkpoint(tiny_ade, tmp_path,
                                                                         cli, monkeypatch):
    """One process on 2 devices (CPU contexts standing in for GPUs), 4 images a batch: started
    again from its checkpoint after epoch 1 (weights, the kvstore's momentum, the schedule's
    step), it ends with the uninterrupted run's weights, to the bit."""
    import shutil
    monkeypatch.setenv("GLUON_TRICKS_DEVICES", "cpu(0),cpu(1)")
    flags = ["segment", "train", *SMALL, "--dataset-root", tiny_ade, "--ngpus", "2",
             "--batch-size", "4", "--lr", "0.01", "--epochs", "2"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    status, _, err = cli(*flags, "--save-dir", whole)
    assert status == 0, err
    parts.mkdir()
    for ext in ("json", "params", "states"):
        shutil.copy(whole / ("fcn-0001." + ext), parts)
    status, out, err = cli(*flags, "--save-dir", parts)
    assert status == 0 and "Starting Epoch: 1" in out, err
    assert (whole / FINAL).read_bytes() == (parts / FINAL).read_bytes()


def test_a_stop_signal_mid_epoch_checkpoints_and_the_rerun_ends_equal(tiny_ade, reference,
                                                                      tmp_path, cli,
                                                                      monkeypatch):
    """SIGTERM during the 4th step (epoch 1, batch 1): the run checkpoints after that step and
    exits 75 with one line; the same command continues from batch 2 of epoch 1 (its rolled-over
    images and the batches already done skipped) to the uninterrupted run's weights."""
    from gluon_tricks import streams
    from gluon_tricks.training.preemption import PREEMPTED_EXIT_CODE
    real, calls = streams.transfer_step_seed, []

    def with_signal(*args):
        calls.append(args)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args)
    monkeypatch.setattr(streams, "transfer_step_seed", with_signal)
    flags = [*RESUMABLE, "--dataset-root", tiny_ade, "--save-dir", tmp_path]
    status, out, err = cli(*flags)
    assert status == PREEMPTED_EXIT_CODE and err.count("\n") == 1, err
    assert "stopped by SIGTERM at epoch 1 after batch 2" in err
    assert (tmp_path / "fcn-0001-batch000002.json").is_file()
    monkeypatch.undo()
    status, out, err = cli(*flags)
    assert status == 0, err
    assert "Starting Epoch: 1 (batch 2)" in out
    assert (reference / FINAL).read_bytes() == (tmp_path / FINAL).read_bytes()


def test_kill_9_mid_epoch_with_data_workers_then_the_same_command_ends_bitwise_equal(
        tiny_ade, reference, tmp_path):
    """A real `segment train` with 2 loader processes and a checkpoint after every step, killed
    with SIGKILL in epoch 1 (whatever it was writing), then run again: the weights equal the
    uninterrupted run's (with no loader processes) to the bit. Each image's crop, scale, flip
    and blur are keyed by (seed, epoch, image), whichever process decodes it. Fresh processes:
    forking loader workers from this many-threaded test process hung the full suite once."""
    command = [sys.executable, "-m", "gluon_tricks", *map(str, RESUMABLE), "--dataset-root",
               str(tiny_ade), "--save-dir", str(tmp_path), "--workers", "2",
               "--save-interval-minutes", "1e-9", "--keep-checkpoints", "1"]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    kill_9_once(command, env, (tmp_path / "fcn-0001-batch000001.json").exists,
                "checkpoint at epoch 1, batch 1")
    assert not (tmp_path / FINAL).exists()
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert re.search(r"Starting Epoch: 1 \(batch [12]\)", rerun.stdout), rerun.stdout
    assert (reference / FINAL).read_bytes() == (tmp_path / FINAL).read_bytes()


def test_a_second_run_in_the_same_save_folder_is_refused(tiny_ade, tmp_path, cli):
    from gluon_tricks.training.savedir_lock import RunLock
    held = RunLock(str(tmp_path))
    held.acquire()
    try:
        assert_one_line_error(*cli(*RESUMABLE, "--dataset-root", tiny_ade, "--save-dir",
                                   tmp_path), "in use by another run", "pid %d" % os.getpid())
    finally:
        held.release()
    assert not (tmp_path / "train.log").exists()


def _mask_of_another_size(root):
    from PIL import Image
    mask = sorted((root / "ADEChallengeData2016/annotations/training").iterdir())[0]
    Image.new("L", (5, 5)).save(mask)
    return mask.name


@pytest.mark.parametrize("flags,fragment", [
    (["--dataset-root", "/nonexistent/ade"], "no folder /nonexistent/ade/ADEChallengeData2016"),
    (["--backbone-params", "/nonexistent.params"], "cannot read the weights file"),
    (["--backbone", "resnet50"], "one of our ResNets"),
    (["--ngpus", "2"], "--ngpus 2: this machine/MXNet build sees 0 GPU(s)"),
    (["--warmup-epochs", "1"], "--warmup-epochs 1 leaves no epoch"),
    (["--num-class", "3"], "labels out of range"),
    (["--batch-size", "9"], "fewer than --batch-size 9"),
    (["--backbone-recipe", "table6_resnet50_v1d_cosine"], "trains resnet50_v1d, not --backbone"),
    (["--backbone-recipe", "table6_resnet18_v1d"], "not a recipe of scripts/"),
])
def test_bad_input_is_one_line_and_writes_nothing(flags, fragment, tiny_ade, tmp_path, cli):
    args = ["segment", "train", *SMALL, "--dataset-root", tiny_ade, "--epochs", "1",
            "--batch-size", "4", "--save-dir", tmp_path / "out", *flags]
    assert_one_line_error(*cli(*args), fragment)
    assert not (tmp_path / "out").exists()


def test_a_mask_of_another_size_is_refused_before_training(tiny_ade, tmp_path, cli):
    import shutil
    shutil.copytree(tiny_ade / "ADEChallengeData2016", tmp_path / "ade/ADEChallengeData2016")
    name = _mask_of_another_size(tmp_path / "ade")
    args = ["segment", "train", *SMALL, "--dataset-root", tmp_path / "ade", "--epochs", "1",
            "--batch-size", "4", "--save-dir", tmp_path / "out"]
    assert_one_line_error(*cli(*args), name, "is 5x5 but its image")
    assert not (tmp_path / "out").exists()


def test_batches_that_do_not_split_over_the_devices_and_syncbn_on_several_are_refused(
        monkeypatch, tiny_ade, tmp_path, cli):
    monkeypatch.setenv("GLUON_TRICKS_DEVICES", "cpu(0),cpu(1)")
    args = ["segment", "train", *SMALL, "--dataset-root", tiny_ade, "--epochs", "1",
            "--ngpus", "2", "--save-dir", tmp_path / "out"]
    assert_one_line_error(*cli(*args, "--batch-size", "3"), "--batch-size 3 does not split "
                          "over 2 devices")
    assert_one_line_error(*cli(*args, "--batch-size", "4", "--syncbn"), "--syncbn over 2 "
                          "devices", "not built")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not os.path.exists(HOROVODRUN), reason="no horovodrun")
def test_two_horovod_ranks_train_bitwise_what_one_process_on_two_devices_trains(
        tiny_ade, tmp_path, monkeypatch, cli):
    """horovodrun -np 2 with 2 images per rank, and one process with 2 devices (CPU contexts
    standing in for GPUs) and 4 images a batch: the same global batches, each image on the
    device of the same index, dropout keyed by that index, the validation images shared the
    same way: the same losses, pixAcc and mIoU and weights to the bit after 2 epochs."""
    flags = ["segment", "train", *SMALL, "--dataset-root", str(tiny_ade), "--lr", "0.01",
             "--epochs", "2", "--log-interval", "1"]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    ranks = subprocess.run([HOROVODRUN, "-np", "2", "-H", "localhost:2", "--gloo", "sh", "-c",
                            "exec " + " ".join([sys.executable, "-m", "gluon_tricks", *flags,
                                                "--ngpus", "0", "--batch-size", "2",
                                                "--save-dir", str(tmp_path / "ranks")])],
                           env=env, capture_output=True, text=True, timeout=600)
    assert ranks.returncode == 0, ranks.stdout[-2000:] + ranks.stderr[-2000:]
    monkeypatch.setenv("GLUON_TRICKS_DEVICES", "cpu(0),cpu(1)")
    status, out, err = cli(*flags, "--ngpus", "2", "--batch-size", "4",
                           "--save-dir", tmp_path / "devices")
    assert status == 0, err
    logs = [parse_transfer_log(str(tmp_path / name / "train.log"))
            for name in ("ranks", "devices")]
    paths = [[(e.epoch, e.metrics, e.losses) for e in log.runs[0].validated()] for log in logs]
    assert len(paths[0]) == 2 and paths[0] == paths[1]
    assert [log.runs[0].config["global_batch_size"] for log in logs] == [4, 4]
    assert (tmp_path / "ranks" / "fcn-0002.params").read_bytes() == (
        tmp_path / "devices" / "fcn-0002.params").read_bytes()
