"""`gluon-tricks bench train` on the CPU, tiny: its numbers agree with each other, GluonCV's side
runs in the same process, `--rec` says what bounds the run, and impossible precisions end in one
line. (Speeds themselves are printed side by side, never asserted.)"""
import json
import os
import shutil
import subprocess
import sys

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


@pytest.mark.skipif(shutil.which("horovodrun", path=os.path.dirname(sys.executable)) is None,
                    reason="horovodrun is not installed in this environment")
def test_two_horovod_ranks_with_fp16_allreduce_and_predivision(tmp_path):
    """Two ranks train with FP16-compressed gradients and a predivide factor (Horovod takes
    both), and rank 0 alone reports, counting the images of both ranks."""
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.getcwd())
    env.pop("GLUON_TRICKS_DEVICES", None)
    done = subprocess.run([horovodrun, "-np", "2", "-H", "localhost:2", "--gloo",
                           sys.executable, "-m", "gluon_tricks", *TINY, "--fp16-allreduce",
                           "--gradient-predivide-factor", "2", "--json"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    reports = [json.loads(line.split(":", 1)[1]) for line in done.stdout.splitlines()
               if line.startswith("[0]<stdout>:{")]
    assert len(reports) == 1 and reports[0]["ours"] > 0
    # images/s counts both ranks' batches of 4
    assert reports[0]["ours"] * reports[0]["ms_per_step"] / 1000 == pytest.approx(8, rel=1e-6)
    assert not [line for line in done.stdout.splitlines() if line.startswith("[1]<stdout>:{")]


def test_make_trainer_hands_the_horovod_options_to_distributed_trainer():
    import types
    from mxnet import gluon
    from gluon_tricks.training.distributed import World
    from gluon_tricks.training.optim import make_trainer
    made = {}

    def distributed_trainer(params, optimizer, settings, **options):
        made.update(options, optimizer=optimizer, settings=settings)
    hvd = types.SimpleNamespace(DistributedTrainer=distributed_trainer,
                                Compression=types.SimpleNamespace(none="none", fp16="fp16"))
    net = gluon.nn.Dense(2, in_units=3)
    net.initialize()
    world = World(rank=0, size=2, local_rank=0, hvd=hvd)
    make_trainer(net, 0.9, 1e-4, "float32", world, fp16_allreduce=True,
                 gradient_predivide_factor=4.0)
    assert made["compression"] == "fp16" and made["gradient_predivide_factor"] == 4.0
    assert made["optimizer"] == "nag" and made["settings"]["momentum"] == 0.9
    make_trainer(net, 0.9, 1e-4, "float32", world)
    assert made["compression"] == "none" and made["gradient_predivide_factor"] == 1.0
