"""The training loop end to end on a tiny real image folder: logs, exact resume, divergence,
evaluation, bad flags, and two Horovod ranks on the CPU."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import mxnet as mx
import numpy as np
import pytest

from conftest import DISC_CLASSES as CLASSES
from conftest import read_params

TINY = ["--model", "resnet18_v1d", "--input-size", "32", "--batch-size", "8", "-j", "0",
        "--log-interval", "2"]
EVERY_TRICK = ["--warmup-epochs", "1", "--lr-mode", "cosine", "--last-gamma", "--no-wd",
               "--label-smoothing", "--mixup", "--lr", "0.05"]


def _data_flags(disc_data):
    return ["--train-dir", str(disc_data / "train"), "--val-dir", str(disc_data / "val")]


def _train(cli, disc_data, out, *extra):
    out = str(out)
    status, stdout, stderr = cli("train", *TINY, *_data_flags(disc_data), "--save-dir", out,
                                 "--logging-file", os.path.join(out, "train.log"), *extra)
    return status, stdout, stderr


def test_log_is_gluoncv_format_with_a_jsonl_twin(cli, disc_data, tmp_path):
    # two worker processes: forks after training batches exist once hung MXNet's pre-fork handler
    status, out, err = _train(cli, disc_data, tmp_path, "--num-epochs", "2", "-j", "2",
                              *EVERY_TRICK)
    assert status == 0, err
    lines = open(tmp_path / "train.log").read().splitlines()
    assert lines[0].startswith("Namespace(") and "lr=0.05" in lines[0]
    assert "tricks='warmup,zero-gamma,no-bias-decay,cosine,label-smoothing,mixup'" in lines[0]
    assert sum(line.startswith("Epoch[1] Batch [") and "\tSpeed: " in line and "\tlr=" in line
               for line in lines) == 2  # 4 batches, one line every 2
    for kind in ("training: accuracy=", "speed: ", "validation: err-top1="):
        assert sum(line.startswith("[Epoch ") and kind in line for line in lines) == 2
    events = [json.loads(line) for line in open(tmp_path / "train.log.jsonl")]
    validation = [e for e in events if e["event"] == "validation"]
    assert [e["epoch"] for e in validation] == [0, 1]
    assert "validation: err-top1=%f" % validation[-1]["err_top1"] in lines[-1]
    assert os.path.isfile(tmp_path / "resnet18_v1d-0002.params")


def test_resume_continues_exactly(cli, disc_data, tmp_path):
    """2 epochs straight == 1 epoch, stop, resume, 1 more: the schedule, the data order,
    augmentation, mixup and the optimiser's momentum all continue where they stopped."""
    flags = ["--num-epochs", "2", "--save-frequency", "1"] + EVERY_TRICK
    assert _train(cli, disc_data, tmp_path / "straight", *flags)[0] == 0
    os.makedirs(tmp_path / "resumed")
    assert _train(cli, disc_data, tmp_path / "resumed", *flags)[0] == 0
    for name in ("resnet18_v1d-0002.params", "resnet18_v1d-0002.states",
                 "resnet18_v1d-0002.json"):
        os.remove(tmp_path / "resumed" / name)  # as if the run had died during epoch 2
    status, out, err = _train(cli, disc_data, tmp_path / "resumed", *flags)
    assert status == 0, err
    assert "resumed from" in open(tmp_path / "resumed" / "train.log").read()
    straight = read_params(tmp_path / "straight" / "resnet18_v1d-0002.params")
    resumed = read_params(tmp_path / "resumed" / "resnet18_v1d-0002.params")
    assert straight.keys() == resumed.keys()
    worst = max(np.abs(straight[k] - resumed[k]).max() for k in straight)
    assert worst < 1e-6  # bitwise on this machine so far; MXNet does not promise it on every CPU
    status, out, err = _train(cli, disc_data, tmp_path / "straight", *flags)  # finished already
    assert status == 0 and "nothing to train" in out
    first = read_params(tmp_path / "straight" / "resnet18_v1d-0001.params")
    assert max(np.abs(first[k] - straight[k]).max() for k in first) > 1e-3  # epoch 2 did train


def test_resume_refuses_a_checkpoint_of_another_run(cli, disc_data, tmp_path):
    assert _train(cli, disc_data, tmp_path, "--num-epochs", "1")[0] == 0
    status, out, err = _train(cli, disc_data, tmp_path, "--num-epochs", "1", "--mixup")
    assert status == 2 and "different run" in err and "mixup" in err and err.count("\n") == 1


def test_resume_refuses_another_label_smoothing_eps(cli, disc_data, tmp_path):
    """Issue 9, bug 1: eps was missing from a hand-kept list of keys, so this resumed silently."""
    flags = ["--num-epochs", "2", "--save-frequency", "1", "--label-smoothing"]
    assert _train(cli, disc_data, tmp_path, *flags)[0] == 0
    for name in ("resnet18_v1d-0002.params", "resnet18_v1d-0002.states",
                 "resnet18_v1d-0002.json"):
        os.remove(tmp_path / name)  # stopped after epoch 1
    status, out, err = _train(cli, disc_data, tmp_path, *flags, "--label-smoothing-eps", "0.4")
    assert status == 2 and "different run" in err and "eps" in err and err.count("\n") == 1
    assert not os.path.exists(tmp_path / "resnet18_v1d-0002.json")


def test_nan_loss_stops_with_epoch_and_batch_and_keeps_the_last_checkpoint(
        cli, disc_data, tmp_path, monkeypatch):
    from gluon_tricks.training import loop
    real = loop.smooth_one_hot
    calls = []

    def poisoned(labels, classes, epsilon):
        calls.append(1)
        target = real(labels, classes, epsilon)
        return target * np.nan if len(calls) == 6 else target  # epoch 1, batch 1
    monkeypatch.setattr(loop, "smooth_one_hot", poisoned)
    status, out, err = _train(cli, disc_data, tmp_path, "--num-epochs", "3",
                              "--save-frequency", "1")
    assert status == 2 and err.count("\n") == 1
    assert "at epoch 1, batches 0-1" in err and "resnet18_v1d-0001.json" in err
    assert os.path.isfile(tmp_path / "resnet18_v1d-0001.params")
    assert not os.path.exists(tmp_path / "resnet18_v1d-0002.json")


def test_eval_matches_the_logged_validation_and_saves_logits(cli, disc_data, tmp_path,
                                                             monkeypatch):
    """eval reads the model, input size and eps from the checkpoint beside the weights; its
    logits file carries them (and the data) to `plot gap`, which marks the model's eps."""
    assert _train(cli, disc_data, tmp_path, "--num-epochs", "1", "--label-smoothing",
                  "--label-smoothing-eps", "0.2")[0] == 0
    logged = [json.loads(line) for line in open(tmp_path / "train.log.jsonl")][-1]
    status, out, err = cli("eval", "--params", tmp_path / "resnet18_v1d-0001.params",
                           "--val-dir", disc_data / "val", "-j", "0", "--json",
                           "--save-logits", tmp_path / "logits.npz")
    assert status == 0, err
    result = json.loads(out)
    assert result["images"] == 20 and result["model"] == "resnet18_v1d"
    assert result["err_top1"] == pytest.approx(logged["err_top1"], abs=1e-9)
    saved = np.load(tmp_path / "logits.npz")
    assert saved["logits"].shape == (20, CLASSES) and saved["labels"].shape == (20,)
    assert sorted(np.bincount(saved["labels"])) == [5] * CLASSES
    assert str(saved["model"]) == "resnet18_v1d"
    from gluon_tricks.evaluation.logits_file import load_logits
    loaded = load_logits(str(tmp_path / "logits.npz"))
    assert (loaded.model, loaded.eps) == ("resnet18_v1d", 0.2)
    assert loaded.data == {"source": str(disc_data / "val"), "kind": "folder", "images": 20,
                           "classes": CLASSES, "input_size": 32, "crop_ratio": 0.875}
    from gluon_tricks.figures import plots
    marked = []
    real = plots.gap_figure
    monkeypatch.setattr(plots, "gap_figure", lambda items, marks, eps: marked.append(
        (marks, eps)) or real(items, marks, eps))
    status, out, err = cli("plot", "gap", tmp_path / "logits.npz", "-o", tmp_path / "gap.png")
    assert status == 0, err
    assert marked == [([(CLASSES, pytest.approx(np.log(3 * 0.8 / 0.2)))], 0.2)]


def test_bad_inputs_end_in_one_line(cli, disc_data, tmp_path):
    status, out, err = cli("eval", "--model", "resnet18_v1d", "--params", tmp_path / "none.params",
                           "--val-dir", disc_data / "val")
    assert status == 2 and "no such file" in err and err.count("\n") == 1
    status, out, err = cli("eval", "--model", "resnet18_v1d", "--params", disc_data / "val" /
                           "class0" / "000.jpg", "--val-dir", disc_data / "val")
    assert status == 2 and "does not hold resnet18_v1d weights" in err and err.count("\n") == 1
    assert "Traceback" not in err
    status, out, err = cli("train", "--model", "resnet19_v1d", *_data_flags(disc_data),
                           "--save-dir", tmp_path, "--logging-file", tmp_path / "x.log")
    assert status == 2 and "unknown model" in err and err.count("\n") == 1
    wrong = tmp_path / "wrong.params"
    from gluon_tricks.models import get_model, initialize
    net = initialize(get_model("resnet18_v1d", classes=7), mx.cpu())
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(wrong))
    status, out, err = _train(cli, disc_data, tmp_path / "t", "--teacher", "resnet18_v1d",
                              "--teacher-params", wrong)
    assert status == 2 and "does not fit" in err and "4 classes" in err


HOROVOD_SCRIPT = textwrap.dedent("""
    import argparse, sys
    import mxnet as mx
    from gluon_tricks.training.config import add_arguments, check_flags
    from gluon_tricks.training.distributed import World
    from gluon_tricks.training.loop import train
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = parser.parse_args(sys.argv[2:])
    check_flags(config)
    world = World.from_environment()
    assert world.size == 2, world
    captured = {}
    import gluon_tricks.training.loop as loop
    real = loop.build_network
    def keep(*args, **kwargs):
        captured["net"] = real(*args, **kwargs)
        return captured["net"]
    loop.build_network = keep
    result = train(config, world)
    captured["net"].save_parameters("%s/rank%d.params" % (sys.argv[1], world.rank))
    world.finish()
""")


@pytest.mark.skipif(shutil.which("horovodrun", path=os.path.dirname(sys.executable)) is None,
                    reason="horovodrun is not installed in this environment")
def test_two_horovod_ranks_agree_and_validate_exactly(cli, disc_data, tmp_path):
    script = tmp_path / "run_rank.py"
    script.write_text(HOROVOD_SCRIPT)
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    command = [horovodrun, "-np", "2", "-H", "localhost:2", "--gloo", sys.executable, str(script),
               str(tmp_path), *TINY, "--batch-size", "4", *_data_flags(disc_data),
               "--num-epochs", "2", "--save-dir", str(tmp_path), "--logging-file",
               str(tmp_path / "train.log"), "--mixup", "--label-smoothing", "--lr", "0.05"]
    env = dict(os.environ, PYTHONPATH=os.getcwd(), OMP_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rank0, rank1 = read_params(tmp_path / "rank0.params"), read_params(tmp_path / "rank1.params")
    assert all(np.array_equal(rank0[k], rank1[k]) for k in rank0)
    assert open(tmp_path / "train.log").read().count("Namespace(") == 1  # rank 0 writes alone
    logged = [json.loads(line) for line in open(tmp_path / "train.log.jsonl")]
    assert logged[0]["world_size"] == 2 and logged[0]["global_batch_size"] == 8
    status, out, err = cli("eval", "--model", "resnet18_v1d", "--params",
                           tmp_path / "resnet18_v1d-0002.params", "--val-dir",
                           disc_data / "val", "--input-size", "32", "-j", "0", "--json")
    assert status == 0, err
    assert json.loads(out)["err_top1"] == pytest.approx(logged[-1]["err_top1"], abs=1e-9)
    assert json.loads(out)["images"] == 20


def test_demo_flags_are_the_papers_full_recipe_and_valid():
    import argparse
    from gluon_tricks.demo import DEMO_FLAGS
    from gluon_tricks.training.config import add_arguments, check_flags, tricks_of
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = parser.parse_args(DEMO_FLAGS)
    check_flags(config)
    assert config.model.endswith("_v1d")
    assert tricks_of(config) == ["warmup", "zero-gamma", "no-bias-decay", "cosine",
                                 "label-smoothing", "mixup"]
