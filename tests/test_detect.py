"""`detect train` and `detect eval` on a tiny VOC-layout set (4 training and 3 test images of the
demo scenes): GluonCV's log format read back by the project's transfer-log parser, `eval` giving
the logged mAP of a saved detector, the backbone's weights taken from a classifier checkpoint and
trained where GluonCV trains them, and bad input refused before anything is written."""
import glob
import json
import os
import re
import signal
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.data import demo_scenes
from gluon_tricks.data.demo_data import CLASSES
from gluon_tricks.detection import loop, model
from gluon_tricks.figures.transfer_logs import parse_transfer_log, report_rows

from conftest import HOROVODRUN, assert_one_line_error, kill_9_once

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--network", "resnet18_v1d", "--classes", "demo", "--short", "64", "--max-size", "96",
         "--num-workers", "0", "--rpn-test-post-nms", "10"]


@pytest.fixture(scope="module")
def tiny_voc(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_voc")
    demo_scenes.write_detection_set(str(root))
    sets = root / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main"
    for name, keep in (("trainval", 4), ("test", 3)):
        listed = (sets / (name + ".txt")).read_text().splitlines()
        (sets / (name + ".txt")).write_text("".join(i + "\n" for i in listed[:keep]))
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
def trained(tiny_voc, backbone_file, tmp_path_factory):
    """One epoch of `detect train` from the backbone file: {prefix, log, status, err}."""
    from gluon_tricks.cli import main
    out = tmp_path_factory.mktemp("run")
    status = main(["detect", "train", *SMALL, "--dataset-root", str(tiny_voc),
                   "--backbone-params", backbone_file, "--epochs", "1", "--log-interval", "2",
                   "--rcnn-num-samples", "8", "--save-prefix", str(out) + "/"])
    prefix = str(out / "faster_rcnn_resnet18_v1d_voc")
    return {"status": status, "prefix": prefix, "log": prefix + "_train.log",
            "backbone": backbone_file}


def test_the_training_log_is_read_as_gluoncvs_detection_log(trained):
    assert trained["status"] == 0
    log = parse_transfer_log(trained["log"])
    assert log.task == "detection" and len(log.runs) == 1
    run = log.runs[0]
    assert run.config["network"] == "resnet18_v1d" and run.config["lr"] == 0.001
    (epoch,) = run.validated()
    assert epoch.epoch == 0 and set(epoch.metrics) == set(CLASSES) | {"mAP"}
    assert set(epoch.losses) == {"RPN_Conf", "RPN_SmoothL1", "RCNN_CrossEntropy",
                                 "RCNN_SmoothL1"}
    aps = [v for k, v in epoch.metrics.items() if k != "mAP" and v == v]  # nan: class unseen
    assert epoch.metrics["mAP"] == pytest.approx(sum(aps) / len(aps))
    weights = "%s_0000_%.4f.params" % (trained["prefix"], epoch.metrics["mAP"])
    assert os.path.isfile(weights)
    rows = report_rows([trained["log"]])
    assert rows  # `report` places it in its table
    from gluon_tricks import files
    assert run.config["backbone_sha256"] == files.digest(trained["backbone"])[1]


def test_eval_of_the_saved_detector_gives_the_logged_map(trained, tiny_voc, cli):
    weights, logged = _saved_weights(trained)
    status, out, err = cli("detect", "eval", *SMALL, "--dataset-root", tiny_voc,
                           "--params", weights)
    assert status == 0, err
    assert out.splitlines()[-1] == "mAP=" + logged
    per_class = dict(line.split("=") for line in out.splitlines())
    assert set(per_class) == set(CLASSES) | {"mAP"}


# Where each stage of our classifier lands in the detector (backbones.FEATURE_LAYERS).
_SPLIT = {"conv1": "features.0", "bn1": "features.1", "layer1": "features.4",
          "layer2": "features.5", "layer3": "features.6", "layer4": "top_features.0"}


def _saved_weights(trained):
    logged = re.findall(r"^mAP=(.*)$", open(trained["log"]).read(), re.MULTILINE)[-1]
    return "%s_0000_%.4f.params" % (trained["prefix"], float(logged)), logged


def test_the_backbone_comes_from_the_file_and_trains_where_gluoncvs_does(trained,
                                                                           backbone_file):
    """The saved detector's stem, stage 1 and every BN equal the classifier file (frozen); every
    convolution of stages 2-4 moved away from it."""
    detector = mx.nd.load(_saved_weights(trained)[0])
    moved = []
    for name, value in mx.nd.load(backbone_file).items():
        stage, rest = name.split(".", 1)
        if stage not in _SPLIT:
            continue  # the classifier's fc
        same = bool((detector[_SPLIT[stage] + "." + rest] == value).min().asscalar())
        if stage in ("layer2", "layer3", "layer4") and value.ndim == 4:
            moved.append(not same)
        else:
            assert same, name
    assert len(moved) == 15 and all(moved)  # 3 stages x (2 blocks x 2 convs + downsample)


def test_the_trained_parameters_are_gluoncvs(monkeypatch):
    """Our resnet50_v1b detector trains exactly the parameters (by structural name) that
    GluonCV's faster_rcnn_resnet50_v1b_voc trains."""
    from gluoncv.model_zoo.rcnn.faster_rcnn import predefined_models
    theirs = predefined_models.faster_rcnn_resnet50_v1b_voc(pretrained_base=False)
    ours = model.build_faster_rcnn("resnet50_v1b", [c for c in theirs.classes])

    def trained_names(net):
        train = set(id(p) for p in net.collect_train_params().values())
        return sorted(n for n, p in net._collect_params_with_prefix().items() if id(p) in train)
    names = trained_names(ours)
    assert names == trained_names(theirs)
    assert any(n.startswith("features.5") for n in names)  # stage 2 trains
    assert not any(n.startswith(("features.0", "features.4")) for n in names)  # stem, stage 1


def test_from_scratch_every_parameter_is_initialised():
    """Without --backbone-params the detector still detects: every parameter is initialised
    by `initialise` (shapes inferred there, not at the first training step), the same on two
    devices, and drawn from MXNet's generator as seeded before."""
    def initialised(ctx):
        mx.random.seed(7)
        net = model.build_faster_rcnn("resnet18_v1d", CLASSES, short=64, max_size=96)
        assert any(p._data is None for p in net.collect_params().values())
        model.initialise(net, ctx)
        assert all(p._data is not None for p in net.collect_params().values())
        return net
    net = initialised([mx.cpu(0), mx.cpu(1)])
    ids, scores, boxes = net(mx.nd.zeros((1, 3, 64, 80)))
    assert ids.shape[:2] == scores.shape[:2] == boxes.shape[:2]
    again = initialised([mx.cpu()])
    for (name, param), other in zip(net.collect_params().items(),
                                    again.collect_params().values()):
        first, second = param.list_data()
        assert (first == second).min() and (first == other.data()).min(), name


class _Recorder:
    """A metric that keeps the arguments of each update."""

    def reset(self):
        self.calls = []

    def update(self, *args):
        self.calls.append(args)

    def get(self):
        return ["images"], [len(self.calls)]


class _TwoRanks:
    """A World of 2 ranks whose other rank's gathered object is known in advance."""
    size = 2

    def __init__(self, rank, other):
        self.rank, self.other, self.hvd = rank, other, self

    def allgather_object(self, mine, name):
        return [mine, self.other] if self.rank == 0 else [self.other, mine]


def test_validation_shared_by_two_ranks_feeds_the_metric_what_one_process_does(tiny_voc):
    """Each rank detects every other test image; gathered, the metric takes the same arrays in
    the same image order as one process's validation (so the same mAP to the bit)."""
    from gluon_tricks import detect
    from gluon_tricks.detection import data
    net = model.build_faster_rcnn("resnet18_v1d", CLASSES, short=64, max_size=96,
                                  rpn_test_post_nms=10)
    model.initialise(net, [mx.cpu()])
    root = data.devkit(str(tiny_voc))
    dataset = detect._dataset(root, data.TEST_SPLITS, CLASSES)
    assert len(dataset) == 3

    def calls(rank, ranks, world=None):
        recorder = _Recorder()
        loop.validate(net, data.val_loader(net, dataset, 0, rank, ranks), recorder, [mx.cpu()],
                      world)
        return recorder.calls
    one = calls(0, 1)
    second = calls(1, 2)
    assert len(second) == 1
    merged = calls(0, 2, _TwoRanks(0, second))
    assert len(merged) == len(one) == 3
    for got, want in zip(merged, one):
        assert all((a is None and b is None) or np.array_equal(a, b) for a, b in zip(got, want))
    assert not all(np.array_equal(a, b) for a, b in zip(one[0][:3], one[1][:3]))


def test_proposal_counts_fit_small_images_and_keep_gluoncvs_at_its_size():
    assert model.proposal_limits(600) == {k: model.VOC_RECIPE[k] for k in (
        "rpn_train_pre_nms", "rpn_train_post_nms", "rpn_test_pre_nms", "rpn_test_post_nms")}
    assert model.proposal_limits(64)["rpn_train_post_nms"] == 4 * 4 * 15


def test_the_schedule_is_gluoncvs():
    """Warmup as train_faster_rcnn.py's get_lr_at_iter in epoch 0, then steps of lr_decay."""
    schedule = loop.Schedule(lr=0.01, decay=0.1, steps=(2, 3), warmup=10)
    assert schedule.lr_at(0, 0) == pytest.approx(0.01 / 3)
    assert schedule.lr_at(0, 5) == pytest.approx(0.01 * (1 / 3 * 0.5 + 0.5))
    assert schedule.lr_at(0, 11) == schedule.lr_at(1, 0) == 0.01
    assert schedule.lr_at(2, 0) == pytest.approx(0.001)
    assert schedule.lr_at(5, 0) == pytest.approx(0.0001)


@pytest.mark.parametrize("flags,fragment", [
    (["--dataset-root", "/nonexistent/voc"], "no VOC data at /nonexistent/voc"),
    (["--lr-decay-epoch", "14;20"], "--lr-decay-epoch must be"),
    (["--classes", "disk,disk"], "--classes must be"),
    (["--backbone-params", "/nonexistent.params"], "cannot read the weights file"),
    (["--backbone-recipe", "table6_resnet50_v1d_cosine"], "trains resnet50_v1d, not --network "
                                                          "resnet18_v1d"),
    (["--backbone-recipe", "table9_nothing"], "not a recipe of scripts/"),
])
def test_bad_input_is_one_line_and_writes_nothing(flags, fragment, tiny_voc, tmp_path, cli):
    args = ["detect", "train", *SMALL, "--dataset-root", tiny_voc, "--epochs", "1",
            "--save-prefix", str(tmp_path / "out") + "/", *flags]
    assert_one_line_error(*cli(*args), fragment)
    assert not (tmp_path / "out").exists()


def test_a_box_outside_its_image_is_refused_before_training(tiny_voc, tmp_path, cli):
    import shutil
    root = tmp_path / "voc"
    shutil.copytree(tiny_voc / "VOCdevkit", root / "VOCdevkit")
    listed = (root / "VOCdevkit/VOC2007/ImageSets/Main/trainval.txt").read_text().split()[0]
    annotation = root / "VOCdevkit/VOC2007/Annotations" / (listed + ".xml")
    annotation.write_text(re.sub(r"<xmax>\d+</xmax>", "<xmax>999</xmax>",
                                 annotation.read_text(), count=1))
    args = ["detect", "train", *SMALL, "--dataset-root", root, "--epochs", "1",
            "--save-prefix", str(tmp_path / "out") + "/"]
    assert_one_line_error(*cli(*args), "lies outside its", listed + ".xml")
    assert not (tmp_path / "out").exists()


RESUMABLE = ["detect", "train", *SMALL, "--rcnn-num-samples", "8", "--val-interval", "2",
             "--lr", "0.01"]
FINAL = "faster_rcnn_resnet18_v1d_voc-0002.params"  # the checkpoint after 2 epochs


@pytest.fixture(scope="module")
def reference(tiny_voc, tmp_path_factory):
    """Two epochs of RESUMABLE in one uninterrupted run: its save folder."""
    from gluon_tricks.cli import main
    out = tmp_path_factory.mktemp("reference")
    assert main([*RESUMABLE, "--dataset-root", str(tiny_voc), "--epochs", "2",
                 "--save-prefix", str(out) + "/"]) == 0
    return out


def test_a_resumed_run_ends_bitwise_equal_to_an_uninterrupted_one(tiny_voc, reference, tmp_path,
                                                                  cli):
    """One epoch, then a second run continuing from its checkpoint (weights, momentum, the
    epoch's random streams): the same weights to the bit as two epochs in one go. A run with
    other flags is refused by the checkpoint it would continue."""
    flags = [*RESUMABLE, "--dataset-root", tiny_voc]
    parts = str(tmp_path / "parts") + "/"
    assert cli(*flags, "--epochs", "1", "--save-prefix", parts)[0] == 0
    status, out, err = cli(*flags, "--epochs", "2", "--save-prefix", parts)
    assert status == 0, err
    assert (reference / FINAL).read_bytes() == (tmp_path / "parts" / FINAL).read_bytes()
    log = parse_transfer_log(parts + "faster_rcnn_resnet18_v1d_voc_train.log")
    assert [[e.epoch for e in run.validated()] for run in log.runs] == [[], [1]]
    assert "Start training from [Epoch 1]" in out
    assert_one_line_error(*cli(*flags, "--lr", "0.02", "--epochs", "3", "--save-prefix", parts),
                          "written by a different run", "lr 0.01 -> 0.02", "--save-prefix")


@pytest.mark.parametrize("signum,step", [(signal.SIGTERM, 3), (signal.SIGINT, 6)])
def test_a_stop_signal_checkpoints_mid_epoch_exits_75_and_the_rerun_ends_equal(
        signum, step, tiny_voc, reference, tmp_path, cli, monkeypatch):
    """The signal arrives during step `step` (of 4 a epoch): the run checkpoints after that
    step, leaves the marker, exits with the classifier's status 75 and one line; the same
    command then ends with the uninterrupted run's weights."""
    from gluon_tricks import streams
    from gluon_tricks.training.checkpoint import PREEMPTED_MARKER
    from gluon_tricks.training.preemption import PREEMPTED_EXIT_CODE
    real, calls = streams.transfer_step_seed, []

    def with_signal(*args):
        calls.append(args)
        if len(calls) == step:
            os.kill(os.getpid(), signum)
        return real(*args)
    monkeypatch.setattr(streams, "transfer_step_seed", with_signal)
    flags = [*RESUMABLE, "--dataset-root", tiny_voc, "--epochs", "2",
             "--save-prefix", str(tmp_path) + "/"]
    status, out, err = cli(*flags)
    epoch, done = (step - 1) // 4, (step - 1) % 4 + 1
    message = "stopped by %s at epoch %d after batch %d" % (signal.Signals(signum).name, epoch,
                                                            done)
    assert status == PREEMPTED_EXIT_CODE and err.count("\n") == 1 and message in err, err
    assert message in (tmp_path / PREEMPTED_MARKER).read_text()
    saved = tmp_path / ("faster_rcnn_resnet18_v1d_voc-%04d-batch%06d.json" % (epoch, done))
    assert json.loads(saved.read_text())["batch"] == done
    monkeypatch.undo()
    status, out, err = cli(*flags)
    assert status == 0, err
    assert "Start training from [Epoch %d] [Batch %d]" % (epoch, done) in out
    assert (reference / FINAL).read_bytes() == (tmp_path / FINAL).read_bytes()
    assert not (tmp_path / PREEMPTED_MARKER).exists()


def test_kill_9_mid_epoch_with_data_workers_then_the_same_command_ends_bitwise_equal(
        tiny_voc, reference, tmp_path):
    """A real `detect train` with 2 data worker processes and a checkpoint after every step,
    killed with SIGKILL in epoch 1 (whatever it was writing), then run again: the weights equal
    the uninterrupted run's (with no workers) to the bit. Each image's random flip and RPN
    targets are keyed by (seed, epoch, image), whichever process decodes it."""
    out = str(tmp_path) + "/"
    command = [sys.executable, "-m", "gluon_tricks", *RESUMABLE, "--dataset-root",
               str(tiny_voc), "--epochs", "2", "--save-prefix", out, "--num-workers", "2",
               "--save-interval-minutes", "1e-9", "--keep-checkpoints", "1"]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    kill_9_once(command, env, lambda: glob.glob(out + "*-0001-batch000002.json"),
                "checkpoint at epoch 1, batch 2")
    assert not os.path.exists(out + FINAL)
    rerun = subprocess.run(command, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "Start training from [Epoch 1] [Batch" in rerun.stdout
    assert (reference / FINAL).read_bytes() == (tmp_path / FINAL).read_bytes()


def test_a_second_run_in_the_same_save_folder_is_refused(tiny_voc, tmp_path, cli):
    from gluon_tricks.training.savedir_lock import RunLock
    held = RunLock(str(tmp_path))
    held.acquire()
    try:
        assert_one_line_error(*cli(*RESUMABLE, "--dataset-root", tiny_voc, "--epochs", "1",
                                   "--save-prefix", str(tmp_path) + "/"),
                              "in use by another run", "pid %d" % os.getpid())
    finally:
        held.release()
    assert not glob.glob(str(tmp_path / "*.log"))


def test_horovodrun_without_the_horovod_flag_is_refused_in_one_line(monkeypatch, tiny_voc,
                                                                     tmp_path, cli):
    """N ranks without --horovod would each train the whole run and write the same files."""
    from gluon_tricks.training import distributed
    monkeypatch.setattr(distributed.World, "from_environment",
                        classmethod(lambda cls: cls(rank=0, size=2)))
    assert_one_line_error(*cli("detect", "train", *SMALL, "--dataset-root", tiny_voc,
                               "--save-prefix", str(tmp_path / "out") + "/"),
                          "horovodrun as 2 ranks", "pass --horovod")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not os.path.exists(HOROVODRUN), reason="no horovodrun")
def test_two_horovod_ranks_train_bitwise_what_one_process_on_two_devices_trains(
        tiny_voc, tmp_path, monkeypatch, cli):
    """horovodrun -np 2 --horovod with 1 image per rank, and one process with 2 devices (CPU
    contexts standing in for GPUs) and 2 images a batch: the same global batches, each image
    on the device of the same index, the R-CNN sampler's draws keyed by that index: the same
    losses, mAP path and weights to the bit after 2 epochs."""
    flags = [*RESUMABLE, "--dataset-root", str(tiny_voc), "--epochs", "2", "--val-interval",
             "1", "--log-interval", "1"]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    ranks = subprocess.run([HOROVODRUN, "-np", "2", "-H", "localhost:2", "--gloo", "sh", "-c",
                            "exec " + " ".join([sys.executable, "-m", "gluon_tricks", *flags,
                                                "--horovod", "--batch-size", "1",
                                                "--save-prefix", str(tmp_path / "ranks") + "/"])],
                           env=env, capture_output=True, text=True, timeout=600)
    assert ranks.returncode == 0, ranks.stdout[-2000:] + ranks.stderr[-2000:]
    monkeypatch.setenv("GLUON_TRICKS_DEVICES", "cpu(0),cpu(1)")
    status, out, err = cli(*flags, "--num-gpus", "2", "--batch-size", "2",
                           "--save-prefix", str(tmp_path / "devices") + "/")
    assert status == 0, err
    logs = [parse_transfer_log(str(tmp_path / name / "faster_rcnn_resnet18_v1d_voc_train.log"))
            for name in ("ranks", "devices")]
    paths = [[(e.epoch, e.metrics["mAP"], e.losses) for e in log.runs[0].validated()]
             for log in logs]
    assert len(paths[0]) == 2 and paths[0] == paths[1]
    assert logs[0].runs[0].config["global_batch_size"] == 2 == logs[1].runs[0].config[
        "global_batch_size"]
    assert (tmp_path / "ranks" / FINAL).read_bytes() == (tmp_path / "devices" / FINAL).read_bytes()
