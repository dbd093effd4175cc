"""Faults of flags, lock files, checkpoint records, save dirs and logs, injected into real
training runs on tiny images: nonsense flag values, symlinks where the locks go, checkpoint JSONs
with missing or malformed fields, a save dir that turns read-only mid-run, orphan weights of a
JSON write that never happened, a log deleted mid-run, a TERM before training starts. Each ends
in one line (or a named fallback), never `internal error`."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import assert_one_line_error
from gluon_tricks.cli import main
from gluon_tricks.training.preemption import PREEMPTED_EXIT_CODE
from gluon_tricks.training.savedir_lock import LOCK_NAME

TINY = ["--model", "resnet18_v1d", "--input-size", "32", "--batch-size", "8", "-j", "0",
        "--log-interval", "2", "--save-frequency", "1", "--lr", "0.05"]


def _flags(disc_data, out, *extra, log=None):
    return ["train", *TINY, "--num-epochs", "1", "--train-dir", str(disc_data / "train"),
            "--val-dir", str(disc_data / "val"), "--save-dir", str(out), "--logging-file",
            str(log or os.path.join(str(out), "train.log")), *extra]


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


# -- item 6: every flag range in check_flags ----------------------------------------------------

@pytest.mark.parametrize("extra,fragment", [
    (["--warmup-lr", "-1"], "--warmup-lr"),
    (["--lr-decay", "-1"], "--lr-decay"),
    (["--lr-decay", "0"], "--lr-decay"),
    (["--wd", "-1"], "--wd"),
    (["--momentum", "2"], "--momentum"),
    (["--momentum", "-0.1"], "--momentum"),
    (["--lr-decay-period", "-1"], "--lr-decay-period"),
    (["--data-timeout", "-1"], "--data-timeout"),
    (["--trust-pickled-states"], "--trust-pickled-states needs --resume-states"),
    (["--resume", "--fresh-start"], "--resume and --fresh-start"),
])
def test_a_nonsense_flag_value_is_one_line_before_anything_runs(disc_data, tmp_path, capsys,
                                                                extra, fragment):
    status, out, err = _run(capsys, *_flags(disc_data, tmp_path / "out", *extra))
    assert_one_line_error(status, out, err, fragment)
    assert not os.path.exists(tmp_path / "out")


def test_an_idx_flag_naming_a_rec_file_is_one_line(demo, tmp_path, capsys):
    status, out, err = _run(capsys, "train", *TINY, "--num-epochs", "1", "--use-rec",
                            "--rec-train", demo["train_rec"], "--rec-train-idx", demo["train_rec"],
                            "--rec-val", demo["val_rec"], "--rec-val-idx", demo["val_idx"],
                            "--save-dir", tmp_path / "out", "--logging-file", tmp_path / "l.log")
    assert_one_line_error(status, out, err, "--rec-train-idx", demo["train_rec"],
                          "not an index")


def test_a_log_in_an_unwritable_place_is_one_line_naming_it(disc_data, tmp_path, capsys):
    (tmp_path / "afile").write_text("a file, not a folder")
    log = tmp_path / "afile" / "train.log"
    status, out, err = _run(capsys, *_flags(disc_data, tmp_path / "out", log=log))
    assert_one_line_error(status, out, err, str(tmp_path / "afile"))


# -- item 3: locks never follow a symlink -------------------------------------------------------

@pytest.mark.parametrize("which", ["save dir lock", "log lock"])
def test_a_symlink_where_a_lock_goes_is_refused_and_its_target_kept(disc_data, tmp_path, capsys,
                                                                    which):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    lock = out / LOCK_NAME if which == "save dir lock" else out / "train.log.lock"
    lock.symlink_to(victim)
    status, stdout, err = _run(capsys, *_flags(disc_data, out))
    assert_one_line_error(status, stdout, err, str(lock), "symbolic link")
    assert victim.read_text() == "precious"


def test_a_lock_path_that_is_not_a_regular_file_is_refused(disc_data, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / LOCK_NAME)
    status, stdout, err = _run(capsys, *_flags(disc_data, out))
    assert_one_line_error(status, stdout, err, str(out / LOCK_NAME), "not a regular file")


# -- item 7: checkpoint records with missing or malformed fields --------------------------------

@pytest.fixture(scope="module")
def two_epochs(disc_data, tmp_path_factory):
    """A finished 2-epoch run's save dir (checkpoints after epochs 1 and 2)."""
    out = tmp_path_factory.mktemp("two_epochs")
    assert main(_flags(disc_data, out, "--num-epochs", "2")) == 0
    return out


def _drop_step(record):
    del record["step"]


def _config_not_a_dict(record):
    record["config"] = "resnet18_v1d"


def _config_world_size_text(record):
    record["config"]["world_size"] = "two"


def _config_loss_scaler_text(record):
    record["config"]["loss_scaler"] = "dynamic"


@pytest.mark.parametrize("damage", [_drop_step, _config_not_a_dict, _config_world_size_text,
                                    _config_loss_scaler_text])
def test_a_record_with_a_missing_or_malformed_field_is_skipped_by_name(two_epochs, disc_data,
                                                                       tmp_path, capsys, damage):
    import shutil
    out = tmp_path / "out"
    shutil.copytree(two_epochs, out)
    newest = out / "resnet18_v1d-0002.json"
    record = json.load(open(newest))
    damage(record)
    json.dump(record, open(newest, "w"))
    status, stdout, err = _run(capsys, *_flags(disc_data, out, "--num-epochs", "2"))
    assert status == 0, err
    log = open(out / "train.log").read()
    assert "%s fails verification" % newest in log
    assert "resumed from %s" % (out / "resnet18_v1d-0001.json") in log


def test_a_save_dir_turned_read_only_mid_run_is_one_line_naming_it(disc_data, tmp_path,
                                                                  capsys, monkeypatch):
    """A read-only bind mount over the save dir in epoch 1 (as a file server turning read-only):
    epoch 1's checkpoint cannot be written (the lock stays open on the mount underneath)."""
    from gluon_tricks.training import loop
    save = tmp_path / "save"
    save.mkdir()
    real, calls, mounted = loop.smooth_one_hot, [], []

    def read_only_in_epoch_1(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # the first batch of epoch 1: epoch 0's checkpoint is written
            for options in (["--bind"], ["-o", "remount,bind,ro"]):
                if subprocess.run(["mount", *options, str(save), str(save)]).returncode:
                    pytest.skip("cannot bind-mount here (not root)")
                mounted.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(loop, "smooth_one_hot", read_only_in_epoch_1)
    try:
        status, out, err = _run(capsys, *_flags(disc_data, save, "--num-epochs", "2",
                                                log=tmp_path / "train.log"))
    finally:
        if mounted:
            subprocess.run(["umount", str(save)], check=True)
    assert os.path.isfile(save / "resnet18_v1d-0001.json")
    assert status == 2 and err.count("\n") == 1, err
    assert str(save) in err and "Read-only file system" in err


# -- item 8: orphan weights, a deleted log, an early TERM ---------------------------------------

def test_orphan_weights_without_a_json_are_removed_at_start(two_epochs, disc_data, tmp_path,
                                                            capsys):
    import shutil
    out = tmp_path / "out"
    shutil.copytree(two_epochs, out)
    for ext in (".params", ".states"):  # killed while writing the JSON of epoch 3's checkpoint
        shutil.copy(out / ("resnet18_v1d-0002" + ext), out / ("resnet18_v1d-0003" + ext))
    shutil.copy(out / "resnet18_v1d-0002.params", out / "resnet18_v1d-0000-batch000003.params")
    kept = out / "my-weights.params"  # not a checkpoint file name of this model: not touched
    shutil.copy(out / "resnet18_v1d-0002.params", kept)
    status, stdout, err = _run(capsys, *_flags(disc_data, out, "--num-epochs", "2"))
    assert status == 0, err
    names = sorted(os.listdir(out))
    assert "resnet18_v1d-0003.params" not in names and "resnet18_v1d-0003.states" not in names
    assert "resnet18_v1d-0000-batch000003.params" not in names
    assert kept.exists() and "resnet18_v1d-0002.params" in names
    # A finished run writes nothing to its log; it says what its start did on stdout.
    assert "removed 3 checkpoint files without their JSON" in stdout


def test_orphan_cleaning_spares_the_files_named_by_resume_flags(two_epochs, disc_data, tmp_path,
                                                                capsys):
    import shutil
    out = tmp_path / "out"
    out.mkdir()
    for ext in (".params", ".states"):
        shutil.copy(two_epochs / ("resnet18_v1d-0001" + ext), out / ("resnet18_v1d-0001" + ext))
    status, stdout, err = _run(capsys, *_flags(
        disc_data, out, "--num-epochs", "2", "--resume-epoch", "1", "--resume-params",
        out / "resnet18_v1d-0001.params", "--resume-states", out / "resnet18_v1d-0001.states"))
    assert status == 0, err
    assert os.path.isfile(out / "resnet18_v1d-0001.params")


def test_a_log_deleted_mid_run_is_reopened_and_says_so(disc_data, tmp_path, capsys,
                                                       monkeypatch):
    from gluon_tricks.training import loop
    log = tmp_path / "train.log"
    real, calls = loop.smooth_one_hot, []

    def deleting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.remove(log)
            os.remove(str(log) + ".jsonl")
        return real(*args, **kwargs)
    monkeypatch.setattr(loop, "smooth_one_hot", deleting)
    status, out, err = _run(capsys, *_flags(disc_data, tmp_path / "out", log=log))
    assert status == 0, err
    text = log.read_text()
    assert "was deleted or replaced during the run; reopened" in text
    assert "[Epoch 0] validation:" in text
    assert '"event": "validation"' in open(str(log) + ".jsonl").read()
    assert err.count("was deleted or replaced") == 1


def test_a_term_right_after_start_is_a_message_and_exit_75(disc_data, tmp_path):
    """The real CLI in a subprocess, TERMed as soon as it catches TERM (while it imports MXNet:
    a fixed delay raced the interpreter's start on a loaded machine)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=repo, OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", "gluon_tricks",
                                *_flags(disc_data, tmp_path / "out")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_until_it_catches(process.pid, signal.SIGTERM)  # then MXNet's import takes seconds
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == PREEMPTED_EXIT_CODE, (process.returncode, err[-2000:])
    assert err.count("\n") == 1 and "stopped by SIGTERM before the first step" in err


def _wait_until_it_catches(pid, signum, timeout=60.0):
    """Until process `pid` has a handler for `signum` (its SigCgt mask in /proc)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open("/proc/%d/status" % pid) as f:
            caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
        if caught & (1 << (signum - 1)):
            return
        time.sleep(0.005)
    raise AssertionError("process %d never caught signal %d" % (pid, signum))


# -- warnings about the data reach the training log --------------------------------------------

def test_warnings_about_the_data_follow_the_namespace_line(disc_data, tmp_path, capsys):
    """A file that is not an image in a class folder is ignored with a warning: the warning is
    found while the data is read, before the log exists, and must still reach the log."""
    import shutil
    train = tmp_path / "train"
    shutil.copytree(disc_data / "train", train)
    first_class = sorted(os.listdir(train))[0]
    (train / first_class / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    argv = _flags(disc_data, out)
    argv[argv.index(str(disc_data / "train"))] = str(train)
    status, _, err = _run(capsys, *argv)
    assert status == 0, err
    lines = open(out / "train.log").read().splitlines()
    assert lines[0].startswith("Namespace(")
    warned = [i for i, line in enumerate(lines) if "ignored 1 files" in line]
    assert warned and lines[warned[0]].startswith("warning: ") and warned[0] <= 3, lines[:5]
