"""Faults of multi-rank runs under a real horovodrun (2 ranks, gloo, tiny images): ranks that see
different save dirs (node-local disks, or NFS hiding the newest checkpoint from a node), and a
preempted job whose exit status must reach a requeueing wrapper through horovodrun."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from gluon_tricks.training.checkpoint import PREEMPTED_MARKER
from gluon_tricks.training.preemption import PREEMPTED_EXIT_CODE

from conftest import HOROVODRUN

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
pytestmark = pytest.mark.skipif(not os.path.exists(HOROVODRUN), reason="no horovodrun")

TINY = ["--model", "resnet18_v1d", "--input-size", "32", "--batch-size", "4", "-j", "0",
        "--log-interval", "1", "--save-frequency", "1", "--lr", "0.05"]


def _env():
    return dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1",
                PATH=BIN + os.pathsep + os.environ.get("PATH", ""))


def _node_local(tmp_path, disc_data, *extra):
    """2 ranks, each in its own folder nodeRANK (as on node-local disks), all with the same
    relative --save-dir run: the same flags, two save dirs."""
    train = " ".join([sys.executable, "-m", "gluon_tricks", "train", *TINY,
                      "--train-dir", str(disc_data / "train"), "--val-dir", str(disc_data / "val"),
                      "--save-dir", "run", "--logging-file", "run/train.log", *extra])
    for rank in (0, 1):
        (tmp_path / ("node%d" % rank)).mkdir(exist_ok=True)
    return subprocess.run([HOROVODRUN, "-np", "2", "-H", "localhost:2", "--gloo", "sh", "-c",
                           'cd "node$HOROVOD_RANK" && exec ' + train], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=600, env=_env())


def test_ranks_that_see_different_checkpoints_are_refused_before_the_first_step(disc_data,
                                                                               tmp_path):
    done = _node_local(tmp_path, disc_data, "--num-epochs", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    node0, node1 = tmp_path / "node0" / "run", tmp_path / "node1" / "run"
    assert (node0 / "resnet18_v1d-0002.json").exists() and not node1.exists()
    node1.mkdir()  # rank 1's disk holds epoch 1's checkpoint only: the newest is hidden from it
    for ext in (".json", ".params", ".states"):
        shutil.copy(node0 / ("resnet18_v1d-0001" + ext), node1)
    log_before = (node0 / "train.log").read_text()
    done = _node_local(tmp_path, disc_data, "--num-epochs", "2")  # rank 1 would train epoch 1
    assert done.returncode != 0
    lines = [line for line in (done.stdout + done.stderr).splitlines()
             if "gluon-tricks: error:" in line]
    assert len(lines) == 2, done.stdout[-3000:] + done.stderr[-3000:]  # one line from each rank
    for line in lines:
        assert "the ranks do not see the same checkpoint to continue in --save-dir run" in line
        assert "rank 0: resnet18_v1d-0002.json (SHA-256 " in line
        assert "rank 1: resnet18_v1d-0001.json (SHA-256 " in line
    assert (node0 / "train.log").read_text() == log_before  # refused before the log, no step


def test_the_same_name_with_other_contents_is_refused_too(disc_data, tmp_path):
    """Both ranks see resnet18_v1d-0001.json, but rank 1's is another file (a stale copy)."""
    done = _node_local(tmp_path, disc_data, "--num-epochs", "1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    node0, node1 = tmp_path / "node0" / "run", tmp_path / "node1" / "run"
    shutil.copytree(node0, node1)
    record = (node1 / "resnet18_v1d-0001.json").read_text()
    (node1 / "resnet18_v1d-0001.json").write_text(record + "\n")  # same record, another file
    done = _node_local(tmp_path, disc_data, "--num-epochs", "1")
    assert done.returncode != 0
    assert "the ranks do not see the same checkpoint" in done.stdout + done.stderr


def _wait_for(path, text, seconds=300):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if os.path.exists(path) and text in open(path).read():
            return
        time.sleep(0.2)
    raise AssertionError("%s never said %r" % (path, text))


def test_a_recipe_under_horovodrun_exits_75_when_its_ranks_were_preempted(demo, tmp_path):
    """A paper recipe (scripts/table4_bs256_warmup.sh) with the real horovodrun, 2 ranks on the
    CPU; a TERM to the recipe reaches the ranks through horovodrun, they checkpoint and exit 75,
    horovodrun exits 1, the recipe exits 75 (rank 0's marker says why)."""
    env = dict(_env(), NP="2", HOSTS="localhost:2", DATA_DIR=os.path.dirname(demo["train_dir"]),
               OUT_DIR=str(tmp_path / "runs"), GLUON_TRICKS_DEVICES="cpu(0),cpu(1)",
               HOROVODRUN_ARGS="--gloo")
    recipe = subprocess.Popen(["bash", os.path.join(REPO, "scripts", "table4_bs256_warmup.sh"),
                               "--model", "resnet18_v1d", "--input-size", "32", "--batch-size",
                               "4", "-j", "0", "--log-interval", "1", "--num-epochs", "2",
                               "--warmup-epochs", "1", "--save-interval-minutes", "0"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    save = tmp_path / "runs" / "table4_bs256_warmup"
    try:
        _wait_for(str(save / "table4_bs256_warmup.log"), "Epoch[0] Batch [1]")
        recipe.send_signal(signal.SIGTERM)
        out, err = recipe.communicate(timeout=120)
    finally:
        if recipe.poll() is None:
            recipe.kill()
    assert recipe.returncode == PREEMPTED_EXIT_CODE, out[-3000:] + err[-3000:]
    assert "stopped by SIGTERM at epoch" in (save / PREEMPTED_MARKER).read_text()
    assert any(name.endswith(".json") and "-batch" in name for name in os.listdir(save))
    assert "exit status 75" in err


def _rank_processes(rank):
    """Pids of the processes of Horovod rank `rank` running `gluon_tricks train` (the trainer and
    its forked data workers, which inherit its environment)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if b"HOROVOD_RANK=%d" % rank in env and b"gluon_tricks" in cmdline:
            found.append(int(pid))
    return found


def test_a_data_worker_death_on_rank_1_reaches_the_log_rank_0_writes(disc_data, tmp_path):
    save = tmp_path / "run"
    train = [sys.executable, "-m", "gluon_tricks", "train", *TINY, "--num-epochs", "3",
             "--train-dir", str(disc_data / "train"), "--val-dir", str(disc_data / "val"),
             "--save-dir", str(save), "--logging-file", str(save / "train.log")]
    train[train.index("-j") + 1] = "1"  # one data worker per rank
    job = subprocess.Popen([HOROVODRUN, "-np", "2", "-H", "localhost:2", "--gloo", *train],
                           cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=_env())
    try:
        victim, deadline = None, time.time() + 300
        while victim is None and time.time() < deadline:
            log = save / "train.log"
            if log.exists() and "Epoch[0] Batch" in log.read_text():
                ours = set(_rank_processes(1))  # the trainer and its workers
                workers = [child for pid in ours for child in _children_of(pid) if child in ours]
                victim = workers[0] if workers else None
            time.sleep(0.1)
        assert victim is not None, "rank 1 never started its data worker"
        os.kill(victim, signal.SIGKILL)
        output, _ = job.communicate(timeout=600)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, output[-3000:]
    died = [line for line in (save / "train.log").read_text().splitlines()
            if "of rank 1 died" in line]
    assert len(died) == 1 and str(victim) in died[0], output[-3000:]


def _children_of(pid):
    """The pids whose parent is `pid`."""
    children = []
    for child in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % child) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == int(pid):
                    children.append(int(child))
        except (OSError, ValueError, IndexError):
            continue
    return children


def test_corrupt_images_of_every_rank_are_counted_in_the_log(disc_data, tmp_path):
    """One corrupt training image, read by whichever rank its shard puts it on: each epoch's log
    line counts it (rank 0 alone saw it only in the epochs it fell to rank 0)."""
    train = tmp_path / "train"
    shutil.copytree(disc_data / "train", train)
    first_class = sorted(os.listdir(train))[0]
    victim = train / first_class / sorted(os.listdir(train / first_class))[0]
    victim.write_bytes(b"\xff\xd8\xff not a JPEG after its first bytes")
    save = tmp_path / "run"
    done = subprocess.run(
        [HOROVODRUN, "-np", "2", "-H", "localhost:2", "--gloo", sys.executable, "-m",
         "gluon_tricks", "train", *TINY, "--num-epochs", "4", "--train-dir", str(train),
         "--val-dir", str(disc_data / "val"), "--save-dir", str(save), "--logging-file",
         str(save / "train.log"), "--max-bad-fraction", "0.2"],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=600, env=_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = (save / "train.log").read_text().splitlines()
    for epoch in range(4):
        assert "[Epoch %d] skipped 1 corrupt training images" % epoch in lines, lines


def test_pillow_decodes_jpegs_as_in_one_process_after_the_world_starts_horovod(tmp_path):
    """horovod.mxnet loads its libraries with RTLD_GLOBAL, putting libmxnet's own libjpeg
    first in the process: a Pillow loaded after that decoded JPEGs as black or failed (the
    segmentation data under horovodrun trained on black images). World.from_environment must
    leave Pillow's decoding as it is in a plain process."""
    from PIL import Image
    import numpy as np
    path = tmp_path / "scene.jpg"
    pixels = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=95)
    decode = ("from gluon_tricks.training.distributed import World"
              "; world = World.from_environment()"
              "; from PIL import Image; import numpy as np"
              "; pixels = np.asarray(Image.open(%r).convert('RGB'), np.int64)"
              "; print('decoded', int(pixels.sum())); world.finish()" % str(path))
    done = subprocess.run([HOROVODRUN, "-np", "1", "-H", "localhost:1", "--gloo", sys.executable,
                           "-c", decode], capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    expected = int(np.asarray(Image.open(path).convert("RGB"), np.int64).sum())
    assert expected > 0 and "decoded %d" % expected in done.stdout, done.stdout[-3000:]
