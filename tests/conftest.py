"""Shared fixtures and helpers: a fixed MXNet/numpy seed per test, the CLI runner, small image
sets, the trainer's flags, weights files and the one-line error check."""
import argparse
import os
import contextlib
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def fixed_seeds():
    import mxnet as mx
    mx.random.seed(7)
    np.random.seed(7)
    random.seed(7)


@pytest.fixture
def cli(capsys):
    """Run `gluon-tricks ARGS...` in-process; returns (exit status, stdout, stderr)."""
    from gluon_tricks.cli import main

    def run(*args):
        status = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return status, out, err
    return run


@pytest.fixture(scope="session")
def small_image_set(tmp_path_factory):
    """A 3-class image folder (36 JPEGs and PNGs of 40-64 px whose grey level encodes the label,
    plus one non-image file) and its packed .rec/.idx: {folder, prefix, rec, idx, count}."""
    import cv2
    from gluon_tricks.data.pack import pack_folder
    root = tmp_path_factory.mktemp("small_image_set")
    folder = root / "images"
    rng = np.random.default_rng(0)
    for label, name in enumerate(["ant", "bee", "cat"]):
        (folder / name).mkdir(parents=True)
        for i in range(12):
            height, width = rng.integers(40, 65, 2)
            image = np.full((height, width, 3), 40 + 80 * label, np.uint8)
            image[::4, ::4] += 10  # a little texture
            ext = ".png" if i == 11 else ".jpg"
            cv2.imwrite(str(folder / name / ("%02d%s" % (i, ext))), image)
    (folder / "bee" / "readme.txt").write_text("not an image")
    prefix = str(root / "small")
    pack_folder(str(folder), prefix, workers=0, progress=False)
    return {"folder": str(folder), "prefix": prefix, "rec": prefix + ".rec",
            "idx": prefix + ".idx", "count": 36}


def assert_one_line_error(status, out, err, *fragments):
    """The CLI refused with exit status 2 and one line on stderr holding every fragment."""
    assert status == 2 and out == ""
    assert err.startswith("gluon-tricks: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err


HOROVODRUN = os.path.join(os.path.dirname(sys.executable), "horovodrun")  # the venv's


def kill_9_once(command, env, ready, what, timeout=300):
    """Run `command` until `ready()` holds, then SIGKILL it (a crash, not a stop signal): the
    test fails if it ends first, or if `what` (the awaited state) is not reached in time."""
    job = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    try:
        while not ready() and job.poll() is None:
            assert time.time() < deadline, "no %s" % what
            time.sleep(0.05)
    finally:
        job.kill()
        job.wait()
    assert job.returncode == -signal.SIGKILL, job.stderr.read()


def parse_train_flags(*argv, model="resnet18_v1d"):
    """`gluon-tricks train`'s flags parsed from `argv` (plus --model)."""
    from gluon_tricks.training.config import add_arguments
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--model", model] + [str(a) for a in argv])


def read_params(path):
    """A .params file as {name: numpy array}."""
    import mxnet as mx
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


DISC_CLASSES = 4
DISC_COLOURS = [(220, 40, 40), (40, 200, 40), (40, 40, 220), (220, 220, 40)]


@pytest.fixture(scope="module")
def disc_data(tmp_path_factory):
    """train/ (32 disc images: 4 batches of 8) and val/ (20: a batch of 8 ends partial)."""
    root = tmp_path_factory.mktemp("discs")
    write_disc_folder(root / "train", 8, seed=1)
    write_disc_folder(root / "val", 5, seed=2)
    return root


@contextlib.contextmanager
def small_tmpfs(mount, size):
    """A tmpfs of `size` (e.g. '3m') mounted at `mount` for a disk-full test; skips the test
    where mounting is not allowed (not root)."""
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (not root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)  # -l: even if a file is open


def write_disc_folder(root, per_class, seed):
    """An image folder of DISC_CLASSES classes, `per_class` JPEGs each: class k is a disc of
    colour k on a noisy background, at random places and sizes (40-63 px images)."""
    import cv2
    rng = np.random.RandomState(seed)
    for k in range(DISC_CLASSES):
        folder = os.path.join(str(root), "class%d" % k)
        os.makedirs(folder)
        for i in range(per_class):
            h, w = rng.randint(40, 64, size=2)
            image = rng.randint(0, 120, size=(h, w, 3)).astype(np.uint8)
            centre = (int(rng.randint(12, w - 12)), int(rng.randint(12, h - 12)))
            cv2.circle(image, centre, int(rng.randint(6, 12)), DISC_COLOURS[k], -1)
            cv2.imwrite(os.path.join(folder, "%03d.jpg" % i), image[:, :, ::-1])


# -- log writers in the formats GluonCV's scripts (and `gluon-tricks train`) write ------------


BASE_CONFIG = dict(model="resnet50_v1d", batch_size=32, num_gpus=8, num_epochs=120, lr=0.1,
                   lr_mode="step", warmup_epochs=0, last_gamma=False, no_wd=False,
                   label_smoothing=False, mixup=False, mixup_alpha=0.2, teacher=None,
                   temperature=20.0, hard_weight=0.5, dtype="float32", input_size=224)


def namespace(**values):
    """GluonCV's first line, `logger.info(opt)`."""
    config = dict(BASE_CONFIG, **values)
    return "Namespace(%s)" % ", ".join("%s=%r" % item for item in config.items())


def current_epoch(epoch, top1, top5=0.9, metric="accuracy", speed=1000.0, lr=0.1,
                  batches=(49, 99), validation=True):
    """One epoch of train_imagenet.py's current format (also `gluon-tricks train`'s)."""
    lines = ["Epoch[%d] Batch [%d]\tSpeed: %f samples/sec\t%s=%f\tlr=%f"
             % (epoch, b, speed + b, metric, 0.5, lr) for b in batches]
    lines += ["[Epoch %d] training: %s=%f" % (epoch, metric, 0.5),
              "[Epoch %d] speed: %d samples/sec\ttime cost: %f" % (epoch, speed, 1228.78)]
    if validation:
        lines.append("[Epoch %d] validation: err-top1=%f err-top5=%f" % (epoch, 1 - top1, 1 - top5))
    return lines


def horovod_epoch(epoch, top1, top5=0.9, lr=0.1, nbatch=40, validation=True):
    """train_horovod.py: batches counted from 1, accuracies (not errors), rank tags."""
    lines = ["Epoch[%d] Batch[%d] Loss[%.3f]" % (epoch, nbatch, 6.5),
             "Epoch[%d] Rank[%d] Batch[%d]\t%s=%f\tlr=%f" % (epoch, 0, nbatch, "accuracy", 0.3, lr),
             "Epoch[%d] Rank[%d] Batch[%d]\t%s=%f\tlr=%f" % (epoch, 1, 1, "accuracy", 0.9, 9.0),
             "Epoch[%d] Batch[%d]\tSpeed: %.2f samples/sec" % (epoch, nbatch, 5000.0),
             "Epoch[%d] Rank[%d] Batch[%d]\tTime cost=%.2f\tTrain-metric=%f"
             % (epoch, 0, nbatch, 250.0, 0.31),
             "Epoch[%d]\tSpeed: %.2f samples/sec" % (epoch, 5120.0 + epoch)]
    if validation:
        lines.append("Epoch[%d] Rank[%d]\tValidation-%s=%f\tValidation-%s=%f"
                     % (epoch, 0, "accuracy", top1, "top_k_accuracy_5", top5))
    return lines


def write_log(path, lines, prefix="INFO:root:", final_newline=True):
    """Write `lines` as a log file, each behind `prefix`; returns the path as a string."""
    text = "\n".join(prefix + line for line in lines) + ("\n" if final_newline else "")
    path.write_text(text)
    return str(path)


def project_log(path, runs):
    """A log written by this project's TrainLog: `runs` is a list of runs appended to the same
    file (a resume appends), each a list of (epoch, err_top1) epochs."""
    from gluon_tricks.training.train_log import TrainLog
    for run in runs:
        writer = TrainLog(str(path), stream=open(os.devnull, "w"))
        writer.namespace(dict(BASE_CONFIG, global_batch_size=256, world_size=8))
        for epoch, err_top1 in run:
            writer.batch(epoch, 49, 1000.0, "accuracy", 0.5, 0.1, 2.5, 100, (60.0, 600.0))
            writer.epoch(epoch, "accuracy", 0.5, 2.5, 1000, 60.0, err_top1, err_top1 / 2)
        writer.close()
    return str(path)


@pytest.fixture(scope="module")
def demo():
    """The embedded demo data set (generated once into the cache): its folders and packed files."""
    from gluon_tricks.data.demo_data import default_demo_data
    return default_demo_data()


def scaled_resnet18_weights(folder, seed, scale, size=32):
    """A resnet18_v1d .params for the 10 demo classes with its classifier scaled by `scale`, so
    that its logits are far apart (an untrained network's are all near 0 and hide differences)."""
    import mxnet as mx
    from gluon_tricks.models import get_model, initialize
    mx.random.seed(seed)
    net = initialize(get_model("resnet18_v1d", classes=10), [mx.cpu()], size)
    net.fc.weight.set_data(net.fc.weight.data() * scale)
    path = str(folder / "r18.params")
    net.save_parameters(path)
    return path
